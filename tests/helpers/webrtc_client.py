"""The Python WebRTC user now lives in ``presence.transports.webrtc.client`` (the soak bench uses it)."""

from presence.transports.webrtc.client import (  # noqa: F401  (re-exported for the tests)
    CHUNK,
    RATE,
    SILENCE_RMS,
    Camera,
    Microphone,
    Received,
    WebRTCUser,
    read_wav,
)
