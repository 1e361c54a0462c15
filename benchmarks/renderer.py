"""``presence bench renderer``: speed, timeliness, A/V drift and lip sync of a renderer.

Two measurements on one replica:

1. the engine alone: frames drawn per second, one frame at a time, while speaking;
2. the whole ``RendererProcessor`` in real time inside a pipecat pipeline, fed espeak-ng speech
   (two turns with visemes, idle between) as a TTS would: per frame lateness against its due time,
   repeated frames, drift (audio samples received by the sink minus the samples its video frames
   span), the first-audio-in → first-speaking-frame latency, and the lip-sync lag — the lag, in
   frames, of the peak cross-correlation between the mouth opening measured on the output pixels
   and the audio envelope of each frame's period (positive: the mouth trails the voice).

``run_renderer_benchmark`` returns the JSON-ready dict; ``print_table`` prints it with rich;
``save_contact_sheet`` writes speaking and idle frames as one PNG.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path

import numpy as np

TEXTS = (
    "Hello! I am the presence guide. Ask me anything about how presence works.",
    "Presence turns a portrait into a face that talks, blinks and listens, in real time.",
)


def _speech(sample_rate: int) -> list[tuple[np.ndarray, int, list]]:
    """Two utterances as (int16 audio, rate, visemes), from espeak-ng when available."""
    try:
        from presence.processors.tts.engines.espeak import EspeakEngine
        from presence.processors.tts.visemes import viseme_for

        engine = EspeakEngine()
        out = []
        for text in TEXTS:
            utt = engine.render(text)
            vis = [
                (p.sample / utt.sample_rate, viseme_for(p.phoneme), p.phoneme) for p in utt.phonemes
            ]
            out.append((utt.audio, utt.sample_rate, vis))
        return out
    except Exception:  # no espeak: syllable-modulated tones stand in
        t = np.arange(int(4.0 * sample_rate)) / sample_rate
        env = np.clip(np.sin(2 * np.pi * 3.0 * t), 0, None) ** 2
        audio = (np.sin(2 * np.pi * 150 * t) * env * 8000).astype(np.int16)
        return [(audio, sample_rate, []), (audio, sample_rate, [])]


def _engine(provider: str, size: int, fps: int, rate: int, device: str, checkpoint: str | None):
    if provider == "warp":
        from presence.processors.renderer.engines.warp import WarpEngine

        return WarpEngine(size, fps, rate, seed=0, device=device)
    if provider == "still":
        from presence.processors.renderer.engines.still import StillEngine

        return StillEngine(size, fps, rate, seed=0)
    if provider == "wav2lip":
        from presence.processors.renderer.engines.wav2lip import Wav2LipEngine

        return Wav2LipEngine(size, fps, rate, seed=0, device=device, checkpoint=checkpoint)
    raise ValueError(f"unknown renderer provider {provider!r}; use warp, still or wav2lip")


def _mouth_opening(images: list[np.ndarray], replica, size: int) -> np.ndarray:
    """Per image: how much darker the mouth region is than in the neutral portrait (pixels)."""
    from presence.processors.renderer.engines.layout import Layout, fit_portrait

    g, lay = replica.geometry, Layout.of(size, size)
    mx, my = lay.px(*g["mouth"])
    mw = lay.length(g["mouth_width"])
    box = (
        slice(int(my - 0.2 * mw), int(my + 0.6 * mw)),
        slice(int(mx - 0.4 * mw), int(mx + 0.4 * mw)),
    )
    neutral = fit_portrait(replica.neutral, size, size)[box].astype(np.float32).mean(axis=-1)
    return np.array(
        [
            np.clip(neutral - im[box].astype(np.float32).mean(axis=-1), 0, None).mean()
            for im in images
        ]
    )


def lipsync_lag(opening: np.ndarray, envelope: np.ndarray, max_lag: int = 6) -> int:
    """Lag (frames) maximising the correlation of ``opening[k + lag]`` with ``envelope[k]``."""
    a = (opening - opening.mean()) / (opening.std() + 1e-9)
    b = (envelope - envelope.mean()) / (envelope.std() + 1e-9)
    n = len(a)
    scores = {
        lag: float(np.mean(a[max(0, lag) : n + min(0, lag)] * b[max(0, -lag) : n - max(0, lag)]))
        for lag in range(-max_lag, max_lag + 1)
    }
    return max(scores, key=scores.get)


async def _through_processor(engine, seconds: float, speech) -> tuple[object, list, list, float]:
    from pipecat.frames.frames import (
        EndFrame,
        OutputAudioRawFrame,
        OutputImageRawFrame,
        TTSAudioRawFrame,
        TTSStartedFrame,
        TTSStoppedFrame,
    )
    from pipecat.pipeline.pipeline import Pipeline
    from pipecat.pipeline.worker import PipelineParams, PipelineWorker
    from pipecat.processors.frame_processor import FrameProcessor
    from pipecat.workers.runner import WorkerRunner

    from presence.processors.renderer.processor import RendererProcessor

    class Sink(FrameProcessor):
        def __init__(self):
            super().__init__()
            self.images: list[np.ndarray] = []
            self.audio: list[np.ndarray] = []  # per image: the audio that followed it

        async def process_frame(self, frame, direction):
            await super().process_frame(frame, direction)
            if isinstance(frame, OutputImageRawFrame):
                self.images.append(
                    np.frombuffer(frame.image, np.uint8).reshape(frame.size[1], frame.size[0], 3)
                )
                self.audio.append(np.zeros(0, np.int16))
            elif isinstance(frame, OutputAudioRawFrame) and self.audio:
                self.audio[-1] = np.concatenate(
                    [self.audio[-1], np.frombuffer(frame.audio, np.int16)]
                )
            await self.push_frame(frame, direction)

    proc = RendererProcessor(engine, realtime=True)
    sink = Sink()
    worker = PipelineWorker(Pipeline([proc, sink]), params=PipelineParams(), enable_rtvi=False)

    async def script():
        await asyncio.sleep(0.5)
        for i, (audio, rate, vis) in enumerate(speech):
            start = 0.5 + i * seconds / 2
            await asyncio.sleep(max(0.0, start - (time.monotonic() - t0)))
            await worker.queue_frame(TTSStartedFrame(context_id=f"turn{i}"))
            step = rate // 10  # 100 ms chunks, faster than real time like a streaming TTS
            for j in range(0, audio.size, step):
                frame = TTSAudioRawFrame(
                    audio[j : j + step].tobytes(), rate, 1, context_id=f"turn{i}"
                )
                frame.metadata["visemes"] = [
                    (o - j / rate, v, p) for o, v, p in vis if j <= o * rate < j + step
                ]
                await worker.queue_frame(frame)
                await asyncio.sleep(0.02)
            await worker.queue_frame(TTSStoppedFrame(context_id=f"turn{i}"))
        await asyncio.sleep(max(0.0, seconds - (time.monotonic() - t0)))
        await worker.queue_frame(EndFrame())

    t0 = time.monotonic()
    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(worker)
    await asyncio.gather(runner.run(), script())
    return proc, sink.images, sink.audio, time.monotonic() - t0


def run_renderer_benchmark(
    provider: str = "warp",
    size: int = 512,
    seconds: float = 30.0,
    device: str = "cpu",
    *,
    fps: int = 25,
    replica_path: str | Path | None = None,
    checkpoint: str | None = None,
    contact_sheet: str | Path | None = None,
) -> dict:
    """Run both measurements and return the results (keys documented in the module docstring)."""
    from presence.processors.renderer.replica import register_replica

    rate = 24000
    path = (
        Path(replica_path)
        if replica_path
        else Path(__file__).resolve().parents[1] / "pipelines/personas/guide/replica.png"
    )
    replica = register_replica(path, "bench")
    speech = _speech(rate)

    alone = _engine(provider, size, fps, rate, device, checkpoint)
    alone.prepare(replica)
    alone.push_audio(speech[0][0], speech[0][1])
    alone.next_frames(3)  # warm-up
    n = max(25, min(150, int(len(speech[0][0]) / speech[0][1] * fps) - 5))
    t = time.perf_counter()
    alone.next_frames(n)
    engine_fps = n / (time.perf_counter() - t)

    engine = _engine(provider, size, fps, rate, device, checkpoint)
    engine.prepare(replica)
    proc, images, audio, wall = asyncio.run(_through_processor(engine, seconds, speech))
    st = proc.stats
    spanned = sum(engine.samples_in_frame(k) for k in range(len(images)))
    received = int(sum(a.size for a in audio))
    envelope = np.array(
        [np.sqrt(np.mean(a.astype(np.float32) ** 2)) if a.size else 0.0 for a in audio]
    )
    opening = _mouth_opening(images, replica, size)
    lateness = np.array(list(st.lateness_s)) * 1000 if st.lateness_s else np.zeros(1)
    result = {
        "provider": provider,
        "size": size,
        "device": str(getattr(engine, "device", "cpu")),
        "fps": round(st.frames / wall, 2),
        "engine_fps": round(engine_fps, 2),
        "target_fps": fps,
        "frames": st.frames,
        "lateness_ms": {
            "p50": round(float(np.percentile(lateness, 50)), 2),
            "p99": round(float(np.percentile(lateness, 99)), 2),
        },
        "dropped_frames": 0
        if spanned == received
        else abs(spanned - received) // max(1, rate // fps),
        "repeated_frames": st.repeated,
        "drift_samples": received - spanned,
        "lipsync_lag_frames": lipsync_lag(opening, envelope),
        "first_frame_latency_ms": [round(x * 1000, 1) for x in st.first_speech_latency_s],
        "look_ahead_ms": round(engine.look_ahead_s * 1000, 1),
        "seconds": round(received / rate, 2),
    }
    if contact_sheet:
        save_contact_sheet(images, audio, Path(contact_sheet))
    return result


def save_contact_sheet(
    images: list[np.ndarray], audio: list[np.ndarray], path: Path, n: int = 12
) -> None:
    """A 2×n grid of face crops: top row consecutive speaking frames, bottom row idle frames."""
    import cv2

    speaking = [i for i, a in enumerate(audio) if a.size and np.abs(a).max() > 0]
    idle = [i for i, a in enumerate(audio) if not (a.size and np.abs(a).max() > 0)]
    start = speaking[len(speaking) // 4] if speaking else 0
    top = [i for i in speaking if i >= start][:n]
    bottom = idle[len(idle) // 3 :][: 3 * n : 3]

    def tile(i: int) -> np.ndarray:
        h, w = images[i].shape[:2]
        face = images[i][int(0.22 * h) : int(0.82 * h), int(0.2 * w) : int(0.8 * w)]
        im = np.ascontiguousarray(cv2.resize(face, (192, 192), interpolation=cv2.INTER_AREA))
        cv2.putText(im, str(i), (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 0), 1)
        return im

    rows = [
        np.hstack([tile(i) for i in row] + [np.zeros((192, 192, 3), np.uint8)] * (n - len(row)))
        for row in (top, bottom)
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.vstack(rows)[:, :, ::-1])


def print_table(result: dict) -> None:
    """Print a result as a rich table."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"renderer {result['provider']} {result['size']}² on {result['device']}")
    table.add_column("measure")
    table.add_column("value", justify="right")
    rows = [
        ("fps through the processor", f"{result['fps']} (target {result['target_fps']})"),
        ("fps of the engine alone", f"{result['engine_fps']}"),
        (
            "lateness p50 / p99",
            f"{result['lateness_ms']['p50']} / {result['lateness_ms']['p99']} ms",
        ),
        ("dropped / repeated frames", f"{result['dropped_frames']} / {result['repeated_frames']}"),
        ("drift (audio − video)", f"{result['drift_samples']} samples over {result['seconds']} s"),
        ("lip-sync lag", f"{result['lipsync_lag_frames']} frames"),
        (
            "first audio → speaking frame",
            ", ".join(f"{x} ms" for x in result["first_frame_latency_ms"]),
        ),
    ]
    for name, value in rows:
        table.add_row(name, value)
    Console().print(table)


def main(argv: list[str] | None = None) -> dict:
    """Command line: ``python -m presence.benchmarks.renderer --provider warp --size 512``."""
    ap = argparse.ArgumentParser(prog="presence bench renderer")
    ap.add_argument("--provider", default="warp")
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--fps", type=int, default=25)
    ap.add_argument("--replica")
    ap.add_argument("--checkpoint")
    ap.add_argument("--json")
    ap.add_argument("--sheet")
    args = ap.parse_args(argv)
    result = run_renderer_benchmark(
        args.provider,
        args.size,
        args.seconds,
        args.device,
        fps=args.fps,
        replica_path=args.replica,
        checkpoint=args.checkpoint,
        contact_sheet=args.sheet,
    )
    print_table(result)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
