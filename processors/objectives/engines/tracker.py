"""Objectives and their progress through a conversation, one user turn at a time.

Pure Python (no pipecat). An ``Objective`` (Tavus's fields: ``objective_name``,
``objective_prompt``, ``confirmation_mode``, ``output_variables``,
``next_required_objectives``, ...) completes when every one of its criteria
(``engines.criteria``) has been met by some user turn while it was active; the values found
become its output variables. Objectives form chains::

    pending ──(a predecessor completes)──▶ active ──(criteria met)──▶ completed
                                              │  confirmation_mode: manual
                                              └──▶ awaiting_confirmation ──yes──▶ completed
                                                                         └──no──▶ active (values cleared)

An objective that no other objective names in ``next_required_objectives`` (or
``next_conditional_objectives``) is active from the start; the others wait for a predecessor.
Completing an objective activates its ``next_required_objectives`` at once, and they read the
same turn (a user who gives a name and an email in one breath completes both), except that a
``yes``/``no`` criterion and a manual confirmation only count from the next turn.
``next_conditional_objectives`` are chosen by an LLM judge (``judged``, from ``engines.judge``),
which may also complete an objective the rules missed; offline they are never chosen.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from presence.processors.objectives.engines.criteria import Criterion, criteria_for_variable

STATUSES = ("pending", "active", "awaiting_confirmation", "completed")


@dataclass(frozen=True)
class Objective:
    """One conversation goal.

    Attributes:
        name: ``objective_name``.
        prompt: ``objective_prompt`` (steers an LLM; not judged offline).
        criteria: What completes it (explicit, or implied by ``output_variables``).
        output_variables: The variables it collects.
        confirmation_mode: ``auto`` or ``manual`` (the user confirms with a yes).
        next_required: Objectives activated when it completes.
        next_conditional: Tavus's conditional successors (name → condition).
    """

    name: str
    prompt: str = ""
    criteria: tuple[Criterion, ...] = ()
    output_variables: tuple[str, ...] = ()
    confirmation_mode: str = "auto"
    next_required: tuple[str, ...] = ()
    next_conditional: tuple[tuple[str, str], ...] = ()

    @property
    def offline(self) -> bool:
        """Whether rules alone can complete it (it has criteria)."""
        return bool(self.criteria)

    @classmethod
    def from_dict(cls, item: dict) -> Objective:
        """Build from the stored objective (``ValueError`` naming a bad criterion).

        ``criteria`` (presence) is a list of ``{type, variable, keywords, pattern}``; without
        it, each output variable whose name implies a criterion gets that criterion.
        """
        variables = tuple(item.get("output_variables") or ())
        explicit = [Criterion.from_dict(c) for c in item.get("criteria") or ()]
        implied = [c for v in variables if (c := criteria_for_variable(v)) is not None]
        return cls(
            name=str(item["objective_name"]),
            prompt=item.get("objective_prompt") or "",
            criteria=tuple(explicit or implied),
            output_variables=variables,
            confirmation_mode=item.get("confirmation_mode") or "auto",
            next_required=tuple(item.get("next_required_objectives") or ()),
            next_conditional=tuple((item.get("next_conditional_objectives") or {}).items()),
        )


@dataclass
class Completion:
    """An objective completed on a turn.

    Attributes:
        objective_name: The objective.
        output_variables: The values collected (variable → value).
        activated: The objectives this made active.
    """

    objective_name: str
    output_variables: dict[str, str]
    activated: list[str] = field(default_factory=list)


@dataclass
class _Progress:
    objective: Objective
    status: str = "pending"
    values: dict[str, str] = field(default_factory=dict)
    met: set[int] = field(default_factory=set)  # indexes of the criteria met
    since_turn: int = 0  # the turn on which it became active (or awaiting confirmation)
    completed_turn: int | None = None


class ObjectiveTracker:
    """Follows a set of objectives through the user's turns.

    Args:
        objectives: In order; names must be unique.

    Raises:
        ValueError: Two objectives share a name, or a successor names no objective.
    """

    def __init__(self, objectives: Sequence[Objective]):
        names = [o.name for o in objectives]
        if len(set(names)) != len(names):
            raise ValueError("objective names must be unique")
        successors = {n for o in objectives for n in o.next_required}
        successors |= {n for o in objectives for n, _ in o.next_conditional}
        unknown = sorted(successors - set(names))
        if unknown:
            raise ValueError(f"next objectives name unknown objectives: {', '.join(unknown)}")
        self._progress = {o.name: _Progress(o) for o in objectives}
        for progress in self._progress.values():
            if progress.objective.name not in successors:
                progress.status = "active"
        self.turn = 0

    def active(self) -> list[Objective]:
        """The objectives being worked on now (active or awaiting confirmation)."""
        return [
            p.objective
            for p in self._progress.values()
            if p.status in ("active", "awaiting_confirmation")
        ]

    def state(self) -> list[dict]:
        """Each objective's ``{objective_name, status, output_variables, completed_turn}``."""
        return [
            {
                "objective_name": p.objective.name,
                "status": p.status,
                "output_variables": dict(p.values),
                "completed_turn": p.completed_turn,
            }
            for p in self._progress.values()
        ]

    def user_turn(self, text: str) -> list[Completion]:
        """Read one user turn; returns the objectives it completed, in order."""
        self.turn += 1
        done: list[Completion] = []
        queue = [p for p in self._progress.values() if p.status != "pending"]
        while queue:
            progress = queue.pop(0)
            completion = self._read(progress, text)
            if completion is None:
                continue
            done.append(completion)
            queue.extend(self._activate(progress.objective.next_required, completion))
        return done

    def _activate(self, names: Sequence[str], completion: Completion) -> list[_Progress]:
        started = []
        for name in names:
            nxt = self._progress[name]
            if nxt.status == "pending":
                nxt.status, nxt.since_turn = "active", self.turn
                completion.activated.append(name)
                started.append(nxt)
        return started

    def judged(
        self, name: str, values: dict[str, str], chosen: str | None = None
    ) -> Completion | None:
        """An LLM judge found an active objective's completion criteria met on the last turn.

        Args:
            name: The objective.
            values: Output variables the judge read (others are ignored).
            chosen: The ``next_conditional_objectives`` entry whose condition holds, if any.

        Returns:
            The completion, or ``None`` when the objective is not active (or, in ``manual``
            confirmation mode, now awaits the user's yes).
        """
        progress = self._progress.get(name)
        if progress is None or progress.status != "active":
            return None
        wanted = progress.objective.output_variables
        progress.values.update({k: str(v) for k, v in values.items() if k in wanted and v})
        if progress.objective.confirmation_mode == "manual":
            progress.status, progress.since_turn = "awaiting_confirmation", self.turn
            return None
        completion = self._complete(progress)
        conditional = [n for n, _ in progress.objective.next_conditional if n == chosen]
        self._activate([*progress.objective.next_required, *conditional], completion)
        return completion

    def _read(self, progress: _Progress, text: str) -> Completion | None:
        objective = progress.objective
        later = self.turn > progress.since_turn  # a turn after it became active
        if progress.status == "awaiting_confirmation":
            if not later:
                return None
            if Criterion("yes").find(text):
                return self._complete(progress)
            if Criterion("no").find(text):
                progress.status, progress.values, progress.met = "active", {}, set()
                progress.since_turn = self.turn
            return None
        if progress.status != "active" or not objective.criteria:
            return None
        for index, criterion in enumerate(objective.criteria):
            if criterion.kind in ("yes", "no") and not later:
                continue
            value = criterion.find(text)
            if value is None:
                continue
            progress.met.add(index)
            if criterion.variable:
                progress.values[criterion.variable] = value
        if len(progress.met) < len(objective.criteria):
            return None
        if objective.confirmation_mode == "manual":
            progress.status, progress.since_turn = "awaiting_confirmation", self.turn
            return None
        return self._complete(progress)

    def _complete(self, progress: _Progress) -> Completion:
        progress.status = "completed"
        progress.completed_turn = self.turn
        return Completion(progress.objective.name, dict(progress.values))

    @classmethod
    def from_dicts(cls, items: Sequence[dict]) -> ObjectiveTracker:
        """Build from stored objectives (``ValueError`` as in ``__init__``/``from_dict``)."""
        return cls([Objective.from_dict(i) for i in items])
