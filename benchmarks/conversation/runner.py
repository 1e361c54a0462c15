"""``run_conversation_benchmark``: every question through a real pipeline, one conversation each.

The pipeline file is loaded once; each question gets its own session over the file transport
(``run_file_session``), **in real time** (``fast=False``): the rendered WAV is the user's
microphone, the persona's reply is recorded to an MP4 and a JSON report, and the row is scored
from those two files (``scoring.score_question``) plus two observers: one counts turn decisions,
one reads the renderer's clock (frames pushed, repeated because drawing fell behind, lateness).

Constraints:
    * Real time: each question costs its speech, the reply and ~1.5 s of quiet before the
      session ends (about 10–20 s); 41 questions take 8–14 minutes.
    * Questions run one after another in one event loop; nothing is shared between sessions but
      the loaded pipeline file.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import numpy as np
from loguru import logger
from pipecat.frames.frames import OutputImageRawFrame, UserStoppedSpeakingFrame
from pipecat.observers.base_observer import BaseObserver, FramePushed
from pipecat.processors.frame_processor import FrameDirection

from presence.benchmarks.conversation import metrics, questions, report, scoring
from presence.framework.config import LoadedPipeline, load_pipeline
from presence.processors.renderer.stats import RendererStats

SECRET_HINTS = ("key", "token", "secret", "password")

QuestionSetup = Callable[
    [questions.RenderedQuestion, LoadedPipeline], AbstractAsyncContextManager[list[str]]
]
"""Per question: an async context (e.g. fake servers) yielding extra ``--set`` overrides."""


class TurnEndCounter(BaseObserver):
    """Counts the pipeline's turn decisions (downstream ``UserStoppedSpeakingFrame``), each once."""

    def __init__(self, **kwargs):
        super().__init__(observe_every_push=False, **kwargs)
        self._seen: set[int] = set()
        self.count = 0

    async def on_push_frame(self, data: FramePushed):
        """Count a turn end the first time it is pushed downstream."""
        frame = data.frame
        if (
            isinstance(frame, UserStoppedSpeakingFrame)
            and data.direction == FrameDirection.DOWNSTREAM
            and frame.id not in self._seen
        ):
            self._seen.add(frame.id)
            self.count += 1


class RendererWatch(BaseObserver):
    """Finds the renderer (the processor that pushes video frames with a ``RendererStats``).

    ``figures()`` then reads what its clock measured over the session: frames pushed, frames
    that repeated the previous image because drawing fell behind, and how late frames were pushed.
    """

    def __init__(self, **kwargs):
        super().__init__(observe_every_push=False, **kwargs)
        self.renderer: Any = None

    async def on_push_frame(self, data: FramePushed):
        """Remember the first processor that pushes a video frame and keeps renderer stats."""
        if self.renderer is None and isinstance(data.frame, OutputImageRawFrame):
            if isinstance(getattr(data.source, "stats", None), RendererStats):
                self.renderer = data.source

    def figures(self) -> dict[str, Any]:
        """``renderer_frames``, ``renderer_repeated`` and ``renderer_late_p95_ms`` (None without)."""
        if self.renderer is None:
            return {
                "renderer_frames": None,
                "renderer_repeated": None,
                "renderer_late_p95_ms": None,
            }
        st = self.renderer.stats
        late = np.asarray(st.lateness_s, dtype=float) * 1000.0
        return {
            "renderer_frames": st.frames,
            "renderer_repeated": st.repeated,
            "renderer_late_p95_ms": round(float(np.percentile(late, 95)), 1) if late.size else None,
        }


def providers(loaded: LoadedPipeline) -> dict[str, dict[str, Any]]:
    """Each stage's provider and parameters (fields named like keys, tokens or secrets left out)."""
    out: dict[str, dict[str, Any]] = {}
    for stage, cfg in loaded.stages.items():
        try:
            params = cfg.params.model_dump(mode="json")
        except Exception:
            params = {}
        params = {k: v for k, v in params.items() if not any(h in k.lower() for h in SECRET_HINTS)}
        out[stage] = {"provider": cfg.provider.name, "params": params}
        if cfg.fallbacks:
            out[stage]["fallbacks"] = [f.provider.name for f in cfg.fallbacks]
    return out


async def run_one(
    loaded: LoadedPipeline,
    rq: questions.RenderedQuestion,
    folder: Path,
    passages: list[metrics.PassageRef],
) -> dict[str, Any]:
    """Run one question in real time and score it."""
    from presence.transports.file.session import run_file_session

    counter, watch = TurnEndCounter(), RendererWatch()
    mp4 = folder / f"{rq.question.id}.mp4"
    started = time.monotonic()
    result = await run_file_session(loaded, rq.path, mp4, fast=False, observers=[counter, watch])
    wall = time.monotonic() - started
    audio, rate = metrics.decode_audio(mp4)
    row = scoring.score_question(rq, result, audio, rate, passages, turn_ends=counter.count)
    row.update(watch.figures())
    row["wall_s"] = round(wall, 1)
    row["media"] = str(mp4)
    return row


async def arun_conversation_benchmark(
    pipeline_path: str | Path,
    overrides: list[str] | None = None,
    *,
    json_path: str | Path | None = None,
    plot_path: str | Path | None = None,
    limit: int | None = None,
    voices: list[str] | None = None,
    ids: list[str] | None = None,
    media_dir: str | Path | None = None,
    questions_file: str | Path = questions.QUESTIONS_FILE,
    noise: str | None = None,
    command: str | None = None,
    on_row: Callable[[dict[str, Any]], None] | None = None,
    setup: QuestionSetup | None = None,
) -> dict[str, Any]:
    """Async form of ``run_conversation_benchmark`` (use it inside a running event loop)."""
    from presence.processors.llm.engines.retrieval import KnowledgeIndex

    chosen = questions.select(questions.load_questions(questions_file, noise=noise), limit=limit,
                              voices=voices, ids=ids)  # fmt: skip
    loaded = load_pipeline(pipeline_path, overrides)
    rendered = questions.render_all(chosen)
    kb = loaded.persona.knowledge_base
    passages = metrics.passage_refs(KnowledgeIndex.from_paths([kb])) if kb else []
    logger.info(f"conversation benchmark: {loaded.spec.name}, {len(rendered)} questions, real time")
    rows: list[dict[str, Any]] = []
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="presence-bench-") as tmp:
        folder = Path(media_dir) if media_dir else Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        for rq in rendered:
            if setup is None:
                row = await run_one(loaded, rq, folder, passages)
            else:
                async with setup(rq, loaded) as extra:
                    each = load_pipeline(pipeline_path, [*(overrides or []), *extra])
                    row = await run_one(each, rq, folder, passages)
            if not media_dir:
                row["media"] = None
            rows.append(row)
            if on_row is not None:
                on_row(row)
    result: dict[str, Any] = {
        "pipeline": loaded.spec.name,
        "pipeline_file": str(pipeline_path),
        "overrides": list(overrides or []),
        "fakes": setup is not None,
        "command": command,
        "machine": report.machine(),
        "providers": providers(loaded),
        "stt": loaded.stages["stt"].provider.name if "stt" in loaded.stages else None,
        "tts": loaded.stages["tts"].provider.name if "tts" in loaded.stages else None,
        "question_set": report.question_set_info(questions_file, chosen),
        "summary": scoring.summarize(rows),
        "by_voice": scoring.by_group(rows, "voice"),
        "by_pause": scoring.by_group(rows, "pause"),
        "by_noise": scoring.by_group(rows, "noise"),
        "questions": rows,
        "wall_s": round(time.monotonic() - started, 1),
        "method": report.METHOD,
    }
    if json_path:
        report.write_json(result, json_path)
    if plot_path:
        report.plot(result, plot_path)
    return result


def run_conversation_benchmark(pipeline_path: str | Path, overrides: list[str] | None = None,
                               **kwargs: Any) -> dict[str, Any]:  # fmt: skip
    """Run the evaluation set through a pipeline file in real time and score every question.

    Args:
        pipeline_path: The pipeline YAML (its transport block is replaced by the file transport;
            its video size and fps are kept).
        overrides: ``PATH=VALUE`` overrides, as ``--set``.
        **kwargs: ``json_path``, ``plot_path`` (needs matplotlib), ``limit`` (first N questions),
            ``voices`` (voice names), ``ids`` (question ids), ``media_dir`` (keep each MP4 and
            JSON there; a temporary folder otherwise), ``questions_file``, ``noise`` (``KIND:SNR``
            under every question instead of its own), ``command`` (recorded),
            ``on_row`` (called with each row as it is scored), ``setup`` (per question: an async
            context yielding extra overrides, e.g. ``cloud.fakes_for``; the file is then loaded
            again for each question with them).

    Returns:
        The report: ``summary`` (corpus WER, answered right, splits, talked over, p50/p95 of
        ``first_audio_ms`` and ``first_frame_ms``), ``by_voice``, ``by_pause``, ``by_noise``
        (``quiet`` or the room's label), ``questions``
        (one row each, with what was heard and replied), ``providers``, ``machine``, ``method``.

    Raises:
        ConfigError: The pipeline file, an override, or a voice/id filter is wrong.
    """
    return asyncio.run(arun_conversation_benchmark(pipeline_path, overrides, **kwargs))
