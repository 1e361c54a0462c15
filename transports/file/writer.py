"""MP4 writer on a media timeline (no pipecat here): the persona's audio and video, in step.

Timestamps come from sample counts, never from the wall clock, so a fast run and a real-time run
of the same conversation produce the same timeline:

* **Audio** (AAC, mono): ``write_audio(pcm, start)`` places ``pcm`` at sample ``start`` of the
  output rate; any gap since the previous audio is filled with silence. Audio pts = sample index.
* **Video** (H.264 via ``libx264``, else MPEG-4 part 2; ``yuv420p``): frame ``n`` covers
  ``[n/fps, (n+1)/fps)`` and has pts ``n``. ``add_image(rgb, t)`` makes an image current from
  media time ``t``; ``advance_video(t)`` encodes every frame whose midpoint ``(n+0.5)/fps`` is
  at or before ``t``. Frame ``n`` takes the earliest pending image due by its midpoint that is
  not more than a frame late (older ones are skipped), so images one period apart land one per
  frame even when their times jitter by less than a frame. Without images the frame is black;
  between images the last one repeats. ``first_frame_showing(i)`` tells which frame first showed
  the ``i``-th image added (or, when it was skipped, the next image shown).
* **Close**: both tracks are padded to the same whole number of video frames, so their durations
  match to within one AAC frame (1024 samples, ~43 ms at 24 kHz).

All methods are blocking; callers on an event loop run them on one worker thread, in order.
"""

from __future__ import annotations

import math
from collections import deque
from pathlib import Path

import numpy as np
from loguru import logger

from presence.framework.errors import ConfigError, InputError

SILENCE_BLOCK_S = 1.0


def pick_video_codec() -> str:
    """``libx264`` when the installed PyAV/FFmpeg has it, else ``mpeg4``."""
    import av

    try:
        av.codec.Codec("libx264", "w")
        return "libx264"
    except Exception:
        return "mpeg4"


def to_rgb(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """An ``(height, width, 3)`` uint8 RGB copy of a gray/RGB/RGBA image, resized if needed."""
    arr = np.asarray(image)
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    elif arr.shape[2] == 4:
        arr = arr[:, :, :3]
    if arr.dtype != np.uint8:
        arr = np.clip(arr, 0, 255).astype(np.uint8)
    if arr.shape[:2] != (height, width):
        import cv2

        arr = cv2.resize(arr, (width, height), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(arr)


class Mp4Writer:
    """Encodes one session's persona audio and video into an MP4.

    Args:
        path: Output file; its folder is created.
        width: Video width in pixels (even).
        height: Video height in pixels (even).
        fps: Video frame rate.
        sample_rate: Audio sample rate in Hz.
        video_codec: FFmpeg encoder name; ``None`` picks :func:`pick_video_codec`.
        audio_bitrate: AAC bit rate in bits per second.

    Raises:
        ConfigError: Width or height is odd or not positive, or fps is not positive.
        InputError: The output file cannot be created.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        width: int,
        height: int,
        fps: int,
        sample_rate: int = 24000,
        video_codec: str | None = None,
        audio_bitrate: int = 64000,
        poster: np.ndarray | None = None,
    ):
        import av

        if width <= 0 or height <= 0 or width % 2 or height % 2:
            raise ConfigError(f"video size {width}x{height} must be positive and even for MP4")
        if fps <= 0:
            raise ConfigError(f"video fps must be positive, got {fps}")
        self.path = Path(path)
        self.width, self.height, self.fps, self.sample_rate = width, height, fps, sample_rate
        self.video_codec = video_codec or pick_video_codec()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._container = av.open(str(self.path), "w")
        except (OSError, av.error.FFmpegError) as exc:
            raise InputError(f"cannot create output video {self.path}: {exc}") from None
        self._video = self._container.add_stream(self.video_codec, rate=fps)
        self._video.width, self._video.height, self._video.pix_fmt = width, height, "yuv420p"
        if self.video_codec == "libx264":
            self._video.options = {"preset": "veryfast", "crf": "23"}
        else:
            self._video.bit_rate = 2_000_000
        self._video.codec_context.thread_count = 1
        self._audio = self._container.add_stream("aac", rate=sample_rate)
        self._audio.layout = "mono"
        self._audio.bit_rate = audio_bitrate
        self.audio_samples = 0
        self.video_frames = 0
        self._pending: deque[tuple[float, np.ndarray, int]] = deque()
        self._shown: list[int] = []  # per image added: the first frame that showed it, or -1
        self._current = (
            to_rgb(poster, width, height)
            if poster is not None
            else np.zeros((height, width, 3), dtype=np.uint8)
        )
        self._images = 0
        self._closed = False

    # -- audio ---------------------------------------------------------------------------------

    def write_audio(self, pcm: np.ndarray, start: int | None = None) -> int:
        """Place mono int16 ``pcm`` at output sample ``start`` (default: right after the last).

        Args:
            pcm: 1-D int16 samples at ``sample_rate``.
            start: Timeline position in samples; earlier than the end of the audio already
                written means "right after it" (audio never overlaps).

        Returns:
            The sample index where the audio was placed.
        """
        start = self.audio_samples if start is None else max(int(start), self.audio_samples)
        self._silence_to(start)
        self._encode_audio(np.asarray(pcm, dtype=np.int16).reshape(-1))
        return start

    def _silence_to(self, sample: int) -> None:
        block = int(self.sample_rate * SILENCE_BLOCK_S)
        while self.audio_samples < sample:
            n = min(block, sample - self.audio_samples)
            self._encode_audio(np.zeros(n, dtype=np.int16))

    def _encode_audio(self, pcm: np.ndarray) -> None:
        import av

        if pcm.size == 0:
            return
        frame = av.AudioFrame.from_ndarray(pcm[None, :], format="s16", layout="mono")
        frame.sample_rate = self.sample_rate
        frame.pts = self.audio_samples
        self.audio_samples += pcm.size
        for packet in self._audio.encode(frame):
            self._container.mux(packet)

    # -- video ---------------------------------------------------------------------------------

    def add_image(self, image: np.ndarray, t: float) -> None:
        """Make ``image`` (any size; gray/RGB/RGBA) current from media time ``t`` seconds."""
        self._pending.append((t, to_rgb(image, self.width, self.height), self._images))
        self._shown.append(-1)
        self._images += 1

    def advance_video(self, t: float) -> None:
        """Encode every video frame whose midpoint is at or before media time ``t``."""
        while (self.video_frames + 0.5) / self.fps <= t + 1e-9:
            self._encode_next_frame()

    def _encode_next_frame(self) -> None:
        import av

        n = self.video_frames
        due_by, late_before = (n + 0.5) / self.fps, (n - 1.5) / self.fps
        due = [i for i, (t, _, _) in enumerate(self._pending) if t <= due_by + 1e-9]
        if due:
            timely = [i for i in due if self._pending[i][0] > late_before]
            pick = timely[0] if timely else due[-1]
            for _ in range(pick):
                self._pending.popleft()
            _, self._current, index = self._pending.popleft()
            self._shown[index] = n
        frame = av.VideoFrame.from_ndarray(self._current, format="rgb24")
        frame.pts = n
        self.video_frames += 1
        for packet in self._video.encode(frame):
            self._container.mux(packet)

    def first_frame_showing(self, image_index: int) -> int | None:
        """The first video frame that showed image ``image_index`` (0-based, in ``add_image`` order).

        An image skipped for being late counts as shown by the first frame that showed a later
        image. None when no frame has shown it or a later image (yet).
        """
        for shown in self._shown[max(0, image_index) :]:
            if shown >= 0:
                return shown
        return None

    # -- end -----------------------------------------------------------------------------------

    def close(self, end_s: float = 0.0) -> dict:
        """Pad both tracks to the same length (at least ``end_s``), flush and close the file.

        Returns:
            Summary: ``duration_s``, ``video_frames``, ``audio_samples``, ``fps``, sizes, codecs.
        """
        if self._closed:
            return self.summary()
        self._closed = True
        audio_s = self.audio_samples / self.sample_rate
        frames = max(
            self.video_frames,
            math.ceil(max(end_s, audio_s) * self.fps - 1e-6),
            1,
        )
        while self.video_frames < frames:
            self._encode_next_frame()
        self._silence_to(round(frames * self.sample_rate / self.fps))
        for stream in (self._audio, self._video):
            for packet in stream.encode(None):
                self._container.mux(packet)
        self._container.close()
        logger.debug(f"wrote {self.path}: {self.summary()}")
        return self.summary()

    def summary(self) -> dict:
        """What has been written so far."""
        return {
            "path": str(self.path),
            "duration_s": round(self.video_frames / self.fps, 3),
            "audio_duration_s": round(self.audio_samples / self.sample_rate, 3),
            "video_frames": self.video_frames,
            "images_received": self._images,
            "fps": self.fps,
            "width": self.width,
            "height": self.height,
            "sample_rate": self.sample_rate,
            "video_codec": self.video_codec,
            "audio_codec": "aac",
        }
