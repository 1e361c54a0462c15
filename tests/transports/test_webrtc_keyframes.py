"""A camera whose packets make no picture gets key-frame requests; a working or silent one none.

The receiver here is aiortc-shaped (transceivers, ``getSynchronizationSources``, a track whose
``recv`` yields decoded frames, ``_send_rtcp_pli``): a browser that lost its opening key frame
cannot be staged with aiortc alone (aiortc's own decoder reports the loss and asks itself). The
browser call under load (``tests/service/test_browser_conversation.py``) is the end-to-end case.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from aiortc import clock

from presence.transports.webrtc.keyframes import CameraKeyframes

SSRC = 2736295559


class Receiver:
    """A camera receiver: ``sending`` packets arrive; ``decoding`` frames come out of them."""

    def __init__(self, *, sending: bool, decoding: bool):
        self.sending, self.decoding = sending, decoding
        self.plis: list[int] = []
        self.track = SimpleNamespace(_queue=asyncio.Queue(), recv=self._recv)

    async def _recv(self):
        while not self.decoding:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.02)
        return "frame"

    def getSynchronizationSources(self):
        if not self.sending:
            return []
        return [SimpleNamespace(source=SSRC, timestamp=clock.current_datetime())]

    async def _send_rtcp_pli(self, ssrc: int) -> None:
        self.plis.append(ssrc)
        if self.sending:  # the browser answers a request with a key frame
            self.decoding = True


def connection(receiver: Receiver) -> SimpleNamespace:
    """A ``SmallWebRTCConnection``: its peer connection and pipecat's camera track wrapper."""
    audio = SimpleNamespace(receiver=None)
    pc = SimpleNamespace(connectionState="connected")
    pc.getTransceivers = lambda: [audio, SimpleNamespace(receiver=receiver)]
    wrapper = SimpleNamespace(_idle_timeout=2.0)
    return SimpleNamespace(pc=pc, video_input_track=lambda: wrapper)


async def reading(receiver: Receiver, stop: asyncio.Event) -> None:
    """The pipeline's camera reader (pipecat's ``read_video_frame``)."""
    while not stop.is_set():
        try:
            await asyncio.wait_for(receiver.track.recv(), timeout=0.2)
        except TimeoutError:
            pass


async def watch(receiver: Receiver, seconds: float) -> CameraKeyframes:
    keyframes = CameraKeyframes(connection(receiver), stall_s=0.2, poll_s=0.02)
    stop = asyncio.Event()
    reader = asyncio.create_task(reading(receiver, stop))
    keyframes.start()
    await asyncio.sleep(seconds)
    stop.set()
    await keyframes.stop()
    await reader
    return keyframes


async def test_packets_without_a_picture_get_a_key_frame_request_and_then_frames():
    receiver = Receiver(sending=True, decoding=False)
    keyframes = await watch(receiver, 1.0)
    assert receiver.plis == [SSRC]  # one request: the key frame it brought ended the stall
    assert keyframes.requests == 1 and keyframes.frames > 10


async def test_a_picture_that_keeps_coming_is_left_alone():
    receiver = Receiver(sending=True, decoding=True)
    keyframes = await watch(receiver, 0.8)
    assert receiver.plis == [] and keyframes.frames > 10


async def test_a_camera_that_sends_nothing_is_not_asked():
    receiver = Receiver(sending=False, decoding=False)
    keyframes = await watch(receiver, 0.8)
    assert receiver.plis == [] and keyframes.frames == 0


async def test_requests_repeat_at_most_once_per_stall_while_no_picture_comes():
    receiver = Receiver(sending=True, decoding=False)

    async def lost(ssrc: int) -> None:  # key frames that never arrive
        receiver.plis.append(ssrc)

    receiver._send_rtcp_pli = lost
    keyframes = await watch(receiver, 1.1)
    # stall_s 0.2 over ~1.1 s: the first request at 0.2 s, then at most one per 0.2 s
    assert 3 <= len(receiver.plis) <= 5, receiver.plis
    assert keyframes.requests == len(receiver.plis)


async def test_a_reader_waiting_for_a_frame_no_longer_counts_as_idle():
    receiver = Receiver(sending=True, decoding=True)
    conn = connection(receiver)
    keyframes = CameraKeyframes(conn, stall_s=0.2, poll_s=0.02)
    keyframes.start()
    await asyncio.sleep(0.1)
    await keyframes.stop()
    # pipecat's reader waits up to 2 s for a frame; its wrapper stops receiving after 2 s idle
    assert conn.video_input_track()._idle_timeout > 2.0


async def test_watching_ends_with_the_connection():
    receiver = Receiver(sending=True, decoding=True)
    conn = connection(receiver)
    keyframes = CameraKeyframes(conn, stall_s=0.2, poll_s=0.02)
    keyframes.start()
    conn.pc.connectionState = "closed"
    await asyncio.wait_for(keyframes._task, timeout=1)
