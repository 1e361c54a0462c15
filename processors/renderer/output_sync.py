"""Output sync: how the renderer's paired audio+video reach the client in step and alive.

The problem (pipecat 1.14 ``BaseOutputTransport``): with ``video_out_is_live=True`` images marked
``sync_with_audio`` are dropped (they go through the audio queue, whose handler only sets the image
for the *non-live* video loop); unmarked live images are paced on their own queue, independent of
audio, so the two drift apart as soon as either queue backs up. With ``video_out_is_live=False``
the video loop repeats the last image at the frame rate — alive only if images keep coming.

The one place we solve it: the renderer pushes, every ``1/fps``, an image marked
``sync_with_audio`` followed by that period's audio — speech as ``TTSAudioRawFrame``, silence as a
plain ``OutputAudioRawFrame`` between turns (plain audio does not trigger "bot speaking") — and the
output transport runs with ``video_out_is_live=False``. The transport's audio task then swaps the
displayed image exactly when the audio before it has been written (for SmallWebRTC: consumed by the
track, i.e. played out in real time), and its video loop sends the current image at the video frame
rate. Sync error is bounded by one audio chunk plus one video period, and it cannot accumulate:
silence keeps flowing, so the idle face keeps moving between turns.

Transport factories call ``output_video_params`` to get the ``TransportParams`` fields, and may call
``check_output_params`` to fail early on a contradicting setting. For SmallWebRTC, aiortc stamps
every video frame 1/30 s after the last, whatever its real rate, so the transport's video loop
should run at 30 fps (the renderer may stay at 25: the loop samples the current image). Audio
goes out in 10 ms chunks (``audio_out_10ms_chunks=1``): the renderer hands idle silence over just
in time in 10 ms pieces, so starting speech waits behind at most one piece, where pipecat's default
40 ms chunks would make it wait behind up to a whole frame period of silence. The file
transport, when it is a ``BaseOutputTransport``, takes the same params; when it is a plain sink it
writes each image as the next video frame and appends each audio frame — the renderer's pairing
makes both tracks equally long.
"""

from __future__ import annotations

from typing import Any

from presence.framework.errors import ConfigError

AIORTC_VIDEO_FPS = 30


def output_video_params(
    width: int, height: int, fps: int, *, transport: str = "webrtc"
) -> dict[str, Any]:
    """``TransportParams`` fields for a transport that carries the renderer's output.

    Args:
        width: Video width (the renderer's frame width).
        height: Video height.
        fps: The renderer's frame rate.
        transport: ``webrtc`` (SmallWebRTC), ``daily``, ``file`` or another kind.

    Returns:
        Keyword arguments for ``pipecat.transports.base_transport.TransportParams``.
    """
    rate = AIORTC_VIDEO_FPS if transport == "webrtc" else fps
    return {
        "audio_out_enabled": True,
        "audio_out_10ms_chunks": 1,
        "video_out_enabled": True,
        "video_out_is_live": False,
        "video_out_width": width,
        "video_out_height": height,
        "video_out_framerate": rate,
    }


def check_output_params(params: Any, *, renderer_syncs: bool = True) -> None:
    """Raise ``ConfigError`` if ``params`` (a ``TransportParams``) would lose the renderer's video.

    Raises:
        ConfigError: ``video_out_is_live`` is on while the renderer marks images
            ``sync_with_audio`` (pipecat would drop every image), or video output is off.
    """
    if not getattr(params, "video_out_enabled", False):
        raise ConfigError(
            "the renderer needs video output: set video_out_enabled=True", field="transport"
        )
    if renderer_syncs and getattr(params, "video_out_is_live", False):
        raise ConfigError(
            "video_out_is_live must be False with the renderer: pipecat drops live images marked "
            "sync_with_audio (see presence.processors.renderer.output_sync)",
            field="transport",
        )
