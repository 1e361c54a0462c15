"""The renderer engine contract: audio in, one frame (with its audio) per ``1/fps`` out.

An engine is pure (numpy/torch, no pipecat). It owns the audio-to-frame pairing, so that audio
duration and video duration are equal by construction::

    engine = WarpEngine(size=512, fps=25, sample_rate=24000, seed=0)
    engine.prepare(replica)
    engine.push_audio(pcm_int16, 24000, visemes=[(0.05, "open", "a"), ...])
    for frame in engine.next_frames(10):      # RenderedFrame(index, pts, image, audio, speaking)
        ...
    engine.interrupt()                        # drop queued audio; the face returns to listening

Frame ``k`` carries exactly ``floor((k+1)*sr/fps) - floor(k*sr/fps)`` samples (fractional
remainders carry over, so 16 kHz at 30 fps never drifts): the next samples of pushed audio, or
silence (zeros) when none are queued, in which case the frame is an idle frame (blinks, breathing,
sway; listening nods while ``set_listening(True)``). Subclasses implement ``_load`` and ``_draw``;
``FrameState`` tells them what to draw. Everything random comes from ``seed``: two engines with the
same seed, replica and input produce identical frames.

A ``_draw`` that raises never ends the call: the engine records the exception in ``failure``
(logged once) and shows the replica's still portrait for that frame and every later one, still
carrying each frame's audio, so the voice and the clock go on untouched.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections import deque
from dataclasses import dataclass, field

import numpy as np
from loguru import logger

from presence.processors.renderer.engines.layout import fit_portrait
from presence.processors.renderer.engines.motion import MotionModel, MouthShape

Viseme = tuple[float, str, str]


@dataclass
class RenderedFrame:
    """One output video frame and the audio of its period.

    Attributes:
        index: Frame number since the engine was prepared.
        pts: Presentation time in seconds (``index / fps``).
        image: ``H×W×3`` uint8 RGB, or ``None`` when rendering was skipped (``render=False``).
        audio: int16 mono samples of this frame's period (zeros when idle).
        speaking: True when any of ``audio`` came from pushed speech.
        mouth_open: The mouth opening the frame was drawn with (0–1), for diagnostics.
        speech_samples: How many of ``audio``'s samples are pushed speech (the rest is padding).
    """

    index: int
    pts: float
    image: np.ndarray | None
    audio: np.ndarray
    speaking: bool
    mouth_open: float = 0.0
    speech_samples: int = 0


@dataclass
class FrameState:
    """What one frame should show, computed by the base class for ``_draw``.

    Attributes:
        index: Frame number.
        mouth: Mouth opening and shape.
        blink: Eyelid closure, 0 (open) to 1 (closed).
        head: Head motion ``(dx, dy, roll_radians, scale)``; dx/dy in face widths.
        window: Audio around this frame (period plus the engine's look-ahead), float32 in [-1, 1]
            at the engine's sample rate; used by audio-driven engines such as Wav2Lip.
        speaking: Whether this frame carries speech.
    """

    index: int
    mouth: MouthShape
    blink: float
    head: tuple[float, float, float, float]
    window: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    speaking: bool = False


class RendererEngine(ABC):
    """Base of every renderer engine: audio clock, viseme timeline and motion.

    Args:
        size: Output frame side in pixels (frames are square ``size×size``), or ``(width, height)``.
        fps: Output frames per second.
        sample_rate: Sample rate of the audio the frames carry.
        seed: Seed of every random choice (blink times, sway phases).

    Attributes:
        look_ahead_s: Audio the engine wants beyond a frame's own period before drawing it; the
            processor waits up to this long for it when speech starts.
        failure: The exception ``_draw`` raised, once it has (frames show the still portrait
            from then on); ``None`` while drawing works.
    """

    look_ahead_s: float = 0.0
    name: str = "engine"

    def __init__(
        self,
        size: int | tuple[int, int] = 512,
        fps: int = 25,
        sample_rate: int = 24000,
        seed: int = 0,
    ):
        if isinstance(size, int):
            size = (size, size)
        self.width, self.height = int(size[0]), int(size[1])
        if self.width < 16 or self.height < 16:
            raise ValueError("renderer size must be at least 16 pixels")
        if fps <= 0 or sample_rate <= 0:
            raise ValueError("fps and sample_rate must be positive")
        self.fps = int(fps)
        self.sample_rate = int(sample_rate)
        self.seed = int(seed)
        self._prepared = False
        self.failure: BaseException | None = None
        self._portrait: np.ndarray | None = None
        self._reset_clock()

    # ----------------------------------------------------------------- contract

    def prepare(self, replica) -> None:
        """Load ``replica`` (a ``presence.processors.renderer.replica.Replica``) and reset the clock."""
        self._load(replica)
        neutral = getattr(replica, "neutral", None)  # synthetic test engines pass no replica
        self._portrait = (
            fit_portrait(neutral, self.width, self.height)
            if neutral is not None
            else np.zeros((self.height, self.width, 3), np.uint8)
        )
        self.failure = None
        self._prepared = True
        self._reset_clock()

    def push_audio(
        self, pcm: np.ndarray | bytes, sample_rate: int, visemes: list[Viseme] | None = None
    ) -> None:
        """Queue speech audio (mono int16) and its visemes.

        Args:
            pcm: int16 samples (or their bytes).
            sample_rate: Rate of ``pcm``; other rates than the engine's are resampled linearly
                (the processor resamples with pipecat's stream resampler before calling this).
            visemes: ``(offset_seconds_within_pcm, viseme_name, phoneme)`` tuples, or ``None``
                (then the audio envelope alone drives the mouth).
        """
        samples = np.frombuffer(pcm, np.int16) if isinstance(pcm, (bytes, bytearray)) else pcm
        samples = np.asarray(samples, dtype=np.int16).reshape(-1)
        if sample_rate != self.sample_rate and samples.size:
            n_out = int(round(samples.size * self.sample_rate / sample_rate))
            x = np.linspace(0, samples.size - 1, n_out)
            samples = np.interp(x, np.arange(samples.size), samples).astype(np.int16)
        start = self._pushed
        if visemes:
            for offset, name, _phoneme in visemes:
                self._visemes.append((start + int(round(offset * self.sample_rate)), str(name)))
        if samples.size:
            self._chunks.append(samples)
            self._buffered += samples.size
            self._pushed += samples.size

    def next_frames(
        self, n: int = 1, *, render: bool = True, hold: bool = False
    ) -> list[RenderedFrame]:
        """Produce the next ``n`` frames, each with the audio of its period.

        Args:
            n: Number of frames.
            render: When False, advance audio and motion but skip drawing (``image`` is None):
                the processor's way to catch up when rendering falls behind.
            hold: When True, leave queued audio in place and produce idle frames (the
                processor's look-ahead wait at the start of speech).

        Returns:
            ``n`` frames in presentation order.
        """
        if not self._prepared:
            raise RuntimeError("call prepare(replica) before next_frames()")
        frames = []
        for _ in range(n):
            k = self._index
            count = self.samples_in_frame(k)
            if hold:
                audio, real = np.zeros(count, np.int16), 0
            else:
                audio, real = self._take(count)
            speaking = real > 0
            window = self._window(audio) if speaking else audio.astype(np.float32) / 32768.0
            visemes = self._visemes_for(self._consumed - real, self._consumed) if speaking else []
            mouth = self._motion.mouth(audio[:real] if speaking else audio[:0], visemes, speaking)
            blink, head = self._motion.idle(k)
            state = FrameState(k, mouth, blink, head, window, speaking)
            image = self._draw_or_still(state) if render else None
            frames.append(RenderedFrame(k, k / self.fps, image, audio, speaking, mouth.open, real))
            self._index += 1
        return frames

    def interrupt(self) -> None:
        """Drop queued audio and visemes now; the mouth closes over the next frames."""
        self._chunks.clear()
        self._buffered = 0
        self._consumed = self._pushed
        self._visemes.clear()
        self._lookahead = np.zeros(0, np.int16)

    def set_listening(self, listening: bool) -> None:
        """Show listening motion (nods) while the user speaks."""
        self._motion.listening = bool(listening)

    # -------------------------------------------------------------- properties

    @property
    def buffered_samples(self) -> int:
        """Pushed audio not yet carried by a frame."""
        return self._buffered

    @property
    def frame_index(self) -> int:
        """Index of the next frame."""
        return self._index

    def samples_in_frame(self, k: int) -> int:
        """Samples carried by frame ``k``: exact integer split of ``sample_rate / fps``."""
        return (k + 1) * self.sample_rate // self.fps - k * self.sample_rate // self.fps

    # ------------------------------------------------------------ subclasses

    @abstractmethod
    def _load(self, replica) -> None:
        """Load the replica's assets at this engine's size."""

    @abstractmethod
    def _draw(self, state: FrameState) -> np.ndarray:
        """Return the ``height×width×3`` uint8 RGB image for ``state``."""

    # ------------------------------------------------------------- internals

    def _draw_or_still(self, state: FrameState) -> np.ndarray:
        """``_draw``; after it has raised once, the still portrait (see module doc)."""
        if self.failure is None:
            try:
                return self._draw(state)
            except Exception as exc:
                self.failure = exc
                logger.opt(exception=exc).error(
                    f"the {self.name} renderer failed drawing frame {state.index} ({exc!r}); "
                    "showing the still portrait from now on"
                )
        return self._portrait.copy()

    def _reset_clock(self) -> None:
        self._index = 0
        self._chunks: deque[np.ndarray] = deque()
        self._buffered = 0
        self._pushed = 0
        self._consumed = 0
        self._visemes: deque[tuple[int, str]] = deque()
        self._lookahead = np.zeros(0, np.int16)
        self._motion = MotionModel(self.fps, self.sample_rate, self.seed)

    def _take(self, count: int) -> tuple[np.ndarray, int]:
        out = np.zeros(count, np.int16)
        got = 0
        while got < count and self._chunks:
            chunk = self._chunks[0]
            take = min(count - got, chunk.size)
            out[got : got + take] = chunk[:take]
            got += take
            if take == chunk.size:
                self._chunks.popleft()
            else:
                self._chunks[0] = chunk[take:]
        self._buffered -= got
        self._consumed += got
        return out, got

    def _window(self, audio: np.ndarray) -> np.ndarray:
        """This frame's audio plus up to ``look_ahead_s`` of queued audio, as float32."""
        want = int(math.ceil(self.look_ahead_s * self.sample_rate))
        ahead: list[np.ndarray] = []
        have = 0
        for chunk in self._chunks:
            if have >= want:
                break
            ahead.append(chunk[: want - have])
            have += ahead[-1].size
        parts = [audio] + ahead
        if have < want:
            parts.append(np.zeros(want - have, np.int16))
        return np.concatenate(parts).astype(np.float32) / 32768.0

    def _visemes_for(self, start: int, end: int) -> list[str]:
        """Viseme names active in samples ``[start, end)``; the one in force at ``start`` first."""
        active: list[str] = []
        while len(self._visemes) > 1 and self._visemes[1][0] <= start:
            self._visemes.popleft()
        for pos, name in self._visemes:
            if pos >= end:
                break
            active.append(name)
        return active
