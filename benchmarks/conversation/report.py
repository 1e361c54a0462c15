"""The conversation benchmark's outputs: JSON, a PNG chart and rich tables."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from presence.benchmarks.latency.report import (
    machine,  # noqa: F401  (re-exported)
    write_json,  # noqa: F401  (re-exported)
)

METHOD = {
    "end_of_speech": "the user's last voiced sample (|x| >= 2% of the question's peak, on the "
    "clean speech before the noise floor), seconds from the start of the WAV = session time",
    "first_audio_ms": "end of speech -> first persona audio onset at or after it in the MP4's "
    "audio track (a sample >= -34 dBFS after >= 150 ms without one)",
    "first_frame_ms": "end of speech -> start of the first MP4 video frame showing the renderer's "
    "first speaking image of a speech stretch starting at or after the end (file output "
    "summary 'speech_starts')",
    "wer": "jiwer word error after normalisation (case, punctuation, contractions, digits "
    "spelled, hesitations dropped); corpus WER = all errors / all reference words",
    "answered_right": "the last reply's content terms overlap most (>= 50%) with an expected "
    "passage among all knowledge-base passages",
    "user_turns": "UserStoppedSpeakingFrame count in the session (one question per session); "
    "split when > 1",
    "answered_part": "the persona answered part of a split question out loud (more than one "
    "reply in the transcript); a withheld answer withdrawn unheard does not count",
    "talked_over": "audible persona audio (10 ms windows >= -34 dBFS) between the user's first "
    "and last voiced samples, from the MP4",
    "renderer": "the renderer's own clock per session (RendererStats): frames pushed, frames "
    "that repeated the previous image because drawing fell behind, p95 of push lateness",
    "human_read_speech": "none: no PyPI wheel found shipping human read English speech "
    "(searched the PyPI name/summary list and installed site-packages); all speech is synthetic",
}


def question_set_info(path: str | Path, chosen: list) -> dict[str, Any]:
    """What was asked: the file, how many, voices, formats, pauses and hesitations."""
    voices = {q.voice.name: q.voice.describe() for q in chosen}
    return {
        "file": str(path),
        "count": len(chosen),
        "voices": voices,
        "formats": sorted({q.format for q in chosen}),
        "with_pause": sum(q.has_pause for q in chosen),
        "with_hesitation": sum(q.has_hesitation for q in chosen),
        "with_noise": sum(q.noise is not None for q in chosen),
    }


def plot(result: dict[str, Any], path: str | Path) -> Path:
    """A PNG: latency per question (right/wrong, split, talked over) and WER/right rate per voice.

    Raises:
        DependencyError: matplotlib is not installed.
    """
    from presence.framework.optional import require

    require("matplotlib", extra="bench")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result["questions"]
    fig, axes = plt.subplots(1, 3, figsize=(16, 5.5), gridspec_kw={"width_ratios": [5, 2, 3]})
    ax = axes[0]
    x = np.arange(len(rows))
    audio = [r["first_audio_ms"] if r["first_audio_ms"] is not None else np.nan for r in rows]
    frame = [r["first_frame_ms"] if r["first_frame_ms"] is not None else np.nan for r in rows]
    colors = ["#55a868" if r["answered_right"] else "#c44e52" for r in rows]
    ax.bar(x, audio, color=colors, label="first audio (green: right, red: wrong)")
    ax.plot(x, frame, "k_", markersize=10, label="first speaking frame")
    for i, r in enumerate(rows):
        marks = ("S" if r["split"] else "") + ("T" if r["talked_over"] else "")
        if marks:
            ax.annotate(marks, (i, np.nan_to_num(audio[i])), ha="center", va="bottom", fontsize=7)
    ax.set_xticks(x, [r["id"] for r in rows], rotation=90, fontsize=7)
    ax.set_ylabel("ms after the user's last voiced sample")
    ax.set_title(f"{result['pipeline']} ({result.get('stt')} / {result.get('tts')}): "
                 "S split, T talked over")  # fmt: skip
    ax.legend(loc="upper left", fontsize=8)
    ax = axes[1]
    data = [[v for v in audio if not np.isnan(v)] or [np.nan],
            [v for v in frame if not np.isnan(v)] or [np.nan]]  # fmt: skip
    ax.boxplot(data, tick_labels=["first audio", "first frame"], whis=(5, 95))
    ax.set_title("latency (whiskers p5–p95)")
    ax.set_ylabel("ms")
    ax = axes[2]
    groups = result["by_voice"]
    names = list(groups)
    xs = np.arange(len(names))
    ax.bar(xs - 0.2, [groups[n]["wer"] or 0 for n in names], 0.4, label="WER", color="#4c72b0")
    ax.bar(xs + 0.2, [groups[n]["answered_right_rate"] or 0 for n in names], 0.4,
           label="answered right", color="#55a868")  # fmt: skip
    ax.set_xticks(xs, names, rotation=45, ha="right", fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_title("per voice")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _fmt(v: Any, spec: str = ".0f") -> str:
    if v is None:
        return "—"
    if isinstance(v, bool):
        return "yes" if v else "no"
    return format(v, spec) if isinstance(v, (int, float)) else str(v)


def _clip(text: str, n: int = 48) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def print_table(result: dict[str, Any], console=None) -> None:
    """Print one row per question, then the totals and the per-voice breakdown."""
    from rich.console import Console
    from rich.table import Table

    if console is None:
        console = Console()
        if not console.is_terminal:  # redirected: do not squeeze the table into 80 columns
            console = Console(width=170)
    table = Table(title=f"conversation: {result['pipeline']} (stt {result.get('stt')}, "
                        f"tts {result.get('tts')})")  # fmt: skip
    for col in ("id", "voice", "pause", "WER", "right", "turns", "over ms", "audio ms",
                "frame ms", "heard", "reply"):  # fmt: skip
        wide = col in ("heard", "reply")
        table.add_column(
            col,
            justify="right" if col.endswith(("ms", "WER", "turns")) else "left",
            no_wrap=True,
            overflow="ellipsis",
            max_width=40 if wide else None,
        )
    for r in result["questions"]:
        table.add_row(
            r["id"], r["voice"], "|" if r["pause"] else ("um" if r["hesitation"] else ""),
            _fmt(r["wer"], ".2f"), "✓" if r["answered_right"] else "✗", str(r["user_turns"]),
            _fmt(r["talked_over_ms"]) if r["talked_over"] else "", _fmt(r["first_audio_ms"]),
            _fmt(r["first_frame_ms"]), _clip(r["heard"], 40), _clip(r["reply"], 40),
        )  # fmt: skip
    console.print(table)
    s = result["summary"]
    totals = Table(title="totals (latency in ms after the user's last voiced sample)")
    for col in ("group", "n", "WER", "right", "split", "answered part", "talked over",
                "audio p50", "audio p95",
                "frame p50", "frame p95"):  # fmt: skip
        totals.add_column(col, justify="left" if col == "group" else "right", no_wrap=True)

    def add(name: str, g: dict) -> None:
        totals.add_row(
            name, str(g["questions"]), _fmt(g["wer"], ".3f"),
            f"{g['answered_right']}/{g['questions']}", str(g["split"]),
            str(g.get("answered_part", 0)), str(g["talked_over"]),
            _fmt(g["first_audio_ms"]["p50"]), _fmt(g["first_audio_ms"]["p95"]),
            _fmt(g["first_frame_ms"]["p50"]), _fmt(g["first_frame_ms"]["p95"]),
        )  # fmt: skip

    add("all", s)
    for name, g in result.get("by_voice", {}).items():
        add(f"voice {name}", g)
    for name, g in result.get("by_pause", {}).items():
        add("with pause" if name == "True" else "no pause", g)
    by_noise = result.get("by_noise", {})
    if len(by_noise) > 1 or "quiet" not in by_noise:
        for name, g in by_noise.items():
            add(f"room {name}", g)
    console.print(totals)
    stages = s.get("stages_ms") or {}
    if any(v.get("n") for v in stages.values()):
        console.print(
            "pipeline clock, ms after the VAD's end of voice, p50 / p95: "
            + ", ".join(
                f"{k.replace('_', ' ')} {_fmt(v['p50'])} / {_fmt(v['p95'])}"
                for k, v in stages.items()
            )
        )
    r = s.get("renderer")
    if r:
        console.print(
            f"renderer: {r['frames']} frames pushed, {r['repeated']} repeated "
            f"({r['repeated_pct']:.2f}%, worst session {r['worst_session_repeated_pct']:.2f}%), "
            f"lateness p95 {_fmt(r['late_p95_ms'])} ms"
        )
