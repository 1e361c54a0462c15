"""Frames presence adds to pipecat's, for signals between its own stages.

``VoiceHintFrame`` — the STT stage hears the user's voice stop or come back well before the VAD
confirms it (the VAD waits ``start_secs``/``stop_secs``); it pushes this hint downstream so that
turn-taking can hold a decision while the voice is back. Stages that do not know it pass it on.

``SpeechPauseFrame`` — turn-taking heard the user's voice come back while the persona has just
begun an answer (the turn was ended at a pause inside the user's sentence): the renderer stops the
speech where it is and shows the listening face, keeping the rest queued, until the frame comes
again with ``paused`` False (the voice was a cough) or an interruption drops the answer.

``SpeechPreviewFrame`` — an LLM stage knows how its answer starts before the answer may be spoken
(a speculative answer is held until the turn is decided); it sends the first sentence ahead so
that a TTS stage can prepare its audio. Nothing is spoken or shown from it: a preview whose answer
is withdrawn, or never arrives, only cost the synthesis.

``RevisedTranscriptionFrame`` — an STT stage heard the user go on after a pause inside a turn and
transcribed the whole turn again, with the words on both sides of the pause as context; its text
replaces what the stage delivered earlier in the turn (``revises``). It is a ``TranscriptionFrame``,
so a stage that does not know it sees the new words as an addition; presence's aggregator, turn
strategies and observers replace instead (``revise_text``).
"""

from __future__ import annotations

from dataclasses import dataclass

from pipecat.frames.frames import SystemFrame, TranscriptionFrame


@dataclass
class VoiceHintFrame(SystemFrame):
    """The user's voice, as the STT stage hears it, between the VAD's decisions.

    Parameters:
        voiced: True when the voice came back after a silence; False when it has been quiet for
            the STT's ``early_s`` again.
        quiet_s: With ``voiced`` False, how long the voice has been quiet (seconds before the
            frame): a VAD may have stopped inside a soft last sound ("uh"), earlier than this.
    """

    voiced: bool = False
    quiet_s: float = 0.0


@dataclass
class SpeechPauseFrame(SystemFrame):
    """Pause (or resume) the persona's speech where it is, keeping what is queued.

    Parameters:
        paused: True to stop speaking now; False to go on from where it stopped.
    """

    paused: bool = True


@dataclass
class SpeechPreviewFrame(SystemFrame):
    """The first sentence of an answer on its way, sent ahead of the answer itself.

    Parameters:
        text: The sentence as the LLM stage will send it as text.
    """

    text: str = ""


@dataclass
class RevisedTranscriptionFrame(TranscriptionFrame):
    """A final transcript of the whole user turn so far, replacing the turn's earlier transcript.

    Parameters:
        revises: The text the same STT stage delivered earlier in this turn (its final
            transcripts joined by spaces), which ``text`` replaces.
    """

    revises: str = ""


def revise_text(text: str, frame: TranscriptionFrame) -> str:
    """``text`` (a turn's transcripts joined by spaces) with ``frame``'s transcript applied.

    A ``RevisedTranscriptionFrame`` replaces the end of ``text`` that it revises; when that end is
    not there (the turn was already taken), and for any other transcript, its text is appended.
    """
    text, new = text.strip(), frame.text.strip()
    revises = getattr(frame, "revises", "").strip()
    if revises and text.endswith(revises):
        text = text[: len(text) - len(revises)].strip()
    return f"{text} {new}".strip() if new else text
