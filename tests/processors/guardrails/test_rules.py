"""Guardrail matching: phrases ignore case and punctuation, topics need all their words."""

from __future__ import annotations

import pytest

from presence.processors.guardrails.engines.rules import (
    DEFAULT_REPLACEMENT,
    Guardrail,
    Guardrails,
    normalize,
)

FALCON = Guardrail("no_falcon", phrases=("Project Falcon",), replacement="No comment.")
PRICING = Guardrail("no_competitors", topics=("competitor pricing", "lawsuit"))


@pytest.mark.parametrize(
    "text",
    ["Project Falcon ships soon.", "PROJECT-FALCON's launch", "about project,   falcon!"],
)
def test_a_phrase_matches_whatever_the_case_and_punctuation(text):
    assert FALCON.match(text) == "Project Falcon"


@pytest.mark.parametrize("text", ["We love falcons.", "project falconry", "falcon project"])
def test_a_phrase_does_not_match_other_words(text):
    assert FALCON.match(text) is None


def test_a_topic_needs_all_its_words_in_any_order_and_number():
    assert PRICING.match("Our competitors' pricing is higher") == "competitor pricing"
    assert PRICING.match("Pricing is fair; competitors vary.") == "competitor pricing"
    assert PRICING.match("Our pricing is fair.") is None
    assert PRICING.match("Any lawsuits?") == "lawsuit"


def test_sides_and_order_decide_which_rule_fires():
    rules = Guardrails([Guardrail("in_only", phrases=("refund",), applies_to="input"), FALCON])
    assert rules.check("a refund please", "output") is None
    trigger = rules.check("a refund please", "input")
    assert (trigger.guardrail_name, trigger.side, trigger.replacement) == (
        "in_only",
        "input",
        DEFAULT_REPLACEMENT,
    )
    assert rules.watches("input") and rules.watches("output")
    assert not Guardrails([Guardrail("prompt_only")]).watches("output")


def test_from_dicts_reads_the_stored_items_and_ignores_tavus_fields():
    rules = Guardrails.from_dicts(
        [
            {
                "guardrail_name": "no_falcon",
                "guardrail_prompt": "Never discuss unreleased products.",
                "modality": "verbal",
                "phrases": ["Project Falcon"],
                "replacement": "I can't talk about unreleased products.",
                "applies_to": "output",
            }
        ]
    )
    trigger = rules.check("Project Falcon is next.", "output")
    assert trigger.replacement == "I can't talk about unreleased products."
    assert rules.check("Project Falcon is next.", "input") is None


def test_normalize_folds_case_punctuation_and_possessives():
    assert normalize("  Don't STOP—the Falcon's   wings! ") == "dont stop the falcon wings"
