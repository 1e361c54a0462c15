"""Objectives judged by an LLM: are an active objective's completion criteria met yet?

Pure Python (no pipecat). ``judge_turn`` puts the active objectives the rules left open and the
last turns of the conversation to the ``LLMJudge`` in one short JSON question and answers::

    {"objectives": [{"objective_name": "get_email", "completed": true,
                     "output_variables": {"email": "jo@example.com"},
                     "next_objective": null}]}

``next_objective`` picks one of ``next_conditional_objectives`` whose condition holds. A
failure, a timeout or an unusable answer yields no verdict: the offline rules stand.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from loguru import logger

from presence.processors.llm.engines.judge import JudgeError, LLMJudge
from presence.processors.objectives.engines.tracker import Objective

SYSTEM = """You follow a conversation between a user and a voice assistant and decide which of \
the assistant's objectives are complete. An objective is complete only when the conversation \
so far shows what it asks for (e.g. the user clearly gave the information); collect each \
output variable's value from the user's words. Answer with JSON only: {"objectives": \
[{"objective_name": "...", "completed": true|false, "output_variables": {"name": "value"}, \
"next_objective": "<one of next_conditional_objectives whose condition holds, or null>"}]}."""

TURNS = 8
"""How many of the last messages the judge reads."""


@dataclass
class Verdict:
    """The judge found an objective complete.

    Attributes:
        objective_name: The objective.
        output_variables: The values it read.
        next_objective: The conditional successor it chose, if any.
    """

    objective_name: str
    output_variables: dict[str, str] = field(default_factory=dict)
    next_objective: str | None = None


def _describe(objective: Objective) -> dict[str, Any]:
    item: dict[str, Any] = {"objective_name": objective.name, "objective_prompt": objective.prompt}
    if objective.output_variables:
        item["output_variables"] = list(objective.output_variables)
    if objective.next_conditional:
        item["next_conditional_objectives"] = dict(objective.next_conditional)
    return item


async def judge_turn(
    judge: LLMJudge, objectives: list[Objective], messages: list[dict[str, str]]
) -> list[Verdict]:
    """The objectives (of ``objectives``) the judge finds complete after the last user turn.

    Args:
        judge: The LLM to ask.
        objectives: The active objectives still open.
        messages: The conversation, ``{"role", "content"}`` each (the last ``TURNS`` are sent).

    Returns:
        A verdict per completed objective; empty when none, or when the judge failed.
    """
    if not objectives:
        return []
    lines = [f"{m['role']}: {m['content']}" for m in messages[-TURNS:] if m.get("content")]
    question = (
        f"Objectives: {json.dumps([_describe(o) for o in objectives], ensure_ascii=False)}\n\n"
        "Conversation:\n" + "\n".join(lines)
    )
    try:
        answer = await judge.ask(SYSTEM, question)
    except JudgeError as exc:
        logger.warning(f"objectives: {exc}; the rules' verdict stands")
        return []
    names = {o.name for o in objectives}
    verdicts = []
    for item in answer.get("objectives") or []:
        if not isinstance(item, dict) or item.get("completed") is not True:
            continue
        name = item.get("objective_name")
        if name not in names:
            continue
        values = item.get("output_variables") or {}
        values = (
            {str(k): str(v) for k, v in values.items() if v} if isinstance(values, dict) else {}
        )
        chosen = item.get("next_objective")
        verdicts.append(Verdict(name, values, chosen if isinstance(chosen, str) else None))
    return verdicts
