"""One row per question from its session's JSON report and MP4; totals over the rows.

Times are seconds of the session, which starts with the user's WAV (the file transport's media
clock, also the MP4's timeline). ``end`` is the user's last voiced sample (from the rendering).

Row fields:

* ``heard``: the user turns' text joined; ``wer`` etc. against the question's reference;
* ``replies``: every assistant turn's text; ``answered_right`` judges the **last** reply (the one
  the conversation ends on: the pipeline's answer to the whole question), see
  ``metrics.judge_answer``; ``reply`` is that text;
* ``user_turns``: how many times the pipeline ended the user's turn (``UserStoppedSpeakingFrame``)
  in the session, which holds this one question; ``split`` when more than one. ``user_turns_json``
  is the transcript's count (user turns closed by a persona reply), for comparison;
  ``answered_part`` when the persona answered a part of the question out loud (more than one
  reply in the transcript; an answer withheld and withdrawn unheard is not a reply);
* ``talked_over_ms``: audible persona audio between the user's first and last voiced samples,
  from the MP4 (``metrics.overlap_s``); ``talked_over`` when any;
* ``first_audio_ms``: end → the first onset of persona audio at or after it, from the MP4;
* ``first_frame_ms``: end → the start of the first video frame showing the renderer's first
  speaking image of a stretch of speech that starts at or after the end (the file output's
  ``speech_starts``, see ``transports/file/output.py``); None without a renderer;
* ``pipeline_v2v_ms``: the transcript observer's own voice-to-voice (VAD stop → bot started
  speaking) for the last user turn, for comparison only;
* ``stages_ms``: where that turn's time went, on the same clock and from the same end of voice:
  ``transcript_final`` (first final transcript), ``turn_decided`` (the turn strategy's last
  decision), ``llm_first_token``, ``tts_first_audio``, ``bot_started_speaking`` (None where the
  turn had no such moment; with a speculative start the LLM may come before the decision);
* ``renderer_frames``, ``renderer_repeated``, ``renderer_late_p95_ms`` (added by the runner): the
  renderer's own clock over the session — frames pushed, frames that repeated the previous image
  because drawing fell behind, and the p95 of how late frames were pushed.

The totals add ``renderer``: frames and repeats over all sessions, the share repeated, the
worst session's share, and the p95 of the sessions' lateness p95s (the renderer holds its fps
when almost nothing repeats and frames are pushed within a frame period of their time).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from presence.benchmarks.conversation import metrics
from presence.benchmarks.conversation.questions import RenderedQuestion


def _ms(t: float | None, ref: float) -> float | None:
    return None if t is None else round((t - ref) * 1000.0, 1)


def first_speaking_frame(speech_starts: list[dict], end_s: float) -> float | None:
    """Start time (s) of the first speaking frame of the first speech stretch starting at or after ``end_s``."""
    for start in speech_starts or ():
        if start.get("audio_s") is None or start["audio_s"] < end_s - 1e-6:
            continue
        if start.get("frame_s") is not None:
            return float(start["frame_s"])
        if start.get("image_s") is not None:
            return float(start["image_s"])
        return None
    return None


def score_question(
    rq: RenderedQuestion,
    report: dict[str, Any],
    audio: np.ndarray,
    rate: int,
    passages: list[metrics.PassageRef],
    *,
    turn_ends: int | None = None,
) -> dict[str, Any]:
    """The row of one question (see the module docstring for every field)."""
    q = rq.question
    turns = report.get("turns", [])
    heard = " ".join(t["content"] for t in turns if t["role"] == "user").strip()
    replies = [t["content"] for t in turns if t["role"] == "assistant"]
    reply = replies[-1] if replies else ""
    judged = metrics.judge_answer(reply, q.expect, passages)
    start, end = rq.speech_start_s, rq.speech_end_s
    timings = report.get("timings", [])
    user_turns_json = sum(1 for t in timings if t.get("user_started_speaking_ms") is not None)
    over = metrics.overlap_s(audio, rate, start, end)
    onset = metrics.first_onset_after(audio, rate, end)
    frame = first_speaking_frame((report.get("output") or {}).get("speech_starts", []), end)
    v2v = next(
        (t["voice_to_voice_ms"] for t in reversed(timings) if t.get("voice_to_voice_ms")), None
    )
    user_turns = turn_ends if turn_ends is not None else user_turns_json
    last = next((t for t in reversed(timings) if t.get("voice_to_voice_ms")), {})
    return {
        "id": q.id,
        "voice": q.voice.name,
        "format": q.format,
        "noise": q.noise.kind if q.noise else "quiet",
        "snr_db": q.noise.snr_db if q.noise else None,
        "pause": q.has_pause,
        "hesitation": q.has_hesitation,
        "reference": q.reference,
        "heard": heard,
        **metrics.word_error(q.reference, heard),
        "expect": list(q.expect),
        "reply": reply,
        "replies": replies,
        "answered_right": judged["right"],
        "reply_passage": judged["best"],
        "reply_overlap": judged["overlap"],
        "user_turns": user_turns,
        "user_turns_json": user_turns_json,
        "split": user_turns > 1,
        "answered_part": len(replies) > 1,
        "talked_over": over > 0,
        "talked_over_ms": round(over * 1000.0, 1),
        "speech_start_s": start,
        "speech_end_s": end,
        "first_audio_ms": _ms(onset, end),
        "first_frame_ms": _ms(frame, end),
        "pipeline_v2v_ms": v2v,
        "stages_ms": _stages(last),
        "end_reason": (report.get("session") or {}).get("end_reason"),
    }


STAGE_KEYS = (
    "transcript_final",
    "turn_decided",
    "llm_first_token",
    "tts_first_audio",
    "bot_started_speaking",
)


def _stages(timing: dict[str, Any]) -> dict[str, float | None]:
    """A turn's moments in ms after its end of voice (see ``stages_ms`` in the module doc)."""
    base = timing.get("user_stopped_speaking_ms")
    return {
        k: None if base is None or timing.get(f"{k}_ms") is None else timing[f"{k}_ms"] - base
        for k in STAGE_KEYS
    }


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Totals: corpus WER, counts, and p50/p95 of the latencies (see ``metrics.percentiles``)."""
    n = len(rows)
    ref_words = sum(r["reference_words"] for r in rows)
    errors = sum(r["substitutions"] + r["deletions"] + r["insertions"] for r in rows)
    return {
        "questions": n,
        "wer": round(errors / ref_words, 4) if ref_words else None,
        "wer_mean": round(float(np.mean([r["wer"] for r in rows])), 4) if rows else None,
        "answered_right": sum(r["answered_right"] for r in rows),
        "answered_right_rate": round(sum(r["answered_right"] for r in rows) / n, 3) if n else None,
        "split": sum(r["split"] for r in rows),
        "answered_part": sum(r.get("answered_part", False) for r in rows),
        "talked_over": sum(r["talked_over"] for r in rows),
        "no_reply": sum(not r["replies"] for r in rows),
        "first_audio_ms": metrics.percentiles(r["first_audio_ms"] for r in rows),
        "first_frame_ms": metrics.percentiles(r["first_frame_ms"] for r in rows),
        "pipeline_v2v_ms": metrics.percentiles(r["pipeline_v2v_ms"] for r in rows),
        "stages_ms": {
            k: metrics.percentiles((r.get("stages_ms") or {}).get(k) for r in rows)
            for k in STAGE_KEYS
        },
        "renderer": renderer_totals(rows),
    }


def renderer_totals(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The renderer's frames and repeats over the rows that have them (None when none do)."""
    rows = [r for r in rows if r.get("renderer_frames")]
    if not rows:
        return None
    frames = sum(r["renderer_frames"] for r in rows)
    repeated = sum(r["renderer_repeated"] for r in rows)
    return {
        "frames": frames,
        "repeated": repeated,
        "repeated_pct": round(100.0 * repeated / frames, 2),
        "worst_session_repeated_pct": round(
            max(100.0 * r["renderer_repeated"] / r["renderer_frames"] for r in rows), 2
        ),
        "late_p95_ms": metrics.percentiles(r.get("renderer_late_p95_ms") for r in rows)["p95"],
    }


def by_group(rows: list[dict[str, Any]], key: str) -> dict[str, dict[str, Any]]:
    """``summarize`` per value of ``key`` (e.g. per voice), in first-seen order."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault(str(r[key]), []).append(r)
    return {k: summarize(v) for k, v in groups.items()}
