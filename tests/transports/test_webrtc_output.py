"""The WebRTC audio output against pipecat's own ``RawAudioTrack``: the track always holds the
next chunk, audio behind its clock catches up on idle silence, and an interruption finds little
in it."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from pipecat.frames.frames import OutputAudioRawFrame, TTSAudioRawFrame
from pipecat.transports.base_transport import TransportParams
from pipecat.transports.smallwebrtc.transport import RawAudioTrack

from presence.transports.webrtc.output import (
    WINDOW,
    WebRTCTransport,
    WindowedWebRTCOutputTransport,
)

pytestmark = pytest.mark.timeout(30)

RATE = 24000
VOICE = OutputAudioRawFrame(np.full(RATE // 100, 3000, np.int16).tobytes(), RATE, 1)  # 10 ms


class Client:
    """pipecat's ``SmallWebRTCClient`` as its output uses it: the audio track, and can it send."""

    def __init__(self, track: RawAudioTrack):
        self._audio_output_track = track

    def _can_send(self) -> bool:
        return True


def output_for(track: RawAudioTrack, window: int = WINDOW) -> WindowedWebRTCOutputTransport:
    params = TransportParams(audio_out_sample_rate=RATE)
    return WindowedWebRTCOutputTransport(Client(track), params, window=window)


async def writes_before_waiting(
    output: WindowedWebRTCOutputTransport, most: int = 60, frame: OutputAudioRawFrame = VOICE
) -> int:
    """How many 10 ms writes of ``frame`` return before one waits for the track to send."""
    for n in range(most):
        try:
            await asyncio.wait_for(output.write_audio_frame(frame), timeout=0.005)
        except TimeoutError:
            return n
    return most


async def test_the_track_holds_the_next_chunks_so_a_late_hand_over_misses_no_tick():
    # pipecat's output waits for each chunk to be sent before it writes the next (a window of
    # one): the track is empty at its next tick whenever that write comes late, and sends
    # silence in that slot, so everything after it is heard 10 ms later
    assert await writes_before_waiting(output_for(RawAudioTrack(RATE), window=1)) == 1
    track = RawAudioTrack(RATE)
    assert await writes_before_waiting(output_for(track)) == WINDOW
    # as the track sends, each write waits only for the oldest: the rest stay queued
    for _ in range(3):
        frame = await track.recv()
        assert frame.to_ndarray().any()  # the track sends the voice, not its own silence
    assert len(track._chunk_queue) == WINDOW + 1 - 3  # the waiting write had queued its chunk


async def test_audio_that_fell_behind_catches_up_on_idle_silence_never_on_speech():
    track = RawAudioTrack(RATE)
    output = output_for(track)
    silence = bytes(len(VOICE.audio))
    for _ in range(WINDOW):  # the track holds a full window: the audio is ahead of its playout
        await output.write_audio_frame(VOICE)
    assert await output.write_audio_frame(OutputAudioRawFrame(silence, RATE, 1))  # idle: dropped
    assert len(track._chunk_queue) == WINDOW and output.silence_dropped_s == pytest.approx(0.01)
    # a quiet moment inside speech is speech: it waits its turn instead
    speech_pause = TTSAudioRawFrame(silence, RATE, 1)
    assert await writes_before_waiting(output, frame=speech_pause) == 0
    assert len(track._chunk_queue) == WINDOW + 1
    await track.recv()
    await track.recv()  # once the track has room, silence goes out again
    assert await output.write_audio_frame(OutputAudioRawFrame(silence, RATE, 1))
    assert output.silence_dropped_s == pytest.approx(0.01)


def test_the_transport_uses_the_windowed_output_and_refuses_no_window():
    from pipecat.transports.smallwebrtc.connection import SmallWebRTCConnection

    transport = WebRTCTransport(SmallWebRTCConnection(), params=TransportParams())
    assert isinstance(transport.output(), WindowedWebRTCOutputTransport)
    assert transport.output() is transport.output()
    with pytest.raises(ValueError, match="window"):
        output_for(RawAudioTrack(RATE), window=0)
