"""Guardrails and objectives as API resources: request/response models, checks and warnings.

Both follow Tavus's shapes (read 2026):

- https://docs.tavus.io/api-reference/guardrails/create-guardrails and
  .../guardrails/legacy-guardrail-sets: a *set* ``{name, data: [guardrail, ...]}`` attached to a
  persona by ``guardrails_id``; an individual guardrail (``guardrail_name`` at the top level) is
  accepted too and stored as a set of one, attachable by ``guardrail_ids``;
- https://docs.tavus.io/api-reference/objectives/create-objectives: ``{data: [objective, ...]}``
  (or the bare list, as one of Tavus's examples sends it) attached by ``objectives_id``.

presence adds what an offline, rule-based engine needs, next to Tavus's fields:

- a guardrail's ``phrases`` and ``topics`` (what must not be said or answered), ``replacement``
  (what the persona says instead) and ``applies_to`` (``input``, ``output``, ``both``);
- an objective's ``criteria`` (``email``, ``phone``, ``yes``, ``no``, ``number``, ``name``,
  ``keywords``, ``regex``), implied by its ``output_variables`` names when left out.

Tavus's prompts are kept and given to the LLM (a guardrail's prompt joins the persona's context,
the active objectives' prompts a system note); with a cloud LLM the same model judges them each
turn (``LLMJudge``), offline the rules alone do; what rules cannot enforce offline is listed in
the answer's ``warnings``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import AliasChoices, AnyHttpUrl, BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from presence.processors.guardrails.engines.rules import Guardrails
from presence.processors.objectives.engines.criteria import KINDS
from presence.processors.objectives.engines.tracker import Objective, ObjectiveTracker
from presence.service.db import GuardrailsRow, ObjectivesRow, PersonaRow
from presence.service.schemas import UtcDateTime


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class GuardrailItem(_Request):
    """One guardrail (Tavus's fields, then presence's rule fields)."""

    guardrail_name: str = Field(
        max_length=100,
        pattern=r"^\w+$",
        validation_alias=AliasChoices("guardrail_name", "guardrails_name"),  # older Tavus pages
    )
    guardrail_prompt: str = Field(
        default="",
        max_length=1000,
        validation_alias=AliasChoices("guardrail_prompt", "guardrails_prompt"),
    )
    modality: Literal["verbal", "visual"] = "verbal"
    callback_url: AnyHttpUrl | None = None
    tags: list[str] = Field(default_factory=list, max_length=32)
    app_message: bool = Field(
        default=True, description="Send the conversation a guardrail_triggered event."
    )
    phrases: list[str] = Field(
        default_factory=list,
        description="presence: word sequences that must not be said or answered (case and "
        "punctuation ignored).",
    )
    topics: list[str] = Field(
        default_factory=list,
        description="presence: keywords, or words that must all appear in one sentence.",
    )
    replacement: str | None = Field(
        default=None, description="presence: what the persona says instead."
    )
    applies_to: Literal["input", "output", "both"] = Field(
        default="both",
        description="presence: the user's words (input), the persona's (output), or both.",
    )


class GuardrailsCreate(_Request):
    """``POST /v2/guardrails`` (a set; Tavus's legacy shape)."""

    name: str = Field(default="", max_length=200)
    data: list[GuardrailItem] = Field(min_length=1, max_length=100)


class GuardrailsPatch(_Request):
    """``PATCH /v2/guardrails/{id}``: the fields given replace the stored ones."""

    name: str | None = Field(default=None, max_length=200)
    data: list[GuardrailItem] | None = Field(default=None, min_length=1, max_length=100)


class GuardrailsOut(BaseModel):
    """A set of guardrails."""

    guardrails_id: str
    uuid: str = Field(description="The same id (Tavus's individual-guardrail field).")
    guardrails_name: str
    data: list[dict[str, Any]]
    status: Literal["active"] = "active"
    warnings: list[str] = Field(default_factory=list)
    created_at: UtcDateTime
    updated_at: UtcDateTime


class CriterionIn(_Request):
    """presence: one offline completion rule of an objective."""

    type: Literal[KINDS]  # type: ignore[valid-type]
    variable: str | None = Field(
        default=None, description="Store the value found under this output variable."
    )
    keywords: list[str] = Field(default_factory=list)
    pattern: str | None = Field(default=None, description="For type regex (case-insensitive).")


class ObjectiveItem(_Request):
    """One objective (Tavus's fields, then presence's ``criteria``)."""

    objective_name: str = Field(max_length=100, pattern=r"^\S+$")
    objective_prompt: str = ""
    confirmation_mode: Literal["auto", "manual"] = "auto"
    output_variables: list[str] = Field(default_factory=list)
    modality: Literal["verbal", "visual"] = "verbal"
    next_conditional_objectives: dict[str, str] = Field(default_factory=dict)
    next_required_objectives: list[str] = Field(default_factory=list)
    callback_url: AnyHttpUrl | None = None
    criteria: list[CriterionIn] = Field(
        default_factory=list,
        description="presence: what completes it offline; default: implied by the names of "
        "output_variables (email, phone, consent, name, age...).",
    )


class ObjectivesCreate(_Request):
    """``POST /v2/objectives``."""

    name: str = Field(default="", max_length=200)
    data: list[ObjectiveItem] = Field(min_length=1, max_length=100)


class ObjectivesPatch(_Request):
    """``PATCH /v2/objectives/{id}``: the fields given replace the stored ones."""

    name: str | None = Field(default=None, max_length=200)
    data: list[ObjectiveItem] | None = Field(default=None, min_length=1, max_length=100)


class ObjectivesOut(BaseModel):
    """A set of objectives."""

    objectives_id: str
    objective_name: str = Field(description="The set's name (Tavus's field).")
    data: list[dict[str, Any]]
    status: Literal["active"] = "active"
    warnings: list[str] = Field(default_factory=list)
    created_at: UtcDateTime
    updated_at: UtcDateTime


def guardrail_warnings(items: list[dict[str, Any]]) -> list[str]:
    """What presence will not enforce in a set of guardrails, one sentence each."""
    out = []
    for item in items:
        name = item["guardrail_name"]
        if item.get("modality") == "visual":
            out.append(f"{name}: modality visual is not enforced (presence checks words only)")
        elif not Guardrails.from_dicts([item]):
            out.append(
                f"{name}: no phrases or topics, so only a cloud LLM judges its prompt (offline "
                "pipelines do not enforce it); add phrases or topics for the rules to enforce it"
            )
    return out


def check_objectives(items: list[dict[str, Any]]) -> list[str]:
    """Validate a set of objectives; returns its warnings.

    Raises:
        ValueError: Duplicate names, an unknown successor, or an invalid criterion.
    """
    ObjectiveTracker.from_dicts(items)
    out = []
    for item in items:
        objective = Objective.from_dict(item)
        name = objective.name
        if item.get("modality") == "visual":
            out.append(f"{name}: modality visual is not judged (presence reads the user's words)")
        elif not objective.offline:
            out.append(
                f"{name}: no criteria and no output variable presence recognises, so only a "
                "cloud LLM judge completes it (never offline); add criteria"
            )
        if objective.next_conditional:
            out.append(
                f"{name}: next_conditional_objectives are chosen by a cloud LLM judge only "
                "(offline pipelines never follow them); use next_required_objectives there"
            )
    return out


def initial_objectives(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The progress of a conversation's objectives before anyone speaks."""
    return ObjectiveTracker.from_dicts(items).state() if items else []


def guardrail_prompts(items: list[dict[str, Any]]) -> str:
    """The guardrails' prompts as a context note for the LLM ('' when none)."""
    prompts = [i["guardrail_prompt"] for i in items if i.get("guardrail_prompt")]
    if not prompts:
        return ""
    return "Guardrails (always follow these):\n" + "\n".join(f"- {p}" for p in prompts)


def callback_for(items: list[dict[str, Any]], key: str, name: Any) -> str | None:
    """The ``callback_url`` of the guardrail or objective whose ``key`` is ``name``, if any."""
    for item in items:
        if item.get(key) == name and item.get("callback_url"):
            return str(item["callback_url"])
    return None


def persona_rulesets(db: Session, persona: PersonaRow | None) -> tuple[list[dict], list[dict]]:
    """The persona's guardrail items and objective items, as stored now (a snapshot)."""
    if persona is None:
        return [], []
    guardrails: list[dict] = []
    tavus = persona.tavus_fields or {}
    ids = [persona.guardrails_id, *(tavus.get("guardrail_ids") or [])]
    for gid in dict.fromkeys(i for i in ids if i):
        row = db.get(GuardrailsRow, gid)
        guardrails += (row.data or []) if row is not None and row.owner == persona.owner else []
    if tags := set(tavus.get("guardrail_tags") or []):  # every guardrail of the key so tagged
        owned_sets = db.scalars(select(GuardrailsRow).where(GuardrailsRow.owner == persona.owner))
        guardrails += [
            g
            for s in owned_sets
            if s.id not in ids
            for g in s.data or []
            if tags & set(g.get("tags") or [])
        ]
    objectives: list[dict] = []
    if persona.objectives_id:
        row = db.get(ObjectivesRow, persona.objectives_id)
        if row is not None and row.owner == persona.owner:
            objectives = list(row.data or [])
    return guardrails, objectives
