"""Turn the observer's events and the transport's records into per-turn timings, a summary, a
JSON file, a PNG chart and a rich table.

Per turn, every time is in ms from the end of the user's speech (the last voiced sample of the
turn's last segment):

* ``vad_stop_ms``, ``turn_decision_ms`` (the ``UserStoppedSpeakingFrame`` that ends the turn),
  ``stt_final_ms`` (last transcript before the decision), ``llm_first_token_ms``,
  ``tts_first_audio_ms``, ``first_frame_ms`` (first speaking video frame shown at the output, or
  pushed by the renderer when the output shows none), ``bot_started_ms`` and
  ``voice_to_voice_ms`` (first speech audio heard at the output);
* ``av_offset_ms``: first speaking image shown minus first speech heard (positive: video late);
  ``av_offset_set_ms``: the same with the time the output made that image current, before its
  fixed-rate video loop sampled it (leaves out the loop's 0 to one period sampling phase);
* ``scripted_ms``: the configured and provider time on the critical path: the turn policy (VAD
  stop as observed + the speech timeout, or the STT's scripted final if later; with model-based turn
  detection the measured decision), then the scripted LLM time to the text the TTS started on
  (hidden behind the turn wait when the request was speculative), then the scripted TTS TTFB;
* ``framework_overhead_ms`` = ``voice_to_voice_ms - scripted_ms`` (scripted LLM and TTS only).
  The VAD's own detection lag is not in it: it is ``vad_lag_ms`` (VAD stop minus its
  ``stop_secs``), and ``overhead_with_vad_ms`` adds the two;
* ``false_end_of_turn``: turn decisions made inside the sentence (between its first segment's end
  and its last segment's end); ``missed_end_of_turn``: no decision before the next turn began.
"""

from __future__ import annotations

import json
import platform
from bisect import bisect_left
from pathlib import Path
from typing import Any

import numpy as np

from presence.benchmarks.latency.observer import Event, LatencyObserver
from presence.benchmarks.latency.transport import BenchOutput, TurnMarks

STAGES = (
    "vad_stop_ms",
    "stt_final_ms",
    "turn_decision_ms",
    "llm_first_token_ms",
    "tts_first_audio_ms",
    "first_frame_ms",
    "voice_to_voice_ms",
)
SUMMARY_KEYS = (
    "voice_to_voice_ms",
    "framework_overhead_ms",
    "turn_decision_ms",
    "first_frame_ms",
    "stt_final_ms",
    "llm_first_token_ms",
    "tts_first_audio_ms",
    "vad_stop_ms",
    "vad_lag_ms",
    "overhead_with_vad_ms",
    "av_offset_ms",
    "av_offset_set_ms",
)


def _first(events: list[Event], lo: int, hi: int) -> Event | None:
    for e in events:
        if lo <= e.t_ns < hi:
            return e
    return None


def _last(events: list[Event], lo: int, hi: int) -> Event | None:
    found = None
    for e in events:
        if lo <= e.t_ns <= hi:
            found = e
    return found


def _first_after(times: list[int], lo: int, hi: int) -> int | None:
    i = bisect_left(times, lo)
    return times[i] if i < len(times) and times[i] < hi else None


def _ms(t: int | None, ref: int) -> float | None:
    return None if t is None else (t - ref) / 1e6


def analyze_turns(
    marks: list[TurnMarks],
    observer: LatencyObserver,
    output: BenchOutput,
    *,
    turn_wait_ms: float | None = None,
    vad_stop_ms: float = 0.0,
    scripted: bool = False,
) -> list[dict[str, Any]]:
    """Per-turn timings (see the module docstring).

    Args:
        marks: When each scripted turn was spoken.
        observer: The run's observer.
        output: The run's output transport.
        turn_wait_ms: The configured wait after VAD stop (speech timeout) when it is fixed; None
            takes the measured turn decision as the policy (model-based turn detection).
        vad_stop_ms: The VAD's configured ``stop_secs`` in ms.
        scripted: Whether the providers are the scripted fakes (enables the overhead figures).
    """
    ev = {k: observer.of(k) for k in (
        "vad_stop", "turn_stop", "stt_final", "llm_request", "llm_token", "tts_audio",
        "render_speech", "bot_started", "cancel",
    )}  # fmt: skip
    heard = sorted(output.speech_heard_ns)
    shown = sorted(output.speaking_image_shown_ns)
    made_current = sorted(output.speaking_image_set_ns)
    turns = []
    for i, m in enumerate(marks):
        end = m.end_ns
        nxt = marks[i + 1].start_ns if i + 1 < len(marks) else 2**62
        row: dict[str, Any] = {"turn": i, "segments": len(m.segment_ends_ns)}
        first_end = m.segment_ends_ns[0]
        row["false_end_of_turn"] = sum(first_end <= e.t_ns < end for e in ev["turn_stop"])
        row["speculations_cancelled"] = sum(m.start_ns <= e.t_ns < nxt for e in ev["cancel"])
        decision = _first(ev["turn_stop"], end, nxt)
        row["missed_end_of_turn"] = decision is None
        vad = _first(ev["vad_stop"], end, nxt)
        row["vad_stop_ms"] = _ms(vad.t_ns if vad else None, end)
        row["vad_lag_ms"] = None if vad is None else row["vad_stop_ms"] - vad_stop_ms
        if decision is None:
            turns.append(row)
            continue
        d = decision.t_ns
        row["turn_decision_ms"] = _ms(d, end)
        stt = _last(ev["stt_final"], m.start_ns, d)
        row["stt_final_ms"] = _ms(stt.t_ns if stt else None, end)
        token = _first(ev["llm_token"], d, nxt)
        row["llm_first_token_ms"] = _ms(token.t_ns if token else None, end)
        request = _last(ev["llm_request"], m.start_ns, token.t_ns) if token else None
        row["llm_request_ms"] = _ms(request.t_ns if request else None, end)
        row["speculative"] = bool(request and request.info.get("speculation"))
        tts = _first(ev["tts_audio"], d, nxt)
        row["tts_first_audio_ms"] = _ms(tts.t_ns if tts else None, end)
        render = _first(ev["render_speech"], d, nxt)
        shown_t = _first_after(shown, d, nxt)
        image_t = (
            shown_t if shown_t is not None else (render.info.get("image_ns") if render else None)
        )
        row["first_frame_ms"] = _ms(image_t, end)
        bot = _first(ev["bot_started"], d, nxt)
        row["bot_started_ms"] = _ms(bot.t_ns if bot else None, end)
        heard_t = _first_after(heard, d, nxt)
        row["voice_to_voice_ms"] = _ms(heard_t, end)
        row["av_offset_ms"] = (
            (shown_t - heard_t) / 1e6 if shown_t is not None and heard_t is not None else None
        )
        set_t = _first_after(made_current, d, nxt)
        row["av_offset_set_ms"] = (
            (set_t - heard_t) / 1e6 if set_t is not None and heard_t is not None else None
        )
        if scripted and tts and request and heard_t is not None:
            text_at = tts.info.get("text_at_ns") or tts.t_ns
            cause = _last(ev["llm_token"], request.t_ns, text_at)
            llm_ms = (cause.info.get("scripted_ms") or 0.0) if cause else 0.0
            ttfb_ms = tts.info.get("scripted_ms") or 0.0
            stt_ms = (stt.info.get("scripted_ms") or 0.0) if stt else 0.0
            if turn_wait_ms is None or vad is None:
                policy = row["turn_decision_ms"]
            else:
                policy = max(row["vad_stop_ms"] + turn_wait_ms, stt_ms)
            start = _ms(request.t_ns, end) if row["speculative"] else policy
            row["scripted_ms"] = max(policy, start + llm_ms) + ttfb_ms
            row["framework_overhead_ms"] = row["voice_to_voice_ms"] - row["scripted_ms"]
            row["overhead_with_vad_ms"] = row["framework_overhead_ms"] + (row["vad_lag_ms"] or 0.0)
        turns.append(row)
    return turns


def percentiles(values: list[float]) -> dict[str, float | None]:
    """p50/p95/p99 (and n) of the non-missing values."""
    vals = np.asarray([v for v in values if v is not None], dtype=float)
    if vals.size == 0:
        return {"p50": None, "p95": None, "p99": None, "n": 0}
    p = np.percentile(vals, [50, 95, 99])
    return {
        "p50": round(float(p[0]), 1),
        "p95": round(float(p[1]), 1),
        "p99": round(float(p[2]), 1),
        "n": int(vals.size),
    }


def summarize(turns: list[dict[str, Any]]) -> dict[str, Any]:
    """The ``summary`` block: percentiles per key plus turn-taking counts."""
    out: dict[str, Any] = {k: percentiles([t.get(k) for t in turns]) for k in SUMMARY_KEYS}
    out["turns"] = len(turns)
    out["false_end_of_turn"] = int(sum(t["false_end_of_turn"] for t in turns))
    out["missed_end_of_turn"] = int(sum(bool(t["missed_end_of_turn"]) for t in turns))
    out["speculations_cancelled"] = int(sum(t.get("speculations_cancelled", 0) for t in turns))
    return out


# CPU features that move the offline engines' speed several-fold (bfloat16 matrix products,
# AVX-512 for CTranslate2 and onnxruntime): figures from machines that differ here do not compare.
_CPU_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16")


def _cpu() -> dict[str, Any]:
    """The CPU's model name and which of ``_CPU_FLAGS`` it has (Linux; empty elsewhere)."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return {}
    fields = dict(
        (k.strip(), v.strip()) for k, _, v in (line.partition(":") for line in text.splitlines())
    )
    flags = set(fields.get("flags", "").split())
    return {
        "cpu_model": fields.get("model name"),
        "cpu_flags": [f for f in _CPU_FLAGS if f in flags],
    }


def machine() -> dict[str, Any]:
    """What the run ran on: platform, Python, CPU model and speed-relevant features, cores."""
    import os

    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        **_cpu(),
    }


def write_json(result: dict[str, Any], path: str | Path) -> Path:
    """Write ``result`` as indented JSON."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2, default=str) + "\n")
    return path


def plot(result: dict[str, Any], path: str | Path) -> Path:
    """A PNG: per-stage box plot (ms after end of user speech) and the median waterfall.

    Raises:
        DependencyError: matplotlib is not installed.
    """
    from presence.framework.optional import require

    require("matplotlib", extra="bench")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = [("presence", result["turns"])]
    if result.get("baseline"):
        runs.append(("plain pipecat", result["baseline"]["turns"]))
    fig, axes = plt.subplots(1, 2, figsize=(13, 5), gridspec_kw={"width_ratios": [3, 2]})
    labels = [s.removesuffix("_ms").replace("_", " ") for s in STAGES]
    data = [[t[s] for t in result["turns"] if t.get(s) is not None] or [np.nan] for s in STAGES]
    axes[0].boxplot(data, orientation="horizontal", tick_labels=labels, whis=(1, 99))
    axes[0].set_xlabel("ms after the end of user speech")
    axes[0].set_title(f"{result['pipeline']}: {len(result['turns'])} turns")
    axes[0].invert_yaxis()
    colors = ["#4c72b0", "#dd8452"]
    height = 0.8 / len(runs)
    for r, (name, turns) in enumerate(runs):
        prev = 0.0
        for k, s in enumerate(STAGES):
            vals = [t[s] for t in turns if t.get(s) is not None]
            if not vals:
                continue
            med = float(np.median(vals))
            axes[1].barh(k + r * height, max(2.0, abs(med - prev)), left=min(prev, med), height=height,
                         color=colors[r], label=name if k == len(STAGES) - 1 else None)  # fmt: skip
            prev = med
    axes[1].set_yticks(range(len(STAGES)), labels)
    axes[1].invert_yaxis()
    axes[1].set_xlabel("median, ms after the end of user speech")
    axes[1].set_title("waterfall (p50)")
    axes[1].legend(loc="lower right")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def print_table(result: dict[str, Any], console=None) -> None:
    """Print the summary (and the baseline, when there is one) as a rich table."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    summary = result["summary"]
    base = (result.get("baseline") or {}).get("summary", {})
    table = Table(title=f"latency: {result['pipeline']} ({summary['turns']} turns)")
    table.add_column("stage (ms after end of speech)")
    for col in ("p50", "p95", "p99"):
        table.add_column(col, justify="right")
    if base:
        table.add_column("plain pipecat p50", justify="right")

    def fmt(v):
        return "—" if v is None else f"{v:.0f}"

    for key in SUMMARY_KEYS:
        row = summary[key]
        cells = [
            key.removesuffix("_ms").replace("_", " "),
            *(fmt(row[c]) for c in ("p50", "p95", "p99")),
        ]
        if base:
            cells.append(fmt(base.get(key, {}).get("p50")))
        table.add_row(*cells)
    console.print(table)
    ratio = summary.get("vs_plain_pipecat_ratio")
    console.print(
        f"false end of turn: {summary['false_end_of_turn']}, missed: {summary['missed_end_of_turn']}, "
        f"speculations withdrawn: {summary['speculations_cancelled']}"
        + (f", presence / plain pipecat (v2v p50): {ratio:.3f}" if ratio else "")
    )
