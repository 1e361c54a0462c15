"""Frames presence adds to pipecat's, for signals between its own stages.

``VoiceHintFrame`` — the STT stage hears the user's voice stop or come back well before the VAD
confirms it (the VAD waits ``start_secs``/``stop_secs``); it pushes this hint downstream so that
turn-taking can hold a decision while the voice is back. Stages that do not know it pass it on.

``SpeechPreviewFrame`` — an LLM stage knows how its answer starts before the answer may be spoken
(a speculative answer is held until the turn is decided); it sends the first sentence ahead so
that a TTS stage can prepare its audio. Nothing is spoken or shown from it: a preview whose answer
is withdrawn, or never arrives, only cost the synthesis.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipecat.frames.frames import SystemFrame


@dataclass
class VoiceHintFrame(SystemFrame):
    """The user's voice, as the STT stage hears it, between the VAD's decisions.

    Parameters:
        voiced: True when the voice came back after a silence; False when it has been quiet for
            the STT's ``early_s`` again.
    """

    voiced: bool = False


@dataclass
class SpeechPreviewFrame(SystemFrame):
    """The first sentence of an answer on its way, sent ahead of the answer itself.

    Parameters:
        text: The sentence as the LLM stage will send it as text.
    """

    text: str = ""
