"""``CameraKeyframes``: ask the browser for a key frame when its camera's packets make no picture.

A video decoder shows nothing until it has a key frame, and a browser sends one when its camera
starts and then only on request (an RTCP picture-loss indication, PLI). pipecat's SmallWebRTC
track drops the packets that arrive before the pipeline first reads the camera, and whenever
nobody has read it for 2 s. When the opening key frame is among them (a loaded machine, a session
that starts slowly), the decoder gets only inter frames: it reports no error, aiortc asks for
nothing, and the camera stays dark for the whole call, so perception counts an unseen user.

``CameraKeyframes`` watches the camera's receiver: while packets keep arriving and no frame has
been decoded for ``stall_s``, it sends a PLI, at most once per ``stall_s``. A camera that sends
nothing (turned off, no camera) gets no request. It also keeps pipecat's track from dropping
packets while the pipeline's reader is merely waiting for the next frame (its 2 s idle rule counts
a pending read as idle): the gaps that left stall aiortc's jitter buffer until it overflows, which
at a camera's 10–30 packets a second is many seconds of no picture.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from loguru import logger

CAMERA_INDEX = 1  # pipecat's transceiver order: audio, camera, screen share
STALL_S = 1.0
POLL_S = 0.25
READER_IDLE_S = 10.0  # pipecat's reader waits at most 2 s per read: longer is a reader gone


class CameraKeyframes:
    """Requests key frames while the peer's camera packets arrive but no frame decodes.

    Args:
        connection: The call's pipecat ``SmallWebRTCConnection``.
        stall_s: Time without a decoded frame, while packets arrive, before each request.
        poll_s: How often the receiver is looked at.

    Attributes:
        requests: Key frames requested so far.
        frames: Camera frames decoded so far.
    """

    def __init__(self, connection: Any, *, stall_s: float = STALL_S, poll_s: float = POLL_S):
        self._connection = connection
        self.stall_s = stall_s
        self.poll_s = poll_s
        self.requests = 0
        self.frames = 0
        self._task: asyncio.Task | None = None
        self._watched: Any = None
        self._last_frame = 0.0
        self._last_request = 0.0

    def start(self) -> None:
        """Start watching (idempotent); stops by itself when the connection closes."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="camera-keyframes")

    async def stop(self) -> None:
        """Stop watching."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        self._last_frame = loop.time()
        while self._connection.pc.connectionState != "closed":
            await asyncio.sleep(self.poll_s)
            receiver = self._camera_receiver()
            if receiver is None:
                continue
            self._count_frames(receiver)
            now = loop.time()
            queue = getattr(receiver.track, "_queue", None)
            if queue is not None and not queue.empty():  # decoded, not read yet
                self._last_frame = now
            if now - max(self._last_frame, self._last_request) < self.stall_s:
                continue
            sources = [s.source for s in receiver.getSynchronizationSources()
                       if _age_s(s.timestamp) < self.stall_s]  # fmt: skip
            if not sources:  # nothing is being sent: nothing to ask for
                continue
            self._last_request = now
            self.requests += 1
            log = logger.info if self.requests == 1 else logger.debug
            log(f"camera: packets but no picture for {now - self._last_frame:.1f} s; "
                f"asked the browser for a key frame ({self.requests})")  # fmt: skip
            for ssrc in sources:
                try:
                    await receiver._send_rtcp_pli(ssrc)
                except Exception as exc:  # a closing transport: the loop ends with it
                    logger.debug(f"camera: key frame request failed: {exc!r}")

    def _camera_receiver(self) -> Any:
        transceivers = self._connection.pc.getTransceivers()
        if len(transceivers) <= CAMERA_INDEX or transceivers[CAMERA_INDEX].receiver is None:
            return None
        track = self._connection.video_input_track()  # pipecat's wrapper, made once and kept
        if track is not None and getattr(track, "_idle_timeout", READER_IDLE_S) < READER_IDLE_S:
            track._idle_timeout = READER_IDLE_S
        return transceivers[CAMERA_INDEX].receiver

    def _count_frames(self, receiver: Any) -> None:
        """Wrap the camera track's ``recv`` once, so each decoded frame is seen."""
        track = getattr(receiver, "track", None)
        if track is None or track is self._watched:
            return
        self._watched = track
        recv = track.recv

        async def counted_recv():
            frame = await recv()
            self.frames += 1
            self._last_frame = asyncio.get_running_loop().time()
            return frame

        track.recv = counted_recv


def _age_s(timestamp: Any) -> float:
    """Seconds since an aiortc synchronization-source timestamp (a UTC datetime)."""
    from aiortc import clock

    return (clock.current_datetime() - timestamp).total_seconds()
