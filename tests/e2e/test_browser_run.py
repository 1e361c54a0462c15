"""Headless Chromium talks to `presence run`: the offline persona greets, listens and answers."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import wave
from pathlib import Path

import numpy as np
import pytest
from helpers.browser import chromium_driver, require_chromium, wait_for_page
from helpers.speech import resample, synthesize

from presence.benchmarks.connect import measure_connects, summarize
from presence.framework.config import load_pipeline

REPO = Path(__file__).resolve().parents[2]


def mic_wav(path: Path) -> Path:
    """The fake microphone, looped: 6 s of silence, a question, 4 s of silence.

    Chromium starts the file when the page opens the microphone, not when the call connects, so
    the question repeats until the persona has heard it between its own turns.
    """
    audio, rate = synthesize("how do I swap a provider?")
    audio = resample(audio, rate, 48000)
    silence = np.zeros(48000, dtype=np.int16)
    pcm = np.concatenate([silence] * 6 + [audio] + [silence] * 4)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(48000)
        w.writeframes(pcm.tobytes())
    return path


@pytest.fixture(scope="module")
def served():
    """`presence run pipelines/local.yaml` on a free loopback port; yields the page URL.

    One server for the module: a person's second call goes to the same server as their first.
    """
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "presence.framework.cli",
            "run",
            "pipelines/local.yaml",
            "--port",
            "0",
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "NO_COLOR": "1"},
    )
    try:
        deadline = time.monotonic() + 60
        url = ""
        while time.monotonic() < deadline and not url.startswith("http"):
            url = proc.stdout.readline().strip()
            if proc.poll() is not None:
                raise AssertionError(f"presence run exited: {proc.stderr.read()[-3000:]}")
        assert url.startswith("http://127.0.0.1:"), url
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_page_connects_and_the_persona_greets_listens_and_answers(served, tmp_path):
    require_chromium()
    looped = f"--use-file-for-fake-audio-capture={mic_wav(tmp_path / 'mic.wav')}"
    with chromium_driver(extra_args=(looped,)) as driver:
        driver.get(served)
        wait_for_page(driver, "p => p.state === 'idle'", timeout=20)
        driver.find_element("id", "connect").click()
        state = wait_for_page(
            driver,
            "p => ['connected', 'ready'].includes(p.state) && p.remoteVideoFrames > 25 && p.remoteAudioEnergy > 0",
            timeout=40,
        )
        assert state["remoteVideoFrames"] > 25
        # the greeting is captioned, then the user's question, then an answer from the guide, and
        # the turn's latency (sent when the answer is first heard, which may follow its caption)
        state = wait_for_page(
            driver,
            "p => p.captions.some(c => c.role === 'user') && "
            "p.captions.filter(c => c.role === 'bot').length >= 2 && p.lastLatency",
            timeout=60,
        )
        bots = [c["text"].lower() for c in state["captions"] if c["role"] == "bot"]
        assert "guide" in bots[0] or "presence" in bots[0]
        # The page's latency is the server's, counted from the end of the user's voice: it holds
        # the VAD's silence and the turn decision's wait.
        latency = state["lastLatency"]
        vad_stop_s = load_pipeline(REPO / "pipelines/local.yaml").stages["vad"].params.stop_secs
        assert latency["end_of_speech_ms"] == round(vad_stop_s * 1000)
        assert state["lastLatencyMs"] == latency["voice_to_voice_ms"]
        assert latency["voice_to_voice_ms"] > max(latency["turn_decided_ms"], vad_stop_s * 1000)
        driver.find_element("id", "hangup").click()
        wait_for_page(driver, "p => p.state === 'disconnected'", timeout=20)


def test_the_persona_shows_its_face_soon_after_connect(served):
    """Offer -> first persona frame over several calls (figures: ``benchmarks/connect.py``).

    Before, loading the session's models on the event loop stalled the ICE/DTLS handshake: the
    peer connection alone took ~3 s on loopback and the first frame ~4 s. The bound is loose for
    a noisy machine; the measured p50 is in the README.
    """
    require_chromium()
    with chromium_driver() as driver:
        calls = measure_connects(driver, served, runs=2, pause_s=2.0)
    summary = summarize(calls)
    assert summary["offer_to_first_frame_ms"]["p50"] < 1500, summary
    for call in calls:  # the handshake never waits for a session to be built
        timing = call["timing"]
        assert timing["connected"] - timing["offer_sent"] < 1500, call
