"""What reaches the server from a browser's microphone, on an idle and on a loaded machine.

Headless Chromium plays three spoken questions (espeak, 48 kHz) through its fake microphone into
our WebRTC page server; a bare pipeline (no STT, a moving 256 px picture at 25 fps going back)
records every ``InputAudioRawFrame`` with its arrival time. Reported: seconds of audio received
against the wall time they arrived over, the longest gap between frames, and what Whisper (the
bundled tiny.en, greedy, full window) hears in the source file and in what was received.

    python benchmarks/results/browser-mic/mic.py OUT_PREFIX [BUSY_PROCESSES]

``BUSY_PROCESSES`` spins that many busy loops (one per core stands for another job) while the
call runs. Needs Debian ``chromium`` and ``chromium-driver`` (``make test`` installs them).
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import sys
import time
import wave
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO / "tests"))

from helpers.browser import chromium_driver, wait_for_page  # noqa: E402
from helpers.speech import resample, synthesize  # noqa: E402
from pipecat.frames.frames import (  # noqa: E402
    CancelFrame,
    EndFrame,
    InputAudioRawFrame,
    OutputImageRawFrame,
    StartFrame,
)
from pipecat.pipeline.pipeline import Pipeline  # noqa: E402
from pipecat.pipeline.worker import PipelineParams, PipelineWorker  # noqa: E402
from pipecat.processors.frame_processor import FrameProcessor  # noqa: E402
from pipecat.workers.runner import WorkerRunner  # noqa: E402

from presence.transports.webrtc import WebRTCServer, webrtc_params  # noqa: E402

SIZE, FPS = 256, 25
SAID = "how do I swap a provider? what does the renderer do? tell me about the weather in paris."


class Recorder(FrameProcessor):
    """Keeps the microphone's audio and paints a moving picture back."""

    def __init__(self):
        super().__init__()
        self.chunks: list[bytes] = []
        self.arrivals: list[float] = []
        self._tasks: list[asyncio.Task] = []

    async def process_frame(self, frame, direction):
        await super().process_frame(frame, direction)
        if isinstance(frame, InputAudioRawFrame):
            self.chunks.append(frame.audio)
            self.arrivals.append(time.monotonic())
            return
        if isinstance(frame, StartFrame):
            await self.push_frame(frame, direction)
            self._tasks.append(asyncio.create_task(self._paint()))
            return
        if isinstance(frame, (EndFrame, CancelFrame)):
            for task in self._tasks:
                task.cancel()
        await self.push_frame(frame, direction)

    async def _paint(self):
        x, i = np.arange(SIZE), 0
        while True:
            row = ((x + i * 4) % 256).astype(np.uint8)
            img = np.stack([np.tile(row, (SIZE, 1))] * 3, axis=-1)
            await self.push_frame(
                OutputImageRawFrame(image=img.tobytes(), size=(SIZE, SIZE), format="RGB")
            )
            i += 1
            await asyncio.sleep(1 / FPS)


def write_wav(path: Path, pcm: np.ndarray, rate: int) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.astype(np.int16).tobytes())
    return path


async def record(prefix: str) -> tuple[Path, Path, dict]:
    audio, rate = synthesize(SAID)
    speech = resample(audio, rate, 48000)
    pcm = np.concatenate([np.zeros(48000 * 3, np.int16), speech, np.zeros(48000 * 2, np.int16)])
    mic = write_wav(Path(prefix + ".mic.wav"), pcm, 48000)
    recorders: list[Recorder] = []

    async def on_session(transport, _sid):
        rec = Recorder()
        recorders.append(rec)
        worker = PipelineWorker(
            Pipeline([transport.input(), rec, transport.output()]),
            params=PipelineParams(audio_in_sample_rate=16000, audio_out_sample_rate=24000),
        )
        runner = WorkerRunner(handle_sigint=False)
        await runner.add_workers(worker)
        await runner.run()

    server = WebRTCServer(
        on_session,
        params=lambda: webrtc_params(width=SIZE, height=SIZE, fps=FPS, camera_fps=5),
        ice_host_addresses=["127.0.0.1"],
        title="mic",
    )
    sock = server.bind("127.0.0.1", 0)
    serving = asyncio.create_task(server.serve(sock=sock))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}/"

    def drive():
        with chromium_driver(mic) as driver:
            driver.get(url)
            wait_for_page(driver, "p => p.state === 'idle'", timeout=20)
            driver.find_element("id", "connect").click()
            wait_for_page(driver, "p => p.remoteVideoFrames > 25", timeout=40)
            time.sleep(14)

    await asyncio.to_thread(drive)
    serving.cancel()
    rec = recorders[0]
    received = np.frombuffer(b"".join(rec.chunks), np.int16)
    rx = write_wav(Path(prefix + ".rx.wav"), received, 16000)
    gaps = np.diff(np.array(rec.arrivals))
    stats = {
        "received_s": round(received.size / 16000, 2),
        "over_wall_s": round(rec.arrivals[-1] - rec.arrivals[0], 2),
        "longest_gap_ms": round(1000 * float(gaps.max())),
        "gaps_over_100ms": int((gaps > 0.1).sum()),
    }
    return mic, rx, stats


def heard(path: Path) -> str:
    import soxr
    from faster_whisper import WhisperModel

    from presence.processors.stt.engines.whisper_model import bundled_dir

    with wave.open(str(path)) as w:
        pcm = np.frombuffer(w.readframes(w.getnframes()), np.int16)
        rate = w.getframerate()
    audio = pcm.astype(np.float32) / 32768
    if rate != 16000:
        audio = soxr.resample(audio, rate, 16000)
    model = WhisperModel(str(bundled_dir()), device="cpu", compute_type="int8", cpu_threads=2)
    segments, _ = model.transcribe(audio, language="en", beam_size=1)
    return " ".join(s.text.strip() for s in segments)


def spin(seconds: float) -> None:
    end = time.time() + seconds
    while time.time() < end:
        pass


if __name__ == "__main__":
    prefix, busy = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 0
    spinners = [mp.Process(target=spin, args=(60,), daemon=True) for _ in range(busy)]
    for p in spinners:
        p.start()
    mic, rx, stats = asyncio.run(record(prefix))
    for p in spinners:
        p.terminate()
    print(f"busy processes {busy}: {stats}")
    print(f"source:   {heard(mic)}")
    print(f"received: {heard(rx)}")
