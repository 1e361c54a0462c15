"""The transcript-revision observer: one client message per revised transcript."""

from __future__ import annotations

from pipecat.frames.frames import TranscriptionFrame
from pipecat.observers.base_observer import FramePushed
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor

from presence.framework.frames import RevisedTranscriptionFrame
from presence.framework.observers.revisions import MESSAGE_TYPE, TranscriptRevisionObserver


async def push(observer, frame, src: FrameProcessor, dst: FrameProcessor) -> None:
    await observer.on_push_frame(FramePushed(src, dst, frame, FrameDirection.DOWNSTREAM, 0))


async def test_a_revision_is_announced_once_and_plain_transcripts_are_not():
    sent: list[dict] = []

    async def send(message):
        sent.append(message)

    observer = TranscriptRevisionObserver(send=send)
    a, b, c = (FrameProcessor(name=n) for n in "abc")
    first = TranscriptionFrame("how do I", "user", "")
    whole = RevisedTranscriptionFrame("How do I change it?", "user", "", revises="how do I")
    for frame in (first, whole):
        await push(observer, frame, a, b)
        await push(observer, frame, b, c)  # the same frame at the next hop
    assert sent == [{"type": MESSAGE_TYPE, "text": "How do I change it?", "revises": "how do I"}]


async def test_a_client_gone_away_does_not_stop_the_session():
    async def send(message):
        raise ConnectionError("gone")

    observer = TranscriptRevisionObserver(send=send)
    a, b = FrameProcessor(name="a"), FrameProcessor(name="b")
    frame = RevisedTranscriptionFrame("Hi there.", "user", "", revises="Hi")
    await push(observer, frame, a, b)  # logged, not raised
