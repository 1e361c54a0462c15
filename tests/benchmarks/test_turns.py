"""``presence bench turns``: the pipeline's own floor judged on synthesized pauses, offline."""

import json

import pytest
import yaml

from presence.benchmarks.turns import main
from presence.framework.errors import ConfigError

QUESTIONS = {
    "voices": {"joe": {"engine": "piper", "length_scale": 1.0, "gain": 0.7}},
    "questions": [
        {"id": "t1", "say": "so how do I | change the voice", "pause_ms": 700, "voice": "joe",
         "format": "16k-mono", "expect": ["03-providers#Changing the voice"]},
        {"id": "t2", "say": "what is a replica", "voice": "joe", "format": "16k-mono",
         "expect": ["04-renderer#Replicas"]},
    ],
}  # fmt: skip


@pytest.fixture
def questions(tmp_path):
    path = tmp_path / "questions.yaml"
    path.write_text(yaml.safe_dump(QUESTIONS))
    return path


def test_a_pause_after_a_hanging_word_is_not_a_turn_end(questions, tmp_path):
    out = tmp_path / "turns.json"
    main(["local", "--questions", str(questions), "--voices", "own", "--json", str(out)])
    report = json.loads(out.read_text())
    summary = report["summary"]
    assert summary["utterances"] == 2 and summary["with_pause"] == 1
    paused, plain = report["rows"]
    assert [p["final"] for p in paused["points"]] == [False, True]
    assert "how do i" in paused["points"][0]["heard"].lower()
    assert paused["points"][0]["split"] is False  # "so how do I" holds the floor
    assert summary["split_utterances"] == 0
    # tiny.en on a 5 s window may hear "replicate": one word off at most, still answered
    assert "replic" in plain["heard"].lower() and plain["wer"] <= 0.25
    assert plain["answered_right"] is True and summary["answered_right"] >= 1
    # a finished question ends as soon as its transcript is in
    assert plain["points"][-1]["ends_at_ms"] == pytest.approx(
        1000 * (report["method"]["early_s"] + report["method"]["decode_ms"] / 1000)
    )
    # the floor's hold is the pipeline's: a shorter hold splits the paused question
    short = main(["local", "--questions", str(questions), "--voices", "own",
                  "--set", "stages.turn.floor={hold_s: 0.3}"])  # fmt: skip
    assert short["rows"][0]["points"][0]["split"] is True


def test_needs_the_floor_and_whisper(questions):
    with pytest.raises(ConfigError, match="stages.turn|floor"):
        main(["local", "--questions", str(questions), "--set", "stages.turn.floor=false"])
