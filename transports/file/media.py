"""Reading and validating the user's media for a file session (no pipecat here).

``load_wav`` turns any reasonable PCM WAV into what the pipeline takes (16 kHz mono int16) and
refuses the rest with an ``InputError`` that says what to export instead. ``CameraReader``
decodes a ``.y4m``/``.mp4`` clip frame by frame as RGB for the user's camera.

Constraints:
    * WAV: PCM 16-, 24- or 32-bit integer, any channel count (downmixed), any rate (resampled
      with soxr, the library behind pipecat's resamplers). 8-bit and float WAVs are refused.
    * Camera: anything FFmpeg (through PyAV) can demux with a video stream; frames come out RGB.
"""

from __future__ import annotations

import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from loguru import logger

from presence.framework.errors import InputError

EXPORT_HINT = "export it as 16-bit PCM WAV (e.g. `ffmpeg -i in.ext -ac 1 -ar 16000 out.wav`)"


@dataclass(frozen=True)
class WavInfo:
    """What the original WAV was, before conversion.

    Attributes:
        path: The file read.
        sample_rate: Its sample rate in Hz.
        channels: Its channel count.
        sample_width: Bytes per sample.
        duration_s: Its duration in seconds.
    """

    path: str
    sample_rate: int
    channels: int
    sample_width: int
    duration_s: float


def _read_wav(path: Path) -> tuple[bytes, wave._wave_params]:
    if not path.exists():
        raise InputError(f"input WAV not found: {path}")
    if not path.is_file():
        raise InputError(f"input WAV is not a file: {path}")
    try:
        with wave.open(str(path), "rb") as wav:
            params = wav.getparams()
            data = wav.readframes(params.nframes)
    except wave.Error as exc:
        reason = str(exc)
        if "unknown format" in reason:
            raise InputError(
                f"{path} is not PCM integer audio ({reason}); only integer PCM WAV is supported: "
                f"{EXPORT_HINT}"
            ) from None
        raise InputError(f"{path} is not a WAV file ({reason}); {EXPORT_HINT}") from None
    except EOFError:
        raise InputError(f"{path} is not a WAV file (truncated header); {EXPORT_HINT}") from None
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
    return data, params


def _to_int16(data: bytes, width: int, path: Path) -> np.ndarray:
    if width == 1:
        raise InputError(f"{path}: 8-bit PCM is not supported; export 16-bit PCM")
    if width == 2:
        return np.frombuffer(data, dtype="<i2").copy()
    if width == 3:
        raw = np.frombuffer(data, dtype=np.uint8).reshape(-1, 3)
        # The top two bytes of each little-endian 24-bit sample are its 16-bit approximation.
        return (raw[:, 1].astype(np.uint16) | (raw[:, 2].astype(np.uint16) << 8)).view(np.int16)
    if width == 4:
        return (np.frombuffer(data, dtype="<i4") >> 16).astype(np.int16)
    raise InputError(f"{path}: {8 * width}-bit PCM is not supported; export 16-bit PCM")


def load_wav_info(path: str | Path, sample_rate: int = 16000) -> tuple[np.ndarray, int, WavInfo]:
    """Like :func:`load_wav`, also returning what the original file was."""
    path = Path(path)
    data, params = _read_wav(path)
    if params.nframes == 0 or not data:
        raise InputError(f"{path} contains no audio (0 samples); record or export some speech")
    pcm = _to_int16(data, params.sampwidth, path)
    channels = params.nchannels
    usable = (len(pcm) // channels) * channels
    pcm = pcm[:usable]
    if channels > 1:
        logger.info(f"input WAV has {channels} channels; downmixing to mono")
        pcm = pcm.reshape(-1, channels).astype(np.int32).mean(axis=1).astype(np.int16)
    if len(pcm) == 0:
        raise InputError(f"{path} contains no audio (0 samples); record or export some speech")
    if params.framerate != sample_rate:
        import soxr

        logger.info(f"input WAV is {params.framerate} Hz; resampling to {sample_rate} Hz")
        pcm = soxr.resample(pcm, params.framerate, sample_rate, quality="HQ").astype(np.int16)
    info = WavInfo(
        path=str(path),
        sample_rate=params.framerate,
        channels=channels,
        sample_width=params.sampwidth,
        duration_s=params.nframes / params.framerate,
    )
    return np.ascontiguousarray(pcm, dtype=np.int16), sample_rate, info


def load_wav(path: str | Path, sample_rate: int = 16000) -> tuple[np.ndarray, int]:
    """Read a WAV as mono int16 PCM at ``sample_rate``, converting what can be converted.

    Stereo (or more channels) is downmixed to mono; another rate is resampled; 24/32-bit
    integer PCM is reduced to 16 bits. Each conversion is logged.

    Args:
        path: The WAV file.
        sample_rate: The rate the caller needs (the pipeline's input rate, 16000).

    Returns:
        ``(pcm, sample_rate)``: a 1-D ``np.int16`` array and its rate.

    Raises:
        InputError: The file is missing, unreadable, not a WAV, 8-bit or float PCM, or empty.
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
