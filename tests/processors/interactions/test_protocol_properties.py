"""Property-based tests of interaction messages: any JSON a client sends is either a valid
interaction or refused with an ``InteractionError`` naming the field, never another exception;
in a running session a refused message gets a ``conversation.error`` back and the session goes
on (the next valid message still runs)."""

from __future__ import annotations

import asyncio
import json

import pytest

pytestmark = pytest.mark.background

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from pipecat.frames.frames import (  # noqa: E402
    InputTransportMessageFrame,
    OutputTransportMessageUrgentFrame,
    TTSSpeakFrame,
)
from pipecat.tests.utils import run_test  # noqa: E402

from presence.processors.interactions.engines.protocol import (  # noqa: E402
    EVENT_TYPES,
    Interaction,
    InteractionError,
    parse_interaction,
)
from presence.processors.interactions.processor import InteractionsProcessor  # noqa: E402

CID = "c1"
FIELDS = ("message_type", "event_type", "conversation_id", "properties")

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=3)
    ),
    max_leaves=10,
)

# messages close to valid ones: each field may be right, wrong or missing
near_messages = st.fixed_dictionaries(
    {},
    optional={
        "message_type": st.sampled_from(["conversation", "Conversation", "app"]) | json_values,
        "event_type": st.sampled_from([*EVENT_TYPES, "conversation.dance", ""]) | json_values,
        "conversation_id": st.sampled_from([CID, "c2", "", None]) | json_values,
        "properties": st.fixed_dictionaries(
            {},
            optional={
                "text": st.text(max_size=30) | json_values,
                "context": st.text(max_size=30) | json_values,
            },
        )
        | json_values,
    },
)
any_message = near_messages | json_values | json_values.map(json.dumps) | st.binary(max_size=30)


@settings(max_examples=400)
@given(message=any_message)
def test_any_message_parses_or_is_refused_naming_the_field(message):
    try:
        interaction = parse_interaction(message, CID)
    except InteractionError as exc:
        text = str(exc)
        assert text and "Traceback" not in text
        if isinstance(message, dict):
            # a JSON object was sent: the error names the field in it to change
            assert exc.field is not None and exc.field.split(".")[0] in FIELDS, text
            assert exc.field.split(".")[0] in text or exc.field == "properties", text
        assert len(text) < 1000  # whatever was sent, the reply stays short
    else:
        assert isinstance(interaction, Interaction) and interaction.event_type in EVENT_TYPES


def frame(message) -> InputTransportMessageFrame:
    return InputTransportMessageFrame(message=message)


@settings(max_examples=25)
@given(
    messages=st.lists(near_messages | json_values.filter(lambda m: isinstance(m, dict)), max_size=4)
)
def test_a_session_answers_every_refused_message_and_keeps_running(messages):
    claimed = [
        m for m in messages if isinstance(m, dict) and m.get("message_type") == "conversation"
    ]
    refused = 0
    for message in claimed:
        try:
            parse_interaction(message, CID)
        except InteractionError:
            refused += 1
    last = {
        "message_type": "conversation",
        "event_type": "conversation.echo",
        "properties": {"text": "still here"},
    }

    async def session():
        return await run_test(
            InteractionsProcessor(conversation_id=CID),
            frames_to_send=[frame(m) for m in messages] + [frame(last)],
        )

    down, _ = asyncio.run(session())
    sent = [f.message for f in down if isinstance(f, OutputTransportMessageUrgentFrame)]
    errors = [m for m in sent if m["event_type"] == "conversation.error"]
    assert len(errors) == refused
    assert all(e["properties"]["error"] for e in errors)
    spoken = [f.text for f in down if isinstance(f, TTSSpeakFrame)]
    assert spoken[-1:] == ["still here"]
