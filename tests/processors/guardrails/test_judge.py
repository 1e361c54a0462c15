"""Guardrails' prompts judged by a cloud LLM (the real OpenAI SDK against the local fake server)."""

from __future__ import annotations

import json

from fakes.openai import FakeOpenAI, Reply
from pipecat.frames.frames import (
    LLMContextFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
    TTSSpeakFrame,
)
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.tests.utils import run_test

from presence.processors.guardrails.engines.rules import Guardrails
from presence.processors.guardrails.processor import (
    InputGuardProcessor,
    OutputGuardProcessor,
    make_guards,
)
from presence.processors.llm.engines.judge import LLMJudge

ITEMS = [
    {"guardrail_name": "no_falcon", "phrases": ["Project Falcon"], "replacement": "No comment."},
    {
        "guardrail_name": "no_medical_advice",
        "guardrail_prompt": "Never recommend a medicine or a dose.",
        "replacement": "Please ask your doctor.",
    },
]
PASS, BREAK = Reply(text=['{"broken": null}']), Reply(text=['{"broken": "no_medical_advice"}'])


def judge(fake, timeout_s: float = 2.0) -> LLMJudge:
    return LLMJudge("openai", "judge", base_url=fake.base_url, api_key="k", timeout_s=timeout_s)


def answer(*chunks: str) -> list:
    return [
        LLMFullResponseStartFrame(),
        *(LLMTextFrame(c) for c in chunks),
        LLMFullResponseEndFrame(),
    ]


def texts(frames) -> list[str]:
    return [f.text for f in frames if isinstance(f, LLMTextFrame)]


def judged_text(request: dict) -> str:
    return json.loads(request["messages"][1]["content"].split("): ", 1)[1])


async def test_a_sentence_the_judge_finds_breaking_a_prompt_is_never_spoken():
    fired = []
    async with FakeOpenAI(PASS, BREAK) as fake:
        guard = OutputGuardProcessor(
            Guardrails.from_dicts(ITEMS), on_trigger=fired.append, judge=judge(fake)
        )
        down, _ = await run_test(
            guard,
            frames_to_send=answer(
                "Headaches are common. ", "Take two aspirin every hour. ", "Feel better!"
            ),
        )
    assert texts(down) == ["Headaches are common. ", "Please ask your doctor."]
    assert [(t.guardrail_name, t.side, t.by) for t in fired] == [
        ("no_medical_advice", "output", "llm")
    ]
    # one question per sentence, naming only the prompted guardrail; the rest is dropped unasked
    assert [judged_text(r) for r in fake.requests] == [
        "Headaches are common.",
        "Take two aspirin every hour.",
    ]
    assert "Never recommend a medicine" in fake.requests[0]["messages"][1]["content"]
    assert "Project Falcon" not in fake.requests[0]["messages"][1]["content"]


async def test_the_rules_fire_without_asking_and_a_failed_judge_lets_the_turn_go_on():
    fired = []
    async with FakeOpenAI(Reply(fault="500"), Reply(fault="stall", stall_s=5)) as fake:
        guard = OutputGuardProcessor(
            Guardrails.from_dicts(ITEMS), on_trigger=fired.append, judge=judge(fake, 0.3)
        )
        down, _ = await run_test(
            guard,
            frames_to_send=[
                *answer("Take a rest. ", "Then drink water."),
                *answer("Project Falcon ships soon."),
            ],
        )
    # the judge failed, then timed out: the rules' verdict stands and every answer ends
    assert texts(down) == ["Take a rest. ", "Then drink water.", "No comment."]
    assert len([f for f in down if isinstance(f, LLMFullResponseEndFrame)]) == 2
    assert [(t.guardrail_name, t.by) for t in fired] == [("no_falcon", "rules")]
    assert len(fake.requests) == 2  # the Falcon sentence broke a rule: no question asked
    assert guard.checker.judge_failures == 2


async def test_a_user_turn_the_judge_rejects_gets_the_replacement_without_the_llm():
    messages = [{"role": "assistant", "content": "Hi!"}, {"role": "user", "content": "How many pills of ibuprofen can I take?"}]  # fmt: skip
    async with FakeOpenAI(BREAK) as fake:
        down, _ = await run_test(
            InputGuardProcessor(Guardrails.from_dicts(ITEMS), judge=judge(fake)),
            frames_to_send=[LLMContextFrame(LLMContext(messages))],
        )
    assert not [f for f in down if isinstance(f, LLMContextFrame)]
    assert [f.text for f in down if isinstance(f, TTSSpeakFrame)] == ["Please ask your doctor."]
    assert "the user said" in fake.requests[0]["messages"][1]["content"]


def test_prompt_only_guardrails_get_processors_only_with_a_judge():
    prompt_only = Guardrails.from_dicts(ITEMS[1:])
    assert make_guards(prompt_only) == {}
    points = make_guards(prompt_only, judge=LLMJudge("openai", "m"))
    assert set(points) == {"before_llm", "before_tts"}
