"""The public API at the top of the package: ``presence.load_pipeline``, ``stage``, ``transport_params``,
the runner bot's helpers and the error types."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from pipecat.audio.vad.vad_analyzer import VADAnalyzer
from pipecat.frames.frames import OutputImageRawFrame
from pipecat.processors.frame_processor import FrameProcessor
from pipecat.transports.daily.transport import DailyParams

import presence
from presence.framework import errors
from presence.framework.api import override_strings
from presence.framework.runner_bot import env_overrides, runner_transport_params

pytestmark = pytest.mark.background

REPO = Path(__file__).resolve().parents[2]
PORTRAIT = REPO / "pipelines/personas/guide/replica.png"


def test_importing_presence_is_cheap_and_every_public_name_resolves():
    probe = "import presence, sys; print('pipecat' in sys.modules, 'torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO)
    assert out.stdout.split() == ["False", "False"], out.stderr
    for name in presence.__all__:
        assert getattr(presence, name) is not None, name
    assert presence.ConfigError is errors.ConfigError
    assert issubclass(presence.MissingSecretError, presence.PresenceError)
    with pytest.raises(AttributeError):
        presence.no_such_name  # noqa: B018


def test_load_pipeline_by_name_with_mapping_or_set_overrides():
    assert {"local", "cloud", "byo-llm"} <= set(presence.bundled_pipelines())
    by_map = presence.load_pipeline("local", {"stages.tts": {"provider": "espeak"}})
    by_set = presence.load_pipeline("local", ["stages.tts={provider: espeak}"])
    assert by_map.providers == by_set.providers and by_map.providers["tts"] == "espeak"
    assert by_map.source == REPO / "pipelines/local.yaml" and by_map.video() == (512, 512, 25)
    assert override_strings({"a.b": 1, "c": "x y"}) == ["a.b=1", 'c="x y"']
    with pytest.raises(presence.ConfigError, match="bundled name .*local") as err:
        presence.load_pipeline("nowhere")
    assert err.value.source == "nowhere"
    with pytest.raises(presence.ConfigError, match="stages.tts.provider"):
        presence.load_pipeline("local", ["stages.tts.provider=espeek"])


def test_stage_builds_a_ready_renderer_from_a_portrait():
    face = presence.stage("renderer", "still", portrait=PORTRAIT, size=(96, 64), fps=12)
    assert isinstance(face, FrameProcessor)
    engine = face.engine
    assert (engine.width, engine.height, engine.fps, engine.sample_rate) == (96, 64, 12, 24000)
    assert isinstance(presence.stage("vad", "silero", stop_secs=0.3), VADAnalyzer)


@pytest.mark.parametrize(
    ("args", "kwargs", "field", "says"),
    [
        (("renderer", "still"), {}, "portrait", "needs a face"),
        (("renderer", "stil"), {}, "provider", "allowed: still, warp, wav2lip"),
        (("renderer", "still"), {"portrait": PORTRAIT, "sead": 1}, "sead", "unknown key"),
        (("render", "still"), {}, None, "stages are: vad"),
        (("tts", "nowhere_mod:make"), {}, "provider", "cannot import"),
    ],
)
def test_stage_errors_name_the_argument(args, kwargs, field, says):
    with pytest.raises(presence.ConfigError) as err:
        presence.stage(*args, **kwargs)
    assert err.value.field == field and says in err.value.reason
    assert err.value.source.startswith("presence.stage(")


def test_transport_params_carry_the_face_in_step_for_each_kind():
    face = presence.stage("renderer", "still", portrait=PORTRAIT, size=128, fps=15)
    webrtc = presence.transport_params(face)
    assert (webrtc.video_out_width, webrtc.video_out_height) == (128, 128)
    assert webrtc.video_out_is_live is False and webrtc.audio_out_10ms_chunks == 1
    assert webrtc.video_out_framerate == 30  # aiortc's pace; the renderer keeps its 15
    assert webrtc.audio_out_sample_rate == 24000 and not webrtc.video_in_enabled
    daily = presence.transport_params(face, kind="daily", camera_fps=5)
    assert isinstance(daily, DailyParams) and daily.video_out_framerate == 15
    assert daily.video_in_enabled
    evals = presence.transport_params(face, kind="eval")
    assert evals.audio_in_enabled and not evals.video_out_enabled
    with pytest.raises(presence.ConfigError, match="video_out_is_live must be False"):
        presence.transport_params(face, video_out_is_live=True)
    with pytest.raises(presence.ConfigError, match="kinds are: webrtc, daily, eval"):
        presence.transport_params(face, kind="carrier-pigeon")
    pipeline = presence.load_pipeline("local", ["transport.video={width: 320, height: 240}"])
    assert pipeline.transport_params().video_out_width == 320
    assert set(runner_transport_params(pipeline)) == {"webrtc", "daily", "eval"}


async def test_serving_a_file_transport_and_unknown_benchmarks_fail_early(tmp_path):
    pipeline = presence.load_pipeline("local", ["transport={kind: file}"])
    with pytest.raises(presence.ConfigError, match="use run_file"):
        await pipeline.aserve()
    with pytest.raises(presence.ConfigError, match="benchmarks are: latency, conversation"):
        pipeline.benchmark("speed")


def test_runner_overrides_come_from_the_environment():
    env = {"PRESENCE_SET": "stages.vad.stop_secs=0.3; a=1\nb={x: 1}"}
    assert env_overrides(env) == ["stages.vad.stop_secs=0.3", "a=1", "b={x: 1}"]
    assert env_overrides({}) == []
    assert callable(presence.bot) and callable(presence.make_bot("local"))


async def test_run_file_takes_python_inserts(tmp_path):
    class CountImages(FrameProcessor):
        def __init__(self):
            super().__init__()
            self.images = 0

        async def process_frame(self, frame, direction):
            await super().process_frame(frame, direction)
            self.images += isinstance(frame, OutputImageRawFrame)
            await self.push_frame(frame, direction)

    counter = CountImages()
    pipeline = presence.load_pipeline(
        REPO / "benchmarks/latency/scripted.yaml",
        ["transport.video={width: 64, height: 64, fps: 10}", "stages.llm.reply=Sure."],
    )
    out = tmp_path / "a.mp4"
    report = await pipeline.arun_file(
        REPO / "examples/assets/what-is-presence.wav",
        out,
        fast=True,
        insert={"after_renderer": [counter]},
    )
    assert out.is_file() and report["turns"]
    assert counter.images > 0  # the renderer's frames went through it
