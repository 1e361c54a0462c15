"""Guardrails checked by the rules, then by an LLM judge for what only words can say.

Pure Python (no pipecat). ``JudgedGuardrails.check(text, side)`` first applies the offline rules
(phrases and topics: instant, and final when they fire); when none fires and some guardrail of
that side has a ``prompt`` (Tavus's ``guardrail_prompt``, e.g. "never give medical advice"), it
asks the ``LLMJudge`` whether ``text`` breaks one, in one short JSON question::

    {"broken": "<guardrail name>"}    or    {"broken": null}

If the judge fails, times out or names no such guardrail, the rules' verdict stands (the text
passes): a slow or broken judge delays a sentence by at most its ``timeout_s`` and never ends
the turn. Logs name the guardrail, never the text.
"""

from __future__ import annotations

import json

from loguru import logger

from presence.processors.guardrails.engines.rules import Guardrail, Guardrails, Side, Trigger
from presence.processors.llm.engines.judge import JudgeError, LLMJudge

SYSTEM = """You check what is said in a conversation with a voice assistant against the \
assistant's guardrails. You get the guardrails (a name and the rule each) and one text. Decide \
whether the text breaks any guardrail; when unsure, it does not. Answer with JSON only: \
{"broken": "<guardrail name>"} or {"broken": null}."""

WHO = {"input": "the user said", "output": "the assistant is about to say"}


class JudgedGuardrails:
    """The rules, then the judge for the guardrails that have a prompt.

    Args:
        guardrails: The rules (each may carry a ``prompt``).
        judge: The LLM judge, or ``None`` for rules alone.
    """

    def __init__(self, guardrails: Guardrails, judge: LLMJudge | None = None):
        self.guardrails = guardrails
        self.judge = judge
        self.judge_failures = 0
        """How many checks fell back to the rules because the judge gave no verdict."""

    def watches(self, side: Side) -> bool:
        """Whether anything (a rule, or a prompt for the judge) applies to ``side``."""
        return self.guardrails.watches(side, judged=self.judge is not None)

    def _prompted(self, side: Side) -> list[Guardrail]:
        return [r for r in self.guardrails.rules if r.prompt and r.applies(side)]

    async def check(self, text: str, side: Side) -> Trigger | None:
        """The first guardrail ``text`` breaks on ``side`` (rules first, then the judge)."""
        trigger = self.guardrails.check(text, side)
        if trigger is not None or self.judge is None or not text.strip():
            return trigger
        prompted = self._prompted(side)
        if not prompted:
            return None
        rules = [{"name": r.name, "rule": r.prompt} for r in prompted]
        question = (
            f"Guardrails: {json.dumps(rules, ensure_ascii=False)}\n\n"
            f"Text ({WHO[side]}): {json.dumps(text.strip(), ensure_ascii=False)}"
        )
        try:
            answer = await self.judge.ask(SYSTEM, question)
        except JudgeError as exc:
            self.judge_failures += 1
            logger.warning(f"guardrails: {exc}; the rules' verdict stands")
            return None
        broken = answer.get("broken")
        rule = next((r for r in prompted if r.name == broken), None)
        if rule is None:
            if broken:
                logger.warning(f"guardrails: the judge named no such guardrail ({broken!r})")
            return None
        return Trigger(rule.name, side, rule.prompt, rule.replacement, by="llm")
