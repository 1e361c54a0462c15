"""Persona perception triggers: "if the user looks away for 5 s, ask if they are still there".

Pure logic (no pipecat): ``TriggerBook.due(now, tracker, events, quiet)`` returns the triggers to
fire after a sample. A condition trigger fires once its condition has held ``for_s`` seconds,
once per episode (the condition must end and start again to re-arm), at most every
``cooldown_s``, and only while ``quiet`` (neither the user nor the bot is speaking; it waits and
fires at the first quiet sample if the condition still holds). A gesture trigger (``nod``,
``shake``) fires on the sample that saw the gesture, if quiet then; otherwise it is dropped.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from presence.processors.perception.engines.events import (
    CONDITIONS,
    GESTURES,
    PerceptionEvent,
    PerceptionTracker,
)


class TriggerSpec(BaseModel):
    """A persona-defined reaction to what the camera shows.

    Attributes:
        when: A condition (``user_absent``, ``looking_away``, ``smiling``, ``eyes_closed``,
            ``too_dark``, or their opposites) or a gesture (``nod``, ``shake``).
        for_s: How long the condition must hold before firing (0 for gestures).
        say: Text spoken verbatim (and added to the context).
        ask: An instruction for the LLM, which then answers in the persona's words.
        cooldown_s: Least time between two firings of this trigger.
        once: Fire at most once per call.
    """

    model_config = ConfigDict(extra="forbid")

    when: str
    for_s: float = Field(0.0, ge=0.0, le=3600.0)
    say: str | None = None
    ask: str | None = None
    cooldown_s: float = Field(30.0, ge=0.0)
    once: bool = False

    @model_validator(mode="after")
    def _check(self) -> TriggerSpec:
        allowed = sorted(CONDITIONS) + list(GESTURES)
        if self.when not in allowed:
            raise ValueError(f"when must be one of {', '.join(allowed)}; got {self.when!r}")
        if self.when in GESTURES and self.for_s:
            raise ValueError(f"{self.when} is instantaneous: leave for_s out")
        if (self.say is None) == (self.ask is None):
            raise ValueError(
                "give exactly one of say (spoken verbatim) or ask (an LLM instruction)"
            )
        return self


class _State:
    def __init__(self, spec: TriggerSpec):
        self.spec = spec
        self.episode: float | None = None
        self.last_fired = float("-inf")
        self.fired = 0


class TriggerBook:
    """Keeps each trigger's firing history.

    Args:
        specs: The persona's triggers.
    """

    def __init__(self, specs: list[TriggerSpec]):
        self._states = [_State(spec) for spec in specs]

    def due(
        self, now: float, tracker: PerceptionTracker, events: list[PerceptionEvent], quiet: bool
    ) -> list[TriggerSpec]:
        """Triggers to fire now (their firing is recorded)."""
        kinds = {e.kind for e in events}
        fire: list[TriggerSpec] = []
        for state in self._states:
            spec = state.spec
            if not quiet or (spec.once and state.fired) or now - state.last_fired < spec.cooldown_s:
                continue
            episode = None
            if spec.when in GESTURES:
                if spec.when not in kinds:
                    continue
            else:
                flag, wanted = CONDITIONS[spec.when]
                episode = tracker.since.get(flag)
                if tracker.state(flag) is not wanted or episode is None:
                    continue
                if now - episode < spec.for_s or state.episode == episode:
                    continue
            state.episode, state.last_fired = episode, now
            state.fired += 1
            fire.append(spec)
        return fire
