"""Context interactions reach Anthropic and OpenAI: the session's system message is what they send.

The pipeline is the live one's core (interactions → user aggregator → cloud LLM → assistant
aggregator) over a context seeded by the builder, with pipecat's real services talking to the
local wire fakes; the assertions read the request bodies the fakes received.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from fakes.anthropic import FakeAnthropic
from fakes.llm_script import Reply
from fakes.openai import FakeOpenAI
from pipecat.frames.frames import Frame, InputTransportMessageFrame, SystemFrame
from pipecat.pipeline.pipeline import Pipeline
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.aggregators.llm_response_universal import LLMContextAggregatorPair
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.tests.utils import run_test

from presence.framework import registry
from presence.framework.builder import seed_messages
from presence.framework.persona import Persona
from presence.framework.registry import BuildContext
from presence.processors.interactions.processor import InteractionsProcessor

PROVIDERS = {"anthropic": FakeAnthropic, "openai": FakeOpenAI}
PROMPT = "You are the museum guide."
WAIT_STEPS = 200  # x 0.05 s: the most a step waits for the previous reply


@dataclass
class Until(SystemFrame):
    """Test-only: hold the frames behind this one until ``condition()`` holds (bounded)."""

    condition: Callable[[], bool] = field(default=lambda: True)


class Gate(FrameProcessor):
    """Holds later frames at an ``Until`` so each interaction follows the previous reply."""

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        await super().process_frame(frame, direction)
        if isinstance(frame, Until):
            for _ in range(WAIT_STEPS):
                if frame.condition():
                    break
                await asyncio.sleep(0.05)
            return
        await self.push_frame(frame, direction)


def interaction(event_type: str, **properties) -> InputTransportMessageFrame:
    """A data-channel message as the transport hands it to the pipeline."""
    return InputTransportMessageFrame(
        message={
            "message_type": "conversation",
            "event_type": f"conversation.{event_type}",
            "conversation_id": "c1",
            "properties": properties,
        }
    )


def system_of(name: str, request: dict) -> str:
    """The system prompt a request carries (Anthropic ``system``; OpenAI's system message)."""
    if name == "anthropic":
        system = request.get("system", "")
        return system if isinstance(system, str) else "".join(b["text"] for b in system)
    (message,) = [m for m in request["messages"] if m["role"] == "system"]  # exactly one
    return message["content"]


def conversation_of(request: dict) -> str:
    """Every non-system message of a request, as text."""
    return str([m for m in request["messages"] if m.get("role") != "system"])


async def converse(name: str, persona: Persona, steps: list[Frame], **params):
    """Run ``steps`` through the pipeline; returns the fake (its requests) and the context."""
    answers = [Reply(text=[f"Answer {i}."]) for i in range(8)]
    async with PROVIDERS[name](*answers) as fake:
        provider = registry.get("llm", name)
        spec = {"api_key": "test-key", "base_url": fake.base_url, "timeout_s": 2, **params}
        llm = provider.factory(
            provider.params.model_validate(spec), BuildContext(persona=persona, base_dir=Path("."))
        )
        context = LLMContext(seed_messages(persona))
        pair = LLMContextAggregatorPair(context)
        interactions = InteractionsProcessor(
            conversation_id="c1", system_prompt=persona.system_prompt, context=persona.context
        )
        pipeline = Pipeline([Gate(), interactions, pair.user(), llm, pair.assistant()])

        def answered(n: int) -> Until:
            return Until(
                lambda: sum(m.get("role") == "assistant" for m in context.get_messages()) >= n
            )

        frames, asked = [], 0
        for step in steps:
            frames.append(answered(asked))
            frames.append(step)
            asked += step.message["event_type"] == "conversation.respond"
        frames.append(answered(asked))
        await run_test(pipeline, frames_to_send=frames)
    assert len(fake.requests) == asked
    return fake, context


def respond(text: str) -> InputTransportMessageFrame:
    return interaction("respond", text=text)


@pytest.mark.parametrize("name", PROVIDERS)
async def test_overwrite_and_append_change_what_the_next_request_tells_the_model(name):
    persona = Persona(name="Guide", system_prompt=PROMPT, context="The visitor is Ana.")
    fake, context = await converse(
        name,
        persona,
        [
            respond("Hello?"),
            interaction("overwrite_llm_context", context="The visitor is Bo, a child."),
            respond("What is here?"),
            interaction("append_llm_context", context="Bo likes dinosaurs."),
            respond("Anything else?"),
        ],
    )
    first, second, third = (system_of(name, r) for r in fake.requests)
    assert first == f"{PROMPT}\n\nThe visitor is Ana."
    assert second == f"{PROMPT}\n\nThe visitor is Bo, a child."
    assert third == f"{PROMPT}\n\nThe visitor is Bo, a child.\nBo likes dinosaurs."
    # the session's context holds the one system message the requests were built from
    assert context.get_messages()[0] == {"role": "system", "content": third}
    assert [m["role"] for m in context.get_messages()].count("system") == 1
    # the conversation itself went along, without the system prompt in it
    assert "Answer 0." in conversation_of(fake.requests[1])
    assert all(PROMPT not in conversation_of(r) for r in fake.requests)


@pytest.mark.parametrize("name", PROVIDERS)
async def test_context_set_before_the_first_turn_is_in_the_first_request(name):
    persona = Persona(name="Guide", system_prompt=PROMPT)
    fake, _ = await converse(
        name,
        persona,
        [interaction("append_llm_context", context="Speak French."), respond("Bonjour?")],
    )
    assert system_of(name, fake.requests[0]) == f"{PROMPT}\n\nSpeak French."


@pytest.mark.parametrize("name", PROVIDERS)
async def test_grounding_follows_the_changed_context(name, tmp_path):
    (tmp_path / "venue.md").write_text(
        "# Opening hours\n\nThe museum opens at nine and closes at five.\n\n"
        "# Parking\n\nThe car park is behind the east wing.\n"
    )
    persona = Persona(system_prompt=PROMPT, context="Be brief.", knowledge_base=tmp_path)
    fake, _ = await converse(
        name,
        persona,
        [
            respond("When does the museum open?"),
            interaction("overwrite_llm_context", context="Be detailed."),
            respond("Where do I park?"),
        ],
        grounding_passages=1,
    )
    first, second = (system_of(name, r) for r in fake.requests)
    assert first.startswith(f"{PROMPT}\n\nBe brief.\n\nRelevant knowledge")
    assert "opens at nine" in first and "car park" not in first
    assert second.startswith(f"{PROMPT}\n\nBe detailed.\n\nRelevant knowledge")
    assert "car park" in second and "opens at nine" not in second
    assert "Be brief." not in second
