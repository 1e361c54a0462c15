"""The offline responder: a question in, a short spoken answer out, from a knowledge base.

Pure Python (no pipecat). The answer is the first ``max_sentences`` sentences of the best
passage when it scores above ``min_score`` (see ``retrieval`` for what the score means); a
passage scoring above ``guess_score`` but not ``min_score`` is offered as a guess that names its
heading ("I think you're asking about turn taking." then its first sentences): a paraphrase far
from the passage's words still gets its answer, and the user hears that it is a guess;
otherwise the persona's fallback answer. Small talk that carries no question ("hello",
"thanks", "who are you?", "what can you do?") gets a friendly reply that names what the
knowledge base covers. A question made of question words only ("what is this?") goes to the
knowledge base first and gets that reply only when nothing matches. The question is handed to
the index as heard: the index drops fillers and greetings itself.

With a ``semantic.SemanticScorer`` the passages are ranked by the hybrid of the lexical score and
their sentence-embedding similarity to the question (``semantic`` explains the mix), against the
same ``min_score``; without one, by the lexical score alone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from presence.processors.llm.engines.question import clean_words
from presence.processors.llm.engines.retrieval import KnowledgeIndex, ScoredPassage
from presence.processors.llm.engines.semantic import SemanticScorer
from presence.processors.llm.engines.text import STOPWORDS, split_sentences, words

GREETINGS = frozenset("hello hi hey hiya howdy greetings morning afternoon evening".split())
THANKS = frozenset("thanks thank thx cheers great cool nice awesome perfect wonderful".split())
FAREWELLS = frozenset("bye goodbye farewell cya later night".split())
_FILLER = frozenset("good there see ya lot".split())  # only small talk next to the words above
FAREWELL = ["Goodbye!", "It was nice talking to you."]
THANKS_REPLY = ["Glad I could help!", "Anything else you'd like to know?"]

# "Who are you?": answered with the persona's introduction, not from the knowledge base.
_TALK = r"(?:talking|speaking|chatting|conversing)"
_IDENTITY = re.compile(
    r"^(?:who|what) (?:are|r) (?:you|u)(?: exactly)?$|^whats your name$|^what is your name$"
    rf"|^(?:who|what) (?:exactly )?(?:am i|are we) {_TALK} (?:to|with)(?: exactly| here| now)?$"
    r"|^(?:who|what) (?:exactly )?(?:is|s) (?:this|that|it)(?: thing| voice| face)?"
    rf"(?: exactly)? (?:im|i am|were|we are|i was) {_TALK} (?:to|with)(?: here| now)?$"
    r"|^who (?:exactly )?(?:is|s) (?:this|that)(?: exactly)?$"
    r"|^(?:are you|is this|am i talking to) (?:a |an )?(?:real )?(?:person|human|robot|bot|ai)$"
    r"|^(?:(?:tell me )?about|introduce) yourself$"
)
_LEADING_AND = re.compile(r"^(?:(?:and|but|so|then|well|ok|okay) )+")

AnswerKind = Literal[
    "knowledge", "guess", "greeting", "thanks", "farewell", "help", "fallback", "empty"
]


@dataclass
class Answer:
    """What the responder says, and why.

    Attributes:
        sentences: The reply, one sentence per item (empty when there is nothing to say).
        kind: Which rule produced it.
        passages: The passages that were considered, best first (empty for small talk).

    """

    sentences: list[str]
    kind: AnswerKind
    passages: list[ScoredPassage] = field(default_factory=list)

    @property
    def text(self) -> str:
        """The reply as one string."""
        return " ".join(self.sentences)

    @property
    def score(self) -> float:
        """Score of the best passage, or 0."""
        return self.passages[0].score if self.passages else 0.0


def _mid_sentence(title: str) -> str:
    """A heading as it reads inside a sentence: its first letter lowercased unless an acronym."""
    t = title.rstrip("?.!")
    return t if t[:2].isupper() else t[:1].lower() + t[1:]


def _join_topics(topics: list[str]) -> str:
    if len(topics) <= 1:
        return "".join(topics)
    return ", ".join(topics[:-1]) + f" and {topics[-1]}"


# A guess also needs the question's meaning to be this close to its passage's (cosine of their
# embeddings): keyword hits alone ("how do I train my dog" on "trained models") make no guess.
# Measured on the typed and spoken question sets, see benchmarks/results/CONVERSATION.md.
GUESS_SIMILARITY = 0.2


class Responder:
    """Answers questions from a ``KnowledgeIndex``.

    Args:
        index: The knowledge base.
        fallback_answer: Said when no passage scores above ``min_score``.
        name: The persona's name, used in small talk.
        min_score: Score (0–1) the best passage must exceed to be used: the normalised lexical
            score, or the hybrid score with ``semantic``.
        guess_score: Score the best passage must exceed to be offered as a guess (taken as
            ``min_score`` when above it, which turns guesses off); with ``semantic`` its meaning
            must also be at least ``GUESS_SIMILARITY`` alike.
        max_sentences: How many sentences of the best passage to say (spoken answers stay short).
        topics: What to offer in small talk; defaults to the knowledge base's top headings.
        candidates: How many passages ``answer`` retrieves (all are returned for inspection).
        semantic: Re-ranks with sentence embeddings (its passages must be ``index``'s); None
            ranks lexically.

    Raises:
        ValueError: A setting is out of range, or ``semantic`` covers other passages.

    """

    def __init__(
        self,
        index: KnowledgeIndex,
        *,
        fallback_answer: str = "I'm not sure about that one.",
        name: str = "",
        min_score: float = 0.3,
        guess_score: float = 0.22,
        max_sentences: int = 2,
        topics: list[str] | None = None,
        candidates: int = 3,
        semantic: SemanticScorer | None = None,
    ):
        if not 0.0 <= min_score <= 1.0:
            raise ValueError(f"min_score must be within 0 and 1, got {min_score}")
        if not 0.0 <= guess_score <= 1.0:
            raise ValueError(f"guess_score must be within 0 and 1, got {guess_score}")
        guess_score = min(guess_score, min_score)
        if max_sentences < 1:
            raise ValueError(f"max_sentences must be at least 1, got {max_sentences}")
        if semantic is not None and len(semantic) != len(index):
            raise ValueError(
                f"the semantic scorer covers {len(semantic)} passages, the index {len(index)}"
            )
        self.index = index
        self.fallback_answer = fallback_answer
        self.name = name
        self.min_score = min_score
        self.guess_score = guess_score
        self.max_sentences = max_sentences
        self.candidates = candidates
        self.semantic = semantic
        self.topics = topics if topics is not None else self._default_topics(index)

    @staticmethod
    def _default_topics(index: KnowledgeIndex, limit: int = 4) -> list[str]:
        """Return the first heading of each document, in order, lowercased for use mid-sentence."""
        seen: dict[str, str] = {}
        for p in index.passages:
            if p.source not in seen and p.title:
                seen[p.source] = _mid_sentence(p.title)
        return list(seen.values())[:limit]

    def top_passages(self, query: str, k: int = 3) -> list[ScoredPassage]:
        """Return the ``k`` best passages for ``query`` above ``min_score``, best first.

        The hook for feeding retrieved knowledge into a real LLM's context each turn.
        """
        return self._ranked(query, k, self.min_score)

    def _ranked(self, query: str, k: int, min_score: float = 0.0) -> list[ScoredPassage]:
        if self.semantic is None or not len(self.index):
            return self.index.top_passages(query, k, min_score=min_score)
        lexical, raw = self.index.score(query)
        similarity = self.semantic.similarities(query, lexical)
        hybrid = self.semantic.combine(lexical, similarity)
        return self.index.rank(hybrid, raw, k, min_score, similarity)

    def _offer(self) -> str:
        if not self.topics:
            return "Ask me anything."
        return f"You can ask me about {_join_topics(self.topics)}."

    def greeting_reply(self) -> list[str]:
        """Return a friendly hello that names what the knowledge base covers."""
        intro = f"Hi, I'm {self.name}!" if self.name else "Hi there!"
        return [intro, self._offer()]

    def _introduce(self) -> Answer:
        """Who the persona is: its name, then what the knowledge base opens with, then topics.

        The first passage of a knowledge base says what it is about ("Presence is an open-source
        framework ..."), which is what "what exactly is this thing I'm talking to" asks.
        """
        if not len(self.index):
            return Answer(self.greeting_reply(), "greeting")
        first = self.index.passages[0]
        about = split_sentences(first.text)[: self.max_sentences]
        intro = self.greeting_reply()[0]
        return Answer([intro, *about], "greeting", [ScoredPassage(first, 1.0, 1.0)])

    def _small_talk(self, ws: list[str]) -> Answer | None:
        content = [w for w in ws if w not in STOPWORDS]
        if not ws:
            return Answer([], "empty")
        pool = set(content)
        if _IDENTITY.match(_LEADING_AND.sub("", " ".join(clean_words(" ".join(ws))))):
            return self._introduce()
        if not pool:
            return None  # "what is this?": retrieval decides, else the offer of topics
        talk = GREETINGS | THANKS | FAREWELLS | _FILLER
        if pool <= talk and pool & FAREWELLS:
            return Answer(list(FAREWELL), "farewell")
        if pool <= talk and pool & THANKS:
            return Answer(list(THANKS_REPLY), "thanks")
        if pool <= talk and pool & GREETINGS:
            return Answer(self.greeting_reply(), "greeting")
        if pool <= {"help", "topic", "topics", "ask", "question", "questions", "answer"}:
            return Answer([self._offer()], "help")
        return None

    def openings(self) -> list[str]:
        """Every sentence an answer of this responder can start with (no duplicates).

        A passage's first sentence, its guess ("I think you're asking about …"), the fallback and
        the small-talk replies: a voice can make these ahead of the call.
        """
        first: list[str] = [self.greeting_reply()[0], self._offer(), FAREWELL[0], THANKS_REPLY[0]]
        first += split_sentences(self.fallback_answer)[:1] or [self.fallback_answer]
        for p in self.index.passages:
            sentences = split_sentences(p.text)
            if sentences:
                first.append(sentences[0])
            if p.title:
                first.append(f"I think you're asking about {_mid_sentence(p.title)}.")
        return list(dict.fromkeys(s for s in first if s.strip()))

    def answer(self, question: str) -> Answer:
        """Answer one (possibly noisy, speech-recognised) question.

        Returns:
            The reply; ``kind == "empty"`` (no sentences) for an empty question.

        """
        ws = words(question)
        small = self._small_talk(ws)
        if small is not None:
            return small
        found = self._ranked(question, self.candidates)
        if not found or found[0].score <= self.min_score:
            if not any(w not in STOPWORDS for w in ws):  # "what can you do?"
                return Answer([self._offer()], "help", found)
            best = found[0] if found else None
            if (
                best is not None
                and best.score > self.guess_score
                and best.passage.title
                and (best.similarity is None or best.similarity >= GUESS_SIMILARITY)
            ):
                sentences = split_sentences(best.passage.text)[: self.max_sentences]
                topic = _mid_sentence(best.passage.title)
                return Answer([f"I think you're asking about {topic}.", *sentences], "guess", found)
            return Answer(split_sentences(self.fallback_answer) or [self.fallback_answer],
                          "fallback", found)  # fmt: skip
        sentences = split_sentences(found[0].passage.text)[: self.max_sentences]
        return Answer(sentences, "knowledge", found)
