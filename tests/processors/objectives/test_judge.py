"""Objectives judged by a cloud LLM (the real OpenAI SDK against the local fake server)."""

from __future__ import annotations

import json

from fakes.openai import FakeOpenAI, Reply
from pipecat.frames.frames import LLMContextFrame
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.tests.utils import run_test

from presence.processors.llm.engines.judge import LLMJudge
from presence.processors.objectives.engines.tracker import ObjectiveTracker
from presence.processors.objectives.processor import ObjectivesProcessor

OBJECTIVES = [
    {
        "objective_name": "get_colour",
        "objective_prompt": "Find out the user's favourite colour",
        "output_variables": ["favourite_colour"],  # no offline criterion knows this name
        "next_conditional_objectives": {
            "offer_paint": "the colour is a warm one",
            "offer_fabric": "the colour is a cool one",
        },
    },
    {"objective_name": "offer_paint", "objective_prompt": "Offer the red paint"},
    {"objective_name": "offer_fabric", "objective_prompt": "Offer the blue fabric"},
]
DONE = {
    "objectives": [
        {
            "objective_name": "get_colour",
            "completed": True,
            "output_variables": {"favourite_colour": "crimson", "invented": "x"},
            "next_objective": "offer_paint",
        }
    ]
}


def turn(*said: str) -> LLMContextFrame:
    roles = ["assistant", "user"] * len(said)
    messages = [{"role": "system", "content": "You sell paint."}]
    messages += [{"role": r, "content": t} for r, t in zip(roles, said, strict=False)]
    return LLMContextFrame(LLMContext(messages))


def processor(fake, reports, timeout_s: float = 2.0) -> ObjectivesProcessor:
    judge = LLMJudge("openai", "judge", base_url=fake.base_url, api_key="k", timeout_s=timeout_s)
    return ObjectivesProcessor(
        ObjectiveTracker.from_dicts(OBJECTIVES),
        conversation_id="c1",
        on_completed=lambda completion, state: reports.append((completion, state)),
        judge=judge,
    )


async def test_the_judge_completes_what_rules_cannot_and_picks_the_conditional_successor():
    reports = []
    async with FakeOpenAI(Reply(text=[json.dumps(DONE)])) as fake:
        await run_test(
            processor(fake, reports),
            frames_to_send=[turn("Hello! Which colour do you like?", "Crimson, definitely.")],
        )
    ((completion, state),) = reports
    assert completion.objective_name == "get_colour"
    assert completion.output_variables == {"favourite_colour": "crimson"}  # only its variables
    assert completion.activated == ["offer_paint"]
    assert [s["status"] for s in state] == ["completed", "active", "pending"]
    question = fake.requests[0]["messages"][1]["content"]
    assert "Find out the user's favourite colour" in question
    assert "user: Crimson, definitely." in question
    assert "Offer the red paint" not in question  # only the open, active objectives are asked


async def test_a_failed_or_silent_judge_completes_nothing_and_the_call_goes_on():
    reports = []
    script = [Reply(fault="500"), Reply(text=['{"objectives": []}']), Reply(fault="stall")]
    async with FakeOpenAI(*script) as fake:
        down, _ = await run_test(
            processor(fake, reports, timeout_s=0.3),
            frames_to_send=[
                turn("Hi!", "Hello."),
                turn("Hi!", "Hello.", "How can I help?", "Just looking."),
                turn("Hi!", "Hello.", "How can I help?", "Just looking.", "Colour?", "Hmm."),
            ],
        )
    assert reports == [] and len(fake.requests) == 3
    assert len([f for f in down if isinstance(f, LLMContextFrame)]) == 3  # every turn went on
