"""Offline criteria find what the user gave, typed or as speech recognition writes it."""

from __future__ import annotations

import pytest

from presence.processors.objectives.engines.criteria import Criterion, criteria_for_variable


@pytest.mark.parametrize(
    ("kind", "text", "value"),
    [
        ("email", "Sure, it's Jane.Doe+cvi@Example.co.uk.", "jane.doe+cvi@example.co.uk"),
        ("email", "jane at example dot com", "jane@example.com"),
        ("phone", "call me on +1 (555) 123-4567 please", "+15551234567"),
        ("phone", "five five five one two three four", "5551234"),
        ("yes", "Yeah, that's correct.", "yes"),
        ("no", "No, that's wrong.", "no"),
        ("number", "I am 42 years old", "42"),
        ("number", "we are seven people", "7"),
        ("name", "Hi, my name is Jane Doe and I'm new", "Jane Doe"),
        ("name", "my name is jane and i'm new", "Jane"),
        ("name", "this is Omar", "Omar"),
    ],
)
def test_each_kind_finds_its_value(kind, text, value):
    assert Criterion(kind).find(text) == value


@pytest.mark.parametrize(
    ("kind", "text"),
    [
        ("email", "my email is on the card"),
        ("phone", "call me at 5 pm"),
        ("yes", "yes, no, I don't know"),
        ("number", "no idea"),
        ("name", "I'm new here"),
    ],
)
def test_a_turn_without_the_value_does_not_meet_it(kind, text):
    assert Criterion(kind).find(text) is None


def test_keywords_and_regex():
    keywords = Criterion("keywords", keywords=("pricing", "how much"))
    assert keywords.find("What is the pricing?") == "pricing"
    assert keywords.find("How much is it") == "how much"
    assert keywords.find("hello") is None
    order = Criterion("regex", pattern=r"order\s+#?(\d{5})")
    assert order.find("It's ORDER #12345.") == "12345"


def test_an_invalid_criterion_says_what_to_fix():
    with pytest.raises(ValueError, match="not a valid regex"):
        Criterion.from_dict({"type": "regex", "pattern": "("})
    with pytest.raises(ValueError, match="at least one keyword"):
        Criterion.from_dict({"type": "keywords"})


@pytest.mark.parametrize(
    ("variable", "kind"),
    [
        ("email_address", "email"),
        ("phone_number", "phone"),
        ("marketing_consent", "yes"),
        ("patient_name", "name"),
        ("age", "number"),
        ("patient_status", None),
    ],
)
def test_tavus_output_variable_names_imply_a_criterion(variable, kind):
    found = criteria_for_variable(variable)
    assert (found.kind if found else None) == kind
    if found:
        assert found.variable == variable
