"""The interactions protocol engine: what is accepted, what is refused (and why), what goes out."""

from __future__ import annotations

import pytest

from presence.processors.interactions.engines.protocol import (
    APPEND_CONTEXT,
    ECHO,
    OVERWRITE_CONTEXT,
    SENSITIVITY,
    ConversationalContext,
    EventTracker,
    Interaction,
    InteractionError,
    parse_interaction,
    replace_system_message,
)


def msg(event_type: str, **properties) -> dict:
    return {
        "message_type": "conversation",
        "event_type": event_type,
        "conversation_id": "c1",
        "properties": properties,
    }


def test_valid_interactions_parse_with_their_properties():
    assert parse_interaction(msg(ECHO, text=" Hello there ")) == Interaction(
        ECHO, text="Hello there"
    )
    respond = parse_interaction(
        '{"message_type": "conversation", "event_type": '
        '"conversation.respond", "properties": {"text": "hi"}}',
        "c1",
    )
    assert (respond.event_type, respond.text) == ("conversation.respond", "hi")
    assert parse_interaction(msg("conversation.interrupt"), "c1").event_type == (
        "conversation.interrupt"
    )
    assert parse_interaction(msg(APPEND_CONTEXT, context="VIP")).context == "VIP"
    levels = parse_interaction(msg(SENSITIVITY, participant_pause_sensitivity="high"))
    assert (levels.pause_sensitivity, levels.interrupt_sensitivity) == ("high", None)


@pytest.mark.parametrize(
    ("message", "says"),
    [
        (msg("conversation.dance"), "unknown event_type 'conversation.dance'; expected one of"),
        (msg(ECHO), "properties.text: Field required"),
        (msg(ECHO, text="   "), "non-blank properties.text"),
        (msg("conversation.respond", text=5), "properties.text"),
        (msg(OVERWRITE_CONTEXT), "properties.context: Field required"),
        (msg(SENSITIVITY), "needs properties.participant_pause_sensitivity or"),
        (
            msg(SENSITIVITY, participant_pause_sensitivity="loud"),
            "properties.participant_pause_sensitivity: Input should be",
        ),  # fmt: skip
        ({"event_type": ECHO}, "message_type: Field required"),
        ("not json", "must be JSON objects"),
        ([1, 2], "must be JSON objects"),
    ],
)
def test_invalid_messages_are_refused_with_what_to_change(message, says):
    with pytest.raises(InteractionError) as info:
        parse_interaction(message, "c1")
    assert says in str(info.value)


def test_another_conversations_message_is_refused():
    with pytest.raises(InteractionError, match="not this conversation"):
        parse_interaction({**msg(ECHO, text="x"), "conversation_id": "c2"}, "c1")


def test_context_overwrite_and_append_keep_the_persona_prompt():
    ctx = ConversationalContext("You are Guide.", "The user is Ana.")
    assert ctx.system_message() == "You are Guide.\n\nThe user is Ana."
    assert ctx.apply(Interaction(APPEND_CONTEXT, context="She likes tea.")) == (
        "You are Guide.\n\nThe user is Ana.\nShe likes tea."
    )
    assert ctx.apply(Interaction(OVERWRITE_CONTEXT, context="The user is Bo.")) == (
        "You are Guide.\n\nThe user is Bo."
    )
    messages = [{"role": "system", "content": "old"}, {"role": "user", "content": "hi"}]
    assert replace_system_message(messages, "new")[0] == {"role": "system", "content": "new"}
    assert messages[0]["content"] == "old"  # not modified in place
    assert replace_system_message(messages[1:], "new")[0] == {"role": "system", "content": "new"}


def kinds(events):
    return [
        (e["event_type"], e["properties"].get("role"), e["properties"].get("speech"))
        for e in events
    ]


def test_tracker_turns_speech_into_tavus_events():
    t = EventTracker("c1")
    out = t.user_started() + t.user_text("how do I") + t.user_text("swap it") + t.user_stopped()
    assert kinds(out) == [
        ("conversation.user.started_speaking", None, None),
        ("conversation.user.stopped_speaking", None, None),
        ("conversation.utterance", "user", "how do I swap it"),
    ]
    out = t.replica_started()
    t.replica_text("Edit the")
    t.replica_text(" line.", spaced=True)
    out += t.replica_stopped()
    assert kinds(out) == [
        ("conversation.replica.started_speaking", None, None),
        ("conversation.replica.stopped_speaking", None, None),
        ("conversation.utterance", "replica", "Edit the line."),
    ]
    assert out[1]["properties"]["interrupted"] is False
    assert all(e["conversation_id"] == "c1" and e["message_type"] == "conversation" for e in out)


def test_a_revised_transcript_replaces_the_words_it_revises_in_the_utterance():
    t = EventTracker("c1")
    t.user_started()
    t.user_text("hi there.")
    t.user_text("how do I?")
    out = t.user_text("How do I swap it?", revises="how do I?") + t.user_stopped()
    assert kinds(out)[-1] == ("conversation.utterance", "user", "hi there. How do I swap it?")


def test_tracker_marks_interruptions_and_late_transcripts():
    t = EventTracker()
    t.replica_started()
    t.interrupted()
    stopped = t.replica_stopped()
    assert stopped[0]["properties"]["interrupted"] is True
    assert t.replica_stopped() == []  # once per stop
    # a final transcript after the turn ended goes out at once
    assert kinds(t.user_text("late words")) == [("conversation.utterance", "user", "late words")]
