"""Running sessions: the browser server's next session is built and warmed before its offer."""

from __future__ import annotations

import asyncio
import textwrap
import threading
from pathlib import Path

import pytest
from pipecat.transports.smallwebrtc.connection import SmallWebRTCConnection
from pipecat.transports.smallwebrtc.transport import SmallWebRTCTransport

from presence.framework.builder import build_session, prepare_stages
from presence.framework.config import load_pipeline
from presence.framework.errors import ConfigError
from presence.framework.runtime import SpareStages, serve_browser
from presence.transports.webrtc import webrtc_params

PERSONA = Path(__file__).resolve().parents[2] / "pipelines/personas/guide/persona.yaml"

MODULE = '''
import threading
from pipecat.processors.frame_processor import FrameProcessor


class Slow(FrameProcessor):
    """A stage with a model to warm: records where it was built and warmed."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.built_in = threading.get_ident()
        self.warmed_in = []

    def warm_up(self):
        self.warmed_in.append(threading.get_ident())

    async def process_frame(self, frame, direction):
        await super().process_frame(frame, direction)
        await self.push_frame(frame, direction)


def make_slow():
    return Slow()


def broken():
    raise RuntimeError("the model file is missing")
'''


def pipeline(tmp_path: Path, llm: str = "warm_stages:make_slow") -> Path:
    (tmp_path / "warm_stages.py").write_text(MODULE)
    path = tmp_path / "pipeline.yaml"
    body = f"""\
        name: warm
        transport: {{kind: webrtc, video: {{width: 64, height: 64, fps: 10}}}}
        persona: {PERSONA}
        stages:
          vad: {{provider: silero}}
          turn: {{provider: speech-timeout}}
          stt: {{provider: scripted}}
          llm: {{provider: '{llm}'}}
          tts: {{provider: scripted}}
          renderer: {{provider: still}}
        """
    path.write_text(textwrap.dedent(body))
    return path


def transport() -> SmallWebRTCTransport:
    return SmallWebRTCTransport(webrtc_connection=SmallWebRTCConnection(), params=webrtc_params())


def test_prepared_stages_are_warmed_once_and_wired_as_they_are(tmp_path):
    loaded = load_pipeline(pipeline(tmp_path))
    prepared = prepare_stages(loaded)
    slow = prepared.stages["llm"]
    assert slow.warmed_in == [threading.get_ident()]
    session = build_session(loaded, transport(), prepared=prepared)
    assert session.stages["llm"] is slow and slow in session.pipeline.processors
    assert slow.warmed_in == [threading.get_ident()]  # wiring does not warm again
    with pytest.raises(ValueError, match="prepare_stages"):
        build_session(loaded, transport(), prepared=prepared, insert={"after_stt": []})


def test_a_session_built_directly_leaves_warming_to_its_start(tmp_path):
    loaded = load_pipeline(pipeline(tmp_path))
    session = build_session(loaded, transport())
    assert session.stages["llm"].warmed_in == []


async def test_the_spare_is_built_off_the_event_loop_and_a_new_one_on_request(tmp_path):
    loaded = load_pipeline(pipeline(tmp_path))
    spare = SpareStages(loaded)
    spare.start()
    await spare.ready()
    first = await spare.take()
    slow = first.stages["llm"]
    assert slow.built_in != threading.get_ident() and slow.warmed_in == [slow.built_in]
    spare.start()
    second = await spare.take()
    assert second.stages["llm"] is not slow  # stages are never shared between sessions
    spare.close()


async def test_a_stage_that_cannot_build_stops_the_server_before_it_serves(tmp_path):
    loaded = load_pipeline(pipeline(tmp_path, llm="warm_stages:broken"))
    announced: list[str] = []
    with pytest.raises(ConfigError) as caught:
        await asyncio.wait_for(
            serve_browser(loaded, host="127.0.0.1", port=0, on_ready=announced.append), 30
        )
    assert caught.value.field == "stages.llm.provider"
    assert "the model file is missing" in str(caught.value)
    assert announced == []
