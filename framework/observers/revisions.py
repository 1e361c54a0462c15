"""Tells the RTVI client (the page) when a user transcript it showed was replaced by a better one.

An STT stage may transcribe a whole user turn again once the user goes on after a pause
(``RevisedTranscriptionFrame``). pipecat's RTVI observer sends the new transcript as an ordinary
``user-transcription``; this observer follows it with a ``server-message``::

    {"type": "presence-transcript-revision", "text": "<the turn's new transcript>",
     "revises": "<the earlier transcript it replaces>"}

so that a client showing the turn replaces ``revises`` (followed by ``text``) with ``text``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from loguru import logger
from pipecat.observers.base_observer import BaseObserver, FramePushed

from presence.framework.frames import RevisedTranscriptionFrame
from presence.framework.observers.latency import attach_rtvi_observer

MESSAGE_TYPE = "presence-transcript-revision"
"""``data.type`` of the RTVI ``server-message`` that announces a revised transcript."""


class TranscriptRevisionObserver(BaseObserver):
    """Sends each revised user transcript to the client once.

    Args:
        send: ``async send(message)``, e.g. an RTVI processor's ``send_server_message``. Its
            failures are logged, not raised.
    """

    def __init__(self, *, send: Callable[[dict[str, Any]], Awaitable[Any]], **kwargs):
        super().__init__(observe_every_push=False, **kwargs)
        self.send = send
        self._sent: set[int] = set()

    async def on_push_frame(self, data: FramePushed):
        """Announce a revised transcript the first time it is pushed."""
        frame = data.frame
        if not isinstance(frame, RevisedTranscriptionFrame) or frame.id in self._sent:
            return
        self._sent.add(frame.id)
        try:
            await self.send({"type": MESSAGE_TYPE, "text": frame.text, "revises": frame.revises})
        except Exception as exc:  # a client gone away must not stop the session
            logger.warning(f"could not send a transcript revision to the client: {exc}")


def attach_transcript_revisions(worker: Any) -> TranscriptRevisionObserver | None:
    """Add a ``TranscriptRevisionObserver`` to ``worker`` sending to its RTVI client.

    Returns:
        The observer, or ``None`` when the worker has no RTVI.
    """
    return attach_rtvi_observer(worker, lambda send: TranscriptRevisionObserver(send=send))
