"""Deepgram streaming STT (``provider: deepgram``), built on pipecat's ``DeepgramSTTService``.

What this adds to pipecat's service: a dropped socket no longer loses or repeats words. Pipecat
reconnects after a 4-10 s backoff and drops the audio sent meanwhile; here the audio sent since
the last *final* result is kept (Deepgram's ``start + duration`` of each final result says how
much of it was finalized), and after reconnecting the rest is replayed on the new socket before
live audio resumes, followed by a ``Finalize`` if the user stopped speaking during the gap.
Words finalized before the drop are never sent again, so they are not duplicated.

A socket that stays open but goes silent (a hung provider) is caught too: when nothing at all
comes back within ``stall_timeout_s`` after the user stopped speaking (a healthy Deepgram answers
the ``Finalize`` at once), the stall is reported as a non-fatal ``ProviderTimeout`` error and the
socket is replaced, so the kept audio is replayed and the transcript still arrives (a user who
speaks again before then is not a stall: the watch starts over at the next stop, so a ``Finalize``
never cuts a word in two). When the new socket stalls on the same speech too, the persona says
``NOT_HEARD`` so the user is not left waiting, and nothing more is tried until the user speaks
again; the audio is still kept (up to ``replay_max_s``) and replayed with the next utterance, so
no words are lost.

Constraints: linear16 mono; the replay buffer holds at most ``replay_max_s`` of audio; the first
reconnect waits ``reconnect_wait_s`` (doubling, at most 2 s); after 3 connections in a row that
die within 5 s, the service gives up and reports itself unusable (pipecat's rule), which lets a
``fallback:`` STT take over.
"""

from __future__ import annotations

import asyncio
import time

from loguru import logger
from pipecat.frames.frames import (
    Frame,
    TTSSpeakFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.processors.frame_processor import FrameDirection
from pipecat.services.deepgram.stt import DeepgramSTTService
from pydantic import Field, model_validator

from presence.framework.errors import ProviderTimeout
from presence.framework.registry import BuildContext, StageParams, register
from presence.processors._secrets import resolve_api_key

try:
    from deepgram.core import ApiError
    from deepgram.core.events import EventType
    from deepgram.listen.v1.types import ListenV1Finalize, ListenV1Results
except ModuleNotFoundError:  # pragma: no cover - pipecat's import above already failed
    raise

ENV = "DEEPGRAM_API_KEY"
NOT_HEARD = "Sorry, I didn't catch that. Could you say it again?"


class DeepgramParams(StageParams):
    """Parameters of ``provider: deepgram``.

    Attributes:
        api_key: Deepgram key; defaults to ``$DEEPGRAM_API_KEY``.
        base_url: ``wss://host`` of a self-hosted or regional endpoint (``ws://`` allowed).
        model: Deepgram model, e.g. ``nova-3-general``.
        language: BCP-47 language tag.
        interim_results: Emit interim transcripts while the user speaks.
        endpointing_ms: Deepgram's silence endpointing; ``None`` leaves Deepgram's default.
        smart_format: Deepgram smart formatting.
        keyterms: Words to boost (nova-3 ``keyterm``).
        reconnect_wait_s: First wait before reconnecting a dropped socket.
        replay_max_s: Most audio kept for replay after a drop.
        stall_timeout_s: Silence from Deepgram after the user stopped speaking that counts as a
            stalled socket (it is then replaced and the speech replayed).
    """

    api_key: str | None = None
    base_url: str = ""
    model: str = "nova-3-general"
    language: str = "en-US"
    interim_results: bool = True
    endpointing_ms: int | None = Field(default=None, ge=10)
    smart_format: bool = True
    keyterms: list[str] = Field(default_factory=list)
    reconnect_wait_s: float = Field(default=0.25, gt=0, le=10)
    replay_max_s: float = Field(default=15.0, gt=0, le=120)
    stall_timeout_s: float = Field(default=3.0, gt=0, le=30)

    @model_validator(mode="after")
    def _key(self) -> DeepgramParams:
        self.api_key = resolve_api_key(self.api_key, ENV, "deepgram")
        return self


class ResilientDeepgramSTTService(DeepgramSTTService):
    """``DeepgramSTTService`` that replays unfinalized audio after a reconnect.

    Args:
        reconnect_wait_s: First wait before reconnecting; doubles per failed try, at most 2 s.
        replay_max_s: Most audio kept for replay.
        stall_timeout_s: Silence after the user stopped speaking that counts as a stall.
        **kwargs: Passed to ``DeepgramSTTService``.
    """

    def __init__(
        self,
        *,
        reconnect_wait_s: float = 0.25,
        replay_max_s: float = 15.0,
        stall_timeout_s: float = 3.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self._reconnect_wait_s = reconnect_wait_s
        self._replay_max_s = replay_max_s
        self._stall_timeout_s = stall_timeout_s
        self._heard_at = 0.0  # when the socket last said anything
        self._stalled = asyncio.Event()
        self._stall_watch: asyncio.Task | None = None
        self._stalls_in_a_row = 0
        self.stalls = 0
        self._pending = bytearray()  # audio sent (or owed) since the last final result
        self._pending_t0 = 0.0  # its start on the current connection's clock, in seconds
        self._finalize_owed = False
        self._user_speaking = False
        self.reconnects = 0

    @property
    def _bytes_per_s(self) -> int:
        return max(self.sample_rate, 1) * 2 * self._channels

    def _keep(self, audio: bytes) -> None:
        self._pending += audio
        excess = len(self._pending) - int(self._replay_max_s * self._bytes_per_s)
        if excess > 0:
            excess += excess % (2 * self._channels)
            del self._pending[:excess]
            self._pending_t0 += excess / self._bytes_per_s

    def _trim_to(self, end_s: float) -> None:
        """Forget audio up to ``end_s`` on the connection clock (it has been finalized)."""
        frame = 2 * self._channels
        cut = int((end_s - self._pending_t0) * self._bytes_per_s)
        cut = min(max(cut - cut % frame, 0), len(self._pending))
        del self._pending[:cut]
        self._pending_t0 += cut / self._bytes_per_s

    async def run_stt(self, audio: bytes):
        """Keep the audio for replay, then send it if a socket is up."""
        self._keep(audio)
        if self._connection:
            try:
                await self._connection.send_media(audio)
            except Exception as e:
                logger.warning(f"{self}: send failed, reconnecting: {e}")
                self._connection = None
        yield None

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        """Remember a ``Finalize`` that could not be sent; watch for an answer to the user.

        The watch runs only while the user is quiet: a user who speaks again within
        ``stall_timeout_s`` is not cut off mid-word by a replay's ``Finalize``.
        """
        if isinstance(frame, VADUserStartedSpeakingFrame):
            self._user_speaking = True
        elif isinstance(frame, VADUserStoppedSpeakingFrame):
            self._user_speaking = False
            self._finalize_owed = not self._connection  # a live socket gets pipecat's own
            self._arm_stall_watch()
        await super().process_frame(frame, direction)

    def _arm_stall_watch(self) -> None:
        """Expect Deepgram to say something within ``stall_timeout_s`` from now."""
        if self._stall_watch is not None and not self._stall_watch.done():
            self._stall_watch.cancel()
        self._stall_watch = self.create_task(self._watch(time.monotonic()), "stall_watch")

    async def cleanup(self):
        """Stop the stall watch with the service."""
        if self._stall_watch is not None:
            await self.cancel_task(self._stall_watch)
            self._stall_watch = None
        await super().cleanup()

    async def _watch(self, stopped_at: float) -> None:
        """After the user stopped speaking: report and replace a socket that stays silent."""
        await asyncio.sleep(self._stall_timeout_s)
        if self._heard_at >= stopped_at or not self._connection or not self._pending:
            return
        if self._user_speaking:  # speaking again: the next stop watches this socket anew
            return
        self.stalls += 1
        self._stalls_in_a_row += 1
        seconds = self._stall_timeout_s
        error = ProviderTimeout(
            f"no transcript {seconds:.1f} s after the user stopped speaking",
            provider="deepgram",
            stage="stt",
        )
        logger.warning(f"{self}: {error}; replacing the socket and replaying the speech")
        await self.push_error(
            f"deepgram stalled: {error}; sending the speech again", exception=error
        )
        if self._stalls_in_a_row == 2:
            await self.push_frame(TTSSpeakFrame(NOT_HEARD))
        self._finalize_owed = True
        self._stalled.set()

    async def _on_message(self, message):
        self._heard_at = time.monotonic()
        if isinstance(message, ListenV1Results) and message.is_final:
            self._stalls_in_a_row = 0
            self._trim_to(float(message.start or 0) + float(message.duration or 0))
        await super()._on_message(message)

    async def _listen(self, connection) -> None:
        """Listen until the socket closes, or until the stall watch gives up on it."""
        self._stalled.clear()
        listening = self.create_task(connection.start_listening(), "listen")
        stalled = self.create_task(self._stalled.wait(), "stalled")
        try:
            await asyncio.wait({listening, stalled}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            gave_up = stalled.done() and not listening.done()
            for task in (listening, stalled):
                if not task.done():
                    await self.cancel_task(task)
        if gave_up:
            raise ProviderTimeout("the socket stalled", provider="deepgram", stage="stt")
        listening.result()

    async def _replay(self, connection) -> None:
        """Send the kept audio on a fresh socket, then let live audio through."""
        self._pending_t0 = 0.0
        sent = 0
        while sent < len(self._pending):
            chunk = bytes(self._pending[sent:])
            await connection.send_media(chunk)
            sent += len(chunk)
        if sent:
            logger.info(f"{self}: replayed {sent / self._bytes_per_s:.2f} s after reconnecting")
        self._connection = connection  # no await since the loop check: nothing slips past
        if self._finalize_owed and not self._user_speaking:  # else VAD's stop finalizes
            self._finalize_owed = False
            self.request_finalize()
            await connection.send_finalize(ListenV1Finalize(type="Finalize"))
            if self._stalls_in_a_row < 2:  # after the apology, wait for the user to speak again
                self._arm_stall_watch()  # the replayed speech must be answered too

    async def _connection_handler(self):
        """Pipecat's connection loop with a short backoff and a replay on each reconnect."""
        first = True
        try:
            while True:
                keepalive_task = None
                connected_at = None
                stalled = False
                try:
                    kwargs = self._build_connect_kwargs()
                    async with self._client.listen.v1.connect(**kwargs) as connection:
                        connected_at = time.monotonic()
                        connection.on(EventType.MESSAGE, self._on_message)
                        connection.on(EventType.ERROR, self._on_error)
                        if not first:
                            self.reconnects += 1
                        first = False
                        await self._replay(connection)
                        self._connection_settled.set()
                        keepalive_task = self.create_task(
                            self._keepalive_handler(), f"{self}::keepalive"
                        )
                        await self._listen(connection)
                except ApiError as e:
                    if e.status_code is not None and 400 <= e.status_code < 500:
                        msg = f"Deepgram rejected the connection (status {e.status_code}): {e}"
                        await self.push_error(msg, exception=e, force_treat_as_permanent=True)
                        return
                    await self.push_error(f"connection error: {e}", exception=e)
                except ProviderTimeout:
                    stalled = True  # reported by the watch; reconnect and replay
                except Exception as e:
                    logger.warning(f"{self}: connection lost, reconnecting: {e}")
                    await self.push_error(f"connection error: {e}", exception=e)
                finally:
                    self._connection = None
                    if keepalive_task:
                        await self.cancel_task(keepalive_task)
                uptime = time.monotonic() - connected_at if connected_at is not None else 0.0
                if stalled:  # it connected and took audio: not a socket that cannot stay up
                    await asyncio.sleep(self._reconnect_wait_s)
                    continue
                if self._quick_failure_tracker.record(uptime).should_give_up:
                    msg = "connection failed to stay up 3 times in a row"
                    await self.push_error(msg, force_treat_as_permanent=True)
                    return
                count = max(self._quick_failure_tracker.count, 1)
                await asyncio.sleep(min(self._reconnect_wait_s * 2 ** (count - 1), 2.0))
        finally:
            self._connection_settled.set()


@register(
    "stt",
    "deepgram",
    DeepgramParams,
    summary="Deepgram streaming STT (cloud or base_url); reconnects without losing words",
)
def build(params: DeepgramParams, ctx: BuildContext) -> ResilientDeepgramSTTService:
    """Build the Deepgram STT stage."""
    settings = DeepgramSTTService.Settings(
        model=params.model,
        language=params.language,
        interim_results=params.interim_results,
        smart_format=params.smart_format,
        punctuate=True,
    )
    if params.endpointing_ms is not None:
        settings.endpointing = params.endpointing_ms
    if params.keyterms:
        settings.keyterm = list(params.keyterms)
    return ResilientDeepgramSTTService(
        api_key=params.api_key,
        base_url=params.base_url,
        sample_rate=ctx.audio_in_sample_rate,
        settings=settings,
        reconnect_wait_s=params.reconnect_wait_s,
        replay_max_s=params.replay_max_s,
        stall_timeout_s=params.stall_timeout_s,
    )
