"""ElevenLabs streaming TTS (``provider: elevenlabs``) on pipecat's ``ElevenLabsTTSService``.

Adds to pipecat's service:

- visemes: each ``TTSAudioRawFrame`` carries ``frame.metadata["visemes"]`` =
  ``[(offset_seconds, viseme, chars), ...]`` from ElevenLabs' character alignment of that chunk,
  exactly like the espeak stage's phoneme visemes (``presence.processors.tts.visemes``), so the
  renderer does not care which voice spoke. Letters are mapped to rough phonemes first
  (``th`` → θ, ``sh`` → ʃ, ``c`` → k, …): English spelling, so a approximation of lip shapes.
- a malformed server message is reported as an ``ErrorFrame`` and skipped; the socket and the
  rest of the audio survive (pipecat would drop the socket and the sentence with it);
- a stall (no audio for ``stall_timeout_s``) hands the unspoken text to the ``fallback:`` voice
  (see ``presence.processors.resilience``), or reports a ``ProviderTimeout``.
"""

from __future__ import annotations

import json
import re
from typing import Any

from loguru import logger
from pipecat.frames.frames import TTSAudioRawFrame
from pipecat.services.elevenlabs.tts import ElevenLabsTTSService
from pydantic import Field, model_validator

from presence.framework.registry import BuildContext, StageParams, register
from presence.processors._secrets import resolve_api_key
from presence.processors.resilience import StallFallbackTTSMixin
from presence.processors.tts.visemes import viseme_for

ENV = "ELEVENLABS_API_KEY"

_DIGRAPHS = {
    "th": "θ",
    "sh": "ʃ",
    "ch": "tʃ",
    "ph": "f",
    "ng": "ŋ",
    "wh": "w",
    "oo": "u",
    "ee": "i",
}
_LETTERS = {
    "a": "a", "e": "ɛ", "i": "ɪ", "o": "o", "u": "ʊ", "y": "j", "c": "k", "q": "k", "x": "k",
    "j": "dʒ", "r": "ɹ", "g": "g",
}  # fmt: skip
_LETTER = re.compile(r"[a-z]")


def letters_to_visemes(chars: list[str], starts_ms: list[float]) -> list[tuple[float, str, str]]:
    """``(offset_seconds, viseme, letters)`` per sound of an alignment chunk, in order.

    A digraph (``th``, ``sh`` …) is one sound at its first letter's time; a letter repeated
    (``ll``) is one sound; spaces and punctuation are ``rest``, once per run.
    """
    out: list[tuple[float, str, str]] = []
    i = 0
    lower = [c.lower() for c in chars]
    while i < len(lower):
        c, t = lower[i], starts_ms[i] / 1000.0
        pair = c + lower[i + 1] if i + 1 < len(lower) else ""
        if pair in _DIGRAPHS:
            out.append((t, viseme_for(_DIGRAPHS[pair]), chars[i] + chars[i + 1]))
            i += 2
            continue
        if not _LETTER.fullmatch(c):
            if not out or out[-1][1] != "rest":
                out.append((t, "rest", chars[i]))
        elif not (i and lower[i - 1] == c):
            out.append((t, viseme_for(_LETTERS.get(c, c)), chars[i]))
        i += 1
    return out


class ElevenLabsParams(StageParams):
    """Parameters of ``provider: elevenlabs``.

    Attributes:
        api_key: ElevenLabs key; defaults to ``$ELEVENLABS_API_KEY``.
        voice_id: The voice to speak with (``voice`` is accepted as an alias).
        model: ElevenLabs model, e.g. ``eleven_flash_v2_5``.
        base_url: WebSocket base, ``wss://api.elevenlabs.io`` unless self-hosted/proxied.
        language: Language code for multilingual models.
        stability, similarity_boost, style, speed: Voice settings (``None`` = voice default).
        stall_timeout_s: Wait for audio before a sentence goes to the fallback voice.
    """

    api_key: str | None = None
    voice_id: str = Field(default="21m00Tcm4TlvDq8ikWAM", alias="voice")
    model: str = "eleven_flash_v2_5"
    base_url: str = "wss://api.elevenlabs.io"
    language: str | None = None
    stability: float | None = Field(default=None, ge=0, le=1)
    similarity_boost: float | None = Field(default=None, ge=0, le=1)
    style: float | None = Field(default=None, ge=0, le=1)
    speed: float | None = Field(default=None, ge=0.7, le=1.2)
    stall_timeout_s: float = Field(default=3.0, gt=0, le=30)

    model_config = {"populate_by_name": True}

    @model_validator(mode="after")
    def _key(self) -> ElevenLabsParams:
        self.api_key = resolve_api_key(self.api_key, ENV, "elevenlabs")
        return self


class _PeekingSocket:
    """The service's websocket, read through ``on_message`` first (which may drop a message)."""

    def __init__(self, ws: Any, on_message):
        self._ws = ws
        self._on_message = on_message

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ws, name)

    async def __aiter__(self):
        async for message in self._ws:
            if await self._on_message(message):
                yield message


class PresenceElevenLabsTTS(StallFallbackTTSMixin, ElevenLabsTTSService):
    """``ElevenLabsTTSService`` with viseme metadata, malformed-message tolerance, stall fallback."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._init_stall_fallback(provider="elevenlabs")
        self._next_visemes: list | None = None
        self._aligned: dict[str, int] = {}

    async def _receive_messages(self):
        ws = self._websocket
        self._websocket = _PeekingSocket(ws, self._peek) if ws is not None else None
        try:
            await super()._receive_messages()
        finally:
            if isinstance(self._websocket, _PeekingSocket):
                self._websocket = self._websocket._ws

    async def _peek(self, raw: str | bytes) -> bool:
        try:
            msg = json.loads(raw)
            if not isinstance(msg, dict):
                raise ValueError("not an object")
        except ValueError as exc:
            logger.warning(f"{self}: skipping a malformed message from ElevenLabs")
            await self.push_error(f"malformed message from elevenlabs: {exc}")
            return False
        align = msg.get("normalizedAlignment") or msg.get("alignment") or {}
        chars, starts = align.get("chars") or [], align.get("charStartTimesMs") or []
        ctx = msg.get("contextId")
        if chars and len(chars) == len(starts):
            self._aligned[ctx] = self._aligned.get(ctx, 0) + len(chars)
            self._next_visemes = letters_to_visemes(chars, starts) if msg.get("audio") else None
        else:
            self._next_visemes = [] if msg.get("audio") else None
        return True

    async def append_to_audio_context(self, context_id, frame):
        """Attach the visemes of the message this audio came in."""
        if isinstance(frame, TTSAudioRawFrame) and self._next_visemes is not None:
            frame.metadata["visemes"] = self._next_visemes
            self._next_visemes = None
        await super().append_to_audio_context(context_id, frame)

    def _unspoken_text(self, context_id: str, text: str, received_audio: bool) -> str:
        spoken = self._aligned.pop(context_id, 0)
        return text.lstrip()[spoken:]


@register(
    "tts",
    "elevenlabs",
    ElevenLabsParams,
    summary="ElevenLabs streaming voice with visemes from its alignment; stall -> fallback voice",
)
def build(params: ElevenLabsParams, ctx: BuildContext) -> PresenceElevenLabsTTS:
    """Build the ElevenLabs TTS stage."""
    settings = ElevenLabsTTSService.Settings(model=params.model, voice=params.voice_id)
    for name in ("language", "stability", "similarity_boost", "style", "speed"):
        value = getattr(params, name)
        if value is not None:
            setattr(settings, name, value)
    return PresenceElevenLabsTTS(
        api_key=params.api_key,
        url=params.base_url,
        sample_rate=ctx.audio_out_sample_rate,
        settings=settings,
        stop_frame_timeout_s=params.stall_timeout_s,
    )
