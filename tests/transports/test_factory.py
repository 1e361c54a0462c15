"""Transport specs validate like a pipeline file's ``transport:`` block, and the factory builds them."""

from __future__ import annotations

import asyncio
import socket

import numpy as np
import pytest
from pipecat.frames.frames import Frame, InputAudioRawFrame, OutputAudioRawFrame
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.serializers.protobuf import ProtobufFrameSerializer
from pipecat.transports.daily.transport import DailyTransport
from pipecat.workers.runner import WorkerRunner
from pydantic import TypeAdapter, ValidationError

from presence.framework.errors import ConfigError, DependencyError
from presence.transports.factory import (
    DailySpec,
    FileSpec,
    LocalSpec,
    TransportSpec,
    WebRTCSpec,
    WebSocketSpec,
    build_transport,
    webrtc_server,
)
from presence.transports.webrtc import WebRTCServer

SPEC = TypeAdapter(TransportSpec)


def test_each_kind_validates_to_its_model():
    assert isinstance(SPEC.validate_python({"kind": "webrtc"}), WebRTCSpec)
    assert isinstance(
        SPEC.validate_python({"kind": "daily", "room_url": "https://x.daily.co/r"}), DailySpec
    )
    assert isinstance(SPEC.validate_python({"kind": "websocket", "port": 9000}), WebSocketSpec)
    assert isinstance(SPEC.validate_python({"kind": "local", "input_device": 2}), LocalSpec)
    assert isinstance(SPEC.validate_python({"kind": "file"}), FileSpec)


def test_webrtc_defaults_serve_the_page_on_loopback_7860_offline():
    spec = SPEC.validate_python(
        {"kind": "webrtc", "video": {"width": 256, "height": 256, "fps": 20}}
    )
    assert (spec.host, spec.port) == ("127.0.0.1", 7860)
    assert spec.ice_servers == []  # no STUN: nothing leaves the machine/LAN
    assert (spec.video.width, spec.video.height, spec.video.fps) == (256, 256, 20)


@pytest.mark.parametrize(
    ("data", "field", "words"),
    [
        ({"kind": "carrier-pigeon"}, "", ["webrtc", "daily", "websocket", "local", "file"]),
        ({"kind": "webrtc", "prot": 1}, "prot", ["extra"]),
        ({"kind": "daily", "room_url": "my-room"}, "room_url", ["https://"]),
        ({"kind": "webrtc", "video": {"width": 511}}, "width", ["even"]),
        ({"kind": "websocket", "video": {"width": 256}}, "video", ["extra"]),  # audio only
        ({"kind": "local", "input_device": -1}, "input_device", ["0"]),
    ],
)
def test_wrong_specs_name_the_field_and_the_fix(data, field, words):
    with pytest.raises(ValidationError) as info:
        SPEC.validate_python(data)
    text = str(info.value)
    assert field in text
    for word in words:
        assert word in text


def test_a_daily_spec_without_a_room_is_valid_but_cannot_run_on_its_own():
    spec = SPEC.validate_python({"kind": "daily"})  # a service persona: a room per conversation
    with pytest.raises(ConfigError, match="DAILY_ROOM_URL") as info:
        build_transport(spec)
    assert info.value.field == "transport.room_url"


def test_only_the_kinds_with_video_say_so():
    assert WebRTCSpec.carries_video and DailySpec.carries_video and FileSpec.carries_video
    assert not WebSocketSpec.carries_video and not LocalSpec.carries_video


def test_daily_is_built_offline_and_the_spec_maps_through():
    spec = SPEC.validate_python(
        {
            "kind": "daily",
            "room_url": "https://presence-test.daily.co/no-such-room",
            "token": "secret-token",
            "bot_name": "Guide",
            "camera_fps": 2,
            "video": {"width": 320, "height": 240, "fps": 15},
        }
    )
    transport = build_transport(spec, audio_in_sample_rate=16000, audio_out_sample_rate=24000)
    assert isinstance(transport, DailyTransport)
    assert transport.room_url == "https://presence-test.daily.co/no-such-room"
    client = transport._client
    assert (client._token, client._bot_name) == ("secret-token", "Guide")
    params = transport._params
    assert (params.video_out_width, params.video_out_height, params.video_out_framerate) == (
        320,
        240,
        15,
    )
    assert params.audio_in_enabled and params.audio_out_enabled and params.video_out_enabled
    assert (params.audio_in_sample_rate, params.audio_out_sample_rate) == (16000, 24000)
    assert params.video_in_enabled and params.video_in_sources["camera"].framerate == 2


def test_webrtc_and_file_are_not_single_transports():
    for spec in (WebRTCSpec(), FileSpec()):
        with pytest.raises(ConfigError, match="not built as one transport"):
            build_transport(spec)


def test_webrtc_server_takes_geometry_camera_rate_and_ice_from_the_spec():
    spec = WebRTCSpec(
        video={"width": 320, "height": 240, "fps": 30},
        camera_fps=0,
        ice_servers=[
            "stun:stun.example.org:3478",
            {"urls": "turn:t.example.org", "username": "u", "credential": "c"},
        ],
    )

    async def on_session(transport, session_id):
        pass

    server = webrtc_server(spec, on_session, title="Guide", audio_out_sample_rate=22050)
    assert isinstance(server, WebRTCServer)
    params = server._params()
    assert (params.video_out_width, params.video_out_height, params.video_out_framerate) == (
        320,
        240,
        30,
    )
    assert params.audio_out_sample_rate == 22050
    assert params.video_in_sources["camera"].on_request_only  # camera_fps 0: frames only on request
    assert [s.urls for s in server._ice_servers] == [
        "stun:stun.example.org:3478",
        "turn:t.example.org",
    ]


def test_local_audio_without_pyaudio_names_the_extra():
    try:
        import pyaudio  # noqa: F401

        pytest.skip("PyAudio is installed here")
    except ImportError:
        pass
    with pytest.raises(DependencyError, match=r"presence\[local-audio\]"):
        build_transport(LocalSpec())


class Echo(FrameProcessor):
    """Sends the user's audio straight back."""

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        await super().process_frame(frame, direction)
        if isinstance(frame, InputAudioRawFrame):
            frame = OutputAudioRawFrame(frame.audio, frame.sample_rate, frame.num_channels)
        await self.push_frame(frame, direction)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_websocket_carries_audio_both_ways():
    import websockets

    spec = WebSocketSpec(port=free_port())
    transport = build_transport(spec, audio_in_sample_rate=16000, audio_out_sample_rate=24000)
    worker = PipelineWorker(
        Pipeline([transport.input(), Echo(), transport.output()]),
        params=PipelineParams(audio_in_sample_rate=16000, audio_out_sample_rate=24000),
        enable_rtvi=False,
    )
    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(worker)
    running = asyncio.create_task(runner.run())
    serializer = ProtobufFrameSerializer()
    tone = (np.sin(np.arange(3200) * 2 * np.pi * 440 / 16000) * 8000).astype(np.int16).tobytes()
    received: list[Frame] = []
    try:
        for _ in range(100):  # the server starts with the pipeline
            try:
                ws = await websockets.connect(f"ws://127.0.0.1:{spec.port}")
                break
            except OSError:
                await asyncio.sleep(0.05)
        async with ws:
            for _ in range(5):  # 5 × 200 ms of 16 kHz audio
                await ws.send(await serializer.serialize(OutputAudioRawFrame(tone, 16000, 1)))
            while sum(len(f.audio) for f in received) < 24000 * 2 * 0.5:
                frame = await serializer.deserialize(await asyncio.wait_for(ws.recv(), 5))
                if frame is not None and hasattr(frame, "audio"):
                    received.append(frame)
    finally:
        await worker.cancel()
        await asyncio.wait_for(running, 10)
    assert {f.sample_rate for f in received} == {24000}  # resampled to the persona's rate
    pcm = np.frombuffer(b"".join(f.audio for f in received), dtype=np.int16)
    assert np.abs(pcm).max() > 2000  # the tone came back, not silence
