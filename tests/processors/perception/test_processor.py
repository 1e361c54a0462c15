"""PerceptionProcessor in pipecat pipelines: events, triggers, context note, analysis, describer."""

from __future__ import annotations

import base64
import functools

import pytest
from fakes.anthropic_vision import FakeAnthropicVision
from loguru import logger
from pipecat.frames.frames import (
    BotStartedSpeakingFrame,
    LLMContextFrame,
    LLMMessagesAppendFrame,
    TranscriptionFrame,
    TTSSpeakFrame,
    UserImageRawFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.aggregators.llm_response_universal import (
    LLMContextAggregatorPair,
    LLMUserAggregatorParams,
)
from pipecat.tests.utils import SleepFrame, run_test
from pipecat.turns.user_turn_strategies import ExternalUserTurnStrategies

from presence.benchmarks.perception import scripted_clip
from presence.processors.perception.engines.describer import AnthropicDescriber
from presence.processors.perception.engines.opencv import HaarEngine
from presence.processors.perception.frames import (
    PerceptionDescriptionFrame,
    PerceptionEventFrame,
    UserPresenceFrame,
)
from presence.processors.perception.processor import PerceptionProcessor, TriggerSpec

pytest.importorskip("skimage")

FPS = 25
SCRIPT = (("present", 3.0), ("absent", 3.0), ("side", 3.0))


@functools.lru_cache(maxsize=8)
def clip_bytes(script, fps: int) -> tuple[bytes, ...]:
    frames, _ = scripted_clip(script, fps=fps)
    return tuple(f.tobytes() for f in frames)


def camera(script, fps: int = FPS) -> list[UserImageRawFrame]:
    """Fresh pipecat camera frames (320x240 RGB) for a scripted clip."""
    return [
        UserImageRawFrame(image=b, size=(320, 240), format="RGB", user_id="u")
        for b in clip_bytes(script, fps)
    ]


def perception(**kwargs) -> PerceptionProcessor:
    return PerceptionProcessor(engine=HaarEngine(), media_fps=FPS, **kwargs)


def of_type(frames, cls):
    return [f for f in frames if isinstance(f, cls)]


async def test_clip_pushes_presence_and_attention_frames_and_fires_presence_handler():
    processor = perception()
    changes = []

    @processor.event_handler("on_presence_change")
    async def on_change(_processor, present, at):
        changes.append((present, at))

    down, _ = await run_test(processor, frames_to_send=camera(SCRIPT))
    events = [(f.kind, f.at) for f in of_type(down, PerceptionEventFrame)]
    kinds = [
        k for k, _ in events if k in ("user_present", "user_absent", "attending", "looking_away")
    ]
    assert kinds == ["user_present", "attending", "user_absent", "user_present", "looking_away"]
    presence = of_type(down, UserPresenceFrame)
    assert [f.present for f in presence] == [True, False, True]
    assert 3.0 <= presence[1].at <= 4.2
    assert [p for p, _ in changes] == [True, False, True]
    # every camera frame still flows on
    assert len(of_type(down, UserImageRawFrame)) == 9 * FPS


async def test_analysis_matches_the_scripted_clip():
    processor = perception()
    await run_test(processor, frames_to_send=camera(SCRIPT))
    report = processor.analysis()
    # on camera 6 of 9 s; looking at the persona 3 of the 6 on-camera seconds
    assert report["presence_pct"] == pytest.approx(66.7, abs=10)
    assert report["absent_pct"] == pytest.approx(33.3, abs=10)  # a usable image, nobody in it
    assert report["unjudgeable_pct"] == 0.0
    assert report["attention_pct"] == pytest.approx(50.0, abs=15)
    assert report["left_frame"] == 1 and report["looked_away"] == 1
    assert report["smiles"] >= 1  # the portrait smiles
    assert report["samples"] == 45 and report["dropped"] == 0
    moments = [m["event"] for m in report["moments"]]
    assert moments.index("user_absent") < moments.index("looking_away")
    assert report["engine_ms"]["p50"] > 0


async def test_black_camera_is_never_presence():
    processor = perception()
    script = (("present", 3.0), ("dark", 3.0), ("present", 3.0))
    down, _ = await run_test(processor, frames_to_send=camera(script))
    presence = of_type(down, UserPresenceFrame)
    assert [f.present for f in presence] == [True, False, True]
    assert presence[1].detail == {"reason": "too_dark"}
    report = processor.analysis()
    # the face was seen for 6 of 9 s; the 3 black seconds are unjudgeable, not presence
    assert report["presence_pct"] == pytest.approx(66.7, abs=8)
    assert report["unjudgeable_pct"] == pytest.approx(33.3, abs=8)
    assert report["unjudgeable_s"]["too_dark"] == pytest.approx(3.0, abs=0.7)
    assert report["absent_pct"] == 0.0
    assert report["presence_pct"] + report["absent_pct"] + report["unjudgeable_pct"] == (
        pytest.approx(100, abs=0.2)
    )


async def test_camera_that_sends_nothing_reads_absent_then_present_then_absent_again():
    """On the wall clock: no frames at first, then the face for a while, then the camera stops."""
    processor = PerceptionProcessor(engine=HaarEngine(), every_ms=100, camera_timeout_s=0.5)
    changes = []

    @processor.event_handler("on_presence_change")
    async def on_change(_processor, present, at):
        changes.append(present)

    face = camera((("present", 1.6),), fps=10)
    paced = [f for frame in face for f in (frame, SleepFrame(sleep=0.1))]
    frames = [SleepFrame(sleep=2.0), *paced, SleepFrame(sleep=2.0)]
    down, _ = await run_test(processor, frames_to_send=frames)
    presence = of_type(down, UserPresenceFrame)
    assert [(f.present, f.detail.get("reason")) for f in presence] == [
        (False, "no_camera"),
        (True, None),
        (False, "no_camera"),
    ]
    assert changes == [False, True, False]
    assert "no camera frames" in processor.summary()
    report = processor.analysis()
    assert report["unjudgeable_s"]["no_camera"] > 1.0
    assert 0 < report["presence_pct"] < 100
    assert report["samples"] > 0 and report["samples"] <= len(face)  # only real frames count


async def test_say_trigger_speaks_after_looking_away_for_a_while():
    trigger = TriggerSpec(when="looking_away", for_s=1.0, say="Are you still there?")
    down, _ = await run_test(
        perception(triggers=[trigger]), frames_to_send=camera((("present", 2.0), ("side", 3.0)))
    )
    spoken = of_type(down, TTSSpeakFrame)
    assert [f.text for f in spoken] == ["Are you still there?"]
    away = next(f for f in of_type(down, PerceptionEventFrame) if f.kind == "looking_away")
    assert down.index(spoken[0]) > down.index(away)


async def test_ask_trigger_sends_an_llm_instruction_upstream():
    trigger = TriggerSpec(when="user_absent", for_s=1.0, ask="Ask whether the user is still there.")
    _, up = await run_test(
        perception(triggers=[trigger]), frames_to_send=camera((("present", 1.0), ("absent", 3.0)))
    )
    appends = of_type(up, LLMMessagesAppendFrame)
    assert len(appends) == 1 and appends[0].run_llm is True
    content = appends[0].messages[0]["content"]
    assert "user absent" in content and "still there" in content


async def test_triggers_wait_while_the_bot_speaks():
    trigger = TriggerSpec(when="looking_away", for_s=0.5, say="Hello?")
    frames = [BotStartedSpeakingFrame(), *camera((("present", 1.0), ("side", 2.0)))]
    down, _ = await run_test(perception(triggers=[trigger]), frames_to_send=frames)
    assert not of_type(down, TTSSpeakFrame)


async def test_summary_lands_in_the_llm_context_before_the_user_message():
    context = LLMContext()
    pair = LLMContextAggregatorPair(
        context,
        user_params=LLMUserAggregatorParams(user_turn_strategies=ExternalUserTurnStrategies()),
    )
    processor = perception()
    pipeline = Pipeline([pair.user(), processor])
    turn = [
        UserStartedSpeakingFrame(),
        TranscriptionFrame(text="Can you see me?", user_id="u", timestamp="now"),
        UserStoppedSpeakingFrame(),
    ]
    down, _ = await run_test(pipeline, frames_to_send=[*camera((("side", 2.0),)), *turn])
    assert of_type(down, LLMContextFrame), "the user turn should run the LLM"
    messages = context.get_messages()
    assert messages[-1] == {"role": "user", "content": "Can you see me?"}
    note = messages[-2]
    assert note["role"] == "developer"
    assert note["content"].startswith("[perception] The user is on camera, looking away")
    assert len(of_type(down, LLMContextFrame)) == 1  # the note did not cause a second run


async def test_describer_against_local_fake_adds_description_to_summary_and_analysis():
    with FakeAnthropicVision(reply="leaning in, smiling broadly") as fake:
        describer = AnthropicDescriber(api_key="sk-test", model="vision-model", base_url=fake.url)
        processor = perception(describer=describer, describe_interval_s=60)
        down, _ = await run_test(processor, frames_to_send=camera((("present", 1.0),)))
    described = of_type(down, PerceptionDescriptionFrame)
    assert [f.text for f in described] == ["leaning in, smiling broadly"]
    assert "leaning in, smiling broadly" in processor.summary()
    assert processor.analysis()["descriptions"][0]["text"] == "leaning in, smiling broadly"
    request = fake.requests[0]
    assert request["model"] == "vision-model"
    image, text = request["messages"][0]["content"]
    assert image["type"] == "image" and image["source"]["media_type"] == "image/jpeg"
    assert base64.b64decode(image["source"]["data"])[:2] == b"\xff\xd8"  # a JPEG
    assert text["type"] == "text"
    assert fake.headers[0]["x-api-key"] == "sk-test"


async def test_live_clock_keeps_only_the_newest_frame_while_the_engine_is_busy():
    ticks = iter(i / FPS for i in range(10_000))  # a camera clock: one tick per frame
    processor = PerceptionProcessor(engine=HaarEngine(), clock=lambda: next(ticks))
    warnings = []
    handler = logger.add(lambda m: warnings.append(str(m)), level="WARNING")
    try:
        await run_test(processor, frames_to_send=camera(SCRIPT))
    finally:
        logger.remove(handler)
    report = processor.analysis()
    # frames arrive far faster than the engine runs: samples are dropped, never queued up
    assert report["dropped"] > 0
    assert report["samples"] + report["dropped"] == 45
    assert not [w for w in warnings if "still queued" in w]
