"""The conversation benchmark: its metrics on synthetic cases, the evaluation set's integrity, and
one real-time question through pipelines/local.yaml (about 15–25 s)."""

from __future__ import annotations

import json
import re
import wave
from pathlib import Path

import numpy as np
import pytest

from presence.benchmarks.conversation import metrics, questions, scoring
from presence.benchmarks.conversation.questions import Question, load_questions, render
from presence.benchmarks.conversation.voices import Voice
from presence.framework.errors import ConfigError
from presence.processors.llm.engines.retrieval import KnowledgeIndex
from presence.transports.file.media import load_wav_info
from presence.transports.file.writer import Mp4Writer

REPO = Path(__file__).resolve().parents[2]
KNOWLEDGE = REPO / "pipelines/personas/guide/knowledge"


@pytest.fixture(scope="module")
def index() -> KnowledgeIndex:
    return KnowledgeIndex.from_paths([KNOWLEDGE])


@pytest.fixture(scope="module")
def passages(index) -> list[metrics.PassageRef]:
    return metrics.passage_refs(index)


# -- word error --------------------------------------------------------------------------------


def test_word_error_normalises_case_punctuation_numbers_and_hesitations():
    assert metrics.word_error("Um, what's Presence?", "what is presence")["wer"] == 0.0
    assert (
        metrics.word_error("Python 3.11 or newer", "python three point one one or newer")["wer"]
        == 0.0
    )
    assert metrics.word_error("it has 7 stages", "it has seven stages")["wer"] == 0.0
    assert metrics.normalize("twenty-one") == ["twenty", "one"]
    assert metrics.number_words(21) == "twenty one"


def test_word_error_counts_substitutions_deletions_insertions():
    out = metrics.word_error("how do I swap a provider", "how do I swap the provider now")
    assert out["substitutions"] == 1 and out["insertions"] == 1 and out["deletions"] == 0
    assert out["wer"] == pytest.approx(2 / 6, abs=1e-3)
    assert metrics.word_error("what is presence", "")["wer"] == 1.0
    assert metrics.word_error("what is presence", "what")["deletions"] == 2


# -- answered right ----------------------------------------------------------------------------


def test_judge_answer_picks_the_passage_the_reply_came_from(index, passages):
    voice = next(p for p in index.passages if p.title == "Changing the voice")
    reply = " ".join(voice.text.split(". ")[:2])
    right = metrics.judge_answer(reply, ["03-providers#Changing the voice"], passages)
    assert right["right"] and right["best"] == "03-providers#Changing the voice"
    assert right["overlap"] >= 0.9
    # a reply from another passage is wrong, and says where it came from
    wrong = metrics.judge_answer(reply, ["04-renderer#Replicas"], passages)
    assert not wrong["right"] and wrong["best"] == "03-providers#Changing the voice"
    # a paraphrase of the right passage still wins
    para = "You change the tts provider or its voice setting; espeak sounds robotic."
    assert metrics.judge_answer(para, ["03-providers#Changing the voice"], passages)["right"]


def test_judge_answer_rejects_fallback_small_talk_and_silence(passages):
    fallback = (
        "Sorry, I don't know that one. You can ask me what presence is, how pipelines and "
        "providers work, or about the lip-sync renderer."
    )
    assert not metrics.judge_answer(fallback, ["04-renderer#The lip-sync renderer"], passages)[
        "right"
    ]
    assert not metrics.judge_answer("Glad I could help!", ["02-pipelines#Personas"], passages)[
        "right"
    ]
    assert metrics.judge_answer("", ["02-pipelines#Personas"], passages)["best"] is None


# -- the persona's audio -----------------------------------------------------------------------


def _mp4_with_bursts(path: Path, bursts: list[tuple[float, float]], rate: int = 24000) -> Path:
    """An MP4 whose audio is faint noise (below AUDIBLE) with 300 Hz bursts at the given spans."""
    end = max(b for _, b in bursts) + 1.0
    rng = np.random.default_rng(0)
    audio = rng.normal(0, 0.002, round(end * rate))
    t = np.arange(audio.size) / rate
    for a, b in bursts:
        span = (t >= a) & (t < b)
        audio[span] += 0.4 * np.sin(2 * np.pi * 300 * (t[span] - a) + np.pi / 2)
    writer = Mp4Writer(path, width=64, height=64, fps=25, sample_rate=rate)
    writer.write_audio(np.round(audio * 32767).astype(np.int16), 0)
    writer.advance_video(end)
    writer.close(end)
    return path


def test_first_audible_and_talk_over_from_an_mp4_audio_track(tmp_path):
    mp4 = _mp4_with_bursts(tmp_path / "a.mp4", [(1.0, 1.5), (2.5, 3.4), (3.5, 4.0)])
    audio, rate = metrics.decode_audio(mp4)
    assert rate == 24000
    # onsets land on the samples that were written (AAC priming does not shift them); a hard
    # step onset (the bursts start at full amplitude) shows up to ~5 ms early as AAC pre-echo
    assert metrics.onsets(audio, rate) == pytest.approx([1.0, 2.5], abs=0.006)
    assert metrics.first_onset_after(audio, rate, 2.0) == pytest.approx(2.5, abs=0.006)
    # persona audio still going at the end of speech: the next onset after a pause counts
    assert metrics.first_onset_after(audio, rate, 2.6) is None
    # talked over: persona audio inside the user's speech span
    assert metrics.overlap_s(audio, rate, 0.5, 2.0) == pytest.approx(0.5, abs=0.03)
    assert metrics.overlap_s(audio, rate, 1.6, 2.4) == 0.0


def test_writer_reports_the_frame_that_first_showed_an_image(tmp_path):
    writer = Mp4Writer(tmp_path / "v.mp4", width=64, height=64, fps=25, sample_rate=24000)
    img = np.zeros((64, 64, 3), np.uint8)
    writer.add_image(img, 0.0)
    writer.add_image(img + 50, 0.41)  # due by frame 10's midpoint (0.42)
    writer.add_image(img + 90, 0.43)  # after it: frame 11
    writer.advance_video(1.0)
    assert [writer.first_frame_showing(i) for i in range(3)] == [0, 10, 11]
    assert writer.first_frame_showing(3) is None
    writer.close(1.0)


# -- rows and totals ---------------------------------------------------------------------------


def _voice() -> Voice:
    return Voice(name="v", engine="espeak")


def _rendered(start=0.5, end=2.0) -> questions.RenderedQuestion:
    q = Question("t1", "so what | is presence", _voice(), "16k-mono",
                 ("01-what-is-presence#What presence is",), 500)  # fmt: skip
    return questions.RenderedQuestion(q, Path("x.wav"), 16000, 1, start, end, 2.5)


def _report(users: list[str], replies: list[str], speech_starts=None) -> dict:
    turns = [{"role": "user", "content": u} for u in users]
    turns += [{"role": "assistant", "content": r} for r in replies]
    timings = [{"user_started_speaking_ms": 500.0, "voice_to_voice_ms": 900.0} for _ in users]
    return {"turns": turns, "timings": timings, "output": {"speech_starts": speech_starts or []}}


def test_score_question_counts_splits_talk_over_and_latency(passages):
    rate = 16000
    audio = np.zeros(rate * 4, np.float32)
    audio[round(1.2 * rate) : round(1.4 * rate)] = 0.3  # reply to the first half, mid-question
    audio[round(2.8 * rate) : round(3.5 * rate)] = 0.3  # the answer, 800 ms after the end
    starts = [
        {"audio_s": 1.18, "image_s": 1.18, "frame": 30, "frame_s": 1.2},
        {"audio_s": 2.76, "image_s": 2.76, "frame": 69, "frame_s": 2.76},
    ]
    answer = "Presence is an open-source framework for real-time conversational video AI."
    report = _report(["so what", "is presence"], ["Sorry, I don't know that one.", answer], starts)
    report["timings"][-1].update(
        user_stopped_speaking_ms=2000.0,
        turn_decided_ms=2400.0,
        transcript_final_ms=2300.0,
        bot_started_speaking_ms=2900.0,
    )
    row = scoring.score_question(_rendered(), report, audio, rate, passages, turn_ends=2)
    # where the last turn's time went, from the same end of voice
    assert row["stages_ms"] == {"transcript_final": 300.0, "turn_decided": 400.0,
                                "llm_first_token": None, "tts_first_audio": None,
                                "bot_started_speaking": 900.0}  # fmt: skip
    assert row["user_turns"] == 2 and row["split"]
    assert row["talked_over"] and row["talked_over_ms"] == pytest.approx(200, abs=20)
    assert row["first_audio_ms"] == pytest.approx(800, abs=2)
    assert row["first_frame_ms"] == pytest.approx(760, abs=2)
    assert row["answered_right"] and row["wer"] == 0.0
    assert row["heard"] == "so what is presence" and row["replies"][0].startswith("Sorry")
    # without the observer's count, the transcript's user turns are the count
    row = scoring.score_question(_rendered(), report, audio, rate, passages)
    assert row["user_turns"] == 2


def test_summary_totals_and_percentiles(passages):
    rate = 16000
    audio = np.zeros(rate * 4, np.float32)
    audio[round(3.0 * rate) :] = 0.3
    report = _report(["so what is presence"], ["Glad I could help!"])
    rows = [scoring.score_question(_rendered(), report, audio, rate, passages, turn_ends=1)] * 3
    s = scoring.summarize(rows)
    assert s["questions"] == 3 and s["answered_right"] == 0 and s["split"] == 0
    assert s["first_audio_ms"]["p50"] == pytest.approx(1000, abs=2)
    assert s["first_frame_ms"]["n"] == 0 and s["wer"] == 0.0
    assert s["renderer"] is None  # no renderer figures in these rows
    rows = [{**rows[0], "renderer_frames": 100, "renderer_repeated": r,
             "renderer_late_p95_ms": 5.0} for r in (0, 4)]  # fmt: skip
    r = scoring.summarize(rows)["renderer"]
    assert (r["frames"], r["repeated"], r["repeated_pct"]) == (200, 4, 2.0)
    assert r["worst_session_repeated_pct"] == 4.0 and r["late_p95_ms"] == 5.0


# -- the evaluation set ------------------------------------------------------------------------


def _ngrams(text: str, n: int = 4) -> set[tuple[str, ...]]:
    w = re.findall(r"[a-z0-9']+", text.lower())
    return {tuple(w[i : i + n]) for i in range(len(w) - n + 1)}


def test_evaluation_set_integrity(index):
    qs = load_questions()
    assert len(qs) >= 36
    assert len({q.id for q in qs}) == len(qs)
    voices = {q.voice.name: q.voice for q in qs}
    assert len(voices) >= 6
    assert {v.engine for v in voices.values()} == {"espeak", "piper"}
    assert sum(q.has_pause or q.has_hesitation for q in qs) * 3 >= len(qs)
    assert {q.format for q in qs} == {"16k-mono", "44k-stereo"}
    keys = {f"{p.source}#{p.title}": p.text for p in index.passages}
    for q in qs:
        for key in q.expect:
            assert key in keys, f"{q.id}: {key} is not a passage of the knowledge base"
            # paraphrases: no run of four words taken from the passage that answers it
            assert not _ngrams(q.reference) & _ngrams(keys[key]), f"{q.id} copies {key}"
        if q.has_pause:
            assert 400 <= q.pause_ms <= 800


def test_a_missing_or_malformed_questions_file_is_refused_naming_it(tmp_path):
    with pytest.raises(ConfigError, match="no such questions file"):
        load_questions(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("questions: [unclosed")
    with pytest.raises(ConfigError, match="bad.yaml: not valid YAML"):
        load_questions(bad)
    bad.write_text("voices: {}\n")
    with pytest.raises(ConfigError, match="needs a 'questions' list"):
        load_questions(bad)


def test_rendering_is_deterministic_and_in_the_asked_format(tmp_path):
    qs = {q.id: q for q in load_questions()}
    piper = next(q for q in qs.values() if q.voice.engine == "piper" and q.voice.pitch != 1.0)
    espeak = next(q for q in qs.values() if q.voice.engine == "espeak" and q.has_pause)
    for q in (piper, espeak):
        a, b = render(q, tmp_path / "a"), render(q, tmp_path / "b")
        assert a.path.read_bytes() == b.path.read_bytes()
        rate, channels = questions.FORMATS[q.format]
        with wave.open(str(a.path)) as w:
            assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (rate, channels, 2)
        assert 0.4 < a.speech_start_s < a.speech_end_s < a.duration_s
        pcm, _, _ = load_wav_info(a.path)  # what the file transport will read
        voiced = np.flatnonzero(np.abs(pcm.astype(int)) > 300) / 16000
        assert voiced[-1] == pytest.approx(a.speech_end_s, abs=0.02)


# -- one question, end to end ------------------------------------------------------------------


async def test_one_question_through_local_yaml_in_real_time(tmp_path):
    from presence.benchmarks.conversation.runner import arun_conversation_benchmark

    result = await arun_conversation_benchmark(
        REPO / "pipelines/local.yaml",
        ids=["q13"],
        json_path=tmp_path / "c.json",
        plot_path=tmp_path / "c.png",
        media_dir=tmp_path / "media",
        command="pytest",
    )
    assert (tmp_path / "c.png").stat().st_size > 10_000
    saved = json.loads((tmp_path / "c.json").read_text())
    assert saved["summary"]["questions"] == 1 and saved["command"] == "pytest"
    assert saved["stt"] == saved["providers"]["stt"]["provider"]
    assert saved["machine"]["cpus"] and saved["method"]["first_audio_ms"]
    (row,) = result["questions"]
    for key in ("heard", "reply", "replies", "wer", "answered_right", "user_turns", "split",
                "talked_over", "first_audio_ms", "first_frame_ms"):  # fmt: skip
        assert key in row
    assert row["heard"], "the pipeline heard nothing"
    assert row["replies"], "the persona did not answer"
    assert row["user_turns"] >= 1
    stages = row["stages_ms"]
    assert 0 < stages["turn_decided"] <= stages["bot_started_speaking"]
    assert stages["bot_started_speaking"] == row["pipeline_v2v_ms"]
    assert isinstance(row["first_audio_ms"], float) and row["first_audio_ms"] > 0
    assert isinstance(row["first_frame_ms"], float) and row["first_frame_ms"] > 0
    assert (tmp_path / "media" / "q13.mp4").is_file()
    # the renderer's own clock: a session of several seconds at 25 fps, few frames repeated
    assert row["renderer_frames"] > 25 * 5
    assert 0 <= row["renderer_repeated"] < row["renderer_frames"]
    totals = saved["summary"]["renderer"]
    assert totals["frames"] == row["renderer_frames"] and totals["repeated_pct"] < 50


async def test_fakes_point_the_cloud_pipeline_at_loopback_servers(monkeypatch):
    from presence.benchmarks.conversation.cloud import _last_user_text, fakes_for
    from presence.framework.config import load_pipeline

    for key in ("DEEPGRAM_API_KEY", "ANTHROPIC_API_KEY", "ELEVENLABS_API_KEY"):
        monkeypatch.setenv(key, "x")  # recorded, so what fakes_for sets is undone afterwards
        monkeypatch.delenv(key)
    q = next(q for q in load_questions() if q.id == "q24")
    rq = questions.RenderedQuestion(q, Path("x.wav"), 16000, 1, 0.5, 2.0, 2.5)
    cloud = REPO / "pipelines/cloud.yaml"
    loaded = load_pipeline(cloud, ["stages.stt.api_key=k", "stages.llm.api_key=k",
                                   "stages.tts.api_key=k"])  # fmt: skip
    async with fakes_for(rq, loaded) as extra:
        assert all("127.0.0.1" in o for o in extra)
        each = load_pipeline(cloud, extra)  # the dummy keys are in the environment now
        assert each.stages["stt"].params.base_url.endswith(extra[0].split(":")[-1])
    body = {
        "messages": [{"role": "user", "content": [{"type": "text", "text": "what is a replica"}]}]
    }
    assert _last_user_text(body) == "what is a replica"
