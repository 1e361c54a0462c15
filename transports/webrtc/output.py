"""pipecat's SmallWebRTC transport with an audio output that never falls behind its track.

pipecat's ``SmallWebRTCOutputTransport`` hands each audio chunk to the ``RawAudioTrack`` and waits
until the track has sent it before writing the next. The track sends one 10 ms chunk per tick of
its own clock and sends silence when its queue is empty at a tick. With one chunk in flight, the
next write has to arrive between two ticks; whenever the event loop is a little late, the track
sends silence in that slot and the chunk waits for the next one. Each miss delays everything still
queued in the transport by 10 ms, for good: on a busy machine the persona's voice and face reach
the user further behind the renderer as the call goes on (and its "stopped speaking" as late).

``WebRTCTransport`` is ``SmallWebRTCTransport`` with an output that keeps up to ``window`` writes
in the track's queue and waits only for the oldest: the track always has the next chunk when it
ticks, and at most ``window`` chunks (40 ms with the renderer's 10 ms chunks) wait in it. A track
replaced by a renegotiation starts a new window (the old track's chunks are never sent); a peer
that stops reading still ends at pipecat's ``audio_out_write_timeout_secs``. Whatever still leaves
the audio behind its clock (a stalled event loop, during which the track sends silence) is made up
between turns: idle silence written while ``window`` writes are still queued is dropped
(``silence_dropped_s`` counts it), never speech.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

from pipecat.frames.frames import OutputAudioRawFrame, TTSAudioRawFrame
from pipecat.transports.smallwebrtc.transport import (
    SmallWebRTCOutputTransport,
    SmallWebRTCTransport,
)

WINDOW = 4
"""Audio writes queued in the track at most (each ``audio_out_10ms_chunks`` × 10 ms)."""


class WindowedWebRTCOutputTransport(SmallWebRTCOutputTransport):
    """``SmallWebRTCOutputTransport`` whose audio writes wait for the oldest of ``window``.

    Attributes:
        silence_dropped_s: Idle silence dropped to catch up, in seconds.

    Args:
        client: The transport's ``SmallWebRTCClient``.
        params: Transport parameters.
        window: Writes queued in the track at most (at least 1; 1 is pipecat's behaviour).
        **kwargs: Passed to ``SmallWebRTCOutputTransport``.
    """

    def __init__(self, client: Any, params: Any, *, window: int = WINDOW, **kwargs):
        super().__init__(client, params, **kwargs)
        if window < 1:
            raise ValueError("window must be at least 1")
        self._window = window
        self._track: Any = None
        self._sent: deque[asyncio.Future] = deque()
        self.silence_dropped_s = 0.0

    async def write_audio_frame(self, frame: OutputAudioRawFrame) -> bool:
        """Queue the audio in the track; wait only while ``window`` writes are still unsent."""
        track = self._client._audio_output_track
        if track is None or not self._client._can_send():
            return False
        if track is not self._track:  # a new track (renegotiated): the old one's sends are moot
            self._track, self._sent = track, deque()
        while self._sent and self._sent[0].done():
            self._sent.popleft()
        if len(self._sent) >= self._window and _idle_silence(frame):
            self.silence_dropped_s += frame.num_frames / frame.sample_rate
            return True  # the audio is behind its clock: catch up on the silence between turns
        self._sent.append(track.add_audio_bytes(frame.audio))
        while len(self._sent) > self._window:
            await self._sent[0]
            self._sent.popleft()
        return True


def _idle_silence(frame: OutputAudioRawFrame) -> bool:
    """Silence between turns (the renderer's idle audio), not a quiet moment of speech."""
    return not isinstance(frame, TTSAudioRawFrame) and not any(frame.audio)


class WebRTCTransport(SmallWebRTCTransport):
    """``SmallWebRTCTransport`` with ``WindowedWebRTCOutputTransport`` as its output.

    Takes the same arguments as ``SmallWebRTCTransport``.
    """

    def output(self) -> SmallWebRTCOutputTransport:
        """The output processor (made once)."""
        if not self._output:
            self._output = WindowedWebRTCOutputTransport(
                self._client, self._params, name=self._output_name
            )
        return self._output
