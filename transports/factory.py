"""Transport specs (the ``transport:`` block of a pipeline file) and the factory that builds them.

=============  ===========================================  ===============  ==================
``kind``       what the user talks through                  media            built by
=============  ===========================================  ===============  ==================
``webrtc``     our browser page over pipecat SmallWebRTC    audio + video    ``webrtc_server``
``daily``      a Daily room (room URL + token)              audio + video    ``build_transport``
``websocket``  pipecat's websocket protocol (protobuf)      audio only       ``build_transport``
``local``      this machine's mic and speakers (PyAudio)    audio only       ``build_transport``
``file``       a WAV in, an MP4 + JSON out (``--input``)    audio + video    the file transport
=============  ===========================================  ===============  ==================

``webrtc`` makes one transport per browser connection, so it is a server (``webrtc_server``) that
calls back per session; ``daily``, ``websocket`` and ``local`` are one transport object each.
Secrets (``token: ${DAILY_TOKEN}``) are interpolated by the config loader before validation.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from presence.framework.errors import ConfigError

AUDIO_IN_SAMPLE_RATE = 16000
AUDIO_OUT_SAMPLE_RATE = 24000


class VideoSpec(BaseModel):
    """The persona's output video.

    Attributes:
        width: Width in pixels (even, 16-4096).
        height: Height in pixels (even, 16-4096).
        fps: Frames per second (1-60).
    """

    model_config = ConfigDict(extra="forbid")

    width: int = Field(512, ge=16, le=4096)
    height: int = Field(512, ge=16, le=4096)
    fps: int = Field(25, ge=1, le=60)

    @field_validator("width", "height")
    @classmethod
    def _even(cls, value: int) -> int:
        if value % 2:
            raise ValueError(f"must be even for the video encoders (try {value + 1})")
        return value


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    carries_video: ClassVar[bool] = True
    """Whether the persona's video reaches the user over this transport."""


class _VideoSpec(_Spec):
    video: VideoSpec = Field(default_factory=VideoSpec)
    camera_fps: int = Field(5, ge=0, le=30)
    """User-camera frames per second passed to the pipeline (perception); 0: only on request."""


class IceServerSpec(BaseModel):
    """A STUN or TURN server, as in the browser's ``RTCIceServer``."""

    model_config = ConfigDict(extra="forbid")

    urls: str | list[str]
    username: str | None = None
    credential: str | None = None


class WebRTCSpec(_VideoSpec):
    """The browser page, served by presence over pipecat's SmallWebRTC.

    Attributes:
        host: Interface the page is served on (``0.0.0.0`` for the LAN; browsers only allow the
            microphone on ``localhost`` or https).
        port: TCP port of the page (``presence run --port`` overrides it).
        ice_servers: STUN/TURN servers; empty (default) keeps media on loopback/LAN, offline.
        ice_host_addresses: Addresses offered as host candidates; default every non-loopback
            interface. ``[127.0.0.1]`` where loopback is the only interface (with a browser
            started with ``--allow-loopback-in-peer-connection``).
        max_sessions: Browser sessions at the same time.
    """

    kind: Literal["webrtc"] = "webrtc"
    host: str = "127.0.0.1"
    port: int = Field(7860, ge=0, le=65535)
    ice_servers: list[IceServerSpec | str] = Field(default_factory=list)
    ice_host_addresses: list[str] | None = None
    max_sessions: int = Field(4, ge=1)


class DailySpec(_VideoSpec):
    """A Daily room: the persona joins as a participant.

    Attributes:
        room_url: ``https://<domain>.daily.co/<room>``; e.g. ``${DAILY_ROOM_URL}``. Required to
            run the pipeline on its own; left out in a persona served by the conversations
            service, which creates a room per conversation (``DAILY_API_KEY``).
        token: Meeting token for private rooms; e.g. ``${DAILY_TOKEN}``.
        bot_name: The persona's participant name.
    """

    kind: Literal["daily"] = "daily"
    room_url: str | None = None
    token: str | None = None
    bot_name: str = "presence"

    @field_validator("room_url")
    @classmethod
    def _https(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("https://", "http://")):
            raise ValueError("must be a room URL like https://your-domain.daily.co/room-name")
        return value


class WebSocketSpec(_Spec):
    """pipecat's websocket server protocol (protobuf frames). Audio only: no video either way.

    A client such as pipecat's ``@pipecat-ai/websocket-transport`` connects to
    ``ws://host:port``; one client at a time.
    """

    carries_video: ClassVar[bool] = False
    kind: Literal["websocket"] = "websocket"
    host: str = "127.0.0.1"
    port: int = Field(8765, ge=0, le=65535)


class LocalSpec(_Spec):
    """This machine's microphone and speakers via PyAudio. Audio only; needs ``presence[local-audio]``.

    Attributes:
        input_device: PyAudio input device index; default the system's default microphone.
        output_device: PyAudio output device index; default the system's default speakers.
    """

    carries_video: ClassVar[bool] = False
    kind: Literal["local"] = "local"
    input_device: int | None = Field(None, ge=0)
    output_device: int | None = Field(None, ge=0)


class FileSpec(_Spec):
    """WAV in, MP4 + JSON out; the paths come from the command line (``--input``, ``--output``)."""

    kind: Literal["file"] = "file"
    video: VideoSpec = Field(default_factory=VideoSpec)


TransportSpec = Annotated[
    WebRTCSpec | DailySpec | WebSocketSpec | LocalSpec | FileSpec, Field(discriminator="kind")
]
"""Any transport spec; ``kind`` picks the model."""

TRANSPORT_KINDS = ("webrtc", "daily", "websocket", "local", "file")


def build_transport(
    spec: Any,
    *,
    audio_in_sample_rate: int = AUDIO_IN_SAMPLE_RATE,
    audio_out_sample_rate: int = AUDIO_OUT_SAMPLE_RATE,
    video_out_is_live: bool = False,
):
    """Build the single transport object of a ``daily``, ``websocket`` or ``local`` spec.

    Args:
        spec: A validated transport spec.
        audio_in_sample_rate: Rate of the user's audio inside the pipeline.
        audio_out_sample_rate: Rate of the persona's audio inside the pipeline.
        video_out_is_live: Pace every pushed image (True) or repeat the last one (False).

    Returns:
        A pipecat ``BaseTransport``.

    Raises:
        ConfigError: ``spec`` is ``webrtc`` or ``file``, which are not one transport object.
        DependencyError: ``local`` without PyAudio installed.
    """
    rates = {
        "audio_in_sample_rate": audio_in_sample_rate,
        "audio_out_sample_rate": audio_out_sample_rate,
    }
    if isinstance(spec, DailySpec):
        from presence.transports.daily import build_daily_transport

        if not spec.room_url:
            raise ConfigError(
                "a daily transport needs transport.room_url (e.g. ${DAILY_ROOM_URL}) to run on "
                "its own; `presence serve` creates a room per conversation instead",
                field="transport.room_url",
            )

        return build_daily_transport(spec, video_out_is_live=video_out_is_live, **rates)
    if isinstance(spec, WebSocketSpec):
        from presence.transports.websocket import build_websocket_transport

        return build_websocket_transport(spec, **rates)
    if isinstance(spec, LocalSpec):
        from presence.transports.local_audio import build_local_audio_transport

        return build_local_audio_transport(spec, **rates)
    kind = getattr(spec, "kind", type(spec).__name__)
    hint = {
        "webrtc": "serve it with presence.transports.factory.webrtc_server(spec, on_session)",
        "file": "run it with --input/--output (the file transport)",
    }.get(kind, f"kinds are {', '.join(TRANSPORT_KINDS)}")
    raise ConfigError(
        f"transport kind {kind!r} is not built as one transport: {hint}", field="transport.kind"
    )


def webrtc_server(
    spec: WebRTCSpec,
    on_session,
    *,
    title: str = "presence",
    audio_in_sample_rate: int = AUDIO_IN_SAMPLE_RATE,
    audio_out_sample_rate: int = AUDIO_OUT_SAMPLE_RATE,
    video_out_is_live: bool = False,
):
    """The browser-page server for a ``webrtc`` spec; ``await server.serve(spec.host, spec.port)``.

    Args:
        spec: The validated ``webrtc`` spec.
        on_session: ``async (transport, session_id) -> None``, run once per browser connection.
        title: Page title (the persona's name).
        audio_in_sample_rate: Rate of the user's audio inside the pipeline.
        audio_out_sample_rate: Rate of the persona's audio inside the pipeline.
        video_out_is_live: Pace every pushed image (True) or repeat the last one (False).

    Returns:
        A ``presence.transports.webrtc.WebRTCServer``.
    """
    from presence.transports.webrtc import WebRTCServer, webrtc_params

    def params():
        return webrtc_params(
            width=spec.video.width,
            height=spec.video.height,
            fps=spec.video.fps,
            camera_fps=spec.camera_fps,
            audio_in_sample_rate=audio_in_sample_rate,
            audio_out_sample_rate=audio_out_sample_rate,
            video_out_is_live=video_out_is_live,
        )

    ice = [s if isinstance(s, str) else s.model_dump(exclude_none=True) for s in spec.ice_servers]
    return WebRTCServer(
        on_session,
        params=params,
        ice_servers=ice,
        ice_host_addresses=spec.ice_host_addresses,
        title=title,
        max_sessions=spec.max_sessions,
    )
