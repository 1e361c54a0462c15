"""A Python WebRTC "user" (aiortc) that joins a conversation like the browser page does.

Used by the tests and by ``presence bench soak`` (a long call with questions looped in real time).

It speaks the page's signalling (``transports/web/app.js``): ``POST <conversation_url>api/offer``
with ``{"sdp", "type": "offer", "pc_id"}`` (``pc_id`` ``None`` at first, the answer's afterwards),
the same three transceivers (mic ``sendrecv``, camera ``sendrecv``, pipecat's screen-share slot
``sendonly``), a data channel ``chat`` that pings every second (pipecat's liveness), reports its
tracks' status and says RTVI ``client-ready``, and a new offer with the ``pc_id`` whenever the
server asks to renegotiate. aiortc gathers every candidate before the offer is sent, so the page's
ICE ``PATCH`` (trickled candidates) is never needed.

It sends a microphone (an audio file, then silence; or silence only; ``say(pcm)`` plays more speech
at any time) paced in real time, optionally a
camera (a still image), and records what it receives in ``WebRTCUser.received``: the arrival time
of every video frame, the audio samples (48 kHz mono) with the arrival time and RMS of every 20 ms,
and the data-channel messages. Loopback only: call ``limit_ice_host_addresses(["127.0.0.1"])``
first on a host whose only usable interface is loopback (``tests/service/test_session_isolation``)::

    async with WebRTCUser(conversation_url, mic=wav_path) as user:
        await user.wait_for_video(10)
        ...
    user.received.fps(t0, t1), user.received.audible()
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import json
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from aiortc import (
    MediaStreamTrack,
    RTCBundlePolicy,
    RTCConfiguration,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError
from av import AudioFrame, VideoFrame

from presence.transports.webrtc.received import (  # noqa: F401  (re-exported)
    CHUNK,
    RATE,
    SILENCE_RMS,
    Received,
    read_wav,
)

PING_SECS = 1.0


def _mono(frame: AudioFrame) -> np.ndarray:
    """A decoded audio frame as float32 mono in [-1, 1]."""
    array = frame.to_ndarray()
    channels = len(frame.layout.channels)
    array = array.T if frame.format.is_planar else array.reshape(-1, channels)
    mono = array.mean(axis=1)
    return (mono / 32768.0 if array.dtype == np.int16 else mono).astype(np.float32)


class _Paced(MediaStreamTrack):
    """A track whose ``recv`` returns frame ``n`` at ``start + n * period`` (real time)."""

    def __init__(self, period: float):
        super().__init__()
        self._period = period
        self._n = 0
        self._start: float | None = None

    async def _wait(self) -> int:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        n, self._n = self._n, self._n + 1
        await asyncio.sleep(max(0.0, self._start + n * self._period - time.monotonic()))
        return n


class Microphone(_Paced):
    """20 ms mono 48 kHz frames of ``pcm`` (int16), then silence."""

    kind = "audio"

    def __init__(self, pcm: np.ndarray | None = None):
        super().__init__(CHUNK / RATE)
        self._pcm = np.zeros(0, np.int16) if pcm is None else np.asarray(pcm, np.int16)
        self._from = 0  # the frame index where ``_pcm`` starts

    def say(self, pcm: np.ndarray) -> float:
        """Play ``pcm`` (int16, 48 kHz mono) from the next frame on, instead of what is left.

        Returns:
            Its length in seconds.
        """
        self._pcm, self._from = np.asarray(pcm, np.int16), self._n
        return len(self._pcm) / RATE

    async def recv(self) -> AudioFrame:
        """The next 20 ms of speech (or silence), at its real-time moment."""
        n = await self._wait()
        k = n - self._from
        chunk = self._pcm[k * CHUNK : (k + 1) * CHUNK]
        chunk = np.pad(chunk, (0, CHUNK - len(chunk)))
        frame = AudioFrame.from_ndarray(chunk.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate, frame.pts, frame.time_base = RATE, n * CHUNK, fractions.Fraction(1, RATE)
        return frame


class Camera(_Paced):
    """A still RGB image (``H x W x 3`` uint8) at ``fps``."""

    kind = "video"

    def __init__(self, image: np.ndarray, fps: int = 5):
        super().__init__(1.0 / fps)
        self._image = np.ascontiguousarray(image, np.uint8)

    async def recv(self) -> VideoFrame:
        """The image again, at its real-time moment."""
        n = await self._wait()
        frame = VideoFrame.from_ndarray(self._image, format="rgb24")
        frame.pts, frame.time_base = round(n * 90000 * self._period), fractions.Fraction(1, 90000)
        return frame


class WebRTCUser:
    """Joins one conversation page over SmallWebRTC and records what it receives.

    Args:
        conversation_url: The conversation's page (``<base>/c/{id}/``); the offer goes to
            ``<conversation_url>api/offer``.
        mic: An audio file the microphone plays once (then silence); ``None``: silence only.
        camera: An RGB image sent as the camera at ``camera_fps``; ``None``: no camera.
        camera_fps: The camera's frame rate.
    """

    def __init__(
        self,
        conversation_url: str,
        *,
        mic: Path | None = None,
        camera: np.ndarray | None = None,
        camera_fps: int = 5,
    ):
        self.offer_url = conversation_url.rstrip("/") + "/api/offer"
        self.received = Received()
        self.peer_left = asyncio.Event()
        self.pc_id: str | None = None
        self._mic = Microphone(read_wav(mic) if mic is not None else None)
        self._camera = Camera(camera, camera_fps) if camera is not None else None
        self._pc: RTCPeerConnection | None = None
        self._channel: Any = None
        self._http = httpx.AsyncClient(timeout=30.0)
        self._tasks: set[asyncio.Task] = set()
        self._negotiating = asyncio.Lock()

    async def __aenter__(self) -> WebRTCUser:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def connection_state(self) -> str:
        """Aiortc's connection state (``new``, ``connecting``, ``connected``, ``closed``, ...)."""
        return self._pc.connectionState if self._pc is not None else "new"

    async def connect(self) -> None:
        """Send the offer and apply the answer (media then flows once ICE connects).

        Raises:
            httpx.HTTPStatusError: The service refused the offer (e.g. 404: not live).
        """
        pc = RTCPeerConnection(
            RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)
        )
        self._pc = pc
        pc.addTransceiver(self._mic, direction="sendrecv")
        pc.addTransceiver(self._camera or "video", direction="sendrecv")
        pc.addTransceiver("video", direction="sendonly")  # pipecat's screen-share slot, unused
        pc.on("track", self._on_track)
        channel = pc.createDataChannel("chat", ordered=True)
        self._channel = channel
        channel.on("open", self._on_open)
        channel.on("message", self._on_message)
        await self._negotiate()

    async def wait_for_video(self, frames: int = 1, timeout: float = 30.0) -> None:
        """Wait until ``frames`` video frames have arrived (``TimeoutError`` otherwise)."""
        await self._until(lambda: self.received.video_count >= frames, timeout)

    async def wait_for_audible(self, timeout: float = 30.0, **kwargs: Any) -> None:
        """Wait until ``Received.audible(**kwargs)`` holds (``TimeoutError`` otherwise)."""
        await self._until(lambda: self.received.audible(**kwargs), timeout)

    def say(self, pcm: np.ndarray) -> float:
        """Speak ``pcm`` (int16, 48 kHz mono; see ``read_wav``) into the call now.

        Returns:
            Its length in seconds.
        """
        return self._mic.say(pcm)

    def send(self, message: dict[str, Any]) -> None:
        """Send an interaction (``{"message_type": "conversation", ...}``) on the data channel."""
        self._send({"type": message.get("message_type", "app"), **message})

    async def hang_up(self, timeout: float = 5.0) -> None:
        """Ask the server to end the call (RTVI ``disconnect-bot``), wait for its ``peerLeft``."""
        self._send({"label": "rtvi-ai", "type": "disconnect-bot", "id": "hangup"})
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.peer_left.wait(), timeout)

    async def close(self) -> None:
        """Stop sending, close the peer connection and stop every task (safe to call twice)."""
        self._mic.stop()
        if self._camera is not None:
            self._camera.stop()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._channel is not None and self._channel.readyState == "open":
            self._channel.close()
        if self._pc is not None:
            await self._pc.close()
        await self._http.aclose()

    # ---- internals -----------------------------------------------------------------------------

    async def _until(self, predicate, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"not met within {timeout} s (connection {self.connection_state})"
                )
            await asyncio.sleep(0.05)

    async def _negotiate(self) -> None:
        async with self._negotiating:
            pc = self._pc
            await pc.setLocalDescription(await pc.createOffer())
            body = {
                "sdp": pc.localDescription.sdp,
                "type": pc.localDescription.type,
                "pc_id": self.pc_id,
            }
            response = await self._http.post(self.offer_url, json=body)
            response.raise_for_status()
            answer = response.json()
            self.pc_id = answer["pc_id"]
            await pc.setRemoteDescription(
                RTCSessionDescription(sdp=answer["sdp"], type=answer["type"])
            )

    def _spawn(self, coro) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _send(self, message: dict[str, Any] | str) -> None:
        if self._channel is not None and self._channel.readyState == "open":
            self._channel.send(message if isinstance(message, str) else json.dumps(message))

    def _on_open(self) -> None:
        for index, enabled in ((0, True), (1, self._camera is not None)):
            message = {"type": "trackStatus", "receiver_index": index, "enabled": enabled}
            self._send({"type": "signalling", "message": message})
        self._send(
            {
                "label": "rtvi-ai",
                "type": "client-ready",
                "id": "ready",
                "data": {"version": "2.2.0", "about": {"library": "presence-tests"}},
            }
        )
        self._spawn(self._ping())

    async def _ping(self) -> None:
        while True:
            self._send(f"ping: {int(time.time() * 1000)}")
            await asyncio.sleep(PING_SECS)

    def _on_message(self, message: Any) -> None:
        try:
            decoded = json.loads(message)
        except (TypeError, ValueError):
            return
        self.received.messages.append(decoded)
        if isinstance(decoded, dict) and decoded.get("type") == "signalling":
            kind = (decoded.get("message") or {}).get("type")
            if kind == "renegotiate":
                self._spawn(self._negotiate())
            elif kind == "peerLeft":
                self.peer_left.set()

    def _on_track(self, track: MediaStreamTrack) -> None:
        self._spawn(self._video(track) if track.kind == "video" else self._audio(track))

    async def _video(self, track: MediaStreamTrack) -> None:
        received = self.received
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()
                now = time.monotonic()
                received.video_times.append(now)
                received.video_size = (frame.width, frame.height)
                received.last_video = frame

    async def _audio(self, track: MediaStreamTrack) -> None:
        received = self.received
        pending = np.zeros(0, np.float32)
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()
                now = time.monotonic()
                mono = _mono(frame)
                if frame.sample_rate != RATE:  # aiortc decodes Opus at 48 kHz; keep one rate
                    n = round(len(mono) * RATE / frame.sample_rate)
                    mono = np.interp(
                        np.arange(n) * frame.sample_rate / RATE, np.arange(len(mono)), mono
                    ).astype(np.float32)
                if received.keep_audio:
                    received.audio_chunks.append(mono)
                pending = np.concatenate([pending, mono])
                while len(pending) >= CHUNK:
                    window, pending = pending[:CHUNK], pending[CHUNK:]
                    received.audio_times.append(now)
                    received.audio_rms.append(float(np.sqrt(np.mean(window**2))))
