"""``ObjectivesProcessor`` reads each user turn once, reports completions and steers the LLM."""

from __future__ import annotations

from pipecat.frames.frames import LLMContextFrame, OutputTransportMessageUrgentFrame
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.tests.utils import run_test

from presence.processors.objectives.engines.tracker import ObjectiveTracker
from presence.processors.objectives.processor import MARK, ObjectivesProcessor

OBJECTIVES = [
    {
        "objective_name": "get_email",
        "objective_prompt": "Ask for the user's email address",
        "output_variables": ["email"],
        "next_required_objectives": ["get_phone"],
    },
    {
        "objective_name": "get_phone",
        "objective_prompt": "Ask for a phone number",
        "output_variables": ["phone"],
    },
]


async def test_a_turn_completes_an_objective_reports_it_and_steers_to_the_next():
    context = LLMContext(
        [
            {"role": "system", "content": "You are a receptionist."},
            {"role": "assistant", "content": "Hello!"},
            {"role": "user", "content": "My email is jo@example.com"},
        ]
    )
    reports = []
    processor = ObjectivesProcessor(
        ObjectiveTracker.from_dicts(OBJECTIVES),
        conversation_id="c1",
        on_completed=lambda completion, state: reports.append((completion, state)),
    )
    down, _ = await run_test(
        processor,
        # the same turn's context passes twice (e.g. after a tool call): it is read once
        frames_to_send=[LLMContextFrame(context), LLMContextFrame(context)],
    )
    ((completion, state),) = reports
    assert completion.output_variables == {"email": "jo@example.com"}
    assert [s["status"] for s in state] == ["completed", "active"]
    (event,) = [f.message for f in down if isinstance(f, OutputTransportMessageUrgentFrame)]
    assert event["event_type"] == "conversation.objective_completed"
    assert event["properties"] == {
        "objective_name": "get_email",
        "output_variables": {"email": "jo@example.com"},
        "next_objectives": ["get_phone"],
    }
    messages = context.get_messages()
    assert messages[0]["content"] == "You are a receptionist."  # the persona's prompt stays first
    (note,) = [m for m in messages if str(m["content"]).startswith(MARK)]
    assert "Ask for a phone number" in note["content"] and "email address" not in note["content"]
    assert "still to collect: phone" in note["content"]
