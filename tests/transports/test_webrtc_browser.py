"""The browser page end to end: headless Chromium ↔ our server ↔ pipecat SmallWebRTC.

A scripted persona stands in for the real pipeline: it paints a moving pattern at 25 fps, plays one
"turn" (user speaks → transcript → bot tone + caption) and records what reaches it from the
browser's fake microphone and camera. The page must show the persona's video and audio, both
captions and the turn's latency (the server's figure, counted from the end of the user's voice),
and hanging up must end the session on the server.
"""

from __future__ import annotations

import asyncio
import wave
from contextlib import asynccontextmanager
from pathlib import Path

import numpy as np
from helpers.browser import chromium_driver, require_chromium, wait_for_page
from pipecat.frames.frames import (
    CancelFrame,
    ClientConnectedFrame,
    EndFrame,
    Frame,
    InputAudioRawFrame,
    InputImageRawFrame,
    OutputImageRawFrame,
    StartFrame,
    TranscriptionFrame,
    TTSAudioRawFrame,
    TTSStartedFrame,
    TTSStoppedFrame,
    TTSTextFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.utils.time import time_now_iso8601
from pipecat.workers.runner import WorkerRunner

from presence.framework.frames import RevisedTranscriptionFrame
from presence.framework.observers import attach_turn_latency
from presence.framework.observers.revisions import attach_transcript_revisions
from presence.transports.webrtc import WebRTCServer, webrtc_params

W, H, FPS = 160, 120, 25
OUT_RATE = 24000
VAD_STOP_SECS = 0.3  # the silence the scripted VAD "waited" for before saying the voice stopped
TURN_WAIT_S = 0.2  # VAD stop → turn decided (RTVI user-stopped-speaking)
SCRIPTED_GAP_S = 0.5  # turn decided → bot audio starts, on the server
RESUME_AFTER_S = 1.5  # bot's answer sent → the user's turn heard again with what followed
RESUMED = "what is presence and how do I change its voice"


def tone(seconds: float, rate: int, freq: float = 440.0, amp: float = 0.3) -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    return (np.sin(2 * np.pi * freq * t) * amp * 32767).astype(np.int16).tobytes()


def write_mic_wav(path: Path, rate: int = 48000) -> Path:
    """Four seconds of 300 Hz bursts, the fake microphone's input."""
    burst = np.frombuffer(tone(0.5, rate, 300.0), dtype=np.int16)
    pcm = np.concatenate([burst, np.zeros_like(burst)] * 4)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())
    return path


class ScriptedPersona(FrameProcessor):
    """Paints frames, plays one scripted turn once the browser connects, records its input."""

    def __init__(self):
        super().__init__()
        self.mic_peak = 0.0
        self.camera_frames = 0
        self.latency = None  # the session's TurnLatencyObserver
        self._tasks: list[asyncio.Task] = []

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        await super().process_frame(frame, direction)
        if isinstance(frame, InputAudioRawFrame):
            pcm = np.frombuffer(frame.audio, dtype=np.int16)
            if pcm.size:
                self.mic_peak = max(self.mic_peak, float(np.abs(pcm).max()) / 32767)
            return
        if isinstance(frame, InputImageRawFrame):
            self.camera_frames += 1
            return
        if isinstance(frame, StartFrame):
            await self.push_frame(frame, direction)
            self._tasks.append(asyncio.create_task(self._paint()))
            return
        if isinstance(frame, ClientConnectedFrame):
            self._tasks.append(asyncio.create_task(self._turn()))
        if isinstance(frame, (EndFrame, CancelFrame)):
            for task in self._tasks:
                task.cancel()
        await self.push_frame(frame, direction)

    async def _paint(self):
        x = np.arange(W)
        i = 0
        while True:
            row = ((x + i * 4) % 256).astype(np.uint8)
            img = np.stack([np.tile(row, (H, 1))] * 3, axis=-1)
            await self.push_frame(
                OutputImageRawFrame(image=img.tobytes(), size=(W, H), format="RGB")
            )
            i += 1
            await asyncio.sleep(1 / FPS)

    async def _turn(self):
        await asyncio.sleep(1.0)  # let the data channel open and the page send client-ready
        await self.push_frame(VADUserStartedSpeakingFrame())
        await self.push_frame(UserStartedSpeakingFrame())
        # the STT's first transcript, then the whole turn heard again (it replaces the first)
        await self.push_frame(
            TranscriptionFrame(text="what is", user_id="user", timestamp=time_now_iso8601())
        )
        await self.push_frame(
            RevisedTranscriptionFrame(
                text="what is presence", user_id="user", timestamp=time_now_iso8601(),
                revises="what is",
            )
        )  # fmt: skip
        await self.push_frame(VADUserStoppedSpeakingFrame(stop_secs=VAD_STOP_SECS))
        await asyncio.sleep(TURN_WAIT_S)
        await self.push_frame(UserStoppedSpeakingFrame())
        await asyncio.sleep(SCRIPTED_GAP_S)
        await self.push_frame(TTSStartedFrame())
        audio = tone(1.0, OUT_RATE)
        chunk = OUT_RATE * 2 // 50  # 20 ms
        for start in range(0, len(audio), chunk):
            await self.push_frame(
                TTSAudioRawFrame(
                    audio=audio[start : start + chunk], sample_rate=OUT_RATE, num_channels=1
                )
            )
        await self.push_frame(TTSTextFrame(text="Presence is a framework.", text_type="sentence"))
        await self.push_frame(TTSStoppedFrame())
        # the user goes on at once: the STT hears the taken turn again with what followed
        await asyncio.sleep(RESUME_AFTER_S)
        await self.push_frame(
            RevisedTranscriptionFrame(
                text=RESUMED, user_id="user", timestamp=time_now_iso8601(),
                revises="what is presence",
            )
        )  # fmt: skip


@asynccontextmanager
async def page_server(personas: list[ScriptedPersona], ended: asyncio.Event):
    """Our page server on a free loopback port, one ScriptedPersona pipeline per browser session."""

    async def on_session(transport, session_id):
        persona = ScriptedPersona()
        personas.append(persona)
        worker = PipelineWorker(
            Pipeline([transport.input(), persona, transport.output()]),
            params=PipelineParams(audio_in_sample_rate=16000, audio_out_sample_rate=OUT_RATE),
        )
        persona.latency = attach_turn_latency(worker)  # as the builder does
        attach_transcript_revisions(worker)
        runner = WorkerRunner(handle_sigint=False)
        await runner.add_workers(worker)
        try:
            await runner.run()
        finally:
            ended.set()

    server = WebRTCServer(
        on_session,
        params=lambda: webrtc_params(width=W, height=H, fps=FPS, camera_fps=5),
        ice_host_addresses=["127.0.0.1"],  # works where loopback is the only interface
        title="Test Guide",
    )
    sock = server.bind("127.0.0.1", 0)
    serving = asyncio.create_task(server.serve(sock=sock))
    try:
        yield server, f"http://127.0.0.1:{sock.getsockname()[1]}/"
    finally:
        serving.cancel()
        await asyncio.gather(serving, return_exceptions=True)


async def test_page_receives_persona_media_captions_and_latency(tmp_path):
    require_chromium()
    wav = write_mic_wav(tmp_path / "mic.wav")
    personas: list[ScriptedPersona] = []
    ended = asyncio.Event()

    def drive_browser(url: str) -> tuple[dict, dict]:
        with chromium_driver(wav) as driver:
            driver.get(url)
            wait_for_page(driver, "p => p.state === 'idle' && p.botName === 'Test Guide'")
            driver.find_element("id", "connect").click()
            state = wait_for_page(
                driver,
                "p => p.state === 'ready' && p.remoteVideoFrames >= 25 && p.remoteAudioEnergy > 0"
                " && p.lastLatencyMs !== null && p.captions.some(c => c.role === 'bot' && c.text)",
                timeout=15,
            )
            caption_text = driver.find_element("id", "captions").text
            resumed = wait_for_page(
                driver, f"p => p.captions.some(c => c.role === 'user' && c.text === '{RESUMED}')"
            )
            latency_text = driver.find_element("id", "latency").text
            latency_detail = driver.find_element("id", "latency-detail").text
            driver.find_element("id", "mute").click()
            muted = wait_for_page(driver, "p => p.micMuted")
            mute_label = driver.find_element("id", "mute").text
            driver.find_element("id", "hangup").click()
            after = wait_for_page(driver, "p => p.state === 'disconnected'")
            # A second call from the same page works like the first.
            driver.find_element("id", "connect").click()
            again = wait_for_page(
                driver,
                "p => p.state === 'ready' && p.remoteVideoFrames >= 5"
                " && p.timing.first_frame !== undefined",
            )
            return state, {
                **after,
                "resumed": resumed,
                "caption_text": caption_text,
                "latency_text": latency_text,
                "latency_detail": latency_detail,
                "muted": muted,
                "mute_label": mute_label,
                "again": again,
            }

    async with page_server(personas, ended) as (server, url):
        state, after = await asyncio.to_thread(drive_browser, url)
        await asyncio.wait_for(ended.wait(), timeout=10)
        live_sessions = len(server.sessions)

    # The persona's media reached the page, and the page timed the connect in order.
    timing = state["timing"]
    steps = ["offer_sent", "answer", "connected", "first_frame"]
    assert [timing[s] for s in steps] == sorted(timing[s] for s in steps), timing
    assert state["connectMs"] == timing["first_frame"] - timing["offer_sent"]
    assert after["again"]["timing"]["offer_sent"] < after["again"]["timing"]["first_frame"]
    assert state["remoteAudio"] and state["remoteVideo"]
    assert state["remoteVideoFrames"] >= 25
    assert state["remoteVideoSize"] == [W, H]
    assert state["remoteAudioEnergy"] > 0, "only silence arrived"
    # Both sides are captioned, in order, and shown on the page.
    roles = [c["role"] for c in state["captions"] if c["text"]]
    assert roles[:2] == ["user", "bot"], state["captions"]
    assert state["captions"][0]["text"] == "what is presence", state["captions"]  # revised
    assert "what is presence" in after["caption_text"]
    # A revision of the taken turn moves its words to the new one: shown once, not twice.
    users = [c["text"] for c in after["resumed"]["captions"] if c["role"] == "user" and c["text"]]
    assert users == [RESUMED], after["resumed"]["captions"]
    assert "Presence is a framework." in after["caption_text"]
    assert "TEST GUIDE" in after["caption_text"].upper()  # the bot's turn is labelled with its name
    # The page shows the server's figure, which counts from the end of the user's voice: the
    # VAD's silence, the turn decision's wait and the answer's delay are all in it.
    reported = personas[0].latency.reports[0]
    assert state["lastLatency"] == reported
    assert state["lastLatencyMs"] == reported["voice_to_voice_ms"]
    assert after["latency_text"] == f"{reported['voice_to_voice_ms']} ms"
    assert "turn decided" in after["latency_detail"]
    assert reported["end_of_speech_ms"] == VAD_STOP_SECS * 1000
    assert reported["turn_decided_ms"] >= (VAD_STOP_SECS + TURN_WAIT_S) * 1000 * 0.95
    assert state["lastLatencyMs"] >= (VAD_STOP_SECS + TURN_WAIT_S + SCRIPTED_GAP_S) * 1000 * 0.95
    # The browser's microphone and camera reached the pipeline.
    persona = personas[0]
    assert persona.mic_peak > 0.05, "the fake microphone's bursts never arrived"
    assert persona.camera_frames > 0, "no camera frame reached the pipeline"
    # Mute flips the button; hanging up ends the session on the server; a new call works.
    assert after["muted"]["micMuted"] and after["mute_label"] == "Unmute"
    # (`ended` was set by the first session; only the second call's session is left.)
    assert len(personas) == 2 and live_sessions == 1
    assert after["again"]["remoteVideoFrames"] >= 5


async def test_blocked_microphone_shows_a_message_and_the_persona_still_plays():
    require_chromium()
    personas: list[ScriptedPersona] = []

    def drive_browser(url: str) -> tuple[dict, str, bool]:
        with chromium_driver(extra_args=("--use-fake-ui-for-media-stream=deny",)) as driver:
            driver.get(url)
            wait_for_page(driver, "p => p.state === 'idle'")
            driver.find_element("id", "connect").click()
            state = wait_for_page(driver, "p => p.state === 'ready' && p.remoteVideoFrames >= 10")
            box = driver.find_element("id", "error")
            return state, box.text, box.is_displayed()

    async with page_server(personas, asyncio.Event()) as (_server, url):
        state, message, visible = await asyncio.to_thread(drive_browser, url)

    assert visible and "Microphone access was blocked" in message
    assert not state["localAudio"] and not state["localVideo"]
    assert state["remoteVideoFrames"] >= 10  # listen-only still shows the persona
