"""The builder turns pipeline files into pipecat pipelines, reading straight down the data path."""

from __future__ import annotations

import wave

import numpy as np
import pytest
from pipecat.pipeline.worker import PipelineWorker
from pipecat.processors.aggregators.llm_response_universal import LLMUserAggregator

from presence.framework.builder import build_session
from presence.framework.config import load_pipeline
from presence.transports.file.transport import FileTransport

pytestmark = pytest.mark.background


@pytest.fixture
def transport(tmp_path):
    path = tmp_path / "in.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(np.zeros(1600, dtype=np.int16).tobytes())
    return FileTransport(path, tmp_path / "out.mp4")


def names(session):
    return [type(p).__name__ for p in session.pipeline.processors]


def test_local_pipeline_builds_in_data_path_order(repo, transport):
    loaded = load_pipeline(repo / "pipelines/local.yaml")
    session = build_session(loaded, transport)
    assert isinstance(session.worker, PipelineWorker)
    chain = session.pipeline.processors
    kinds = [type(p).__name__ for p in chain]
    stt = kinds.index(type(session.stages["stt"]).__name__)
    user = next(i for i, p in enumerate(chain) if isinstance(p, LLMUserAggregator))
    llm = kinds.index(type(session.stages["llm"]).__name__)
    tts = kinds.index(type(session.stages["tts"]).__name__)
    renderer = kinds.index(type(session.stages["renderer"]).__name__)
    assert stt < user < llm < tts < renderer
    # the floor's resume gate holds answers between TTS and the renderer; off when asked
    assert tts < kinds.index("ResumeGate") < renderer
    off = ["stages.turn.floor={resume_hold_s: 0}"]
    assert "ResumeGate" not in names(build_session(load_pipeline(loaded.source, off), transport))
    # a quiet user is raised before anything hears them (the STT, the VAD); off when asked
    assert kinds.index("QuietVoiceGain") < stt
    off = ["stages.vad.quiet_gain_db=0"]
    assert "QuietVoiceGain" not in names(
        build_session(load_pipeline(loaded.source, off), transport)
    )
    assert "PresenceWhisperSTTService" in kinds and "PresencePiperTTSService" in kinds
    # the persona's system prompt seeds the context
    assert session.context.get_messages()[0]["role"] == "system"


def test_provider_swap_in_yaml_changes_the_built_processor(repo, transport, monkeypatch):
    local = repo / "pipelines/local.yaml"
    before = build_session(load_pipeline(local), transport)
    monkeypatch.setenv("DEEPGRAM_API_KEY", "test-key")
    after = build_session(
        load_pipeline(local, ["stages.stt={provider: deepgram, api_key: '${DEEPGRAM_API_KEY}'}"]),
        transport,
    )
    assert type(before.stages["stt"]).__name__ == "PresenceWhisperSTTService"
    assert "Deepgram" in type(after.stages["stt"]).__name__
    swapped = build_session(
        load_pipeline(local, ["stages.turn={provider: speech-timeout}"]), transport
    )
    stop = swapped.stages["turn"].stop[0]
    assert type(stop).__name__ == "SpeechTimeoutUserTurnStopStrategy"
    assert type(before.stages["turn"].stop[0].inner).__name__ == "FloorUserTurnStopStrategy"


def test_perception_off_leaves_the_stage_out(repo, transport):
    session = build_session(load_pipeline(repo / "pipelines/local.yaml"), transport)
    assert session.stages["perception"] is None
    on = build_session(
        load_pipeline(repo / "pipelines/local.yaml", ["stages.perception={provider: opencv}"]),
        transport,
    )
    assert "PerceptionProcessor" in names(on)


def test_speculative_start_is_one_yaml_flag(repo, transport):
    local = repo / "pipelines/local.yaml"
    plain = build_session(load_pipeline(local, ["stages.turn.speculative=false"]), transport)
    spec = build_session(load_pipeline(local), transport)  # on in local.yaml
    wrapped = spec.stages["turn"].stop[0]
    assert type(wrapped).__name__ == "SpeculativeUserTurnStopStrategy"
    assert type(wrapped.inner).__name__ == "FloorUserTurnStopStrategy"
    assert type(plain.stages["turn"].stop[0]).__name__ == "FloorUserTurnStopStrategy"
