"""Custom stages and inserted processors named by import path, with no change to presence."""

from __future__ import annotations

import textwrap
import wave
from pathlib import Path

import numpy as np
import pytest
from pipecat.processors.aggregators.llm_response_universal import LLMUserAggregator
from pipecat.processors.frame_processor import FrameProcessor

from presence.framework.builder import build_session
from presence.framework.config import load_pipeline
from presence.framework.custom import INSERT_POINTS
from presence.framework.errors import ConfigError
from presence.transports.file.transport import FileTransport

PERSONA = Path(__file__).resolve().parents[2] / "pipelines/personas/guide/persona.yaml"

MODULE = '''
from pydantic import BaseModel
from pipecat.processors.frame_processor import FrameProcessor


class Tag(FrameProcessor):
    """Passes every frame on; remembers its label."""

    def __init__(self, label: str, times: int = 1, **kwargs):
        super().__init__(**kwargs)
        self.label, self.times = label, times

    async def process_frame(self, frame, direction):
        await super().process_frame(frame, direction)
        await self.push_frame(frame, direction)


class EchoParams(BaseModel):
    reply: str = "echo"


def make_echo(params: EchoParams, ctx):
    tag = Tag(label=f"{params.reply} for {ctx.persona.name}")
    return tag


make_echo.Params = EchoParams


def not_a_processor():
    return "hello"


def broken(size: int):
    raise RuntimeError("the GPU is on fire")
'''


def write_pipeline(tmp_path: Path, extra: str = "", module: str = MODULE) -> Path:
    (tmp_path / "my_stages.py").write_text(module)
    path = tmp_path / "pipeline.yaml"
    body = f"""\
        name: custom
        transport: {{kind: file, video: {{width: 64, height: 64, fps: 10}}}}
        persona: {PERSONA}
        stages:
          vad: {{provider: silero}}
          turn: {{provider: speech-timeout}}
          stt: {{provider: scripted}}
          llm: {{provider: scripted}}
          tts: {{provider: scripted}}
          renderer: {{provider: still}}
        """
    path.write_text(textwrap.dedent(body) + textwrap.dedent(extra))
    return path


@pytest.fixture
def transport(tmp_path):
    wav = tmp_path / "in.wav"
    with wave.open(str(wav), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(np.zeros(1600, dtype=np.int16).tobytes())
    return FileTransport(wav, tmp_path / "out.mp4", width=64, height=64, fps=10)


def kinds(session) -> list[str]:
    return [type(p).__name__ for p in session.pipeline.processors]


def test_inserts_go_at_their_points_with_params_from_the_signature(tmp_path, transport):
    path = write_pipeline(
        tmp_path,
        """\
        insert:
          - {at: after_stt, provider: "my_stages:Tag", label: heard, times: "3"}
          - {at: after_llm, provider: "my_stages:Tag", label: said}
          - {at: after_renderer, provider: "my_stages:Tag", label: shown}
        """,
    )
    loaded = load_pipeline(path)
    assert [i.at for i in loaded.inserts] == ["after_stt", "before_tts", "after_renderer"]
    extra = FrameProcessor(name="mine")
    session = build_session(loaded, transport, insert={"after_tts": [extra]})
    chain = session.pipeline.processors
    labels = [getattr(p, "label", None) for p in chain]
    stt, heard = chain.index(session.stages["stt"]), labels.index("heard")
    user = next(i for i, p in enumerate(chain) if isinstance(p, LLMUserAggregator))
    assert stt + 1 == heard and heard + 1 == user
    assert chain[labels.index("said") - 1] is session.stages["llm"]
    assert chain[labels.index("said") + 1] is session.stages["tts"]
    assert chain[chain.index(extra) + 1] is session.stages["renderer"]
    assert chain[labels.index("shown") - 1] is session.stages["renderer"]
    assert chain[heard].times == 3  # validated and coerced like any provider parameter
    assert session.inserted["before_renderer"] == [extra]


def test_a_stage_provider_by_import_path_with_a_declared_model_and_context(tmp_path, transport):
    path = write_pipeline(tmp_path)
    loaded = load_pipeline(path, ["stages.llm={provider: 'my_stages:make_echo', reply: hi}"])
    session = build_session(loaded, transport)
    assert session.stages["llm"].label == "hi for Guide"
    assert loaded.stages["llm"].provider.name == "my_stages:make_echo"


@pytest.mark.parametrize(
    ("entry", "field", "says"),
    [
        ("{at: after_stt, provider: 'no_such_module:Tag'}", "insert.0.provider", "cannot import"),
        ("{at: after_stt, provider: 'my_stages:Nope'}", "insert.0.provider", "has no attribute"),
        ("{at: after_stt, provider: 'my_stages:Tag'}", "insert.0.label", "missing"),
        (
            "{at: after_stt, provider: 'my_stages:Tag', label: x, color: red}",
            "insert.0.color",
            "unknown key",
        ),  # fmt: skip
        (
            "{at: after_stt, provider: 'my_stages:Tag', label: x, times: many}",
            "insert.0.times",
            "integer",
        ),  # fmt: skip
        ("{at: middle, provider: 'my_stages:Tag', label: x}", "insert.0.at", "after_stt"),
        ("{at: after_stt, provider: Tag}", "insert.0.provider", "module.path:attribute"),
        (
            "{at: after_stt, provider: 'my_stages:EchoParams.model_fields'}",
            "insert.0.provider",
            "not a callable",
        ),  # fmt: skip
    ],
)
def test_bad_entries_fail_at_load_naming_file_and_field(tmp_path, entry, field, says):
    path = write_pipeline(tmp_path, f"insert:\n  - {entry}\n")
    with pytest.raises(ConfigError) as err:
        load_pipeline(path)
    assert err.value.source == str(path)
    assert err.value.field == field
    assert says in err.value.reason


def test_what_the_callable_returns_or_raises_is_named_at_build(tmp_path, transport):
    path = write_pipeline(
        tmp_path, "insert:\n  - {at: before_llm, provider: 'my_stages:not_a_processor'}\n"
    )
    with pytest.raises(ConfigError, match="returned a str, not a pipecat FrameProcessor") as err:
        build_session(load_pipeline(path), transport)
    assert (err.value.source, err.value.field) == (str(path), "insert.0.provider")
    loaded = load_pipeline(
        path, ["insert=[]", "stages.tts={provider: 'my_stages:broken', size: 1}"]
    )
    with pytest.raises(ConfigError, match="the GPU is on fire") as err:
        build_session(loaded, transport)
    assert err.value.field == "stages.tts.provider"


def test_a_missing_dependency_inside_the_module_is_named(tmp_path):
    path = write_pipeline(
        tmp_path,
        "insert:\n  - {at: after_stt, provider: 'my_stages:Tag'}\n",
        module="import surely_not_installed_pkg\n",
    )
    with pytest.raises(ConfigError, match="surely_not_installed_pkg") as err:
        load_pipeline(path)
    assert err.value.field == "insert.0.provider"


def test_python_inserts_name_their_point(tmp_path, transport):
    loaded = load_pipeline(write_pipeline(tmp_path))
    with pytest.raises(ConfigError, match="unknown insert point 'middle'"):
        build_session(loaded, transport, insert={"middle": [FrameProcessor()]})
    with pytest.raises(ConfigError, match="not a FrameProcessor"):
        build_session(loaded, transport, insert={"after_stt": ["text"]})
    assert INSERT_POINTS[0] == "after_input" and INSERT_POINTS[-1] == "after_renderer"


def test_set_reaches_into_the_insert_list_by_index(tmp_path):
    path = write_pipeline(
        tmp_path, "insert:\n  - {at: after_stt, provider: 'my_stages:Tag', label: a}\n"
    )
    loaded = load_pipeline(path, ["insert.0.label=b", "insert.0.times=2"])
    assert (loaded.inserts[0].params.label, loaded.inserts[0].params.times) == ("b", 2)
    with pytest.raises(ConfigError, match="'insert' is a list of 1; '1' is not an index") as err:
        load_pipeline(path, ["insert.1.label=c"])
    assert err.value.source == "--set"
