"""A local ElevenLabs ``multi-stream-input`` WebSocket TTS server (the real protocol).

Path ``/v1/text-to-speech/{voice_id}/multi-stream-input?model_id=..&output_format=pcm_24000..``,
key in the ``xi-api-key`` header. Client messages: ``{"text": " ", "context_id", voice_settings}``
opens a context, ``{"text": "...", "context_id"}`` adds text, ``{"context_id", "flush": true}``,
``{"context_id", "close_context": true}``, ``{"text": ""}`` keepalive, ``{"close_socket": true}``.
Server messages: ``{"audio": base64 PCM, "alignment": {"chars", "charStartTimesMs",
"charDurationsMs"}, "normalizedAlignment": {...}, "contextId"}`` — times restart at zero in every
message — and ``{"isFinal": true, "contextId"}`` once a closed context has sent all its audio.

Audio is ``char_ms`` of the constant sample ``SAMPLE`` per character, so a test can tell this
voice from another. Faults by context number (1-based, in order of opening): ``stall_contexts``
produce nothing at all; ``malformed_contexts`` get a non-JSON frame before their audio;
``drop_contexts`` cut the TCP connection (no close frame) when their first text arrives.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlparse

import numpy as np
from fakes.loopback import LoopbackWebSocketFake
from websockets.asyncio.server import ServerConnection

SAMPLE = 1234


@dataclass
class _Context:
    number: int
    texts: list[str] = field(default_factory=list)
    closed: bool = False


class FakeElevenLabs(LoopbackWebSocketFake):
    """Scripted ElevenLabs server; ``contexts`` maps context id to what it received."""

    def __init__(
        self,
        *,
        char_ms: int = 20,
        stall_contexts: set[int] | None = None,
        malformed_contexts: set[int] | None = None,
        drop_contexts: set[int] | None = None,
    ):
        self.drop_contexts = drop_contexts or set()
        self.dropped = 0
        self.char_ms = char_ms
        self.stall_contexts = stall_contexts or set()
        self.malformed_contexts = malformed_contexts or set()
        self.contexts: dict[str, _Context] = {}
        self.paths: list[str] = []
        self.headers: list[dict[str, str]] = []

    @property
    def url(self) -> str:
        """``ws://127.0.0.1:PORT`` for ``ElevenLabsTTSService(url=...)``."""
        return f"ws://127.0.0.1:{self.port}"

    async def _handle(self, ws: ServerConnection) -> None:
        url = urlparse(ws.request.path)
        parts = url.path.strip("/").split("/")
        if (
            len(parts) != 4
            or parts[:2] != ["v1", "text-to-speech"]
            or parts[3] != "multi-stream-input"
        ):
            await ws.close(1008, "unknown path")
            return
        self.paths.append(ws.request.path)
        self.headers.append(dict(ws.request.headers))
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        rate = int(query.get("output_format", "pcm_24000").split("_")[1])
        try:
            async for raw in ws:
                msg = json.loads(raw)
                if msg.get("close_socket"):
                    await ws.close()
                    return
                cid = msg.get("context_id")
                if cid is None:
                    continue  # context-less keepalive
                ctx = self.contexts.get(cid)
                if ctx is None:
                    ctx = self.contexts[cid] = _Context(number=len(self.contexts) + 1)
                if ctx.number in self.stall_contexts:
                    continue
                if msg.get("close_context"):
                    ctx.closed = True
                    await ws.send(json.dumps({"isFinal": True, "contextId": cid}))
                    continue
                text = msg.get("text", "")
                if text.strip():
                    ctx.texts.append(text)
                    if ctx.number in self.drop_contexts:
                        self.drop_contexts.discard(ctx.number)  # once: a reconnect gets through
                        self.dropped += 1
                        ws.transport.abort()
                        return
                    if ctx.number in self.malformed_contexts:
                        await ws.send("{not json")
                    for piece in _halves(text):
                        await ws.send(json.dumps(self._audio_message(piece, cid, rate)))
        except Exception:
            return

    def _audio_message(self, text: str, cid: str, rate: int) -> dict:
        n = rate * self.char_ms // 1000
        pcm = np.full(n * len(text), SAMPLE, dtype=np.int16).tobytes()
        align = {
            "chars": list(text),
            "charStartTimesMs": [i * self.char_ms for i in range(len(text))],
            "charDurationsMs": [self.char_ms] * len(text),
        }
        return {
            "audio": base64.b64encode(pcm).decode(),
            "alignment": align,
            "normalizedAlignment": align,
            "contextId": cid,
        }


def _halves(text: str) -> list[str]:
    cut = text.find(" ", len(text) // 2)
    return [text] if cut <= 0 else [text[:cut], text[cut:]]
