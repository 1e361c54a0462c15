"""Retrieval over the guide persona's knowledge base and small synthetic documents."""

from pathlib import Path

import pytest

import presence.pipelines
from presence.benchmarks import retrieval as retrieval_benchmark
from presence.processors.llm.engines.retrieval import KnowledgeIndex
from presence.processors.llm.engines.text import sound_key, split_markdown, stem, terms

pytestmark = pytest.mark.background

GUIDE_KNOWLEDGE = Path(presence.pipelines.__file__).parent / "personas" / "guide" / "knowledge"


@pytest.fixture(scope="module")
def guide() -> KnowledgeIndex:
    return KnowledgeIndex.from_paths([GUIDE_KNOWLEDGE])


def best(index: KnowledgeIndex, query: str) -> tuple[str, str]:
    found = index.top_passages(query, 1)
    assert found, f"nothing matched {query!r}"
    return found[0].passage.source, found[0].passage.title


@pytest.mark.parametrize(
    ("question", "source", "title"),
    [
        ("what is presence", "01-what-is-presence", "What presence is"),
        ("how do I swap a provider", "03-providers", "Swapping a provider"),
        ("what stages does a pipeline have", "02-pipelines", "Pipeline stages"),
        ("tell me about the lip sync renderer", "04-renderer", "The lip-sync renderer"),
        ("what endpoints does the conversations api have", "06-conversations-api", "API endpoints"),
        ("how do i write a processor", "09-writing-a-processor", "Writing a processor"),
        ("what are the offline defaults", "03-providers", "Offline defaults"),
        ("what transports are supported", "07-transports", "Transports"),
    ],
)
def test_ranks_the_document_that_answers_the_question(guide, question, source, title):
    assert best(guide, question) == (source, title)


@pytest.mark.parametrize(
    ("noisy", "source", "title"),
    [
        ("what is presents", "01-what-is-presence", "What presence is"),  # wrong word
        ("how do i swamp a provider", "03-providers", "Swapping a provider"),
        ("tell me about the lip sink renderer", "04-renderer", "The lip-sync renderer"),
        ("how do i right a processor", "09-writing-a-processor", "Writing a processor"),
        ("what is pipe cat", "01-what-is-presence", "Built on pipecat"),  # split word
        ("can i use web r t c in the browser", "07-transports", "Browser WebRTC"),
    ],
)
def test_speech_recognition_errors_still_find_the_answer(guide, noisy, source, title):
    assert best(guide, noisy) == (source, title)


def test_noisy_question_scores_lower_than_the_clean_one(guide):
    clean = guide.top_passages("what is presence", 1)[0]
    noisy = guide.top_passages("what is presents", 1)[0]
    assert clean.passage == noisy.passage
    assert 0 < noisy.score < clean.score <= 1


def test_nonsense_matches_nothing(guide):
    assert guide.top_passages("purple elephant banana spaceship", 3) == []
    assert guide.top_passages("", 3) == []


def test_top_passages_are_ranked_best_first_and_limited_to_k(guide):
    found = guide.top_passages("which providers does the cloud pipeline use", 4)
    assert len(found) == 4
    scores = [f.score for f in found]
    assert scores == sorted(scores, reverse=True)
    assert all(0 < s <= 1 for s in scores)
    assert len({f.passage.id for f in found}) == 4
    assert [f.passage for f in guide.top_passages("which providers", 10, min_score=0.99)] == []


def test_split_markdown_makes_passages_per_paragraph_and_list_without_markup():
    doc = """# Topic

First **paragraph** with a [link](http://example.com).
Still the first paragraph.

Second paragraph.

- item one
- item two
  continued

```yaml
stt: {provider: deepgram}
```

## Sub heading
Text under the sub heading.
"""
    passages = split_markdown(doc)
    assert [(p.title, p.text) for p in passages] == [
        ("Topic", "First paragraph with a link. Still the first paragraph."),
        ("Topic", "Second paragraph."),
        ("Topic", "item one. item two continued."),
        ("Sub heading", "Text under the sub heading."),
    ]
    assert "deepgram" in passages[2].keywords  # code is indexed with the passage, not spoken


def test_code_block_words_are_searchable_but_not_spoken():
    index = KnowledgeIndex.from_markdown(
        [("cfg", "# Config\n\nSet the provider in the file.\n\n```\nfrobnicator: on\n```\n")]
    )
    (hit,) = index.top_passages("frobnicator", 1)
    assert "frobnicator" not in hit.passage.text


def test_stemming_folds_inflections_consistently():
    assert stem("renderer") == stem("render") == stem("rendering")
    assert stem("providers") == stem("provider") == stem("provide")
    assert stem("swapping") == stem("swap")
    assert terms("What is the pipeline?") == ["pipelin"]


def test_sound_keys_match_words_that_sound_alike():
    assert sound_key("sink") == sound_key("sync")
    assert sound_key("right") == sound_key("write")
    assert sound_key("presence") != sound_key("pipeline")


def test_empty_index_answers_nothing():
    index = KnowledgeIndex([])
    assert len(index) == 0
    assert index.top_passages("what is presence", 3) == []


def test_benchmark_reports_percentiles_on_a_small_base():
    report = retrieval_benchmark.run(passages=60, queries=12)
    assert report["passages"] == 60
    assert report["top_passages"]["p50_ms"] <= report["top_passages"]["p95_ms"]


def test_the_same_files_are_indexed_once_and_an_edit_is_seen(tmp_path):
    doc = tmp_path / "kettle.md"
    doc.write_text("# Kettle\n\nThe kettle boils in ninety seconds.\n")
    first = KnowledgeIndex.from_paths([tmp_path])
    assert KnowledgeIndex.from_paths([doc], spoken_sentences=2) is first  # same files, defaults
    assert KnowledgeIndex.from_paths([tmp_path], spoken_sentences=1) is not first
    doc.write_text("# Kettle\n\nThe kettle boils in sixty seconds, faster than before.\n")
    edited = KnowledgeIndex.from_paths([tmp_path])
    assert edited is not first
    assert "sixty" in edited.top_passages("how fast does the kettle boil", 1)[0].passage.text


def test_questions_comments_are_attached_unspoken_and_other_comments_dropped():
    doc = """# Kettles

<!-- questions: what should I read first -->

A kettle boils water.

<!-- questions:
- how do I make tea
- what heats the water
-->

<!-- a note for authors: not spoken, not indexed -->

## Cups
Cups hold tea.
"""
    (kettle, cups) = split_markdown(doc)
    assert kettle.text == "A kettle boils water."
    assert kettle.questions == (
        "what should I read first",
        "how do I make tea",
        "what heats the water",
    )
    assert cups.questions == () and "note" not in cups.text + kettle.text


def test_a_passage_is_found_by_the_questions_it_answers_not_only_its_words():
    doc = "# Brewing\n\nSteep the leaves for three minutes.\n\n# Cups\n\nCups come in many sizes.\n"
    plain = KnowledgeIndex.from_markdown([("tea", doc)])
    asked = KnowledgeIndex.from_markdown(
        [
            (
                "tea",
                doc.replace("minutes.\n", "minutes.\n<!-- questions:\n- how do I make tea\n-->\n"),
            )
        ]
    )
    assert plain.top_passages("how do I make tea", 1, min_score=0.01) == []
    (hit,) = asked.top_passages("how do I make tea", 1)
    assert hit.passage.title == "Brewing" and "make" not in hit.passage.text
