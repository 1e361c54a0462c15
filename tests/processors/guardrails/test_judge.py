"""Guardrails' prompts judged by a cloud LLM (the real OpenAI SDK against the local fake server)."""

from __future__ import annotations

import json
import time

import pytest
from fakes.openai import FakeOpenAI, Reply
from pipecat.frames.frames import (
    LLMContextFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
    TTSSpeakFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.frame_processor import FrameProcessor
from pipecat.tests.utils import SleepFrame, run_test

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


class _Answering(FrameProcessor):
    """An LLM stage that answers each context at once and notes when it saw it."""

    def __init__(self):
        super().__init__()
        self.seen: list[float] = []

    async def process_frame(self, frame, direction):
        await super().process_frame(frame, direction)
        if not isinstance(frame, LLMContextFrame):
            await self.push_frame(frame, direction)
            return
        self.seen.append(time.monotonic())
        for frame_out in answer("Ibuprofen is sold in most shops. ", "Ask your pharmacist."):
            await self.push_frame(frame_out)


def _pipeline(fake, fired: list, *, parallel: bool) -> tuple[Pipeline, _Answering]:
    guards = make_guards(
        Guardrails.from_dicts(ITEMS), judge=judge(fake), on_trigger=fired.append,
        app_message=False, parallel_input=parallel,
    )  # fmt: skip
    llm = _Answering()
    return Pipeline([*guards["before_llm"], llm, *guards["before_tts"]]), llm


IBUPROFEN = [{"role": "user", "content": "How many pills of ibuprofen can I take?"}]


async def test_a_turn_judged_while_the_llm_answers_is_replaced_before_any_of_the_answer_is_said():
    fired: list = []
    async with FakeOpenAI(Reply(text=['{"broken": "no_medical_advice"}'], ttft_s=0.3)) as fake:
        pipeline, llm = _pipeline(fake, fired, parallel=True)
        down, _ = await run_test(
            pipeline, frames_to_send=[LLMContextFrame(LLMContext(IBUPROFEN)), SleepFrame(1.0)]
        )
    assert len(llm.seen) == 1  # the LLM answered meanwhile...
    assert texts(down) == ["Please ask your doctor."]  # ...and none of its answer goes on
    assert [(t.guardrail_name, t.side, t.by) for t in fired] == [
        ("no_medical_advice", "input", "llm")
    ]
    assert len(fake.requests) == 1  # the answer's sentences were never put to the judge


@pytest.mark.parametrize("parallel", [True, False])
async def test_the_llm_starts_on_a_turn_without_waiting_for_the_judge_unless_told_to(parallel):
    fired: list = []
    slow_pass = Reply(text=['{"broken": null}'], ttft_s=1.0)
    async with FakeOpenAI(slow_pass, PASS, PASS) as fake:
        pipeline, llm = _pipeline(fake, fired, parallel=parallel)
        sent = time.monotonic()
        down, _ = await run_test(
            pipeline, frames_to_send=[LLMContextFrame(LLMContext(IBUPROFEN)), SleepFrame(2.0)]
        )
    waited = llm.seen[0] - sent
    assert waited < 0.5 if parallel else waited >= 1.0
    assert texts(down) == ["Ibuprofen is sold in most shops. ", "Ask your pharmacist."]
    assert not fired and len(fake.requests) == 3  # the turn, then each sentence
