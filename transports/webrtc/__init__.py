"""The browser page over pipecat's SmallWebRTC: the page server and its transport parameters."""

from presence.transports.webrtc.params import (
    IceServerLike,
    ice_host_addresses,
    limit_ice_host_addresses,
    to_ice_servers,
    webrtc_params,
)
from presence.transports.webrtc.server import (
    DEFAULT_HOST,
    DEFAULT_PORT,
    WEB_DIR,
    SessionHandler,
    WebRTCServer,
    create_app,
    serve,
)

__all__ = [
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "WEB_DIR",
    "IceServerLike",
    "SessionHandler",
    "WebRTCServer",
    "create_app",
    "ice_host_addresses",
    "limit_ice_host_addresses",
    "serve",
    "to_ice_servers",
    "webrtc_params",
]
