"""Objectives progress turn by turn: criteria, chains, manual confirmation."""

from __future__ import annotations

import pytest

from presence.processors.objectives.engines.tracker import ObjectiveTracker

CHAIN = [
    {
        "objective_name": "get_name",
        "objective_prompt": "Ask for the patient's name",
        "output_variables": ["patient_name"],
        "next_required_objectives": ["get_email"],
    },
    {
        "objective_name": "get_email",
        "output_variables": ["email"],
        "confirmation_mode": "manual",
        "next_required_objectives": ["consent"],
    },
    {"objective_name": "consent", "output_variables": ["marketing_consent"]},
]


def statuses(tracker: ObjectiveTracker) -> dict[str, str]:
    return {s["objective_name"]: s["status"] for s in tracker.state()}


def test_only_the_first_of_a_chain_is_active_at_the_start():
    tracker = ObjectiveTracker.from_dicts(CHAIN)
    assert statuses(tracker) == {"get_name": "active", "get_email": "pending", "consent": "pending"}
    assert [o.name for o in tracker.active()] == ["get_name"]


def test_a_successor_waits_for_its_predecessor():
    tracker = ObjectiveTracker.from_dicts(CHAIN)
    assert tracker.user_turn("my email is jo@example.com") == []  # get_email is not active yet
    assert statuses(tracker)["get_email"] == "pending"


def test_a_chain_completes_turn_by_turn_with_its_variables():
    tracker = ObjectiveTracker.from_dicts(CHAIN)
    done = tracker.user_turn("Hi, my name is Jane Doe, email jane at example dot com")
    assert [(c.objective_name, c.output_variables, c.activated) for c in done] == [
        ("get_name", {"patient_name": "Jane Doe"}, ["get_email"])
    ]
    # the email was read in the same turn, but manual mode waits for the user's yes
    assert statuses(tracker)["get_email"] == "awaiting_confirmation"
    assert tracker.user_turn("Yes, that's right.")[0].output_variables == {
        "email": "jane@example.com"
    }
    assert statuses(tracker)["consent"] == "active"
    (consent,) = tracker.user_turn("Sure, I agree.")
    assert consent.output_variables == {"marketing_consent": "yes"}
    assert set(statuses(tracker).values()) == {"completed"}
    assert [s["completed_turn"] for s in tracker.state()] == [1, 2, 3]


def test_a_no_to_the_confirmation_starts_the_objective_again():
    tracker = ObjectiveTracker.from_dicts([{**CHAIN[1], "next_required_objectives": []}])
    tracker.user_turn("it's jo@example.com")
    assert tracker.user_turn("No, that's wrong.") == []
    assert tracker.state()[0] == {
        "objective_name": "get_email",
        "status": "active",
        "output_variables": {},
        "completed_turn": None,
    }
    tracker.user_turn("it's jo.smith@example.com")
    assert tracker.user_turn("yes")[0].output_variables == {"email": "jo.smith@example.com"}


def test_a_yes_does_not_confirm_an_objective_activated_by_that_same_turn():
    tracker = ObjectiveTracker.from_dicts(
        [
            {
                "objective_name": "ready",
                "criteria": [{"type": "yes"}],
                "next_required_objectives": ["consent"],
            },
            {"objective_name": "consent", "criteria": [{"type": "yes", "variable": "ok"}]},
        ]
    )
    assert [c.objective_name for c in tracker.user_turn("yes")] == ["ready"]
    assert [c.objective_name for c in tracker.user_turn("yes")] == ["consent"]


def test_explicit_criteria_must_all_be_met_across_turns():
    tracker = ObjectiveTracker.from_dicts(
        [
            {
                "objective_name": "contact",
                "criteria": [
                    {"type": "email", "variable": "email"},
                    {"type": "phone", "variable": "phone"},
                ],
            }
        ]
    )
    assert tracker.user_turn("jo@example.com") == []
    (done,) = tracker.user_turn("and 555 123 4567")
    assert done.output_variables == {"email": "jo@example.com", "phone": "5551234567"}


def test_an_objective_without_criteria_never_completes_offline():
    tracker = ObjectiveTracker.from_dicts(
        [{"objective_name": "vibe", "output_variables": ["mood"]}]
    )
    assert tracker.user_turn("I feel great, yes") == []


@pytest.mark.parametrize(
    ("items", "says"),
    [
        ([{"objective_name": "a"}, {"objective_name": "a"}], "unique"),
        ([{"objective_name": "a", "next_required_objectives": ["b"]}], "unknown objectives: b"),
    ],
)
def test_bad_sets_are_refused_with_the_reason(items, says):
    with pytest.raises(ValueError, match=says):
        ObjectiveTracker.from_dicts(items)
