"""The renderer's real-time clock: when each frame is pushed (a mixin of ``RendererProcessor``).

A task ticks at ``t0 + k/fps``; when rendering falls behind it repeats the last image for the
missed ticks (their audio still leaves, never delayed further or dropped). Idle frames flow
between turns. An idle frame's silence leaves just in time, in ``IDLE_PIECE_S`` pieces over its
period (``output_sync`` sets 10 ms transport chunks to match), so at most one piece of silence sits
ahead of the next speech in the output.

When speech arrives during an idle period it starts at once, on a frame boundary of its own: the
clock draws the first speaking frame while the idle frame's pieces go on leaving just in time, then
cuts that idle frame short (its unsent silence is dropped) and pushes the speaking image followed
by its speech. So no speech sample is ever paired with an idle image, and speech waits for one
draw instead of the rest of a frame period. The samples cut are owed: the next idle frame carries
them as extra silence, so over a turn the audio still spans exactly ``frames/fps`` (no drift for
consumers that count frames at a fixed rate). Idle periods carry silence, so moving their phase
costs nothing.

When a wake-up comes late between turns (a busy event loop, a starved CPU) the output runs dry
for a moment and the sink plays silence of its own in the gap (WebRTC tracks and the file
writer both fill gaps on arrival). That gap is idle silence already heard: the clock drops as much
of the current idle frame's unsent silence (``_fill_dry``), so the idle images stay on the wall
clock's grid instead of each late wake-up lengthening a period. Only silence is ever dropped, at
most ``MAX_FILL_S`` (a longer stall re-phases the clock instead), and ``stats.filled`` counts it
per frame, so audio pushed plus audio filled still spans exactly ``frames/fps``.

The mixin only decides timing; it runs on the event loop and reads and writes the host's state
(speech counters, idle remainder, owed samples, play-out end). Drawing (``_work``) and pushing
(``_emit``, ``_push_idle_piece``) belong to the host.
"""

from __future__ import annotations

import asyncio
import time

import numpy as np

from presence.processors.renderer.engines.base import RenderedFrame

IDLE_PIECE_S = 0.01
"""Idle silence leaves in pieces this long, just in time (matches 10 ms transport chunks)."""
LEAD_S = 0.002
"""Real-time pushes go this long before the output runs dry (scheduling margin)."""
PREDRAW_S = 0.015
"""An idle frame is drawn this long (plus 1.5 draws) before the last one's silence runs out: the
hop to the render thread and back can take longer than a fast draw itself, and drawing early only
waits for the silence to end."""
MAX_FILL_S = 0.1
"""The longest dry gap whose silence an idle frame drops to stay on the wall clock's grid."""
_ON_TIME, _EARLY, _PREDRAW = 0, 1, 2


class RendererClock:
    """Frame timing for ``RendererProcessor`` in real-time mode (put it first in the bases).

    The host starts ``_clock`` as a task and provides the state set in its ``__init__`` plus
    ``_work`` (render thread), ``_emit`` and ``_push_idle_piece``.
    """

    def _should_hold(self) -> bool:
        """Wait (at most the engine's look-ahead plus a period) for speech to fill a frame."""
        if self._paused:  # the user may be going on: speech waits in the queue
            return True
        engine = self._engine
        need = engine.samples_in_frame(engine.frame_index) + int(engine.look_ahead_s * self._rate)
        queued = self._received - self._sent
        if self._speaking or queued == 0 or queued >= need or self._tts_done:
            self._hold_since = None
            return False
        now = time.monotonic()
        self._hold_since = self._hold_since or now
        return now - self._hold_since < engine.look_ahead_s + 1.0 / self._fps

    async def _clock(self) -> None:
        loop = asyncio.get_running_loop()
        period = 1.0 / self._fps
        t0, k = time.monotonic(), 0
        while True:
            follow = self._idle_audio and (self._idle_rest.size > 0 or not self._speaking)
            start, due = await self._wait_until(t0 + k * period, follow)
            if start != _ON_TIME:  # speech starts now (see _wait_until)
                t0, k = due, 0
            behind = int(max(0.0, time.monotonic() - due) / period)
            if behind > 5 * self._fps or self._last_image is None:
                if behind > 5 * self._fps:  # a stall of seconds (suspended host): restart
                    t0, k = time.monotonic(), 0
                    due = t0
                behind = 0
            epoch = self._epoch
            drawn_from = time.monotonic()
            drawing = loop.run_in_executor(self._executor, self._work, behind, self._should_hold())
            if start != _ON_TIME:
                await self._idle_pieces_until(drawing)
            frames = await drawing
            self._draw_s = 0.8 * self._draw_s + 0.2 * (time.monotonic() - drawn_from)
            if start == _PREDRAW and not frames[0].speaking:
                due = await self._idle_pieces_out()  # the next idle image goes as this audio ends
            if epoch != self._epoch:  # interrupted while drawing: this speech is void
                frames = [
                    RenderedFrame(f.index, f.pts, f.image, np.zeros_like(f.audio), False, 0.0, 0)
                    for f in frames
                ]
            if frames[0].speaking:
                self._cut_idle()  # speech starts its own period: no sample under an idle image
            for i, rendered in enumerate(frames):
                await self._emit(rendered, due + i * period)
            k += len(frames)
            if follow:  # after idle, the next push is due as this audio ends; in speech the grid
                t0, k = self._play_end - LEAD_S, 0  # holds, so late renders never delay audio
            if self._received == self._sent and not self._pending:
                self._idle_event.set()

    def _speech_ready(self) -> bool:
        """Whether queued speech fills the next frame (and the engine's look-ahead)."""
        queued = self._received - self._sent
        if self._paused or self._speaking or queued <= 0 or self._last_image is None:
            return False
        engine = self._engine
        need = engine.samples_in_frame(engine.frame_index) + int(engine.look_ahead_s * self._rate)
        return queued >= need or self._tts_done

    async def _idle_pieces_until(self, drawing: asyncio.Future) -> None:
        """While the first speaking frame is drawn, keep the idle frame's silence just in time."""
        while not drawing.done() and self._idle_rest.size:
            wait = self._play_end - LEAD_S - time.monotonic()
            if wait > 0:
                await asyncio.wait({drawing}, timeout=wait)
            else:
                await self._push_idle_piece()

    async def _idle_pieces_out(self) -> float:
        """Send the idle frame's last pieces just in time; returns when its audio runs out."""
        while True:
            wait = self._play_end - LEAD_S - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            elif self._idle_rest.size:
                await self._push_idle_piece()
            else:
                return self._play_end - LEAD_S

    def _fill_dry(self) -> None:
        """Drop the idle silence the sink played itself while the output was dry (see module doc)."""
        dry = time.monotonic() - self._play_end
        if not self._idle_rest.size or not self._play_end or not 0 < dry <= MAX_FILL_S:
            return
        fill = min(self._idle_rest.size, int(dry * self._rate))
        if fill:
            self._idle_rest = self._idle_rest[fill:]
            self._play_end += fill / self._rate
            self.stats.add_fill(self._idle_frame, fill)

    def _cut_idle(self) -> None:
        """End the current idle frame here: its unsent silence is owed to the next idle frame."""
        cut = self._idle_rest.size
        if cut:
            self._idle_rest = np.zeros(0, np.int16)
            self._owed += cut
            self.stats.audio_samples -= cut
            self.stats.cut += 1

    async def _wait_until(self, due: float, follow: bool) -> tuple[int, float]:
        """Wait for the next frame's push time, sending idle silence just in time.

        While idle (``follow``) the push time follows the output (``_play_end``), not ``due``:
        silence may move, so no backlog builds up ahead of the next speech.

        Returns:
            ``(how, when)``: ``_ON_TIME`` at the push time; ``_EARLY`` when a speaking frame
            starts now, before the push time (in the middle of an idle frame's period when its
            silence is still being sent: the clock then cuts that frame short).
        """
        while True:
            rest = self._idle_rest.size
            if follow and rest:
                due = max(due, self._play_end + rest / self._rate - LEAD_S)
            elif follow:
                due = min(due, self._play_end - LEAD_S)
            now = time.monotonic()
            if self._speech_ready() and (rest or now < due):
                return _EARLY, now
            if follow and not self._speaking and self._last_image is not None:
                # idle → next frame: draw it while the last silence plays, not after
                ends = self._play_end + rest / self._rate
                if ends - now <= 1.5 * self._draw_s + PREDRAW_S and ends > now:
                    return _PREDRAW, now
            wake_at = min(due, self._play_end - LEAD_S) if rest else due
            if wake_at <= now:
                if not rest:
                    return _ON_TIME, due
                await self._push_idle_piece()
                continue
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), wake_at - now)
            except TimeoutError:
                pass
