"""``TranscriptObserver``: the conversation as turns, with per-turn timings, from frames alone.

It watches frames without touching the pipeline (pipecat ``BaseObserver``), each frame once
(``observe_every_push=False``; frame ids are also deduplicated), and records:

* **user turns**: final ``TranscriptionFrame`` text, joined per turn. A turn opens at
  ``VADUserStartedSpeakingFrame`` (or ``UserStartedSpeakingFrame``/a transcript when there is no
  VAD) and stays open until the persona starts answering;
* **user text turns**: a ``user`` message appended to the LLM context (``LLMMessagesAppendFrame``,
  e.g. the ``conversation.respond`` interaction or a typed chat message) is a whole user turn of
  its own: it closes the open spoken turn and takes no later transcripts; its timings have no
  speaking times (so no ``voice_to_voice_ms``);
* **assistant turns**: the text the persona spoke (``TTSTextFrame``), or the LLM's text
  (``LLMTextFrame``) when no TTS reports words; closed by ``BotStoppedSpeakingFrame``. An answer
  interrupted before any of it was heard (``InterruptionFrame`` before ``BotStartedSpeakingFrame``:
  the user went on after a pause and the answer was withheld) is withdrawn: it leaves the
  transcript and its timings, and the user's turn goes on;
* **timings** per user turn, in ms since session start: ``user_started_speaking``,
  ``user_stopped_speaking`` (VAD decision minus its ``stop_secs``), ``turn_decided`` (the turn
  strategy's last ``UserStoppedSpeakingFrame`` before the answer), ``transcript_final``,
  ``llm_first_token``, ``tts_first_audio``, ``bot_started_speaking`` and
  ``voice_to_voice_ms = bot_started_speaking - user_stopped_speaking``.

Time: each frame is stamped with the moment it was pushed (observers hear of it later, through
a queue). With ``clock`` (a function from a ``time.monotonic()`` instant to session seconds; the
file transport passes its media clock's ``at``) that moment is mapped to session time; without,
the pipeline clock's timestamp of the push is used (ms since the pipeline started).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipecat.frames.frames import (
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    Frame,
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
from pipecat.observers.base_observer import BaseObserver, FramePushed
from pipecat.processors.frame_processor import FrameDirection
from pipecat.transports.base_output import BaseOutputTransport

from presence.framework.frames import revise_text

TIMING_KEYS = (
    "user_started_speaking",
    "user_stopped_speaking",
    "turn_decided",
    "transcript_final",
    "llm_first_token",
    "tts_first_audio",
    "bot_started_speaking",
)


@dataclass
class _Turn:
    role: str
    started_ms: float
    text: str = ""
    ended_ms: float | None = None
    interrupted: bool = False
    spoken: bool = False  # assistant: some text came from TTS (preferred over LLM text)
    heard: bool = False  # assistant: the bot started speaking it
    llm_text: str = ""

    def content(self) -> str:
        text = self.text if self.role == "user" or self.spoken else self.llm_text
        return " ".join(text.split())


def _append(text: str, part: str, *, spaced: bool) -> str:
    """``part`` after ``text``; a space between unless the parts carry their own spacing."""
    if spaced or not text or text.endswith((" ", "\n")) or part.startswith((" ", "\n")):
        return text + part
    return f"{text} {part}"


class TranscriptObserver(BaseObserver):
    """Records user/assistant turns and per-turn latency timings.

    Args:
        clock: Maps a ``time.monotonic()`` instant to session seconds; ``None`` uses the
            pipeline clock.
        screened: The LLM's text is screened before TTS (guardrails): its text counts only
            as pushed by the screen (a processor with ``screens_llm_output``), so a sentence
            the screen withheld never reaches the transcript, even when nothing was spoken.
    """

    def __init__(
        self,
        *,
        clock: Callable[[float], float] | None = None,
        screened: bool = False,
        **kwargs,
    ):
        super().__init__(observe_every_push=False, **kwargs)
        self._clock = clock
        self.screened = screened
        self._seen: set[int] = set()
        self._turns: list[_Turn] = []
        self._timings: list[dict[str, float | None]] = []
        self._user: _Turn | None = None  # open user turn (until the persona answers)
        self._assistant: _Turn | None = None  # open assistant turn
        self._exchange: dict[str, float | None] | None = None  # timings of the open user turn
        self._bot_speaking = False

    # -- frames --------------------------------------------------------------------------------

    async def on_push_frame(self, data: FramePushed):
        """Record the events a frame marks (each frame once)."""
        frame = data.frame
        if frame.id in self._seen:
            return
        # Broadcast frames come as an upstream/downstream pair of distinct frames: use one.
        # A context append is never broadcast; it may travel upstream to the user aggregator.
        if data.direction != FrameDirection.DOWNSTREAM and not isinstance(
            frame, LLMMessagesAppendFrame
        ):
            return
        # The output transport re-chunks TTS audio into new frames; the TTS's own are the ones.
        if isinstance(frame, TTSAudioRawFrame) and isinstance(data.source, BaseOutputTransport):
            return
        self._seen.add(frame.id)
        unscreened = (
            self.screened
            and isinstance(frame, LLMTextFrame)
            and not getattr(data.source, "screens_llm_output", False)
        )
        self.observe(frame, self._now_ms(data), text=not unscreened)

    def _now_ms(self, data: FramePushed) -> float:
        if self._clock is None:
            return data.timestamp / 1e6
        try:  # how long ago the push happened, on the pipeline clock
            age_s = max(0.0, (data.source.get_clock().get_time() - data.timestamp) / 1e9)
        except Exception:
            age_s = 0.0
        return self._clock(time.monotonic() - age_s) * 1000.0

    def observe(self, frame: Frame, t_ms: float, *, text: bool = True) -> None:
        """Record ``frame`` as seen at ``t_ms`` (the entry point ``on_push_frame`` uses).

        With ``text`` false an ``LLMTextFrame`` counts for timings only.
        """
        if isinstance(frame, VADUserStartedSpeakingFrame):
            self._user_started(t_ms)
        elif isinstance(frame, VADUserStoppedSpeakingFrame):
            self._user_stopped(t_ms - frame.stop_secs * 1000.0, vad=True)
        elif isinstance(frame, UserStartedSpeakingFrame):
            if self._exchange is None or self._exchange["user_started_speaking"] is None:
                self._user_started(t_ms)
        elif isinstance(frame, UserStoppedSpeakingFrame):
            self._user_stopped(t_ms, vad=False)
            ex = self._exchange
            if self._user is not None and ex is not None and ex["bot_started_speaking"] is None:
                ex["turn_decided"] = t_ms  # the last decision before the answer is heard
        elif isinstance(frame, TranscriptionFrame):
            if frame.text.strip():
                self._open_user(t_ms)
                self._revise_taken(getattr(frame, "revises", "").strip())
                self._user.text = revise_text(self._user.text, frame)
                if self._exchange["llm_first_token"] is None:
                    self._exchange["transcript_final"] = t_ms
        elif isinstance(frame, LLMFullResponseStartFrame):
            self._open_assistant(t_ms)
        elif isinstance(frame, TTSTextFrame):
            turn = self._open_assistant(t_ms)
            if frame.text.strip():
                turn.spoken = True
                turn.text = _append(turn.text, frame.text, spaced=frame.includes_inter_frame_spaces)
        elif isinstance(frame, LLMTextFrame):
            turn = self._open_assistant(t_ms)
            if text:
                turn.llm_text = _append(turn.llm_text, frame.text, spaced=True)
            self._mark("llm_first_token", t_ms)
        elif isinstance(frame, TTSAudioRawFrame):
            self._open_assistant(t_ms)
            self._mark("tts_first_audio", t_ms)
        elif isinstance(frame, BotStartedSpeakingFrame):
            self._bot_speaking = True
            self._open_assistant(t_ms).heard = True
            self._mark("bot_started_speaking", t_ms)
            self._close_user(t_ms)
        elif isinstance(frame, BotStoppedSpeakingFrame):
            self._bot_speaking = False
            if self._assistant is not None:
                self._assistant.ended_ms = t_ms
                self._assistant = None
        elif isinstance(frame, InterruptionFrame):
            if self._assistant is not None and self._bot_speaking:
                self._assistant.interrupted = True
            elif self._assistant is not None and not self._assistant.heard:
                self._withdraw_answer()
        elif isinstance(frame, LLMMessagesAppendFrame):
            for message in frame.messages:
                text = _user_text(message)
                if text:
                    self._user_said(text, t_ms)

    # -- turn bookkeeping ----------------------------------------------------------------------

    def _open_user(self, t_ms: float) -> _Turn:
        if self._user is None:
            self._user = _Turn("user", t_ms)
            self._turns.append(self._user)
            self._exchange = dict.fromkeys(TIMING_KEYS)
            self._timings.append(self._exchange)
        return self._user

    def _user_started(self, t_ms: float) -> None:
        self._open_user(t_ms)
        if self._exchange["user_started_speaking"] is None:
            self._exchange["user_started_speaking"] = t_ms
        # The user spoke again before any answer: the turn continues, its end moves.
        if self._exchange["bot_started_speaking"] is None:
            self._exchange["user_stopped_speaking"] = self._exchange["turn_decided"] = None

    def _user_stopped(self, t_ms: float, *, vad: bool) -> None:
        if self._user is None or self._exchange is None:
            return
        if vad or self._exchange["user_stopped_speaking"] is None:
            self._exchange["user_stopped_speaking"] = t_ms
        self._user.ended_ms = self._exchange["user_stopped_speaking"]

    def _user_said(self, text: str, t_ms: float) -> None:
        """A whole user turn given as text: its own turn, closed at once, awaiting the answer."""
        self._close_user(t_ms)
        turn = _Turn("user", t_ms, text=text, ended_ms=t_ms)
        self._turns.append(turn)
        self._exchange = dict.fromkeys(TIMING_KEYS)
        self._exchange["transcript_final"] = t_ms
        self._timings.append(self._exchange)
        # the answer opens a new assistant turn, after this one
        if self._assistant is not None and not self._bot_speaking:
            self._assistant = None

    def _revise_taken(self, revises: str) -> None:
        """A revision of words an earlier, already closed user turn ended with: they move here.

        The turn-taking took a pause for the end, and the STT heard the taken turn again with
        what the user said next; the earlier turn keeps only what the revision does not cover.
        """
        if not revises or self._user.text.strip().endswith(revises):
            return
        for turn in reversed(self._turns):
            if turn is self._user or turn.role != "user":
                continue
            text = turn.text.strip()
            if text.endswith(revises):
                turn.text = text[: len(text) - len(revises)].strip()  # emptied: left out
            return

    def _withdraw_answer(self) -> None:
        """Forget the open answer: interrupted before a word of it was heard."""
        self._turns.remove(self._assistant)
        self._assistant = None
        ex = self._exchange
        if ex is not None and ex["bot_started_speaking"] is None:
            ex["llm_first_token"] = ex["tts_first_audio"] = None

    def _close_user(self, t_ms: float) -> None:
        if self._user is not None:
            if self._user.ended_ms is None:
                self._user.ended_ms = t_ms
            self._user = None

    def _open_assistant(self, t_ms: float) -> _Turn:
        if self._assistant is None:
            self._assistant = _Turn("assistant", t_ms)
            self._turns.append(self._assistant)
        return self._assistant

    def _mark(self, key: str, t_ms: float) -> None:
        """Set a timing of the open exchange once (only while it awaits its answer)."""
        ex = self._exchange
        if ex is None or ex[key] is not None or ex["bot_started_speaking"] is not None:
            return
        ex[key] = t_ms

    # -- report --------------------------------------------------------------------------------

    def report(self) -> dict[str, Any]:
        """The conversation so far.

        Returns:
            ``{"turns": [{"role", "content", "started_ms", "ended_ms", "interrupted"}...],
            "timings": [{"turn": index of the user turn in turns, "<key>_ms": ms or None...,
            "voice_to_voice_ms": ms or None}...]}``. Turns without content are left out.
        """
        turns, index = [], {}
        for turn in self._turns:
            content = turn.content()
            if not content:
                continue
            index[id(turn)] = len(turns)
            entry = {
                "role": turn.role,
                "content": content,
                "started_ms": _r(turn.started_ms),
                "ended_ms": _r(turn.ended_ms),
            }
            if turn.role == "assistant":
                entry["interrupted"] = turn.interrupted
            turns.append(entry)
        users = [t for t in self._turns if t.role == "user"]
        timings = []
        for turn, ex in zip(users, self._timings, strict=True):
            row: dict[str, Any] = {"turn": index.get(id(turn))}
            row.update({f"{k}_ms": _r(ex[k]) for k in TIMING_KEYS})
            stop, bot = ex["user_stopped_speaking"], ex["bot_started_speaking"]
            row["voice_to_voice_ms"] = (
                _r(bot - stop) if stop is not None and bot is not None else None
            )
            timings.append(row)
        return {"turns": turns, "timings": timings}

    def write_json(self, path: str | Path) -> Path:
        """Write :meth:`report` as JSON to ``path`` (folders created); returns the path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.report(), indent=2, ensure_ascii=False) + "\n")
        return path


def _user_text(message: Any) -> str:
    """The text of a ``user`` context message (string or text parts), else ``""``."""
    if not isinstance(message, dict) or message.get("role") != "user":
        return ""
    content = message.get("content")
    if isinstance(content, list):
        content = " ".join(
            p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text"
        )
    return " ".join(content.split()) if isinstance(content, str) else ""


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 1)
