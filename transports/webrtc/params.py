"""SmallWebRTC transport parameters and ICE settings for browser sessions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pipecat.transports.base_transport import TransportParams, VideoInSourceParams
from pipecat.transports.smallwebrtc.connection import IceServer

from presence.processors.renderer.output_sync import output_video_params

IceServerLike = str | dict[str, Any] | IceServer
"""An ICE server as a URL, an ``{urls, username, credential}`` mapping or an ``IceServer``."""


def webrtc_params(
    *,
    width: int = 512,
    height: int = 512,
    fps: int = 25,
    camera_fps: int = 5,
    audio_in_sample_rate: int = 16000,
    audio_out_sample_rate: int = 24000,
    video_out_is_live: bool = False,
) -> TransportParams:
    """Transport parameters for one browser session: mic + camera in, audio + video out.

    Args:
        width: Width of the persona's video in pixels.
        height: Height of the persona's video in pixels.
        fps: Frame rate of the persona's video.
        camera_fps: User-camera frames per second passed into the pipeline (for perception);
            0 passes on only frames that answer a ``UserImageRequestFrame``.
        audio_in_sample_rate: Rate of the user's audio inside the pipeline (WebRTC's 48 kHz Opus
            is resampled to it).
        audio_out_sample_rate: Rate of the persona's audio inside the pipeline.
        video_out_is_live: Pace every pushed image at ``fps`` (True) or repeat the last image at
            ``fps`` until the next arrives (False).

    Returns:
        pipecat ``TransportParams`` for ``SmallWebRTCTransport``.
    """
    camera = (
        VideoInSourceParams(framerate=camera_fps)
        if camera_fps > 0
        else VideoInSourceParams(on_request_only=True)
    )
    return TransportParams(
        audio_in_enabled=True,
        audio_in_sample_rate=audio_in_sample_rate,
        audio_out_sample_rate=audio_out_sample_rate,
        video_in_enabled=True,
        video_in_sources={"camera": camera},
        **{
            **output_video_params(width, height, fps, transport="webrtc"),
            "video_out_is_live": video_out_is_live,
        },
    )


def to_ice_servers(servers: Sequence[IceServerLike] | None) -> list[IceServer]:
    """Normalise ICE servers given as URLs, ``{urls, username, credential}`` dicts or objects."""
    result: list[IceServer] = []
    for server in servers or []:
        if isinstance(server, IceServer):
            result.append(server)
        elif isinstance(server, str):
            result.append(IceServer(urls=server))
        else:
            result.append(
                IceServer(
                    urls=server["urls"],
                    username=server.get("username"),
                    credential=server.get("credential"),
                )
            )
    return result


_host_addresses: list[str] | None = None


def limit_ice_host_addresses(addresses: Sequence[str] | None) -> list[str] | None:
    """Make aiortc offer only ``addresses`` as host candidates (``None``: every interface).

    aioice gathers every non-loopback interface address and never offers 127.0.0.1, so on a
    machine whose only interface is loopback (a sandbox, a CI network namespace) no candidate pair
    can form. This setting is process-wide: aioice reads it when a connection gathers candidates.

    Returns:
        The previous setting, to restore later.
    """
    global _host_addresses
    previous = _host_addresses
    import aioice.ice as ice

    if not hasattr(ice, "_presence_original_get_host_addresses"):
        original = ice.get_host_addresses
        ice._presence_original_get_host_addresses = original  # type: ignore[attr-defined]

        def get_host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
            if _host_addresses is None:
                return original(use_ipv4, use_ipv6)
            return [
                a for a in _host_addresses if (":" in a and use_ipv6) or (":" not in a and use_ipv4)
            ]

        ice.get_host_addresses = get_host_addresses
    _host_addresses = list(addresses) if addresses is not None else None
    return previous


def ice_host_addresses() -> list[str] | None:
    """The current ``limit_ice_host_addresses`` setting (``None``: every interface)."""
    return None if _host_addresses is None else list(_host_addresses)
