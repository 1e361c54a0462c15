"""Reading and validating the user's media for a file session (no pipecat here).

``load_wav`` turns any audio file libsndfile reads (through ``soundfile``: WAV of any PCM or float
sample, FLAC, OGG/Vorbis or Opus, MP3, AIFF, …) into what the pipeline takes (16 kHz mono int16)
and refuses the rest with an ``InputError`` that says what to export instead. ``CameraReader``
decodes a ``.y4m``/``.mp4`` clip frame by frame as RGB for the user's camera.

Constraints:
    * Audio: any channel count (the mean of the channels), any rate (resampled with soxr, the
      library behind pipecat's resamplers); samples beyond full scale are clipped to 16 bits.
    * Camera: anything FFmpeg (through PyAV) can demux with a video stream; frames come out RGB.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from loguru import logger

from presence.framework.errors import InputError

EXPORT_HINT = "export it as 16-bit PCM WAV (e.g. `ffmpeg -i in.ext -ac 1 -ar 16000 out.wav`)"


@dataclass(frozen=True)
class WavInfo:
    """What the original audio file was, before conversion.

    Attributes:
        path: The file read.
        sample_rate: Its sample rate in Hz.
        channels: Its channel count.
        format: Its container and sample encoding as libsndfile names them (``WAV PCM_16``,
            ``WAV FLOAT``, ``FLAC PCM_24``, ``MP3 MPEG_LAYER_III``, …).
        duration_s: Its duration in seconds.
    """

    path: str
    sample_rate: int
    channels: int
    format: str
    duration_s: float


def _read_audio(path: Path) -> tuple[np.ndarray, int, str]:
    """The file's samples as float32 ``(frames, channels)``, its rate and its format."""
    import soundfile as sf

    if not path.exists():
        raise InputError(f"input audio file not found: {path}")
    if not path.is_file():
        raise InputError(f"input audio is not a file: {path}")
    try:
        with sf.SoundFile(str(path)) as audio:
            kind = f"{audio.format} {audio.subtype}"
            samples = audio.read(dtype="float32", always_2d=True)
            return samples, audio.samplerate, kind
    except sf.LibsndfileError as exc:
        reason = str(exc.error_string or exc).strip().rstrip(".")
        raise InputError(
            f"{path} is not audio presence can read ({reason}); use WAV, FLAC, OGG or MP3, or "
            f"{EXPORT_HINT}"
        ) from None
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None


def load_wav_info(path: str | Path, sample_rate: int = 16000) -> tuple[np.ndarray, int, WavInfo]:
    """Like :func:`load_wav`, also returning what the original file was."""
    path = Path(path)
    samples, rate, kind = _read_audio(path)
    frames, channels = samples.shape
    if frames == 0:
        raise InputError(f"{path} contains no audio (0 samples); record or export some speech")
    mono = samples[:, 0] if channels == 1 else samples.mean(axis=1)
    if channels > 1:
        logger.info(f"input audio has {channels} channels; downmixing to mono")
    if rate != sample_rate:
        import soxr

        logger.info(f"input audio is {rate} Hz; resampling to {sample_rate} Hz")
        mono = soxr.resample(mono, rate, sample_rate, quality="HQ")
    pcm = np.clip(np.round(mono * 32768.0), -32768, 32767).astype(np.int16)
    if len(pcm) == 0:
        raise InputError(f"{path} contains no audio (0 samples); record or export some speech")
    info = WavInfo(
        path=str(path), sample_rate=rate, channels=channels, format=kind, duration_s=frames / rate
    )
    return np.ascontiguousarray(pcm), sample_rate, info


def load_wav(path: str | Path, sample_rate: int = 16000) -> tuple[np.ndarray, int]:
    """Read an audio file as mono int16 PCM at ``sample_rate``, converting what can be converted.

    WAV (8/16/24/32-bit PCM or float), FLAC, OGG, MP3 and the other formats libsndfile reads are
    taken; more than one channel is averaged to mono; another rate is resampled. Each conversion
    is logged.

    Args:
        path: The audio file.
        sample_rate: The rate the caller needs (the pipeline's input rate, 16000).

    Returns:
        ``(pcm, sample_rate)``: a 1-D ``np.int16`` array and its rate.

    Raises:
        InputError: The file is missing, unreadable, not audio libsndfile knows, or empty.
    """
    pcm, rate, _ = load_wav_info(path, sample_rate)
    return pcm, rate


class CameraReader:
    """Decodes a user camera clip (``.y4m``, ``.mp4``, …) into RGB frames, one at a time.

    Args:
        path: The clip.

    Raises:
        InputError: The file is missing, cannot be demuxed, or has no video stream.
    """

    def __init__(self, path: str | Path):
        import av

        self.path = Path(path)
        if not self.path.is_file():
            raise InputError(f"camera clip not found: {self.path}")
        try:
            self._container = av.open(str(self.path))
        except (av.error.FFmpegError, OSError, ValueError) as exc:
            raise InputError(f"cannot read camera clip {self.path}: {exc}") from None
        if not self._container.streams.video:
            self._container.close()
            raise InputError(f"camera clip {self.path} has no video stream")
        stream = self._container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        self.fps = float(rate) if rate else 25.0
        self.size = (stream.codec_context.width, stream.codec_context.height)
        self._frames = self._container.decode(stream)

    def read(self) -> np.ndarray | None:
        """The next frame as an ``(h, w, 3)`` uint8 RGB array, or ``None`` at the end."""
        if self._frames is None:
            return None
        try:
            frame = next(self._frames)
        except StopIteration:
            self.close()
            return None
        except Exception as exc:  # a corrupt packet mid-clip: stop the camera, keep the session
            logger.warning(f"camera clip {self.path}: decoding stopped: {exc}")
            self.close()
            return None
        return frame.to_ndarray(format="rgb24")

    def close(self) -> None:
        """Release the decoder (idempotent)."""
        if self._frames is not None:
            self._frames = None
            self._container.close()
