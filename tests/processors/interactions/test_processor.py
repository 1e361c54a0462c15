"""``InteractionsProcessor`` in a pipecat pipeline: data-channel messages become frames."""

from __future__ import annotations

from pipecat.frames.frames import (
    InputTransportMessageFrame,
    InterruptionFrame,
    LLMMessagesAppendFrame,
    LLMMessagesTransformFrame,
    OutputTransportMessageUrgentFrame,
    TTSSpeakFrame,
)
from pipecat.processors.frame_processor import FrameDirection
from pipecat.processors.frameworks.rtvi.frames import (
    RTVIClientMessageFrame,
    RTVIServerResponseFrame,
)
from pipecat.tests.utils import run_test

from presence.framework.observers import TranscriptObserver
from presence.processors.interactions.processor import InteractionsProcessor

DOWN = FrameDirection.DOWNSTREAM


def message(event_type: str, **properties) -> InputTransportMessageFrame:
    return InputTransportMessageFrame(
        message={
            "message_type": "conversation",
            "event_type": event_type,
            "conversation_id": "c1",
            "properties": properties,
        }
    )


def of(frames, cls):
    return [f for f in frames if isinstance(f, cls)]


def sent(frames):
    return [f.message for f in of(frames, OutputTransportMessageUrgentFrame)]


async def test_echo_makes_the_replica_say_the_text():
    down, _ = await run_test(
        InteractionsProcessor(conversation_id="c1"),
        frames_to_send=[message("conversation.echo", text="Welcome to the demo.")],
    )
    assert [f.text for f in of(down, TTSSpeakFrame)] == ["Welcome to the demo."]
    assert not of(down, InputTransportMessageFrame)  # consumed, not passed to the stages


async def test_respond_adds_a_user_turn_and_runs_the_llm():
    down, _ = await run_test(
        InteractionsProcessor(conversation_id="c1"),
        frames_to_send=[message("conversation.respond", text="What is presence?")],
    )
    (append,) = of(down, LLMMessagesAppendFrame)
    assert append.messages == [{"role": "user", "content": "What is presence?"}]
    assert append.run_llm is True
    (utterance,) = sent(down)
    assert utterance["event_type"] == "conversation.utterance"
    assert utterance["properties"] == {"role": "user", "speech": "What is presence?"}


async def test_interrupt_broadcasts_pipecats_interruption():
    down, up = await run_test(
        InteractionsProcessor(), frames_to_send=[message("conversation.interrupt")]
    )
    assert of(down, InterruptionFrame) and of(up, InterruptionFrame)


async def test_context_events_rewrite_the_system_message():
    proc = InteractionsProcessor(system_prompt="You are Guide.", context="User: Ana.")
    down, _ = await run_test(
        proc,
        frames_to_send=[
            message("conversation.append_llm_context", context="She likes tea."),
            message("conversation.overwrite_llm_context", context="User: Bo."),
        ],
    )
    first, second = of(down, LLMMessagesTransformFrame)
    history = [{"role": "system", "content": "You are Guide.\n\nUser: Ana."}]
    history = first.transform(history)
    assert history == [
        {"role": "system", "content": "You are Guide.\n\nUser: Ana.\nShe likes tea."}
    ]
    assert second.transform(history + [{"role": "user", "content": "hi"}]) == [
        {"role": "system", "content": "You are Guide.\n\nUser: Bo."},
        {"role": "user", "content": "hi"},
    ]
    assert first.run_llm is False


async def test_a_bad_message_gets_an_error_back_and_the_session_goes_on():
    other = InputTransportMessageFrame(message={"label": "rtvi-ai", "type": "client-ready"})
    down, _ = await run_test(
        InteractionsProcessor(conversation_id="c1"),
        frames_to_send=[
            message("conversation.dance"),
            message("conversation.echo"),
            other,
            message("conversation.echo", text="still here"),
        ],
    )
    errors = [m for m in sent(down) if m["event_type"] == "conversation.error"]
    assert len(errors) == 2
    assert "unknown event_type 'conversation.dance'" in errors[0]["properties"]["error"]
    assert errors[1]["properties"]["event_type"] == "conversation.echo"
    assert "properties.text" in errors[1]["properties"]["error"]
    assert of(down, InputTransportMessageFrame) == [other]  # not ours: passed on untouched
    assert [f.text for f in of(down, TTSSpeakFrame)] == ["still here"]


async def test_rtvi_client_messages_are_answered_with_server_responses():
    good = RTVIClientMessageFrame(msg_id="m1", type="conversation.echo", data={"text": "hi"})
    bad = RTVIClientMessageFrame(msg_id="m2", type="conversation.respond", data={})
    down, _ = await run_test(InteractionsProcessor(), frames_to_send=[good, bad])
    ok, refused = of(down, RTVIServerResponseFrame)
    assert ok.client_msg is good and ok.error is None
    assert refused.client_msg is bad and "properties.text" in refused.error
    assert [f.text for f in of(down, TTSSpeakFrame)] == ["hi"]


async def test_respond_is_a_user_turn_in_the_transcript_and_echo_is_not():
    transcript = TranscriptObserver()
    await run_test(
        InteractionsProcessor(conversation_id="c1"),
        frames_to_send=[
            message("conversation.echo", text="Welcome."),
            message("conversation.respond", text="What is presence?"),
        ],
        observers=[transcript],
    )
    turns = [(t["role"], t["content"]) for t in transcript.report()["turns"]]
    assert turns == [("user", "What is presence?")]


async def test_a_message_after_the_session_ended_is_refused_not_dropped():
    proc = InteractionsProcessor(conversation_id="c1")
    await run_test(proc, frames_to_send=[])
    await proc.process_frame(message("conversation.echo", text="too late"), DOWN)
    (refusal,) = proc.sent
    assert refusal["event_type"] == "conversation.error"
    assert "ending" in refusal["properties"]["error"]
    assert refusal["properties"]["event_type"] == "conversation.echo"
