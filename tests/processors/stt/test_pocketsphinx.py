"""The pocketsphinx STT stage: domain model, streaming partials, and the pipecat service."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soxr
from helpers.speech import resample, synthesize, synthesize_16k
from pipecat.audio.vad.silero import SileroVADAnalyzer
from pipecat.audio.vad.vad_analyzer import VADParams
from pipecat.frames.frames import (
    InputAudioRawFrame,
    InterimTranscriptionFrame,
    TranscriptionFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.observers.base_observer import BaseObserver
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.aggregators.llm_response_universal import (
    LLMContextAggregatorPair,
    LLMUserAggregatorParams,
)
from pipecat.tests.utils import SleepFrame, run_test
from pydantic import ValidationError

from presence.framework import registry
from presence.framework.persona import Persona, load_persona
from presence.processors.stt.engines.domain_lm import Lexicon, domain_sentences, split_known
from presence.processors.stt.engines.pocketsphinx import build_recognizer
from presence.processors.stt.pocketsphinx import PocketsphinxParams, PocketsphinxSTTService

KB_MARKDOWN = """# Presence

Presence is an open-source framework for real-time conversational video AI.
It is built on pipecat and runs pipelines defined in YAML files.

## Providers

A provider is a named implementation of a pipeline stage, such as speech to text.
To swap a provider, change the provider key of the stage in the pipeline file.

```bash
presence run --set stages.stt.provider=deepgram
```

## Personas

A persona has a system prompt, a greeting and a [knowledge base](docs/kb.md).
"""
ABOUT = ("tell me about presence", {"presence"})
HOW_DO_I = ("how do I swap a provider", {"swap", "provider"})
QUESTIONS = [  # pocketsphinx on synthetic speech is demo quality: single words flip
    ("what is presence", {"presence"}),
    HOW_DO_I,
    ABOUT,
    ("what is a persona", {"persona"}),
    ("what is a provider", {"provider"}),
]
CHUNK = 320  # 20 ms at 16 kHz
GUIDE = Path(__file__).resolve().parents[3] / "pipelines" / "personas" / "guide" / "persona.yaml"
GUIDE_QUESTIONS = [  # what visitors ask the default persona; keywords the responder needs
    ("what is presence", {"presence"}),
    ("how do I swap a provider", {"swap", "provider"}),
    ("what is the lip sync renderer", {"lip", "sync", "renderer"}),
    ("how do I write a processor", {"write", "processor"}),
    ("what transports are there", {"transports"}),
    ("tell me about perception", {"perception"}),
    ("how fast is it", {"fast"}),
    ("what is pipecat", {"pipecat"}),
    ("what is a replica", {"replica"}),
    ("how do I get started", {"started"}),
]


@pytest.fixture(scope="module")
def persona(tmp_path_factory) -> Persona:
    kb = tmp_path_factory.mktemp("kb")
    (kb / "presence.md").write_text(KB_MARKDOWN)
    return Persona(knowledge_base=kb)


def padded(text: str) -> np.ndarray:
    silence = np.zeros(int(0.3 * 16000), np.int16)
    return np.concatenate([silence, synthesize_16k(text), silence])


def decode(recognizer, audio: np.ndarray) -> tuple[list[str], str]:
    """Stream ``audio`` in 20 ms chunks; return (partials seen, final)."""
    partials = []
    recognizer.start()
    for i in range(0, len(audio), CHUNK):
        recognizer.feed(audio[i : i + CHUNK].tobytes())
        partials.append(recognizer.partial())
    return partials, recognizer.finish()


@pytest.mark.background
def test_domain_model_recognizes_questions_about_the_knowledge_base(persona):
    domain = build_recognizer(knowledge_files=persona.knowledge_files())
    generic = build_recognizer(language_model="generic")
    hits = {"domain": 0, "generic": 0}
    finals = []
    for text, keywords in QUESTIONS:
        _, final = decode(domain, padded(text))
        finals.append(final)
        hits["domain"] += len(keywords & set(final.split()))
        _, final = decode(generic, padded(text))
        hits["generic"] += len(keywords & set(final.split()))
    total = sum(len(k) for _, k in QUESTIONS)
    assert hits["domain"] >= 0.6 * total, finals
    assert hits["domain"] > hits["generic"]


def test_partial_hypotheses_arrive_while_speech_is_still_coming(persona):
    recognizer = build_recognizer(knowledge_files=persona.knowledge_files())
    audio = padded(HOW_DO_I[0])
    partials, final = decode(recognizer, audio)
    speech_end = len(audio) - int(0.3 * 16000)
    during_speech = [p for p in partials[: speech_end // CHUNK] if p]
    assert during_speech, "no partial hypothesis before the end of speech"
    assert len(set(during_speech)) > 1, "the partial hypothesis never grew"
    assert "swap" in during_speech[-1].split()
    assert HOW_DO_I[1] <= set(final.split())


def test_unknown_words_get_guessed_pronunciations_or_are_dropped_cleanly():
    lexicon = Lexicon()
    pipe, cat = lexicon.pronunciations("pipe")[0], lexicon.pronunciations("cat")[0]
    assert lexicon.pronunciations("pipecat") == [f"{pipe} {cat}"]
    assert lexicon.pronunciations("stt") == ["EH S T IY T IY"]
    assert lexicon.pronunciations("qxzvkwtrpl") is None
    # An unpronounceable word splits its sentence: no false bigram joins its neighbours.
    assert split_known([["swap", "qxzvkwtrpl", "provider"]], lexicon) == [["swap"], ["provider"]]


def test_domain_sentences_come_from_markdown_text_and_question_templates(persona):
    sentences = {" ".join(s) for s in domain_sentences(persona.knowledge_files(), ["lip sync"])}
    assert (
        "to swap a provider, change the provider key of the stage in the pipeline file".replace(
            ",", ""
        )
        in sentences
    )
    assert "what is presence" in sentences  # heading -> template
    assert "what is a provider" in sentences  # "A provider is ..." -> subject -> template
    assert "how do i lip sync" in sentences  # extra phrase -> template
    assert "a persona has a system prompt a greeting and a knowledge base" in sentences
    assert not any("stages" in s for s in sentences), "fenced code must be skipped"


def speech_turn(text: str, sample_rate: int = 16000) -> list:
    """Frames a VAD-fronted transport would deliver for one spoken turn."""
    audio = padded(text)
    if sample_rate != 16000:
        audio = resample(audio, 16000, sample_rate)
    chunk = sample_rate // 50
    vad_start = int(0.5 * sample_rate)  # VAD confirms speech 0.2 s after it began
    frames: list = []
    for i in range(0, len(audio), chunk):
        if i == (vad_start // chunk) * chunk:
            frames.append(VADUserStartedSpeakingFrame(start_secs=0.2))
        pcm = audio[i : i + chunk].tobytes()
        frames.append(InputAudioRawFrame(audio=pcm, sample_rate=sample_rate, num_channels=1))
    frames.append(VADUserStoppedSpeakingFrame(stop_secs=0.2))
    return frames


def build_service(persona: Persona) -> PocketsphinxSTTService:
    provider = registry.get("stt", "pocketsphinx")
    assert provider is not None
    ctx = registry.BuildContext(persona=persona, base_dir=Path("."))
    return provider.factory(provider.params(), ctx)


async def test_service_streams_interims_then_one_finalized_transcript(persona):
    down, _ = await run_test(build_service(persona), frames_to_send=speech_turn(HOW_DO_I[0]))
    texts = [f for f in down if isinstance(f, (InterimTranscriptionFrame, TranscriptionFrame))]
    finals = [f for f in texts if isinstance(f, TranscriptionFrame)]
    assert len(finals) == 1
    assert HOW_DO_I[1] <= set(finals[0].text.split()), finals[0].text
    assert finals[0].finalized, "turn strategies need finalized=True to skip their STT wait"
    assert isinstance(texts[0], InterimTranscriptionFrame) and texts[-1] is finals[0]
    # Audio still flows downstream for later stages.
    assert sum(isinstance(f, InputAudioRawFrame) for f in down) > 50


async def test_two_utterances_give_two_finals_without_bleeding(persona):
    frames = speech_turn(ABOUT[0]) + speech_turn(HOW_DO_I[0])
    down, _ = await run_test(build_service(persona), frames_to_send=frames)
    finals = [f.text.split() for f in down if isinstance(f, TranscriptionFrame)]
    assert len(finals) == 2, finals
    assert "presence" in finals[0] and not {"swap", "provider"} & set(finals[0])
    assert {"swap", "provider"} <= set(finals[1]) and "presence" not in finals[1]


async def test_service_resamples_pipeline_audio_that_is_not_16k(persona):
    down, _ = await run_test(
        build_service(persona),
        frames_to_send=speech_turn(ABOUT[0], sample_rate=24000),
        pipeline_params=PipelineParams(audio_in_sample_rate=24000),
    )
    finals = [f.text.split() for f in down if isinstance(f, TranscriptionFrame)]
    assert len(finals) == 1 and "presence" in finals[0], finals


async def test_audio_without_vad_frames_is_not_transcribed(persona):
    frames = [f for f in speech_turn(ABOUT[0]) if isinstance(f, InputAudioRawFrame)]
    down, _ = await run_test(build_service(persona), frames_to_send=frames)
    assert not [f for f in down if isinstance(f, (TranscriptionFrame, InterimTranscriptionFrame))]


def test_params_reject_unknown_keys_and_bad_values():
    with pytest.raises(ValidationError):
        PocketsphinxParams(language="en")
    with pytest.raises(ValidationError):
        PocketsphinxParams(language_model="whisper")
    with pytest.raises(ValidationError):
        PocketsphinxParams(generic_weight=1.5)
    assert PocketsphinxParams(extra_phrases=["lip sync"]).language_model == "domain"


@pytest.fixture(scope="module")
def guide() -> Persona:
    return load_persona(GUIDE)


def as_heard(text: str) -> np.ndarray:
    """``text`` as the file transport delivers it: espeak at 22050 Hz, 0.5 s of silence each
    side, soxr-resampled to 16 kHz; then cut as the service sees it with Silero's timing (the
    pre-roll starts 0.08 s before the speech, the VAD stop comes 0.27 s after it)."""
    speech, rate = synthesize(text)
    pad = np.zeros(rate // 2, np.int16)
    audio = soxr.resample(np.concatenate([pad, speech, pad]), rate, 16000, quality="HQ")
    return audio.astype(np.int16)[int(0.42 * 16000) : -int(0.23 * 16000)]


@pytest.mark.background
def test_guide_questions_are_recognized_on_a_cold_start(guide):
    """Each question as a session's first utterance, with and without question intonation."""
    recognizer = build_recognizer(knowledge_files=guide.knowledge_files())
    hits = total = 0
    misses = []
    for text, keywords in GUIDE_QUESTIONS:
        for spoken in (text, text + "?"):
            recognizer.reset_adaptation()  # as a new session's recognizer
            _, final = decode(recognizer, as_heard(spoken))
            hits += len(keywords & set(final.split()))
            total += len(keywords)
            if not keywords <= set(final.split()):
                misses.append((spoken, final))
    assert hits >= 0.85 * total, misses


async def test_service_hears_the_last_word_of_a_sessions_first_question(guide):
    """Real wiring: the user aggregator's Silero VAD sends its frames upstream to the STT."""
    stt = build_service(guide)
    vad = SileroVADAnalyzer(params=VADParams(stop_secs=0.2))
    user = LLMContextAggregatorPair(
        LLMContext(), user_params=LLMUserAggregatorParams(vad_analyzer=vad)
    ).user()
    speech, rate = synthesize("what is presence?")
    pad = np.zeros(rate // 2, np.int16)
    pcm = soxr.resample(np.concatenate([pad, speech, pad]), rate, 16000, quality="HQ")
    pcm = pcm.astype(np.int16)
    frames: list = []
    for i in range(0, len(pcm), CHUNK):  # paced, so VAD frames interleave as they do live
        frames += [InputAudioRawFrame(pcm[i : i + CHUNK].tobytes(), 16000, 1), SleepFrame(0.002)]
    frames.append(SleepFrame(0.3))
    finals: list[str] = []

    class Finals(BaseObserver):
        async def on_push_frame(self, data):
            if isinstance(data.frame, TranscriptionFrame) and data.source is stt:
                finals.append(data.frame.text)

    await run_test(Pipeline([stt, user]), frames_to_send=frames, observers=[Finals()])
    assert len(finals) == 1 and finals[0].split()[-1:] == ["presence"], finals


def test_questions_come_from_headings_actions_and_topics(tmp_path):
    (tmp_path / "kb.md").write_text(
        "# How fast presence is\n\nIt answers in a second.\n\n"
        "## Changing the voice\n\nTo swap a provider, you edit one line.\n\n"
        "## Making your own persona\n\nWebhooks are calls to your app. Presence is a framework.\n"
    )
    sentences = {" ".join(s) for s in domain_sentences([tmp_path / "kb.md"])}
    assert {"how fast is presence", "how fast is it"} <= sentences  # wh-heading inverted
    assert "how do i change the voice" in sentences  # gerund heading -> action
    assert "how do i swap a provider" in sentences  # "To X, ..." -> action
    assert "how do i make my own persona" in sentences  # "your" -> "my"
    assert "what are webhooks" in sentences and "what is presence" in sentences
    assert "what are presence" not in sentences and "how do i presence" not in sentences
