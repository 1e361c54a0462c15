"""A local Deepgram live-transcription server speaking the real ``/v1/listen`` WebSocket protocol.

Binary frames carry linear16 PCM; text frames carry ``KeepAlive``, ``Finalize`` and
``CloseStream`` control messages. The server answers with ``Results`` messages (interim and
``is_final`` / ``speech_final``, ``from_finalize`` after a ``Finalize``), and ``Metadata`` on close.

"Speech" is a code the test writes with :func:`encode_words`: each word is a run of samples with
the constant value ``WORD_BASE + index`` into the server's vocabulary, silence is zeros. The fake
decodes exactly what it receives, so audio lost on the way shows up as missing words and audio
sent twice as repeated words. A final result is emitted after ``endpoint_ms`` of silence following
words, or on ``Finalize``. Times (``start``, ``duration``) are seconds of audio received on that
connection, as Deepgram reports them.

Faults: ``drop_after_ms`` aborts the TCP connection (no close frame) once that much audio arrived
on the N-th connection; ``malformed_on`` sends a non-JSON text frame first on the N-th;
``stall_on`` connections take audio and control messages but never answer (a hung provider).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlparse

import numpy as np
from fakes.loopback import LoopbackWebSocketFake
from websockets.asyncio.server import ServerConnection

WORD_BASE = 1000


def encode_words(
    words: list[str],
    vocabulary: list[str],
    *,
    sample_rate: int = 16000,
    word_ms: int = 200,
    gap_ms: int = 40,
) -> bytes:
    """PCM (int16 mono) in which each word is a constant run the fake decodes back to it."""
    word_n = sample_rate * word_ms // 1000
    gap_n = sample_rate * gap_ms // 1000
    parts = []
    for word in words:
        parts.append(np.full(word_n, WORD_BASE + vocabulary.index(word), dtype=np.int16))
        parts.append(np.zeros(gap_n, dtype=np.int16))
    return np.concatenate(parts).tobytes()


def silence(ms: int, sample_rate: int = 16000) -> bytes:
    """``ms`` of int16 zeros."""
    return bytes(2 * sample_rate * ms // 1000)


@dataclass
class ConnectionLog:
    """What one client connection did."""

    query: dict[str, str]
    headers: dict[str, str]
    audio_bytes: int = 0
    controls: list[str] = field(default_factory=list)
    finals: list[str] = field(default_factory=list)
    dropped: bool = False
    stalled: bool = False


class FakeDeepgram(LoopbackWebSocketFake):
    """A scripted Deepgram ``/v1/listen`` server on 127.0.0.1.

    Args:
        vocabulary: Words the PCM code indexes into.
        endpoint_ms: Silence after speech that ends an utterance (``speech_final``).
        drop_after_ms: ``{connection_number: ms}`` — abort that connection (1-based) after it
            received this many ms of audio.
        malformed_on: Connection numbers (1-based) that get one non-JSON text frame on opening.
        stall_on: Connection numbers (1-based) that stay open and silent whatever they receive.
    """

    def __init__(
        self,
        vocabulary: list[str],
        *,
        endpoint_ms: int = 300,
        drop_after_ms: dict[int, int] | None = None,
        malformed_on: set[int] | None = None,
        stall_on: set[int] | None = None,
    ):
        self.vocabulary = vocabulary
        self.stall_on = stall_on or set()
        self.endpoint_ms = endpoint_ms
        self.drop_after_ms = drop_after_ms or {}
        self.malformed_on = malformed_on or set()
        self.connections: list[ConnectionLog] = []
        self.connected = asyncio.Event()

    @property
    def base_url(self) -> str:
        """``ws://127.0.0.1:PORT`` for ``DeepgramSTTService(base_url=...)``."""
        return f"ws://127.0.0.1:{self.port}"

    def _decoder(self, rate: int) -> _Decoder:
        """The decoder of one connection (subclasses hear audio differently)."""
        return _Decoder(rate, self.endpoint_ms, self.vocabulary)

    async def _handle(self, ws: ServerConnection) -> None:
        url = urlparse(ws.request.path)
        if url.path != "/v1/listen":
            await ws.close(1008, "unknown path")
            return
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        log = ConnectionLog(query=query, headers=dict(ws.request.headers))
        self.connections.append(log)
        number = len(self.connections)
        self.connected.set()
        rate = int(query.get("sample_rate", "16000"))
        drop_at = self.drop_after_ms.get(number)
        state = self._decoder(rate)
        if number in self.malformed_on:
            await ws.send("{this is not json")
        if number in self.stall_on:
            log.stalled = True
            async for message in ws:  # hears everything, says nothing
                if isinstance(message, bytes):
                    log.audio_bytes += len(message)
            return
        try:
            async for message in ws:
                if isinstance(message, bytes):
                    log.audio_bytes += len(message)
                    for result in state.feed(message):
                        await self._send_result(ws, log, result)
                    if drop_at is not None and log.audio_bytes >= 2 * rate * drop_at // 1000:
                        log.dropped = True
                        ws.transport.abort()
                        return
                    continue
                kind = json.loads(message).get("type")
                log.controls.append(kind)
                if kind == "Finalize":
                    await self._send_result(ws, log, state.finalize())
                elif kind == "CloseStream":
                    result = state.finalize(from_finalize=False)
                    if result.words:
                        await self._send_result(ws, log, result)
                    await ws.send(json.dumps(_metadata(state.seconds)))
                    await ws.close()
                    return
        except Exception:  # connection went away
            return

    async def _send_result(self, ws: ServerConnection, log: ConnectionLog, result: _Result):
        if result.is_final and result.words:
            log.finals.append(" ".join(result.words))
        await ws.send(json.dumps(result.to_message()))


@dataclass
class _Result:
    words: list[str]
    start: float
    end: float
    is_final: bool
    speech_final: bool = False
    from_finalize: bool = False

    def to_message(self) -> dict:
        span = max(self.end - self.start, 0.0)
        step = span / max(len(self.words), 1)
        return {
            "type": "Results",
            "channel_index": [0, 1],
            "duration": round(span, 3),
            "start": round(self.start, 3),
            "is_final": self.is_final,
            "speech_final": self.speech_final,
            "from_finalize": self.from_finalize,
            "channel": {
                "alternatives": [
                    {
                        "transcript": " ".join(self.words),
                        "confidence": 0.99,
                        "words": [
                            {
                                "word": w,
                                "start": round(self.start + i * step, 3),
                                "end": round(self.start + (i + 1) * step, 3),
                                "confidence": 0.99,
                                "punctuated_word": w,
                            }
                            for i, w in enumerate(self.words)
                        ],
                    }
                ]
            },
            "metadata": {
                "request_id": str(uuid.uuid4()),
                "model_info": {"name": "general-nova-3", "version": "fake", "arch": "nova-3"},
                "model_uuid": str(uuid.uuid4()),
            },
        }


class _Decoder:
    """Turns the word code back into words, tracking connection time like Deepgram does."""

    def __init__(self, rate: int, endpoint_ms: int, vocab: list[str]):
        self.rate = rate
        self.vocab = vocab
        self.endpoint_samples = rate * endpoint_ms // 1000
        self.samples = 0  # samples received on this connection
        self.words: list[str] = []  # not yet finalized
        self.segment_start = 0.0  # connection time where the not-finalized words began
        self.current = 0  # value of the run in progress
        self.silent_run = 0
        self._pending_tail = b""

    @property
    def seconds(self) -> float:
        return self.samples / self.rate

    def feed(self, data: bytes) -> list[_Result]:
        data = self._pending_tail + data
        usable = len(data) - len(data) % 2
        self._pending_tail = data[usable:]
        pcm = np.frombuffer(data[:usable], dtype=np.int16)
        results: list[_Result] = []
        changed = False
        for value in pcm.tolist():
            self.samples += 1
            if value != self.current:
                if self.current >= WORD_BASE:
                    self.words.append(self.current)
                    changed = True
                self.current = value
            if value == 0:
                self.silent_run += 1
                if self.silent_run == self.endpoint_samples and self.words:
                    results.append(self._final(speech_final=True))
                    changed = False
            else:
                if not self.words and self.silent_run:
                    self.segment_start = (self.samples - 1) / self.rate
                self.silent_run = 0
        if changed and self.words:
            results.append(_Result(self._names(), self.segment_start, self.seconds, False))
        return results

    def _names(self) -> list[str]:
        return [self.vocab[v - WORD_BASE] for v in self.words]

    def _final(self, *, speech_final: bool = False, from_finalize: bool = False) -> _Result:
        result = _Result(
            self._names(), self.segment_start, self.seconds, True, speech_final, from_finalize
        )
        self.words = []
        self.segment_start = self.seconds
        return result

    def finalize(self, from_finalize: bool = True) -> _Result:
        if self.current >= WORD_BASE:  # a word still sounding counts as spoken
            self.words.append(self.current)
            self.current = -1
        return self._final(speech_final=True, from_finalize=from_finalize)


def _metadata(seconds: float) -> dict:
    return {
        "type": "Metadata",
        "transaction_key": "deprecated",
        "request_id": str(uuid.uuid4()),
        "sha256": "0" * 64,
        "created": "2026-01-01T00:00:00.000Z",
        "duration": round(seconds, 3),
        "channels": 1,
        "models": [str(uuid.uuid4())],
        "model_info": {},
    }
