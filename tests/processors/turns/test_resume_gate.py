"""The resume gate: an answer that would talk over a user who went on after a pause is never heard."""

import pytest
from pipecat.frames.frames import (
    InterruptionFrame,
    TTSAudioRawFrame,
    TTSStartedFrame,
    TTSStoppedFrame,
    UserStoppedSpeakingFrame,
    VADUserStartedSpeakingFrame,
)
from pipecat.tests.utils import SleepFrame, run_test

from presence.framework.frames import SpeechPauseFrame, VoiceHintFrame
from presence.processors.turns.resume_gate import ResumeGate


def audio(n: int) -> TTSAudioRawFrame:
    return TTSAudioRawFrame(audio=bytes([n]) * 320, sample_rate=16000, num_channels=1)


def answer() -> list:
    return [TTSStartedFrame(), audio(1), audio(2), TTSStoppedFrame()]


def heard(frames) -> list[int]:
    return [f.audio[0] for f in frames if isinstance(f, TTSAudioRawFrame)]


async def test_an_answer_is_dropped_when_the_user_goes_on_after_the_turn_ended():
    gate = ResumeGate(hold_s=0.3)
    down, _ = await run_test(
        gate,
        frames_to_send=[
            UserStoppedSpeakingFrame(),
            VoiceHintFrame(voiced=True),  # the voice is back before the answer's audio
            *answer(),
            VADUserStartedSpeakingFrame(),  # the VAD confirms: the user goes on
            SleepFrame(0.4),  # longer than hold_s: confirmed speech keeps the hold
            InterruptionFrame(),
        ],
    )
    assert heard(down) == []
    assert gate.held == 1 and gate.dropped == 1


async def test_a_short_noise_only_delays_the_answer():
    gate = ResumeGate(hold_s=0.3)
    down, _ = await run_test(
        gate,
        frames_to_send=[
            UserStoppedSpeakingFrame(),
            VoiceHintFrame(voiced=True),
            *answer(),
            VoiceHintFrame(voiced=False),  # quiet again without the VAD confirming speech
        ],
    )
    assert heard(down) == [1, 2]
    assert gate.held == 1 and gate.dropped == 0
    # the held frames keep their order
    kinds = [type(f) for f in down if isinstance(f, (TTSStartedFrame, TTSStoppedFrame))]
    assert kinds == [TTSStartedFrame, TTSStoppedFrame]


async def test_the_hold_ends_by_itself_when_the_vad_never_confirms_speech():
    gate = ResumeGate(hold_s=0.2)
    down, _ = await run_test(
        gate,
        frames_to_send=[UserStoppedSpeakingFrame(), VoiceHintFrame(voiced=True), *answer(),
                        SleepFrame(0.4)],
        send_end_frame=True,
    )  # fmt: skip
    assert heard(down) == [1, 2]


@pytest.mark.parametrize(
    "frames",
    [
        # the voice came back long after the turn ended: a new turn, not a resumed sentence
        [UserStoppedSpeakingFrame(), SleepFrame(0.3), VoiceHintFrame(voiced=True), *answer()],
        # the answer's audio was already out, and the voice came back late
        [
            UserStoppedSpeakingFrame(),
            *answer(),
            SleepFrame(0.3),
            VoiceHintFrame(voiced=True),
            *answer(),
        ],
        # no turn ended: nothing to hold
        [VoiceHintFrame(voiced=True), *answer()],
    ],
)
async def test_nothing_is_held_outside_the_moment_after_a_turn(frames):
    gate = ResumeGate(hold_s=5.0, window_s=0.2)
    down, _ = await run_test(gate, frames_to_send=frames)
    assert len(heard(down)) == sum(isinstance(f, TTSAudioRawFrame) for f in frames)
    assert gate.held == gate.paused == 0
    assert not [f for f in down if isinstance(f, SpeechPauseFrame)]


def pauses(frames) -> list[bool]:
    return [f.paused for f in frames if isinstance(f, SpeechPauseFrame)]


async def test_a_playing_answer_pauses_when_the_user_goes_on_and_the_interruption_ends_it():
    gate = ResumeGate(hold_s=0.3)
    down, _ = await run_test(
        gate,
        frames_to_send=[
            UserStoppedSpeakingFrame(),
            *answer(),  # already playing when the voice comes back
            SleepFrame(0.05),
            VoiceHintFrame(voiced=True),
            VADUserStartedSpeakingFrame(),
            SleepFrame(0.4),  # past hold_s: confirmed speech keeps the pause
            InterruptionFrame(),
        ],
    )
    assert pauses(down) == [True]  # never resumed: the interruption drops the rest
    assert gate.paused == 1 and gate.dropped == 1 and gate.held == 0


@pytest.mark.parametrize(
    "after",
    [[VoiceHintFrame(voiced=False)], [SleepFrame(0.3)]],  # quiet again, or never confirmed
)
async def test_a_paused_answer_goes_on_after_a_noise(after):
    gate = ResumeGate(hold_s=0.2)
    down, _ = await run_test(
        gate,
        frames_to_send=[UserStoppedSpeakingFrame(), *answer(), SleepFrame(0.05),
                        VoiceHintFrame(voiced=True), *after, *answer()],
    )  # fmt: skip
    assert pauses(down) == [True, False]
    assert heard(down) == [1, 2, 1, 2]
    assert gate.dropped == 0


def test_settings_must_be_positive():
    with pytest.raises(ValueError):
        ResumeGate(hold_s=0)
