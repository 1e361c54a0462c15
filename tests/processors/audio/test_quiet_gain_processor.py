"""QuietVoiceGain in a pipeline: a quiet user's audio frames come out raised, each session anew."""

from __future__ import annotations

import numpy as np
from helpers.speech import synthesize_16k
from pipecat.frames.frames import InputAudioRawFrame, TextFrame
from pipecat.tests.utils import run_test

from presence.processors.audio.quiet_gain import QuietVoiceGain

RATE = 16000


def frames_of(pcm: np.ndarray) -> list[InputAudioRawFrame]:
    return [
        InputAudioRawFrame(audio=pcm[i : i + 320].tobytes(), sample_rate=RATE, num_channels=1)
        for i in range(0, len(pcm), 320)
    ]


def quiet_question() -> np.ndarray:
    speech = synthesize_16k("Can I run it on my own server?").astype(np.float64)
    quiet = np.round(speech * 10 ** (-40 / 20) * 32767 / np.abs(speech).max()).astype(np.int16)
    return np.concatenate([np.zeros(RATE // 2, np.int16), quiet])


def peak(frames) -> int:
    audio = [np.frombuffer(f.audio, np.int16) for f in frames if isinstance(f, InputAudioRawFrame)]
    return int(np.abs(np.concatenate(audio).astype(np.int32)).max())


async def test_a_quiet_users_frames_come_out_raised_and_other_frames_pass():
    pcm = quiet_question()
    gain = QuietVoiceGain(max_gain_db=30.0)
    down, _ = await run_test(gain, frames_to_send=[*frames_of(pcm), TextFrame("note")])
    assert peak(down) > 8 * int(np.abs(pcm).max())  # raised by more than 18 dB
    assert any(isinstance(f, TextFrame) and f.text == "note" for f in down)


async def test_each_session_starts_from_no_gain():
    gain = QuietVoiceGain(max_gain_db=30.0)
    await run_test(gain, frames_to_send=frames_of(quiet_question()))
    # a new session whose user speaks at ordinary levels: not one sample is raised
    speech = synthesize_16k("What is presence?")
    ordinary = np.round(speech * (0.5 * 32767 / np.abs(speech).max())).astype(np.int16)
    down, _ = await run_test(gain, frames_to_send=frames_of(ordinary[: RATE // 10]))
    sent = ordinary[: RATE // 10]
    got = np.concatenate(
        [np.frombuffer(f.audio, np.int16) for f in down if isinstance(f, InputAudioRawFrame)]
    )
    np.testing.assert_array_equal(got, sent)
