"""Running one conversation's pipeline over any pipecat transport, reporting to ``SessionEvents``.

``run_pipeline_session`` is the transport-independent part of every launcher (WebRTC page, Daily
room, file transport, a test transport; in the service's process or in a session process): build
the session, greet when the user connects, report the transcript as it grows and the perception
analysis, record the call when asked, and report a failing stage (``events.failed``) and the end
(``events.left``).

Interactions (``presence.processors.interactions``): every session has an
``InteractionsProcessor`` right after the transport input, so the user's page (data channel) and
server-side callers can make the replica echo text, respond as if the user spoke, stop, or change
its conversational context, and the page receives ``conversation.utterance`` and speaking events.

Guardrails and objectives (``spec.guardrails``/``spec.objectives``, from the persona's sets):
``conversation_processors`` adds the guardrails' input check before the LLM and output screen
before TTS, and the objectives tracker after the user aggregator; each firing and completion is
reported through ``events.guardrail``/``events.objective``.

Preparation: building a session's stages loads models (seconds). ``prepare_conversation`` does it
(with the guardrail and objective processors) without a transport, and ``run_pipeline_session``
only wires what was prepared: given ``prepared`` (a launcher starts it in a thread with
``in_thread`` when the conversation is created), or else it prepares in a thread itself. Either way
the event loop never loads a model, so a browser's ICE/DTLS handshake is not stalled by one.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from loguru import logger
from pipecat.frames.frames import ErrorFrame
from pipecat.transports.base_transport import BaseTransport

from presence.framework.errors import ConfigError, PresenceError
from presence.processors.turns.sensitivity import TurnControls
from presence.service.pipelines import apply_persona
from presence.service.session_spec import ConversationSpec, SessionEvents

TRANSCRIPT_POLL_SECS = 0.5


class LaunchError(PresenceError):
    """A conversation's pipeline cannot start; ``stage`` names what failed."""

    def __init__(self, message: str, stage: str):
        self.stage = stage
        super().__init__(message)


def load_conversation_pipeline(spec: ConversationSpec) -> Any:
    """The conversation's ``LoadedPipeline`` with the persona updates applied.

    Raises:
        LaunchError: The pipeline or persona is invalid (stage ``config``).
    """
    from presence.framework.config import load_pipeline

    try:
        loaded = load_pipeline(spec.pipeline, spec.overrides)
    except ConfigError as exc:
        raise LaunchError(str(exc), stage="config") from None
    loaded.persona = apply_persona(loaded.persona, spec.persona)
    if spec.guardrails:
        from presence.service.intelligence import guardrail_prompts

        note = guardrail_prompts(spec.guardrails)
        if note:  # Tavus's guardrail prompts steer an LLM; phrases and topics are enforced
            context = f"{loaded.persona.context}\n\n{note}".strip()
            loaded.persona = loaded.persona.model_copy(update={"context": context})
    return loaded


GUARDRAIL_JUDGE_TIMEOUT_S = 1.5
"""The most a guardrail verdict may hold a sentence back (then the rules' verdict stands)."""
OBJECTIVE_JUDGE_TIMEOUT_S = 10.0
"""The most an objective verdict may take (it runs beside the turn, not in its way)."""


def conversation_processors(spec: ConversationSpec, events: SessionEvents) -> dict[str, list]:
    """The guardrail and objective processors of a conversation, by insert point.

    With a cloud LLM (openai, anthropic) the same model judges the guardrails' prompts and the
    objectives' completion (``LLMJudge``); offline, the rules alone do.
    """
    from presence.processors.guardrails.engines.rules import Guardrails
    from presence.processors.guardrails.processor import make_guards
    from presence.processors.llm.engines.judge import LLMJudge
    from presence.processors.objectives.engines.tracker import ObjectiveTracker
    from presence.processors.objectives.processor import ObjectivesProcessor
    from presence.service.memories import conversation_llm

    cid = spec.conversation_id
    points: dict[str, list] = {}
    llm = (
        conversation_llm(spec.pipeline, spec.overrides)
        if spec.guardrails or spec.objectives
        else None
    )
    if spec.guardrails:

        def report(trigger) -> None:
            events.guardrail(
                {"guardrail_name": trigger.guardrail_name, "side": trigger.side,
                 "matched": trigger.matched, "by": trigger.by}
            )  # fmt: skip

        # the client event is on unless every guardrail turned it off (Tavus's app_message)
        app_message = any(g.get("app_message", True) for g in spec.guardrails)
        guards = make_guards(
            Guardrails.from_dicts(spec.guardrails),
            conversation_id=cid,
            on_trigger=report,
            app_message=app_message,
            judge=LLMJudge.from_llm_settings(llm, timeout_s=GUARDRAIL_JUDGE_TIMEOUT_S),
        )
        for point, processors in guards.items():
            points.setdefault(point, []).extend(processors)
    if spec.objectives:

        def completed(completion, state) -> None:
            events.objective(
                {"objective_name": completion.objective_name,
                 "output_variables": completion.output_variables,
                 "next_objectives": completion.activated},
                state,
            )  # fmt: skip

        tracker = ObjectiveTracker.from_dicts(spec.objectives)
        points.setdefault("after_user_aggregator", []).append(
            ObjectivesProcessor(
                tracker,
                conversation_id=cid,
                on_completed=completed,
                judge=LLMJudge.from_llm_settings(llm, timeout_s=OBJECTIVE_JUDGE_TIMEOUT_S),
            )
        )
    return points


def prepare_conversation(
    loaded: Any,
    events: SessionEvents,
    spec: ConversationSpec | None = None,
    *,
    fast: bool = False,
    extras: dict[str, Any] | None = None,
) -> Any:
    """Build and warm up one session's stages and ``spec``'s guardrails and objectives.

    Blocking (it loads models): run it in a thread (``in_thread``). The result
    (``PreparedStages``) is for one session only.

    Raises:
        LaunchError: A stage failed to build (``stage`` names it), or the guardrails or
            objectives are invalid (stage ``build``).
    """
    from presence.framework.builder import prepare_stages

    try:
        insert = conversation_processors(spec, events) if spec is not None else {}
    except Exception as exc:  # stored sets are validated; this is a last resort
        raise LaunchError(f"guardrails or objectives: {exc}", stage="build") from None
    try:
        return prepare_stages(loaded, fast=fast, extras=extras, insert=insert)
    except Exception as exc:
        stage = str(getattr(exc, "field", None) or "build").removeprefix("stages.")
        raise LaunchError(str(exc), stage=stage) from None


def in_thread(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> asyncio.Future:
    """Start ``fn(*args, **kwargs)`` in a daemon thread; its outcome as a future of this loop.

    Unlike ``asyncio.to_thread``, a process (or loop) that ends while ``fn`` still runs does not
    wait for it: a conversation ended while its models load ends at once. Cancelling the future
    drops the result. Call from a running event loop.
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future = loop.create_future()

    def settle(result: Any, error: BaseException | None) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)

    def run() -> None:
        try:
            outcome: tuple[Any, BaseException | None] = (fn(*args, **kwargs), None)
        except BaseException as exc:  # handed to the awaiting coroutine
            outcome = (None, exc)
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is waiting
            loop.call_soon_threadsafe(settle, *outcome)

    threading.Thread(target=run, name=f"presence-{fn.__name__}", daemon=True).start()
    return future


def make_interactions(loaded: Any, conversation_id: str | None = None) -> Any:
    """The conversation's ``InteractionsProcessor`` (its context starts from the persona's)."""
    from presence.processors.interactions.processor import InteractionsProcessor

    return InteractionsProcessor(
        conversation_id=conversation_id,
        system_prompt=loaded.persona.system_prompt,
        context=loaded.persona.context,
    )


async def submit_interaction(interactions: Any, message: Any) -> str:
    """Queue ``message`` on a live session's processor; returns the accepted ``event_type``.

    Raises:
        InteractionError: The message is invalid.
        NotRunningError: The session's pipeline is not running (an ``InteractionError``).
    """
    from presence.processors.interactions.engines.protocol import NotRunningError

    if interactions is None:
        raise NotRunningError("the conversation's pipeline is not running (nobody joined yet)")
    return (await interactions.submit(message)).event_type


def stage_of(session: Any, processor: Any) -> str | None:
    """The stage name of ``processor`` in a built session (its pipecat name when not a stage)."""
    for name, built in session.stages.items():
        if built is processor:
            return name
    return getattr(processor, "name", None)


def _recorder(loaded: Any, path: Path) -> Any:
    from presence.service.recording import CallRecorder

    video = getattr(loaded.transport, "video", None)
    return CallRecorder(
        path,
        width=video.width if video else 512,
        height=video.height if video else 512,
        fps=video.fps if video else 25,
    )


async def run_pipeline_session(
    loaded: Any,
    transport: BaseTransport,
    events: SessionEvents,
    *,
    fast: bool = False,
    recording_path: Path | None = None,
    extras: dict[str, Any] | None = None,
    interactions: Any = None,
    spec: ConversationSpec | None = None,
    prepared: Any = None,
) -> None:
    """Build and run one session over ``transport``, reporting to ``events`` until it ends.

    ``spec`` (the conversation) adds its guardrails and objectives
    (``conversation_processors``).

    ``prepared`` is the session's ``PreparedStages`` from ``prepare_conversation`` (already
    holding ``spec``'s processors, ``fast`` and ``extras``), or an awaitable of it (a future from
    ``in_thread``, awaited here without blocking the loop); when ``None`` they are prepared here,
    in a thread. A preparation that failed is reported as ``events.failed(stage, ...)``.

    ``interactions`` is the session's ``InteractionsProcessor`` (``make_interactions``; one is
    made when ``None``): it goes right after the transport input, its observer on the worker.

    The persona greets when the transport reports ``on_client_connected`` (or at once when the
    transport has no such event). With ``recording_path`` the call is recorded there
    (``presence.service.recording``) and reported through ``events.recording`` before
    ``events.left``. Returns when the pipeline ends or the task is cancelled.
    """
    from pipecat.workers.runner import WorkerRunner

    from presence.framework.builder import build_session
    from presence.framework.observers.transcript import TranscriptObserver

    try:
        if prepared is None:
            prepared = in_thread(
                prepare_conversation, loaded, events, spec, fast=fast, extras=extras
            )
        if inspect.isawaitable(prepared):
            prepared = await prepared
    except LaunchError as exc:
        events.failed(exc.stage, str(exc))
        return
    recorder = None
    transcript = TranscriptObserver()  # the builder marks it screened when guardrails are on
    observers: list[Any] = [transcript]
    try:
        if interactions is None:
            interactions = make_interactions(loaded)
        observers.append(interactions.observer())
        if recording_path is not None:
            recorder = _recorder(loaded, recording_path)
            observers.append(recorder)
        session = build_session(
            loaded, transport, observers=observers, after_input=[interactions], prepared=prepared
        )
        interactions.turn_controls = TurnControls(session.stages.get("vad"),
                                                  session.stages.get("turn"))  # fmt: skip
    except Exception as exc:
        failed_recorder = recording_path is not None and recorder is None
        stage = getattr(exc, "field", None) or ("recording" if failed_recorder else "build")
        events.failed(str(stage).removeprefix("stages."), str(exc))
        return

    @session.worker.event_handler("on_pipeline_error")
    async def on_error(_worker, frame: ErrorFrame) -> None:
        processor = frame.processor
        if frame.fatal or (processor is not None and not processor.is_usable):
            events.failed(stage_of(session, processor), frame.error)

    greeted = asyncio.Event()

    async def join() -> None:
        if not greeted.is_set():
            greeted.set()
            events.joined()
            await session.greet()

    has_connect = "on_client_connected" in getattr(transport, "_event_handlers", {})
    if has_connect:

        @transport.event_handler("on_client_connected")
        async def on_connected(_transport, _client) -> None:
            await join()

    async def report() -> None:
        while True:
            await asyncio.sleep(TRANSCRIPT_POLL_SECS)
            events.transcript(transcript.report()["turns"])
            perception = session.stages.get("perception")
            if perception is not None and hasattr(perception, "analysis"):
                with contextlib.suppress(Exception):
                    events.perception(perception.analysis())

    reporter = asyncio.create_task(report())
    runner = WorkerRunner(handle_sigint=False)
    try:
        await runner.add_workers(session.worker)
        if not has_connect:
            asyncio.get_running_loop().call_soon(lambda: asyncio.ensure_future(join()))
        await runner.run()
    finally:
        reporter.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reporter
        events.transcript(transcript.report()["turns"])
        perception = session.stages.get("perception")
        if perception is not None and hasattr(perception, "analysis"):
            with contextlib.suppress(Exception):
                events.perception(perception.analysis())
        if recorder is not None:
            try:
                summary = await recorder.close()
                if greeted.is_set():
                    events.recording(str(recorder.path), summary["duration_s"])
                else:  # nobody joined (a room the user never entered): nothing worth keeping
                    recorder.path.unlink(missing_ok=True)
            except Exception as exc:  # the call is over; a broken file must not hide that
                logger.warning(f"recording {recorder.path.name} failed: {exc!r}")
        events.left()
