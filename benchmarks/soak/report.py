"""The soak report: verdicts against the targets, JSON, a PNG of the samples and a rich table.

Targets (issue "Hardening"): after the warm-up, memory, fds, threads and tasks flat within 5%
(max minus min of the samples after the warm-up taken between turns, over the first of them;
``samples_not_quiet`` counts those left out, such as a last sample taken mid-answer); A/V drift within one
frame at every sample of the run; no repeated or dropped frames after the warm-up second. The
flatness is also given from the second pass through the looped questions on
(``flat_after_first_pass``), which the overall ``ok`` does not use.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from presence.benchmarks.latency.report import machine, write_json  # noqa: F401  (re-exported)

FLAT = ("rss_mb", "fds", "threads", "tasks")
FLAT_WITHIN = 0.05
MAX_DRIFT_FRAMES = 1.0

METHOD = {
    "call": "the pipeline served over WebRTC on 127.0.0.1 as `presence run` does; one Python "
    "aiortc user (presence.transports.webrtc.client) joins, waits out the greeting, then speaks "
    "the conversation benchmark's first questions in turn, in real time, each after the previous "
    "answer's RTVI bot-stopped-speaking plus a gap",
    "rss_mb/fds/threads": "psutil on the process; the server and the user share it, the user keeps "
    "no audio samples and forgets its arrival records and messages after every question",
    "when": "each sample after the first at the first quiet moment at or after its due time (the "
    "persona done answering, 1 s of silence, the next question not begun; at most 30 s late; "
    "`quiet` says whether it found one): memory, threads and tasks compared at the same point "
    "of the conversation, not with a turn's buffers and tasks in flight",
    "tasks": "asyncio.all_tasks() on the event loop (the user's tasks included: a constant share)",
    "lateness_ms": "renderer push time minus due time, per frame, over the interval since the "
    "previous sample",
    "drift_frames": "audio samples the renderer pushed x fps / rate - frames pushed (0: each "
    "frame carried exactly its period of audio)",
    "repeated": "frames that repeated the previous image because drawing fell behind (cumulative)",
    "frames_short": "frames the wall clock called for since time zero minus frames pushed; the "
    "clock re-phases at each speech onset (< 1 frame per turn)",
    "client_missing_frames": "frames pushed since time zero that the user never received, less "
    "half a second in flight",
    "trims/trim_ms_max": "the session's idle memory trims so far and the longest since the "
    "previous sample",
    "gc_full/gc_ms_max": "Python's full garbage collections so far and the longest collection of "
    "any generation since the previous sample (gc.callbacks; a collection holds the GIL)",
    "warm-up": "time zero is the user's first video frame; the first sample is one second later",
    "output_backlog": "audio queued in the WebRTC output transport and its track at each sample "
    "after the warm-up (how late the user hears what the renderer pushed), and the idle silence "
    "the output dropped to catch up",
    "repeats_by_phase": "each repeated frame after the warm-up second, by where it fell: while "
    "the user speaks, at the turn's end (the first TURN_END_S after the user's last word: the "
    "decode, the decision and the answer's start), in the rest of the answer, or between turns",
}

TURN_END_S = 1.5


def repeat_phases(result: dict[str, Any]) -> dict[str, int] | None:
    """Repeated frames after the warm-up second by phase of the conversation (None without them)."""
    if "repeats" not in result:
        return None
    asked = [a for a in result.get("asked", []) if "spoke_s" in a]
    out = {"user speaking": 0, "turn end": 0, "answer": 0, "between turns": 0}
    for r in result["repeats"]:
        phase = "between turns"
        for a in asked:
            spoke_until = a["t"] + a["spoke_s"]
            if a["t"] <= r["t"] < spoke_until:
                phase = "user speaking"
            elif spoke_until <= r["t"] < spoke_until + TURN_END_S:
                phase = "turn end"
            elif spoke_until + TURN_END_S <= r["t"] < a["t"] + a["seconds"]:
                phase = "answer"
            else:
                continue
            break
        out[phase] += 1
    return out


def _flat(rows: list[dict[str, Any]], key: str) -> dict[str, Any]:
    values = [r[key] for r in rows]
    base = values[0] or 1
    spread = (max(values) - min(values)) / base
    return {
        "first": values[0],
        "last": values[-1],
        "min": min(values),
        "max": max(values),
        "spread": round(spread, 4),
        "growth": round((values[-1] - values[0]) / base, 4),
        "ok": spread <= FLAT_WITHIN,
    }


def verdicts(result: dict[str, Any], warmup_s: float) -> dict[str, Any]:
    """The targets' verdicts for a ``arun_soak`` result (``ok`` is ``None`` without data)."""
    samples = result["samples"]
    after = [s for s in samples if s["t_s"] >= warmup_s]
    out: dict[str, Any] = {
        "warmup_s": warmup_s,
        "samples_after_warmup": len(after),
        "samples_not_quiet": sum(not s.get("quiet", True) for s in after),
    }
    # compared at the same point of the conversation: samples taken between turns (a sample
    # that found no quiet moment, such as the last one when time ran out mid-answer, is left out)
    quiet = [s for s in after if s.get("quiet", True)]
    if len(quiet) >= 2:
        out["flat"] = {key: _flat(quiet, key) for key in FLAT}
        flat_ok = all(v["ok"] for v in out["flat"].values())
    else:
        out["flat"], flat_ok = None, None
    drift = max((abs(s["drift_frames"]) for s in samples), default=0.0)
    out["drift"] = {"max_abs_frames": round(drift, 3), "ok": drift <= MAX_DRIFT_FRAMES}
    if samples:
        first, last = samples[0], samples[-1]
        turns = len(result.get("asked", [])) + 1  # + the greeting
        repeated = last["repeated"] - first["repeated"]
        short = max(0, last["frames_short"] - first["frames_short"] - turns)
        missing = last["client_missing_frames"]
        out["frames"] = {
            "repeated_after_warmup": repeated,
            "short_after_warmup_beyond_onsets": short,
            "client_missing": missing,
            "ok": repeated == 0 and short == 0 and missing == 0,
        }
        phases = repeat_phases(result)
        if phases is not None:
            out["repeats_by_phase"] = phases
    else:
        out["frames"] = {"ok": None}
    backlog = [s["output_backlog_s"] for s in after if s.get("output_backlog_s") is not None]
    if backlog:  # how late the user hears what the renderer pushed: must not grow through a call
        out["output_backlog"] = {
            "max_s": max(backlog),
            "last_s": backlog[-1],
            "silence_dropped_s": after[-1].get("silence_dropped_s"),
        }
    parts = [flat_ok, out["drift"]["ok"], out["frames"]["ok"]]
    out["ok"] = None if None in parts else all(parts)
    out["flat_after_first_pass"] = _flat_after_first_pass(result)
    return out


def _flat_after_first_pass(result: dict[str, Any]) -> dict[str, Any] | None:
    """Flatness from the second pass through the looped questions on (``None`` before one).

    A second reading, beside the warm-up's: memory that grows only while each question and answer
    is met for the first time (runtimes sizing their buffers to the longest input) levels off
    once every one of them has been through the call; a leak goes on growing after that.
    """
    asked = [a for a in result.get("asked", []) if "id" in a and "t" in a]
    distinct = len({a["id"] for a in asked})
    if not distinct or len(asked) <= distinct:
        return None
    from_s = asked[distinct]["t"]  # the second pass's first question
    rows = [s for s in result["samples"] if s["t_s"] >= from_s and s.get("quiet", True)]
    if len(rows) < 2:
        return None
    flat = {key: _flat(rows, key) for key in FLAT}
    return {"from_s": from_s, **flat, "ok": all(v["ok"] for v in flat.values())}


def plot(result: dict[str, Any], path: str | Path) -> Path:
    """A PNG: the process's resources, the renderer's lateness and drift, per sample.

    Raises:
        DependencyError: matplotlib is not installed.
    """
    from presence.framework.optional import require

    require("matplotlib", extra="bench")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result["samples"]
    t = [r["t_s"] / 60 for r in rows]
    fig, axes = plt.subplots(2, 3, figsize=(15, 7.5), sharex=True)
    panels = [
        ("rss_mb", "resident memory (MiB)"),
        ("fds", "open file descriptors"),
        ("threads", "OS threads"),
        ("tasks", "asyncio tasks"),
    ]
    for ax, (key, title) in zip(axes.flat, panels, strict=False):
        ax.plot(t, [r[key] for r in rows], "o-", ms=3)
        ax.set_title(title)
        ax.set_ylim(bottom=0)
    ax = axes.flat[4]
    for key, style in (
        ("lateness_ms_p50", "o-"),
        ("lateness_ms_p99", "s-"),
        ("lateness_ms_max", "x:"),
    ):
        ax.plot(t, [r[key] if r[key] is not None else float("nan") for r in rows], style, ms=3,
                label=key.removeprefix("lateness_ms_"))  # fmt: skip
    ax.set_title("renderer lateness per interval (ms)")
    ax.legend(fontsize=8)
    ax = axes.flat[5]
    ax.plot(t, [r["drift_frames"] for r in rows], "o-", ms=3, label="A/V drift (frames)")
    ax.plot(t, [r["repeated"] for r in rows], "s-", ms=3, label="repeated frames (total)")
    ax.plot(t, [r["client_missing_frames"] for r in rows], "x:", label="missing at the user")
    ax.axhspan(-MAX_DRIFT_FRAMES, MAX_DRIFT_FRAMES, color="#55a868", alpha=0.15)
    ax.set_title("drift and frames")
    ax.legend(fontsize=8)
    for ax in axes[1]:
        ax.set_xlabel("minutes into the call")
    v = result.get("verdicts", {})
    fig.suptitle(f"soak: {result.get('pipeline')} {result['minutes']} min, "
                 f"{len(result['asked'])} questions; verdict {v.get('ok')}")  # fmt: skip
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def print_table(result: dict[str, Any], console=None) -> None:
    """Print the verdicts and the last sample with rich."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    v = result["verdicts"]
    table = Table(title=f"soak {result['minutes']} min ({result['seconds']} s held)")
    table.add_column("target")
    table.add_column("measured")
    table.add_column("ok")
    for key, flat in (v.get("flat") or {}).items():
        table.add_row(f"{key} flat within 5%", f"{flat['first']} → {flat['last']} "
                      f"(spread {flat['spread']:.1%})", str(flat["ok"]))  # fmt: skip
    second = v.get("flat_after_first_pass")
    if second:
        spreads = ", ".join(f"{key} {second[key]['spread']:.1%}" for key in FLAT)
        table.add_row(f"flat from the second pass ({second['from_s']:.0f} s)", spreads,
                      str(second["ok"]))  # fmt: skip
    table.add_row(
        "drift ≤ 1 frame", f"{v['drift']['max_abs_frames']} frames", str(v["drift"]["ok"])
    )
    frames = v["frames"]
    table.add_row("no repeated/dropped frames", ", ".join(f"{k} {frames[k]}" for k in frames if k != "ok"),
                  str(frames["ok"]))  # fmt: skip
    if v.get("repeats_by_phase"):
        phases = v["repeats_by_phase"]
        table.add_row("repeated frames by phase", ", ".join(f"{k} {n}" for k, n in phases.items()),
                      "")  # fmt: skip
    if v.get("output_backlog"):
        b = v["output_backlog"]
        table.add_row("audio waiting in the WebRTC output",
                      f"max {b['max_s']} s, last {b['last_s']} s; idle silence dropped "
                      f"{b['silence_dropped_s']} s", "")  # fmt: skip
    answered = sum(a["answered"] for a in result["asked"])
    table.add_row("questions answered", f"{answered}/{len(result['asked'])}", "")
    console.print(table)
