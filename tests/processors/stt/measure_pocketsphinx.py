"""Measure the pocketsphinx stage on espeak-ng questions (not a test; run it by hand).

    python tests/processors/stt/measure_pocketsphinx.py [--kb DIR] [--guide] [--warm]

Prints, per language model: keyword hit rate, word error rate, decode time per 20 ms chunk, and
the time ``finish()`` takes (end of speech -> final hypothesis inside the engine).

``--guide`` uses the default persona's knowledge base and 25 questions visitors ask it. Every
question is decoded as a session's first utterance (cold: the recognizer's channel adaptation is
reset before each) unless ``--warm``, in 8 renderings: with and without question intonation,
resampled with soxr (as the file transport does) or scipy, cut as the service sees it (0.08 s
before the speech, 0.27 s after) or with 0.3 s of silence each side.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soxr

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from helpers.speech import resample, synthesize  # noqa: E402

from presence.processors.stt.engines.domain_lm import normalize  # noqa: E402
from presence.processors.stt.engines.pocketsphinx import build_recognizer  # noqa: E402

KB = """# Presence

Presence is an open-source framework for real-time conversational video AI.
It is built on pipecat and runs pipelines defined in YAML files.

## Providers

A provider is a named implementation of a pipeline stage, such as speech to text or text to speech.
To swap a provider, change the provider key of the stage in the pipeline file.
Deepgram, ElevenLabs and Anthropic are cloud providers; pocketsphinx and espeak run offline.

## Personas

A persona has a system prompt, a greeting, a knowledge base and a replica image.
The renderer animates the replica's face with lip sync.

## Running

Run `presence run local.yaml` to start the offline pipeline on port 8080.
Open the browser page to talk to the guide with your microphone and camera.
"""

SILENCE = np.zeros(int(0.3 * 16000), np.int16)  # VAD pre-roll / stop_secs worth of silence
GUIDE_KB = Path(__file__).resolve().parents[3] / "pipelines" / "personas" / "guide" / "knowledge"
GUIDE_QUESTIONS = [
    ("what is presence", ["presence"]),
    ("how do I swap a provider", ["swap", "provider"]),
    ("what is the lip sync renderer", ["lip", "sync", "renderer"]),
    ("how do I write a processor", ["write", "processor"]),
    ("what transports are there", ["transports"]),
    ("tell me about perception", ["perception"]),
    ("how fast is it", ["fast"]),
    ("what is pipecat", ["pipecat"]),
    ("what is a pipeline", ["pipeline"]),
    ("what is a persona", ["persona"]),
    ("how do I change the voice", ["change", "voice"]),
    ("what is the knowledge base responder", ["knowledge", "base", "responder"]),
    ("do I need a GPU", ["gpu"]),
    ("can I host it myself", ["host"]),
    ("what is turn taking", ["turn", "taking"]),
    ("what is a replica", ["replica"]),
    ("how do I make my own persona", ["make", "persona"]),
    ("what is the conversations API", ["conversations", "api"]),
    ("what are webhooks", ["webhooks"]),
    ("how do I get started", ["started"]),
    ("what license is it", ["license"]),
    ("what do the benchmarks measure", ["benchmarks", "measure"]),
    ("where do API keys go", ["api", "keys"]),
    ("what is the warp renderer", ["warp", "renderer"]),
    ("does it work offline", ["offline"]),
]
RENDERINGS = [  # (suffix, resampler, seconds before speech, seconds after)
    (mark, how, before, after)
    for mark in ("", "?")
    for how in ("soxr", "scipy")
    for before, after in ((0.08, 0.27), (0.3, 0.3))
]


def rendered(question: str, mark: str, how: str, before: float, after: float) -> np.ndarray:
    """``question`` spoken by espeak-ng at 22050 Hz, padded, resampled to 16 kHz."""
    speech, rate = synthesize(question + mark)
    pad = [np.zeros(int(s * rate), np.int16) for s in (before, after)]
    audio = np.concatenate([pad[0], speech, pad[1]])
    if how == "soxr":
        return soxr.resample(audio, rate, 16000, quality="HQ").astype(np.int16)
    return resample(audio, rate, 16000)


QUESTIONS = [  # (question, keywords a reply would need)
    ("what is presence", ["presence"]),
    ("how do I swap a provider", ["swap", "provider"]),
    ("what is a persona", ["persona"]),
    ("what does the renderer do", ["renderer"]),
    ("which providers run offline", ["providers", "offline"]),
    ("how do I run the offline pipeline", ["run", "offline", "pipeline"]),
    ("what port does it use", ["port"]),
    ("tell me about the knowledge base", ["knowledge", "base"]),
    ("is presence built on pipecat", ["presence", "pipecat"]),
    ("how do I talk to the guide", ["talk", "guide"]),
    ("what is a provider", ["provider"]),
    ("does it support lip sync", ["lip", "sync"]),
    ("what is the replica image", ["replica", "image"]),
    ("which cloud providers are there", ["cloud", "providers"]),
    ("how do I change the greeting", ["change", "greeting"]),
    ("what is a pipeline stage", ["pipeline", "stage"]),
    ("can I use my camera", ["camera"]),
    ("what is speech to text", ["speech", "text"]),
    ("tell me about the system prompt", ["system", "prompt"]),
    ("where are pipelines defined", ["pipelines", "defined"]),
]


def wer(ref: list[str], hyp: list[str]) -> tuple[int, int]:
    d = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, d[0] = d[0], i
        for j, h in enumerate(hyp, 1):
            prev, d[j] = d[j], min(d[j] + 1, d[j - 1] + 1, prev + (r != h))
    return d[-1], len(ref)


def evaluate(rec, questions, renderings, *, cold=False, verbose=False):
    hits = total = errs = words = 0
    chunk_ms, finish_ms = [], []
    for (question, keywords), rendering in ((q, r) for q in questions for r in renderings):
        audio = rendered(question, *rendering)
        if cold:
            rec.reset_adaptation()
        rec.start()
        for i in range(0, len(audio), 320):
            t = time.perf_counter()
            rec.feed(audio[i : i + 320].tobytes())
            rec.partial()
            chunk_ms.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        text = rec.finish()
        finish_ms.append((time.perf_counter() - t) * 1000)
        got = text.split()
        hits += sum(k in got for k in keywords)
        total += len(keywords)
        e, n = wer(normalize(question), got)
        errs, words = errs + e, words + n
        if verbose:
            print(f"   {question + rendering[0]!r:40} {rendering[1:]} -> {text!r}")
    return hits / total, errs / words, chunk_ms, finish_ms


async def service_latency(files: list[Path]) -> list[float]:
    """Real-time paced turns through the service: VAD stop pushed -> TranscriptionFrame pushed."""
    from pipecat.frames.frames import (
        InputAudioRawFrame,
        TranscriptionFrame,
        VADUserStartedSpeakingFrame,
        VADUserStoppedSpeakingFrame,
    )
    from pipecat.observers.base_observer import BaseObserver
    from pipecat.pipeline.worker import PipelineParams
    from pipecat.tests.utils import SleepFrame, run_test

    from presence.processors.stt.pocketsphinx import PocketsphinxSTTService

    stops: list[float] = []
    finals: list[float] = []

    service = PocketsphinxSTTService(build_recognizer(knowledge_files=files))

    class Clock(BaseObserver):
        async def on_push_frame(self, data):
            if isinstance(data.frame, VADUserStoppedSpeakingFrame) and data.destination is service:
                stops.append(time.perf_counter())
            elif isinstance(data.frame, TranscriptionFrame) and data.source is service:
                finals.append(time.perf_counter())

    frames: list = []
    for question, _ in QUESTIONS[:10]:
        audio = rendered(question, "", "scipy", 0.3, 0.2)
        for i in range(0, len(audio), 320):
            if i == 8000:
                frames.append(VADUserStartedSpeakingFrame(start_secs=0.2))
            frames.append(InputAudioRawFrame(audio[i : i + 320].tobytes(), 16000, 1))
            frames.append(SleepFrame(0.02))
        frames.append(VADUserStoppedSpeakingFrame(stop_secs=0.2))
        frames.append(SleepFrame(0.3))
    await run_test(
        service,
        frames_to_send=frames,
        observers=[Clock()],
        pipeline_params=PipelineParams(audio_in_sample_rate=16000),
    )
    print(f"service: {len(stops)} turns, {len(finals)} final transcripts")
    return [(f - s) * 1000 for s, f in zip(stops, finals, strict=False)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kb", type=Path, help="folder of markdown files (default: built-in)")
    parser.add_argument("-v", "--verbose", action="store_true")
    parser.add_argument("--service", action="store_true", help="also time the pipecat service")
    parser.add_argument("--guide", action="store_true", help="the guide persona and its questions")
    parser.add_argument(
        "--warm", action="store_true", help="let adaptation carry between questions"
    )
    args = parser.parse_args()
    questions, renderings = QUESTIONS, [("", "scipy", 0.3, 0.3)]
    if args.guide:
        args.kb, questions, renderings = GUIDE_KB, GUIDE_QUESTIONS, RENDERINGS
    with tempfile.TemporaryDirectory() as tmp:
        if args.kb:
            files = sorted(args.kb.rglob("*.md"))
        else:
            (Path(tmp) / "kb.md").write_text(KB)
            files = [Path(tmp) / "kb.md"]
        configs = [
            ("generic", dict(language_model="generic")),
            ("domain, no generic words", dict(generic_words=0)),
            ("domain (default)", dict()),
            ("domain, generic_weight 0.2", dict(generic_weight=0.2)),
            ("domain, second pass", dict(second_pass=True)),
        ]
        for name, kwargs in configs:
            rec = build_recognizer(knowledge_files=files, **kwargs)
            hit, err, chunk, fin = evaluate(
                rec, questions, renderings, cold=not args.warm, verbose=args.verbose
            )
            chunk.sort()
            print(
                f"{name:28} keywords {hit:5.0%}  WER {err:5.0%}  chunk p50 "
                f"{statistics.median(chunk):.2f} ms p99 {chunk[int(len(chunk) * 0.99)]:.2f} ms  "
                f"finish p50 {statistics.median(fin):.1f} ms max {max(fin):.1f} ms  "
                f"build {rec.info.build_secs:.2f}s"
            )
        if args.service:
            import asyncio

            ms = sorted(asyncio.run(service_latency(files)))
            print(
                f"service: VAD stop -> final TranscriptionFrame over {len(ms)} turns: "
                f"p50 {statistics.median(ms):.1f} ms, max {ms[-1]:.1f} ms"
            )


if __name__ == "__main__":
    main()
