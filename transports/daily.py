"""The ``daily`` transport: the persona joins a Daily room as a participant (audio + video).

Construction is offline (pipecat's ``DailyTransport`` joins the room only when the pipeline
starts), so a config can be built and checked without network or a real room.
"""

from __future__ import annotations

from pipecat.transports.base_transport import VideoInSourceParams
from pipecat.transports.daily.transport import DailyParams, DailyTransport

from presence.processors.renderer.output_sync import output_video_params
from presence.transports.factory import DailySpec


def daily_params(
    spec: DailySpec,
    *,
    audio_in_sample_rate: int = 16000,
    audio_out_sample_rate: int = 24000,
    video_out_is_live: bool = False,
) -> DailyParams:
    """Pipecat ``DailyParams`` for ``spec``: mic + camera in, audio + video out."""
    camera = (
        VideoInSourceParams(framerate=spec.camera_fps)
        if spec.camera_fps > 0
        else VideoInSourceParams(on_request_only=True)
    )
    return DailyParams(
        audio_in_enabled=True,
        audio_in_sample_rate=audio_in_sample_rate,
        audio_out_sample_rate=audio_out_sample_rate,
        video_in_enabled=True,
        video_in_sources={"camera": camera},
        **{
            **output_video_params(
                spec.video.width, spec.video.height, spec.video.fps, transport="daily"
            ),
            "video_out_is_live": video_out_is_live,
        },
    )


def build_daily_transport(spec: DailySpec, **kwargs) -> DailyTransport:
    """A ``DailyTransport`` for ``spec`` (kwargs as in ``daily_params``); joins on pipeline start."""
    return DailyTransport(spec.room_url, spec.token, spec.bot_name, daily_params(spec, **kwargs))
