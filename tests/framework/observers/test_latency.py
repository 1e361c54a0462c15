"""TurnLatencyObserver: each turn's latency counts from the user's last voiced sample."""

from __future__ import annotations

import asyncio

from pipecat.frames.frames import (
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    EndFrame,
    Frame,
    OutputTransportMessageUrgentFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.observers.base_observer import FramePushed
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor

from presence.framework.observers import TurnLatencyObserver, attach_turn_latency

DOWN, UP = FrameDirection.DOWNSTREAM, FrameDirection.UPSTREAM


class Script:
    """Pushes frames into the observer at given pipeline times (ms), like a pipeline would."""

    def __init__(self):
        self.sent: list[dict] = []

        async def send(report: dict) -> None:
            self.sent.append(report)

        self.observer = TurnLatencyObserver(send=send)
        self.a, self.b = FrameProcessor(name="a"), FrameProcessor(name="b")

    async def at(self, t_ms: float, frame: Frame, direction=DOWN) -> None:
        data = FramePushed(self.a, self.b, frame, direction, int(t_ms * 1e6))
        await self.observer.on_push_frame(data)

    async def vad(self, t_ms: float, frame: Frame) -> None:
        """Both copies pipecat's user aggregator pushes: upstream at once, downstream queued."""
        copy = type(frame)(**{k: getattr(frame, k) for k in ("stop_secs",) if hasattr(frame, k)})
        await self.at(t_ms, frame, UP)
        await self.at(t_ms + 3, copy, DOWN)

    async def broadcast(self, t_ms: float, cls: type[Frame]) -> None:
        down, up = cls(), cls()
        down.broadcast_sibling_id, up.broadcast_sibling_id = up.id, down.id
        await self.at(t_ms, down, DOWN)
        await self.at(t_ms, up, UP)


async def test_latency_counts_the_vad_silence_the_turn_wait_and_a_mid_sentence_pause():
    s = Script()
    await s.broadcast(0, BotStartedSpeakingFrame)  # the greeting: no user turn, no figure
    await s.broadcast(900, BotStoppedSpeakingFrame)
    await s.vad(1000, VADUserStartedSpeakingFrame())
    await s.broadcast(1100, UserStartedSpeakingFrame)
    # a pause mid-sentence: the VAD stops (voice ended at 1800) ...
    await s.vad(2200, VADUserStoppedSpeakingFrame(stop_secs=0.4))
    # ... and the turn model even decides, but the user goes on
    await s.broadcast(2300, UserStoppedSpeakingFrame)
    await s.vad(2500, VADUserStartedSpeakingFrame())
    # the last voiced sample is at 3600: the VAD says so 400 ms later
    await s.vad(4000, VADUserStoppedSpeakingFrame(stop_secs=0.4))
    await s.broadcast(4700, UserStoppedSpeakingFrame)  # the turn model waited 700 ms more
    # RTVI's user-stopped-speaking (4700) → bot speaking would read 400 ms
    await s.broadcast(5100, BotStartedSpeakingFrame)

    expected = {
        "type": "presence-turn-latency",
        "turn": 1,
        "voice_to_voice_ms": 1500,  # 5100 - 3600: includes stop_secs and the turn decision
        "end_of_speech_ms": 400,
        "turn_decided_ms": 1100,
    }
    assert s.sent == [expected]
    assert s.observer.reports == [expected]


async def test_each_decided_turn_is_reported_once_and_undecided_speech_never():
    s = Script()
    await s.vad(0, VADUserStartedSpeakingFrame())
    await s.vad(1200, VADUserStoppedSpeakingFrame(stop_secs=0.2))
    await s.broadcast(1500, UserStoppedSpeakingFrame)
    await s.broadcast(2000, BotStartedSpeakingFrame)
    await s.broadcast(2050, BotStartedSpeakingFrame)  # a second start is not a second turn
    await s.broadcast(3000, BotStoppedSpeakingFrame)
    # a cough while the persona is quiet: the turn strategy ignores it, then the persona speaks
    # on its own (e.g. a perception trigger): no figure
    await s.vad(4000, VADUserStartedSpeakingFrame())
    await s.vad(4400, VADUserStoppedSpeakingFrame(stop_secs=0.2))
    await s.broadcast(5000, BotStartedSpeakingFrame)
    await s.broadcast(6000, BotStoppedSpeakingFrame)
    # the next real turn counts from its own last voiced sample
    await s.vad(7000, VADUserStartedSpeakingFrame())
    await s.vad(8000, VADUserStoppedSpeakingFrame(stop_secs=0.2))
    await s.broadcast(8100, UserStoppedSpeakingFrame)
    await s.broadcast(8900, BotStartedSpeakingFrame)

    assert [r["voice_to_voice_ms"] for r in s.sent] == [1000, 1100]
    assert [r["turn"] for r in s.sent] == [1, 2]
    assert s.sent[0]["turn_decided_ms"] == 500 and s.sent[1]["turn_decided_ms"] == 300


async def test_persona_starting_while_the_user_talks_gives_no_figure_for_that_decision():
    s = Script()
    await s.vad(0, VADUserStartedSpeakingFrame())
    await s.vad(1000, VADUserStoppedSpeakingFrame(stop_secs=0.3))
    await s.broadcast(1200, UserStoppedSpeakingFrame)
    await s.vad(1300, VADUserStartedSpeakingFrame())  # "um", no new turn
    await s.broadcast(1400, BotStartedSpeakingFrame)  # the answer starts over the user
    await s.vad(1600, VADUserStoppedSpeakingFrame(stop_secs=0.3))
    await s.broadcast(2500, BotStoppedSpeakingFrame)
    await s.broadcast(2600, BotStartedSpeakingFrame)  # the answer's next sentence
    assert s.sent == []


async def test_without_a_vad_nothing_is_reported_and_a_failing_send_is_only_logged():
    s = Script()
    await s.broadcast(0, UserStartedSpeakingFrame)
    await s.broadcast(1000, UserStoppedSpeakingFrame)
    await s.broadcast(1500, BotStartedSpeakingFrame)
    assert s.sent == []

    async def broken(_report):
        raise ConnectionError("data channel closed")

    s.observer.send = broken
    await s.vad(2000, VADUserStartedSpeakingFrame())
    await s.vad(3000, VADUserStoppedSpeakingFrame(stop_secs=0.5))
    await s.broadcast(3100, UserStoppedSpeakingFrame)
    await s.broadcast(3500, BotStartedSpeakingFrame)
    assert [r["voice_to_voice_ms"] for r in s.observer.reports] == [1000]


def test_attach_adds_an_observer_only_to_a_worker_with_rtvi():
    from pipecat.pipeline.pipeline import Pipeline
    from pipecat.pipeline.worker import PipelineWorker

    with_rtvi = PipelineWorker(Pipeline([FrameProcessor()]))
    observer = attach_turn_latency(with_rtvi)
    assert isinstance(observer, TurnLatencyObserver)
    assert observer.send == with_rtvi.rtvi.send_server_message
    without = PipelineWorker(Pipeline([FrameProcessor()]), enable_rtvi=False)
    assert attach_turn_latency(without) is None


class _Capture(FrameProcessor):
    """The pipeline's last processor: keeps the RTVI messages bound for the client."""

    def __init__(self):
        super().__init__()
        self.messages: list[dict] = []

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        await super().process_frame(frame, direction)
        if isinstance(frame, OutputTransportMessageUrgentFrame):
            self.messages.append(frame.message)
        await self.push_frame(frame, direction)


async def test_a_real_worker_sends_the_figure_as_an_rtvi_server_message():
    from pipecat.pipeline.pipeline import Pipeline
    from pipecat.pipeline.worker import PipelineParams, PipelineWorker
    from pipecat.workers.runner import WorkerRunner

    capture = _Capture()
    worker = PipelineWorker(Pipeline([capture]), params=PipelineParams())
    observer = attach_turn_latency(worker)

    async def talk():
        await asyncio.sleep(0.1)
        await worker.queue_frame(VADUserStartedSpeakingFrame())
        await asyncio.sleep(0.1)
        await worker.queue_frame(VADUserStoppedSpeakingFrame(stop_secs=0.2))
        await asyncio.sleep(0.1)  # the turn decision's wait
        await worker.queue_frame(UserStoppedSpeakingFrame())
        await asyncio.sleep(0.05)
        await worker.queue_frame(BotStartedSpeakingFrame())
        await asyncio.sleep(0.2)
        await worker.queue_frame(EndFrame())

    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(worker)
    await asyncio.wait_for(asyncio.gather(runner.run(), talk()), timeout=10)

    sent = [m for m in capture.messages if m.get("type") == "server-message"]
    assert len(sent) == 1 and sent[0]["label"] == "rtvi-ai"
    data = sent[0]["data"]
    assert data == observer.reports[0]
    assert data["type"] == "presence-turn-latency"
    # stop_secs (200) + the decision's wait (~100) + the answer (~50)
    assert data["end_of_speech_ms"] == 200
    assert 280 <= data["turn_decided_ms"] < data["voice_to_voice_ms"] < 1000
