"""Room noise under the evaluation set's questions: parsed, refused with the field, mixed at its SNR."""

from __future__ import annotations

import wave
from dataclasses import replace

import numpy as np
import pytest

from presence.benchmarks.conversation.questions import load_questions, render
from presence.benchmarks.conversation.rooms import KINDS, Noise, make_noise
from presence.framework.errors import ConfigError

pytestmark = pytest.mark.background

QUESTIONS = """
voices:
  v: {engine: espeak, voice: en-us, rate: 170, gain: 0.6}
questions:
  - {id: a, say: "Can I run it offline?", voice: v, format: 16k-mono, expect: ["x#y"],
     noise: {kind: hum, snr_db: 12}}
  - {id: b, say: "What is this?", voice: v, format: 16k-mono, expect: ["x#y"]}
"""


def samples(path) -> np.ndarray:
    with wave.open(str(path)) as w:
        return np.frombuffer(w.readframes(w.getnframes()), np.int16).astype(np.float64) / 32768


def test_a_question_s_noise_is_read_and_the_bench_option_puts_one_under_every_question(tmp_path):
    path = tmp_path / "q.yaml"
    path.write_text(QUESTIONS)
    a, b = load_questions(path)
    assert a.noise == Noise("hum", 12.0) and a.room == "hum 12 dB"
    assert b.noise is None and b.room == "quiet"
    assert {q.noise for q in load_questions(path, noise="babble:8")} == {Noise("babble", 8.0)}


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"kind": "jet", "snr_db": 10}, "noise kind must be one of"),
        ({"kind": "pink"}, "needs a number snr_db"),
        ({"kind": "pink", "snr_db": 60}, "within"),
        ({"kind": "pink", "snr_db": 10, "db": 3}, "noise must be"),
    ],
)
def test_a_wrong_noise_names_the_question_and_the_fix(tmp_path, value, message):
    path = tmp_path / "q.yaml"
    path.write_text(QUESTIONS.replace("noise: {kind: hum, snr_db: 12}", f"noise: {value}"))
    with pytest.raises(ConfigError, match=message) as err:
        load_questions(path)
    assert "q.yaml: question a" in str(err.value)
    with pytest.raises(ConfigError, match="--noise"):
        load_questions(path, noise="pink")


@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_has_the_asked_level(kind):
    noise = make_noise(Noise(kind, 20.0), 16000 * 3, 16000, speech_rms=0.1, seed=3)
    assert np.sqrt(np.mean(noise.astype(np.float64) ** 2)) == pytest.approx(0.01, rel=0.02)
    assert np.array_equal(noise, make_noise(Noise(kind, 20.0), 16000 * 3, 16000, 0.1, seed=3))


def test_a_noisy_question_has_the_room_before_during_and_after_the_voice(tmp_path):
    path = tmp_path / "q.yaml"
    path.write_text(QUESTIONS)
    quiet_q = load_questions(path)[0]
    quiet_q = replace(quiet_q, noise=None)
    noisy_q = replace(quiet_q, noise=Noise("pink", 10.0))
    quiet, noisy = render(quiet_q, tmp_path / "r"), render(noisy_q, tmp_path / "r")
    assert noisy.path != quiet.path  # cached apart
    assert (noisy.speech_start_s, noisy.speech_end_s) == (quiet.speech_start_s, quiet.speech_end_s)
    clean, mixed = samples(quiet.path), samples(noisy.path)
    room = mixed - clean
    a, b = int(quiet.speech_start_s * 16000), int(quiet.speech_end_s * 16000)
    snr = 20 * np.log10(np.sqrt(np.mean(clean[a:b] ** 2)) / np.sqrt(np.mean(room**2)))
    assert snr == pytest.approx(10.0, abs=0.5)
    lead = mixed[: a - 800]
    assert np.sqrt(np.mean(lead**2)) > 0.5 * np.sqrt(np.mean(room**2))  # the room before the voice


def test_the_bench_refuses_a_wrong_noise_in_one_line_before_anything_runs():
    from typer.testing import CliRunner

    from presence.framework.cli import app

    result = CliRunner().invoke(app, ["bench", "conversation", "--noise", "jet:5", "--limit", "1"])
    assert result.exit_code == 2, result.output
    assert result.output.startswith("error: --noise: noise kind must be one of"), result.output
    assert "Traceback" not in result.output


def test_babble_is_rendered_once_per_cache_folder_and_is_the_same_after(tmp_path):
    from presence.benchmarks.conversation import rooms

    first = make_noise(Noise("babble", 10.0), 16000, 16000, 0.1, seed=1, folder=tmp_path)
    assert (tmp_path / "babble-16000.npy").is_file()
    rooms._babble_bed.cache_clear()  # as a new process would
    again = make_noise(Noise("babble", 10.0), 16000, 16000, 0.1, seed=1, folder=tmp_path)
    assert np.array_equal(first, again)
