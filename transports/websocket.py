"""The ``websocket`` transport: pipecat's websocket server protocol. Audio only.

Audio in and out as protobuf-serialized pipecat frames (``ProtobufFrameSerializer``, the protocol
of pipecat's ``@pipecat-ai/websocket-transport`` client); no video in either direction. The server
listens on ``ws://host:port`` once the pipeline starts and serves one client at a time.
"""

from __future__ import annotations

from pipecat.serializers.protobuf import ProtobufFrameSerializer
from pipecat.transports.websocket.server import (
    SingleClientWebsocketServerParams,
    SingleClientWebsocketServerTransport,
)

from presence.transports.factory import WebSocketSpec


def websocket_params(
    *, audio_in_sample_rate: int = 16000, audio_out_sample_rate: int = 24000
) -> SingleClientWebsocketServerParams:
    """Pipecat params for an audio-only websocket server with the protobuf serializer."""
    return SingleClientWebsocketServerParams(
        audio_in_enabled=True,
        audio_in_sample_rate=audio_in_sample_rate,
        audio_out_enabled=True,
        audio_out_sample_rate=audio_out_sample_rate,
        serializer=ProtobufFrameSerializer(),
    )


def build_websocket_transport(
    spec: WebSocketSpec, **kwargs
) -> SingleClientWebsocketServerTransport:
    """A websocket server transport on ``spec.host:spec.port`` (kwargs as in ``websocket_params``)."""
    return SingleClientWebsocketServerTransport(
        params=websocket_params(**kwargs), host=spec.host, port=spec.port
    )
