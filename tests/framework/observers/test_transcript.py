"""TranscriptObserver: turns and per-turn timings from the frames a conversation produces."""

from __future__ import annotations

import json

import pytest
from pipecat.frames.frames import (
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    InterruptionFrame,
    LLMFullResponseStartFrame,
    LLMMessagesAppendFrame,
    LLMTextFrame,
    TranscriptionFrame,
    TTSAudioRawFrame,
    TTSTextFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.observers.base_observer import FramePushed
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor

from presence.framework.frames import RevisedTranscriptionFrame
from presence.framework.observers import TranscriptObserver

DOWN, UP = FrameDirection.DOWNSTREAM, FrameDirection.UPSTREAM


class Script:
    """Pushes frames into an observer at given session times (ms), like a pipeline would."""

    def __init__(self):
        self.t_ms = 0.0
        self.observer = TranscriptObserver(clock=lambda _instant: self.t_ms / 1000)
        self.a, self.b = FrameProcessor(name="a"), FrameProcessor(name="b")

    async def at(self, t_ms: float, frame, direction=DOWN):
        self.t_ms = t_ms
        await self.observer.on_push_frame(FramePushed(self.a, self.b, frame, direction, 0))
        return frame


def audio():
    return TTSAudioRawFrame(b"\x00\x01" * 240, 24000, 1)


def word(text: str) -> TTSTextFrame:
    return TTSTextFrame(text, "word")


def transcript(text: str) -> TranscriptionFrame:
    return TranscriptionFrame(text, "user", "")


async def bot_speaks(s: Script, start_ms: float, stop_ms: float, words: list[str]):
    await s.at(start_ms, audio())
    await s.at(start_ms, BotStartedSpeakingFrame())
    await s.at(start_ms, BotStartedSpeakingFrame(), UP)  # the upstream sibling: not a second start
    for i, w in enumerate(words):
        await s.at(start_ms + 10 * (i + 1), word(w))
    await s.at(stop_ms, BotStoppedSpeakingFrame())


async def test_greeting_then_one_exchange_gives_ordered_turns_and_timings():
    s = Script()
    await bot_speaks(s, 100, 900, ["Hi,", "ask", "me."])
    await s.at(1000, VADUserStartedSpeakingFrame())
    await s.at(1050, UserStartedSpeakingFrame())
    await s.at(2400, VADUserStoppedSpeakingFrame(stop_secs=0.4))
    await s.at(2500, transcript("what is presence"))
    await s.at(2600, UserStoppedSpeakingFrame())
    await s.at(2700, LLMFullResponseStartFrame())
    await s.at(2800, LLMTextFrame("A frame"))
    await s.at(2850, LLMTextFrame("work."))
    await s.at(3000, audio())
    await bot_speaks(s, 3100, 4000, ["A", "framework."])

    report = s.observer.report()
    assert [(t["role"], t["content"]) for t in report["turns"]] == [
        ("assistant", "Hi, ask me."),
        ("user", "what is presence"),
        ("assistant", "A framework."),
    ]
    assert report["turns"][1]["started_ms"] == 1000 and report["turns"][1]["ended_ms"] == 2000
    assert report["turns"][2]["ended_ms"] == 4000
    assert report["timings"] == [
        {
            "turn": 1,
            "user_started_speaking_ms": 1000,
            "user_stopped_speaking_ms": 2000,
            "turn_decided_ms": 2600,
            "transcript_final_ms": 2500,
            "llm_first_token_ms": 2800,
            "tts_first_audio_ms": 3000,
            "bot_started_speaking_ms": 3100,
            "voice_to_voice_ms": 1100,
        }
    ]


async def test_a_frame_seen_at_several_hops_counts_once():
    s = Script()
    await s.at(0, VADUserStartedSpeakingFrame())
    said = await s.at(500, transcript("hello"))
    await s.at(600, said)  # the same frame, pushed on by the next processor
    await bot_speaks(s, 900, 1500, ["hi"])
    first = s.observer.report()["turns"][0]
    assert first == {"role": "user", "content": "hello", "started_ms": 0, "ended_ms": 900}


async def test_user_resuming_before_the_answer_continues_the_same_turn():
    s = Script()
    await s.at(0, VADUserStartedSpeakingFrame())
    await s.at(800, VADUserStoppedSpeakingFrame(stop_secs=0.2))
    await s.at(900, transcript("tell me"))
    await s.at(950, UserStoppedSpeakingFrame())  # a decision the user's resumption overrides
    await s.at(1000, VADUserStartedSpeakingFrame())
    await s.at(2000, VADUserStoppedSpeakingFrame(stop_secs=0.2))
    await s.at(2100, transcript("about pricing"))
    await s.at(2300, UserStoppedSpeakingFrame())
    await bot_speaks(s, 2500, 3000, ["Sure."])
    report = s.observer.report()
    assert [t["content"] for t in report["turns"]] == ["tell me about pricing", "Sure."]
    (timing,) = report["timings"]
    assert timing["user_started_speaking_ms"] == 0
    assert timing["user_stopped_speaking_ms"] == 1800
    assert timing["transcript_final_ms"] == 2100
    assert timing["turn_decided_ms"] == 2300
    assert timing["voice_to_voice_ms"] == 700


async def test_a_turn_heard_again_whole_replaces_its_first_transcript():
    s = Script()
    await s.at(0, VADUserStartedSpeakingFrame())
    await s.at(800, VADUserStoppedSpeakingFrame(stop_secs=0.2))
    await s.at(900, transcript("Tell me about?"))
    await s.at(1000, VADUserStartedSpeakingFrame())
    await s.at(2000, VADUserStoppedSpeakingFrame(stop_secs=0.2))
    whole = RevisedTranscriptionFrame(
        "Tell me about pricing.", "user", "", revises="Tell me about?"
    )
    await s.at(2100, whole)
    await bot_speaks(s, 2500, 3000, ["Sure."])
    report = s.observer.report()
    assert [t["content"] for t in report["turns"]] == ["Tell me about pricing.", "Sure."]


async def test_a_taken_turn_heard_again_with_what_followed_moves_its_words_to_the_new_turn():
    """The persona started at a pause; the STT's revision covers the taken turn and the rest."""
    s = Script()
    await s.at(0, VADUserStartedSpeakingFrame())
    await s.at(800, VADUserStoppedSpeakingFrame(stop_secs=0.2))
    await s.at(900, transcript("Do I need a graphics card?"))
    await s.at(1100, LLMFullResponseStartFrame())
    await s.at(1110, LLMTextFrame("No."))
    await bot_speaks(s, 1200, 1300, ["No."])
    await s.at(1400, VADUserStartedSpeakingFrame())
    await s.at(2000, VADUserStoppedSpeakingFrame(stop_secs=0.2))
    revised = RevisedTranscriptionFrame(
        "Do I need a graphics card to run it?", "user", "", revises="Do I need a graphics card?"
    )
    await s.at(2100, revised)
    await bot_speaks(s, 2500, 3000, ["Not", "at", "all."])
    report = s.observer.report()
    assert [(t["role"], t["content"]) for t in report["turns"]] == [
        ("assistant", "No."),
        ("user", "Do I need a graphics card to run it?"),
        ("assistant", "Not at all."),
    ]
    assert len(report["timings"]) == 2  # both turn ends still happened


async def test_an_answer_interrupted_before_it_was_heard_leaves_no_trace():
    s = Script()
    await s.at(0, VADUserStartedSpeakingFrame())
    await s.at(800, VADUserStoppedSpeakingFrame(stop_secs=0.2))
    await s.at(900, transcript("do I need a graphics card?"))
    await s.at(1000, LLMFullResponseStartFrame())  # withheld: the user's voice is back
    await s.at(1010, LLMTextFrame("Sorry, I don't know that one."))
    await s.at(1020, audio())
    await s.at(1030, word("Sorry,"))
    await s.at(1200, VADUserStartedSpeakingFrame())
    await s.at(1210, InterruptionFrame())
    await s.at(1900, VADUserStoppedSpeakingFrame(stop_secs=0.2))
    await s.at(2000, transcript("to run it"))
    await s.at(2300, LLMFullResponseStartFrame())
    await s.at(2310, LLMTextFrame("No."))
    await bot_speaks(s, 2500, 3000, ["No."])
    report = s.observer.report()
    assert [(t["role"], t["content"]) for t in report["turns"]] == [
        ("user", "do I need a graphics card? to run it"),
        ("assistant", "No."),
    ]
    (timing,) = report["timings"]
    assert timing["llm_first_token_ms"] == 2310 and timing["tts_first_audio_ms"] == 2500
    assert timing["voice_to_voice_ms"] == 2500 - 1700


async def test_llm_text_stands_in_when_no_tts_reports_words_and_barge_in_is_marked():
    s = Script()
    await s.at(0, VADUserStartedSpeakingFrame())
    await s.at(700, VADUserStoppedSpeakingFrame(stop_secs=0.2))
    await s.at(750, transcript("hi"))
    await s.at(800, LLMFullResponseStartFrame())
    for i, token in enumerate(["Hel", "lo", " there", "."]):
        await s.at(810 + i, LLMTextFrame(token))
    await s.at(900, audio())
    await s.at(950, BotStartedSpeakingFrame())
    await s.at(1200, VADUserStartedSpeakingFrame())
    await s.at(1210, InterruptionFrame())
    await s.at(1250, BotStoppedSpeakingFrame())
    await s.at(1900, VADUserStoppedSpeakingFrame(stop_secs=0.2))
    await s.at(2000, transcript("wait"))
    report = s.observer.report()
    assert [(t["role"], t["content"]) for t in report["turns"]] == [
        ("user", "hi"),
        ("assistant", "Hello there."),
        ("user", "wait"),
    ]
    assert report["turns"][1]["interrupted"] is True
    assert [t["voice_to_voice_ms"] for t in report["timings"]] == [450, None]
    assert report["timings"][1]["user_started_speaking_ms"] == 1200


async def test_without_a_clock_times_come_from_the_pipeline_clock(tmp_path):
    observer = TranscriptObserver()
    a, b = FrameProcessor(), FrameProcessor()
    await observer.on_push_frame(
        FramePushed(a, b, VADUserStartedSpeakingFrame(), DOWN, 250_000_000)
    )
    await observer.on_push_frame(FramePushed(a, b, transcript("hey"), DOWN, 900_000_000))
    path = observer.write_json(tmp_path / "sub" / "t.json")
    data = json.loads(path.read_text())
    assert data["turns"][0]["started_ms"] == pytest.approx(250)
    assert data["timings"][0]["transcript_final_ms"] == pytest.approx(900)


def user_text(text: str) -> LLMMessagesAppendFrame:
    """What ``conversation.respond`` (or a typed chat message) pushes: a user message to answer."""
    return LLMMessagesAppendFrame([{"role": "user", "content": text}], run_llm=True)


async def test_a_user_message_appended_as_text_is_a_user_turn_before_its_answer():
    s = Script()
    await bot_speaks(s, 0, 800, ["Hi."])
    said = await s.at(1000, user_text("  How do I  swap a provider? "))
    await s.at(1010, said, UP)  # the same frame on its way to the user aggregator
    await s.at(1200, LLMFullResponseStartFrame())
    await s.at(1300, LLMTextFrame("Edit one line."))
    await s.at(1400, audio())
    await bot_speaks(s, 1500, 2500, ["Edit", "one", "line."])

    report = s.observer.report()
    assert [(t["role"], t["content"]) for t in report["turns"]] == [
        ("assistant", "Hi."),
        ("user", "How do I swap a provider?"),
        ("assistant", "Edit one line."),
    ]
    assert report["turns"][1]["started_ms"] == report["turns"][1]["ended_ms"] == 1000
    (timing,) = report["timings"]
    assert timing["turn"] == 1
    assert timing["llm_first_token_ms"] == 1300 and timing["bot_started_speaking_ms"] == 1500
    # nobody spoke: no speaking times, so the turn stays out of voice-to-voice figures
    assert timing["user_stopped_speaking_ms"] is None and timing["voice_to_voice_ms"] is None


async def test_text_and_speech_turns_are_counted_once_each_in_order():
    s = Script()
    # the user is speaking when a respond arrives: their words and the text stay apart
    await s.at(0, VADUserStartedSpeakingFrame())
    await s.at(400, transcript("um"))
    await s.at(500, user_text("What is presence?"))
    await s.at(600, VADUserStoppedSpeakingFrame(stop_secs=0.2))
    await s.at(700, transcript("hello"))  # a late final transcript: a new spoken turn
    await bot_speaks(s, 1000, 1500, ["A", "framework."])
    await s.at(2000, VADUserStartedSpeakingFrame())
    await s.at(2500, VADUserStoppedSpeakingFrame(stop_secs=0.2))
    await s.at(2600, transcript("thanks"))
    await bot_speaks(s, 3000, 3500, ["Welcome."])

    report = s.observer.report()
    assert [(t["role"], t["content"]) for t in report["turns"]] == [
        ("user", "um"),
        ("user", "What is presence?"),
        ("user", "hello"),
        ("assistant", "A framework."),
        ("user", "thanks"),
        ("assistant", "Welcome."),
    ]
    assert report["turns"][0]["ended_ms"] == 500  # closed by the text turn
    assert [t["turn"] for t in report["timings"]] == [0, 1, 2, 4]
    assert report["timings"][3]["voice_to_voice_ms"] == 700


async def test_context_messages_that_are_not_the_users_are_not_turns():
    s = Script()
    note = {"role": "developer", "content": "The camera shows: a face."}
    await s.at(0, LLMMessagesAppendFrame([note], run_llm=True), UP)
    parts = {"role": "user", "content": [{"type": "text", "text": "look"}, {"type": "image"}]}
    await s.at(100, LLMMessagesAppendFrame([parts, {"role": "user", "content": " "}]))
    report = s.observer.report()
    assert [(t["role"], t["content"]) for t in report["turns"]] == [("user", "look")]
