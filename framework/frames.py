"""Frames presence adds to pipecat's, for signals between its own stages.

``VoiceHintFrame`` — the STT stage hears the user's voice stop or come back well before the VAD
confirms it (the VAD waits ``start_secs``/``stop_secs``); it pushes this hint downstream so that
turn-taking can hold a decision while the voice is back. Stages that do not know it pass it on.
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
