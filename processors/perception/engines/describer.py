"""One-line descriptions of the user's camera frame from an Anthropic vision model.

``AnthropicDescriber.describe(rgb)`` shrinks the frame (longest side ``max_side``), encodes it as
JPEG and sends it as a base64 ``image`` content block to the Messages API, asking for one short
line about the person's posture, expression and apparent mood ("leaning back, arms crossed, looks
skeptical"). It is slow (hundreds of ms to seconds) and costs tokens, so the processor calls it
every ``interval_s`` or on a notable change, never per frame.

Errors are mapped at this one boundary::

    anthropic.APITimeoutError            -> ProviderTimeout
    anthropic.APIConnectionError,
    RateLimitError, InternalServerError  -> ProviderUnavailable
    any other anthropic.APIError         -> ProviderError (e.g. a bad key or model name)
"""

from __future__ import annotations

import base64
from contextlib import contextmanager

import cv2
import numpy as np

from presence.framework.errors import ProviderError, ProviderTimeout, ProviderUnavailable
from presence.framework.optional import require

DEFAULT_PROMPT = (
    "This is a frame from the user's webcam during a video call with you. In one short line "
    "(under 15 words, no preamble), describe the person's posture, expression and apparent mood, "
    "e.g. 'leaning back, arms crossed, looks skeptical'. If nobody is visible, say 'nobody visible'."
)


def encode_jpeg(rgb: np.ndarray, max_side: int = 512, quality: int = 80) -> bytes:
    """Shrink an RGB frame so its longest side is at most ``max_side`` and encode it as JPEG."""
    height, width = rgb.shape[:2]
    scale = min(1.0, max_side / max(height, width))
    if scale < 1.0:
        rgb = cv2.resize(
            rgb, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_AREA
        )
    ok, buf = cv2.imencode(
        ".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality]
    )
    if not ok:
        raise ProviderError("could not encode the camera frame as JPEG", stage="perception")
    return buf.tobytes()


@contextmanager
def _mapped_errors(provider: str):
    anthropic = require("anthropic", extra="anthropic")
    try:
        yield
    except anthropic.APITimeoutError as exc:
        raise ProviderTimeout(
            f"vision model timed out: {exc}", provider=provider, stage="perception"
        ) from exc
    except (
        anthropic.APIConnectionError,
        anthropic.RateLimitError,
        anthropic.InternalServerError,
    ) as exc:
        raise ProviderUnavailable(
            f"vision model unavailable: {exc}", provider=provider, stage="perception"
        ) from exc
    except anthropic.APIError as exc:
        raise ProviderError(
            f"vision model request failed ({exc}); check the describer's model and api_key",
            provider=provider,
            stage="perception",
        ) from exc


class AnthropicDescriber:
    """Describes a camera frame in one line with an Anthropic vision model.

    Args:
        api_key: Anthropic API key.
        model: A vision-capable model name.
        base_url: API root (``None`` for Anthropic's); a local fake or proxy otherwise.
        max_tokens: Cap on the reply length.
        timeout_s: Per-request timeout; the SDK retries once on connection errors.
        max_side: Longest side of the image sent, in pixels (smaller is cheaper and faster).
        prompt: The instruction sent with the image.
    """

    name = "anthropic"

    def __init__(
        self,
        *,
        api_key: str,
        model: str,
        base_url: str | None = None,
        max_tokens: int = 60,
        timeout_s: float = 10.0,
        max_side: int = 512,
        prompt: str = DEFAULT_PROMPT,
    ):
        anthropic = require("anthropic", extra="anthropic")
        self.model = model
        self.max_tokens = max_tokens
        self.max_side = max_side
        self.prompt = prompt
        self._client = anthropic.AsyncAnthropic(
            api_key=api_key, base_url=base_url, timeout=timeout_s, max_retries=1
        )

    async def describe(self, rgb: np.ndarray) -> str:
        """Return a one-line description of ``rgb`` (``(h, w, 3)`` uint8).

        Raises:
            ProviderTimeout: No answer within ``timeout_s``.
            ProviderUnavailable: Connection refused, 429 or 5xx.
            ProviderError: Any other API error (bad key, unknown model, …).
        """
        data = base64.b64encode(encode_jpeg(rgb, self.max_side)).decode("ascii")
        content = [
            {
                "type": "image",
                "source": {"type": "base64", "media_type": "image/jpeg", "data": data},
            },
            {"type": "text", "text": self.prompt},
        ]
        with _mapped_errors(self.name):
            message = await self._client.messages.create(
                model=self.model,
                max_tokens=self.max_tokens,
                messages=[{"role": "user", "content": content}],
            )
        text = " ".join(b.text for b in message.content if getattr(b, "type", "") == "text")
        return " ".join(text.split())[:200]

    async def close(self) -> None:
        """Close the HTTP client."""
        await self._client.close()
