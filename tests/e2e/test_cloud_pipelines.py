"""The cloud pipelines from YAML, end to end over the file transport, against wire-protocol fakes.

``pipelines/cloud.yaml`` (Deepgram → Anthropic → ElevenLabs) and ``pipelines/byo-llm.yaml``
(pocketsphinx → any OpenAI-compatible LLM → espeak) run unchanged except for ``--set`` overrides
that point each provider's ``base_url`` at a local fake and pick a test persona with a tool. A
spoken WAV goes in; the JSON report and the MP4 come out and are checked for what the user would
notice: what they said, what the persona answered (after calling its tool), and that the answer
was spoken and shown — also when a provider misbehaves.
"""

from __future__ import annotations

import json
import uuid
import wave
from pathlib import Path

import av
import numpy as np
import pytest
from fakes.anthropic import FakeAnthropic
from fakes.deepgram_speech import FakeSpokenDeepgram, spoken_words
from fakes.elevenlabs import SAMPLE, FakeElevenLabs
from fakes.llm_script import Reply
from fakes.openai import FakeOpenAI
from helpers.speech import synthesize_16k

from presence.framework.config import load_pipeline
from presence.processors.resilience import DEFAULT_APOLOGY
from presence.transports.file.session import run_file_session

REPO = Path(__file__).resolve().parents[2]
GUIDE = REPO / "pipelines/personas/guide"
RATE = 16000

QUESTION = "what is the weather in paris".split()
FOLLOW_UP = "thank you very much".split()
ANSWER = ["It is sunny ", "in Paris today, ", "twenty one degrees."]
TOOL_MODULE = '''
def forecast(city: str) -> dict:
    """The test tool: proves it ran on the model's arguments by title-casing the city."""
    return {"city": city.title(), "sky": "sunny", "celsius": 21}
'''


# -- set-up helpers ----------------------------------------------------------------------------


def make_persona(folder: Path) -> Path:
    """A persona with one Python tool (its module beside the persona file) and the guide's face."""
    folder.mkdir(parents=True, exist_ok=True)
    module = f"e2e_weather_{uuid.uuid4().hex[:8]}"
    (folder / f"{module}.py").write_text(TOOL_MODULE)
    persona = folder / "persona.yaml"
    persona.write_text(
        f"""name: Weather Guide
system_prompt: You are a weather guide. Answer in one short sentence.
replica: {GUIDE / "replica.png"}
knowledge_base: {GUIDE / "knowledge"}
tools:
  - name: get_forecast
    description: Today's weather forecast for a city.
    parameters: {{city: {{type: string, description: The city}}}}
    required: [city]
    python: {module}:forecast
"""
    )
    return persona


def write_wav(path: Path, *utterances: np.ndarray, lead_s: float = 0.5, gap_s: float = 4.0) -> Path:
    """16 kHz mono WAV: ``lead_s`` of silence, then the utterances ``gap_s`` apart."""
    parts = [np.zeros(int(RATE * lead_s), np.int16)]
    for i, pcm in enumerate(utterances):
        if i:
            parts.append(np.zeros(int(RATE * gap_s), np.int16))
        parts.append(np.asarray(pcm, dtype=np.int16))
    parts.append(np.zeros(int(RATE * 0.5), np.int16))
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(np.concatenate(parts).tobytes())
    return path


async def run_cloud(
    tmp_path: Path, wav: Path, deepgram, llm, tts, *extra: str, fast: bool = True
) -> dict:
    """Run ``pipelines/cloud.yaml`` over ``wav`` with every provider pointed at its fake.

    Multi-turn runs go in real time: in fast mode a loaded machine can hold the input back for
    longer than the user aggregator's audio-idle timeout, which then ends the user's turn early.
    """
    overrides = [
        f"persona={make_persona(tmp_path / 'persona')}",
        "transport.video={width: 256, height: 256, fps: 25}",
        f"stages.stt.base_url={deepgram.base_url}",
        f"stages.llm.base_url={llm.base_url}",
        "stages.llm.timeout_s=3",
        f"stages.tts.base_url={tts.url}",
        *extra,
    ]
    loaded = load_pipeline(REPO / "pipelines/cloud.yaml", overrides)
    return await run_file_session(loaded, wav, tmp_path / "a.mp4", fast=fast)


@pytest.fixture
def keys(monkeypatch):
    for name in ("DEEPGRAM_API_KEY", "ANTHROPIC_API_KEY", "ELEVENLABS_API_KEY"):
        monkeypatch.setenv(name, f"test-{name.lower()}")


def turns(report: dict, role: str) -> list[str]:
    return [t["content"] for t in report["turns"] if t["role"] == role]


def decode(path: Path) -> tuple[np.ndarray, int, np.ndarray]:
    """(mono float audio, its rate, mean brightness of each video frame) of an MP4."""
    with av.open(str(path)) as container:
        assert container.streams.audio and container.streams.video, "the MP4 needs audio and video"
        frames = np.array([f.to_ndarray(format="gray").mean() for f in container.decode(video=0)])
    with av.open(str(path)) as container:
        chunks, rate = [], 0
        for f in container.decode(audio=0):
            rate = f.sample_rate
            a = f.to_ndarray()
            chunks.append(a.reshape(a.shape[0], -1).mean(axis=0))
    return np.concatenate(chunks), rate, frames


def loud_blocks(audio: np.ndarray, rate: int, threshold: float = 0.01) -> np.ndarray:
    """Indices of the 20 ms blocks of ``audio`` with a sample above ``threshold``."""
    block = rate // 50
    n = len(audio) // block
    loud = np.flatnonzero(np.abs(audio[: n * block].reshape(n, block)).max(axis=1) > threshold)
    assert len(loud), "the MP4 is silent"
    return loud


def spoken_span(audio: np.ndarray, rate: int) -> np.ndarray:
    """The persona's audio from its first to its last loud 20 ms block."""
    loud, block = loud_blocks(audio, rate), rate // 50
    return audio[loud[0] * block : (loud[-1] + 1) * block]


def assert_face_shown(audio: np.ndarray, rate: int, frames: np.ndarray, fps: int = 25) -> None:
    """One video frame per 1/fps of audio, and the face (never a black frame) throughout.

    (A fast run draws only while speech flows; before that the replica's neutral face shows.)
    """
    assert abs(len(frames) - fps * len(audio) / rate) <= 2
    assert (frames > 20).all()


# -- the happy path ----------------------------------------------------------------------------


async def test_cloud_yaml_answers_a_spoken_question_through_its_tool(tmp_path, keys):
    wav = write_wav(tmp_path / "q.wav", spoken_words(QUESTION))
    script = (Reply(tool_calls=[("get_forecast", {"city": "paris"})]), Reply(text=ANSWER))
    async with (
        FakeSpokenDeepgram(QUESTION) as deepgram,
        FakeAnthropic(*script) as llm,
        FakeElevenLabs() as tts,
    ):
        report = await run_cloud(tmp_path, wav, deepgram, llm, tts)
    assert turns(report, "user") == [" ".join(QUESTION)]
    # the model asked for the tool, got its result, and answered with it
    assert len(llm.requests) == 2
    results = [
        block
        for message in llm.requests[1]["messages"]
        if isinstance(message["content"], list)
        for block in message["content"]
        if block.get("type") == "tool_result"
    ]
    assert len(results) == 1 and "Paris" in json.dumps(results[0])
    assert [t["name"] for t in llm.requests[0]["tools"]] == ["get_forecast"]
    assert "weather guide" in json.dumps(llm.requests[0]["system"])
    assert turns(report, "assistant") == ["".join(ANSWER)]
    # spoken by the ElevenLabs voice (its constant sample), shown on video
    audio, rate, frames = decode(tmp_path / "a.mp4")
    span = spoken_span(audio, rate)
    assert abs(np.median(span) - SAMPLE / 32768) < 0.2 * SAMPLE / 32768
    assert_face_shown(audio, rate, frames)
    assert report["timings"][0]["voice_to_voice_ms"] > 0


# -- faults, each seen from the user's side ----------------------------------------------------


async def test_llm_5xx_twice_gets_an_apology_and_the_next_turn_an_answer(tmp_path, keys):
    # the follow-up comes well after the first reply has finished playing, so it is not a barge-in
    wav = write_wav(tmp_path / "q.wav", spoken_words(QUESTION), spoken_words(FOLLOW_UP), gap_s=9.0)
    script = (Reply(fault="500"), Reply(fault="500"), Reply(text=["You are welcome."]))
    async with (
        FakeSpokenDeepgram(QUESTION + FOLLOW_UP) as deepgram,
        FakeAnthropic(*script) as llm,
        FakeElevenLabs() as tts,
    ):
        report = await run_cloud(
            tmp_path, wav, deepgram, llm, tts, "stages.llm.fallback=[]", fast=False
        )
    assert turns(report, "user") == [" ".join(QUESTION), " ".join(FOLLOW_UP)]
    assert turns(report, "assistant") == [DEFAULT_APOLOGY, "You are welcome."]
    assert len(llm.requests) == 3  # the failed turn was tried twice, the next one once
    assert report["session"]["end_reason"] == "completed"
    assert all(t["voice_to_voice_ms"] for t in report["timings"])


async def test_llm_5xx_twice_with_cloud_yaml_fallback_answers_from_the_knowledge_base(
    tmp_path, keys
):
    words = "what is presence".split()
    wav = write_wav(tmp_path / "q.wav", spoken_words(words))
    async with (
        FakeSpokenDeepgram(words) as deepgram,
        FakeAnthropic(Reply(fault="500"), Reply(fault="500")) as llm,
        FakeElevenLabs() as tts,
    ):
        report = await run_cloud(tmp_path, wav, deepgram, llm, tts)
    assert turns(report, "user") == ["what is presence"]
    (answer,) = turns(report, "assistant")
    knowledge = " ".join(p.read_text() for p in (GUIDE / "knowledge").glob("*.md"))
    knowledge = " ".join(knowledge.split())
    assert answer != DEFAULT_APOLOGY and answer.split(".")[0] in knowledge
    assert len(llm.requests) == 2


async def test_elevenlabs_stall_is_spoken_by_the_espeak_fallback(tmp_path, keys):
    wav = write_wav(tmp_path / "q.wav", spoken_words(QUESTION))
    async with (
        FakeSpokenDeepgram(QUESTION) as deepgram,
        FakeAnthropic(Reply(text=ANSWER)) as llm,
        FakeElevenLabs(stall_contexts={1}) as tts,
    ):
        report = await run_cloud(
            tmp_path, wav, deepgram, llm, tts, "stages.tts.stall_timeout_s=0.5"
        )
    assert turns(report, "user") == [" ".join(QUESTION)]
    assert turns(report, "assistant") == ["".join(ANSWER)]
    assert tts.contexts, "ElevenLabs was asked first"
    audio, rate, frames = decode(tmp_path / "a.mp4")
    span = spoken_span(audio, rate)
    # a real voice (espeak), not the fake's constant sample: it swings both ways, at length
    assert len(span) / rate > 1.0
    assert np.mean(np.abs(span - SAMPLE / 32768) < 0.005) < 0.2
    assert_face_shown(audio, rate, frames)


async def test_deepgram_socket_dropped_mid_utterance_keeps_the_whole_transcript(tmp_path, keys):
    speech = spoken_words(QUESTION)
    wav = write_wav(tmp_path / "q.wav", speech)
    drop_ms = 500 + len(speech) * 1000 // RATE // 2  # halfway through the question
    async with (
        FakeSpokenDeepgram(QUESTION, drop_after_ms={1: drop_ms}) as deepgram,
        FakeAnthropic(Reply(text=ANSWER)) as llm,
        FakeElevenLabs() as tts,
    ):
        report = await run_cloud(tmp_path, wav, deepgram, llm, tts)
    assert deepgram.connections[0].dropped and len(deepgram.connections) >= 2
    assert deepgram.finals == [" ".join(QUESTION)]
    assert turns(report, "user") == [" ".join(QUESTION)]
    assert turns(report, "assistant") == ["".join(ANSWER)]
    last_user = llm.requests[0]["messages"][-1]["content"]
    assert " ".join(QUESTION) in json.dumps(last_user)


async def test_llm_429_and_a_stalled_stream_are_retried_and_both_turns_answered(tmp_path, keys):
    # the follow-up comes well after the first reply has finished playing, so it is not a barge-in
    wav = write_wav(tmp_path / "q.wav", spoken_words(QUESTION), spoken_words(FOLLOW_UP), gap_s=9.0)
    script = (
        Reply(fault="429", retry_after=0.2),
        Reply(text=["Sunny."]),
        Reply(fault="stall", stall_s=10),
        Reply(text=["You are welcome."]),
    )
    async with (
        FakeSpokenDeepgram(QUESTION + FOLLOW_UP) as deepgram,
        FakeAnthropic(*script) as llm,
        FakeElevenLabs() as tts,
    ):
        report = await run_cloud(
            tmp_path, wav, deepgram, llm, tts, "stages.llm.timeout_s=0.5", fast=False
        )
    assert turns(report, "user") == [" ".join(QUESTION), " ".join(FOLLOW_UP)]
    assert turns(report, "assistant") == ["Sunny.", "You are welcome."]
    assert len(llm.requests) == 4


async def test_malformed_payloads_from_every_provider_do_not_reach_the_user(tmp_path, keys):
    wav = write_wav(tmp_path / "q.wav", spoken_words(QUESTION))
    async with (
        FakeSpokenDeepgram(QUESTION, malformed_on={1}) as deepgram,
        FakeAnthropic(Reply(fault="malformed"), Reply(text=ANSWER)) as llm,
        FakeElevenLabs(malformed_contexts={1}) as tts,
    ):
        report = await run_cloud(tmp_path, wav, deepgram, llm, tts)
    assert turns(report, "user") == [" ".join(QUESTION)]
    assert turns(report, "assistant") == ["".join(ANSWER)]
    assert len(llm.requests) == 2  # the malformed stream was retried
    audio, rate, frames = decode(tmp_path / "a.mp4")
    span = spoken_span(audio, rate)  # still the ElevenLabs voice, all of it
    assert abs(np.median(span) - SAMPLE / 32768) < 0.2 * SAMPLE / 32768
    assert len(span) / rate >= 0.8 * len("".join(ANSWER)) * tts.char_ms / 1000
    assert_face_shown(audio, rate, frames)


# -- bring your own LLM --------------------------------------------------------------------------


async def test_byo_llm_yaml_answers_through_an_openai_compatible_server(tmp_path, monkeypatch):
    persona = make_persona(tmp_path / "persona")
    wav = write_wav(tmp_path / "q.wav", synthesize_16k("what is presence"))
    script = (Reply(tool_calls=[("get_forecast", {"city": "paris"})]), Reply(text=ANSWER))
    async with FakeOpenAI(*script) as llm:
        monkeypatch.setenv("OPENAI_BASE_URL", llm.base_url)
        monkeypatch.setenv("OPENAI_MODEL", "local-model")
        monkeypatch.delenv("OPENAI_API_KEY", raising=False)
        overrides = [f"persona={persona}", "transport.video={width: 256, height: 256, fps: 25}"]
        loaded = load_pipeline(REPO / "pipelines/byo-llm.yaml", overrides)
        report = await run_file_session(loaded, wav, tmp_path / "a.mp4", fast=True)
    (heard,) = turns(report, "user")
    assert "presence" in heard.lower()
    assert len(llm.requests) == 2 and llm.requests[0]["model"] == "local-model"
    assert llm.requests[0]["messages"][-1] == {"role": "user", "content": heard}
    # the persona prompt goes out once, grounded in the knowledge base
    (system,) = [m["content"] for m in llm.requests[0]["messages"] if m["role"] == "system"]
    assert system.startswith("You are a weather guide.") and "open-source" in system
    tool_messages = [m for m in llm.requests[1]["messages"] if m["role"] == "tool"]
    assert len(tool_messages) == 1 and "Paris" in tool_messages[0]["content"]
    assert turns(report, "assistant") == ["".join(ANSWER)]
    audio, rate, frames = decode(tmp_path / "a.mp4")
    assert len(spoken_span(audio, rate)) / rate > 1.0
    assert_face_shown(audio, rate, frames)
