"""pipecat's context aggregators, with a user half that applies revised transcripts.

An STT stage may transcribe a whole user turn again once the user goes on after a pause
(``RevisedTranscriptionFrame``); the new transcript replaces the turn's earlier parts in the text
waiting to be written to the context, instead of being added after them. When the words it revises
were already written as the context's last message (the turn was taken at a pause and its answer
never reached the context), that message loses them. Everything else is pipecat's
``LLMUserAggregator`` and ``LLMAssistantAggregator`` unchanged.
"""

from __future__ import annotations

from pipecat.frames.frames import TranscriptionFrame
from pipecat.processors.aggregators.llm_context import (
    LLMContext,
    LLMSpecificMessage,
    standard_message_text,
)
from pipecat.processors.aggregators.llm_response_universal import (
    LLMAssistantAggregator,
    LLMAssistantAggregatorParams,
    LLMContextAggregatorPair,
    LLMUserAggregator,
    LLMUserAggregatorParams,
)


class RevisingUserAggregator(LLMUserAggregator):
    """pipecat's user aggregator; a revised transcript replaces the parts it revises."""

    async def _handle_transcription(self, frame: TranscriptionFrame):
        revises = getattr(frame, "revises", "").strip()
        if revises and frame.text.strip():
            parts = [p.text.strip() for p in self._aggregation]
            for k in range(len(parts) - 1, -1, -1):
                if " ".join(p for p in parts[k:] if p) == revises:
                    del self._aggregation[k:]
                    break
            else:
                self._revise_last_message(revises)
        await super()._handle_transcription(frame)

    def _revise_last_message(self, revises: str) -> None:
        """Take ``revises`` off the end of the context's last message, when that is the user's."""
        messages = self._context.get_messages()
        if not messages or isinstance(messages[-1], LLMSpecificMessage):
            return
        last = messages[-1]
        text = standard_message_text(last).strip()
        if last.get("role") != "user" or not text.endswith(revises):
            return
        rest = text[: len(text) - len(revises)].strip()
        kept = messages[:-1] + ([{"role": "user", "content": rest}] if rest else [])
        self._context.set_messages(kept)


class PresenceContextAggregatorPair(LLMContextAggregatorPair):
    """``LLMContextAggregatorPair`` whose user half is a ``RevisingUserAggregator``.

    Args:
        context: The context both halves manage.
        user_params: Parameters of the user half.
        assistant_params: Parameters of the assistant half.
    """

    def __init__(self, context: LLMContext, *, user_params: LLMUserAggregatorParams | None = None,
                 assistant_params: LLMAssistantAggregatorParams | None = None):  # fmt: skip
        # not super().__init__: it would build a second, unused user aggregator
        self._user = RevisingUserAggregator(
            context, params=user_params or LLMUserAggregatorParams()
        )
        self._assistant = LLMAssistantAggregator(
            context,
            params=assistant_params or LLMAssistantAggregatorParams(),
            _paired_user_aggregator=self._user,
        )
