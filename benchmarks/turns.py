"""End-of-turn decisions on many voices, offline and faster than real time.

``presence bench conversation`` plays each question once, in its own voice, in real time, so its
split and talk-over counts cover 41 utterances and move with the machine's load. This benchmark
asks the same question of many more utterances, without the clock: every question of a set, in
every voice of that set (or the ones named), is synthesized phrase by phrase; at each pause inside
the sentence and at its end it takes what the pipeline would have at that moment — smart-turn's
probability on the audio so far (with the VAD's ``stop_secs`` of silence) and the pipeline's Whisper
transcript of it — and asks the pipeline's own floor (``FloorEngine``, built from the pipeline
file) when it would end the turn.

The floor sees the transcript ``early_s + decode_ms`` into the silence (``--decode-ms`` is a
nominal decode time, so the decisions do not depend on this machine's load; the measured decode
times are reported apart) and never before the VAD's stop. A pause is **split** when the floor ends
the turn before the pause is over. At each question's end the **decision wait** is the silence
after which the turn ends. Word error is Whisper's on the whole question. When the pipeline's LLM
is the offline knowledge-base responder, each question is also answered from its whole transcript
and judged as ``bench conversation`` judges replies (``answered_right``); a split question is
answered again the way the pipeline sees it after the split (its first part, an answer, then the
rest: ``answered_right_after_split``).

Usage::

    presence bench turns [PIPELINE] [--voices all|own|a,b] [--questions FILE] [--decode-ms 350]
        [--set PATH=VALUE ...] [--limit N] [--json OUT]

The turn stage must be ``smart-turn`` with ``floor`` on and the STT ``whisper``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path

import numpy as np

from presence.benchmarks.conversation.metrics import (
    judge_answer,
    passage_refs,
    percentiles,
    word_error,
)
from presence.benchmarks.conversation.questions import QUESTIONS_FILE, load_questions, resample
from presence.benchmarks.conversation.voices import synthesize_fresh
from presence.framework.builder import build_stage, make_context
from presence.framework.config import load_pipeline, resolve_pipeline_path
from presence.framework.errors import ConfigError

RATE = 16000
LEAD_S = 0.4
NOISE_RMS = 0.0005


def _smart_turn_probability(analyzer, audio: np.ndarray) -> float:
    """smart-turn's probability that the turn is complete, through pipecat's public API."""
    analyzer.clear()
    pcm = (np.clip(audio, -1, 1) * 32767).astype(np.int16).tobytes()
    step = RATE // 50 * 2  # 20 ms
    voiced_until = len(pcm) - int(analyzer.params.stop_secs * RATE) * 2
    for i in range(0, len(pcm), step):
        analyzer.append_audio(pcm[i : i + step], i < voiced_until)
    _state, metrics = asyncio.run(analyzer.analyze_end_of_turn())
    return float(getattr(metrics, "probability", 0.0) or 0.0)


def _utterance(question, voice) -> list[np.ndarray]:
    parts = [resample(a, r, RATE) for a, r in synthesize_fresh(voice, question.phrases)]
    peak = max((float(np.abs(p).max()) for p in parts if p.size), default=1.0) or 1.0
    return [p * (voice.gain / peak) for p in parts]


def run_turns_benchmark(pipeline: Path, *, overrides: list[str], questions_file: Path,
                        voices: str, decode_ms: float, limit: int | None) -> dict:  # fmt: skip
    """Run the benchmark; returns the report (see the module docstring)."""
    from pipecat.audio.turn.smart_turn.base_smart_turn import SmartTurnParams
    from pipecat.audio.turn.smart_turn.local_smart_turn_v3 import LocalSmartTurnAnalyzerV3

    from presence.processors.turns.providers import floor_engine

    loaded = load_pipeline(pipeline, overrides)
    turn, stt_cfg, vad = (loaded.stages.get(k) for k in ("turn", "stt", "vad"))
    if turn is None or turn.provider.name != "smart-turn" or not turn.params.floor:
        raise ConfigError("needs a smart-turn turn stage with floor on", field="stages.turn")
    if stt_cfg is None or stt_cfg.provider.name != "whisper":
        raise ConfigError("needs the whisper STT", field="stages.stt")
    ctx = make_context(loaded)
    stt = build_stage(stt_cfg, ctx)  # loads the model
    vad_stop = float(getattr(vad.params, "stop_secs", 0.2)) if vad is not None else 0.2
    early_s = float(stt_cfg.params.early_s) or vad_stop
    llm_cfg = loaded.stages.get("llm")
    llm = (
        build_stage(llm_cfg, ctx) if llm_cfg and llm_cfg.provider.name == "knowledge-base" else None
    )
    refs = passage_refs(llm.responder.index) if llm is not None else []
    analyzer = LocalSmartTurnAnalyzerV3(params=SmartTurnParams(stop_secs=turn.params.stop_secs))
    analyzer.set_sample_rate(RATE)

    questions = load_questions(questions_file)[:limit] if limit else load_questions(questions_file)
    all_voices = {q.voice.name: q.voice for q in load_questions(questions_file)}
    rng = np.random.default_rng(0)
    rows, decode_times = [], []
    for q in questions:
        names = {"own": [q.voice.name], "all": sorted(all_voices)}.get(voices, voices.split(","))
        for name in names:
            if name not in all_voices:
                raise ConfigError(
                    f"unknown voice {name!r}; have {sorted(all_voices)}", field="--voices"
                )
            engine = floor_engine(turn.params)
            parts = _utterance(q, all_voices[name])
            points, heard = [], ""
            for k in range(len(parts)):
                pieces = [np.zeros(int(LEAD_S * RATE), np.float32)]
                for j in range(k + 1):
                    if j:
                        pieces.append(np.zeros(int(RATE * q.pause_ms / 1000), np.float32))
                    pieces.append(parts[j])
                speech = np.concatenate(pieces)
                tail = np.zeros(int(vad_stop * RATE), np.float32)
                audio = np.concatenate([speech, tail])
                audio = audio + rng.normal(0, NOISE_RMS, audio.size).astype(np.float32)
                probability = _smart_turn_probability(analyzer, audio)
                started = time.perf_counter()
                text = stt.text_of(stt.decode(audio[: speech.size + int(early_s * RATE)]))
                decode_times.append(1000 * (time.perf_counter() - started))
                seen_at = max(vad_stop, early_s + decode_ms / 1000)
                decision = engine.decide(probability > 0.5, probability, seen_at - vad_stop, text)
                if decision.end:
                    ends_at, why = seen_at, decision.reason
                elif decision.recheck_s is not None:
                    ends_at, why = vad_stop + decision.recheck_s, decision.reason
                else:
                    ends_at, why = vad_stop + turn.params.stop_secs, "smart-turn's fallback"
                final = k == len(parts) - 1
                point = {"after": " ".join(q.phrases[: k + 1]), "final": final,
                         "probability": round(probability, 3), "heard": text,
                         "ends_at_ms": round(1000 * ends_at), "reason": why}  # fmt: skip
                if not final:
                    point["split"] = ends_at < q.pause_ms / 1000
                points.append(point)
                heard = text
            row = {"id": q.id, "voice": name, "pause_ms": q.pause_ms, "reference": q.reference,
                   "heard": heard, **word_error(q.reference, heard), "points": points}  # fmt: skip
            if llm is not None:
                row.update(_answers(llm, refs, q.expect, points))
            rows.append(row)
            print(f"{q.id} {name}: " + " | ".join(
                f"{p['heard']!r} p={p['probability']:.2f} → {p['ends_at_ms']} ms"
                + (" SPLIT" if p.get("split") else "") for p in points), flush=True)  # fmt: skip
    return _report(loaded, pipeline, overrides, questions_file, voices, decode_ms, early_s,
                   vad_stop, rows, decode_times)  # fmt: skip


def _answers(llm, refs, expect, points) -> dict:
    """The responder's answer to the whole transcript, and to it as split at the first split pause."""
    from pipecat.processors.aggregators.llm_context import LLMContext

    def judged(messages: list[dict]) -> bool:
        return judge_answer(llm.respond(LLMContext(messages)).text, expect, refs)["right"]

    whole = points[-1]["heard"]
    out = {"answered_right": judged([{"role": "user", "content": whole}])}
    split = next((p for p in points if p.get("split")), None)
    if split is not None:
        first = split["heard"]
        rest = whole[len(first) :].strip() if whole.startswith(first) else whole
        out["answered_right_after_split"] = judged(
            [{"role": "user", "content": first}, {"role": "assistant", "content": "…"},
             {"role": "user", "content": rest}]
        )  # fmt: skip
    return out


def _report(loaded, pipeline, overrides, questions_file, voices, decode_ms, early_s, vad_stop,
            rows, decode_times) -> dict:  # fmt: skip
    pauses = [p for r in rows for p in r["points"] if not p["final"]]
    paused = [r for r in rows if len(r["points"]) > 1]
    split_rows = [r for r in paused if any(p.get("split") for p in r["points"])]
    waits = [r["points"][-1]["ends_at_ms"] for r in rows]
    errors = sum(r["substitutions"] + r["deletions"] + r["insertions"] for r in rows)
    words = sum(r["reference_words"] for r in rows)
    return {
        "pipeline": loaded.spec.name, "pipeline_file": str(pipeline), "overrides": overrides,
        "questions_file": str(questions_file), "voices": voices,
        "method": {"decode_ms": decode_ms, "early_s": early_s, "vad_stop_s": vad_stop},
        "summary": {
            "utterances": len(rows), "with_pause": len(paused), "pause_points": len(pauses),
            "split_utterances": len(split_rows),
            "split_rate": round(len(split_rows) / len(rows), 4) if rows else 0.0,
            "split_rate_of_paused": round(len(split_rows) / len(paused), 4) if paused else 0.0,
            "decision_wait_ms": percentiles(waits),
            "held_past_800_ms": sum(w > 800 for w in waits),
            "wer": round(errors / words, 4) if words else 0.0,
            "answered_right": sum(bool(r.get("answered_right")) for r in rows),
            "answered_right_after_split": sum(
                bool(r.get("answered_right_after_split")) for r in split_rows
            ),
            "decode_ms": percentiles(decode_times),
        },
        "rows": rows,
    }  # fmt: skip


def main(argv: list[str] | None = None) -> dict:
    """Command-line entry (``presence bench turns``)."""
    parser = argparse.ArgumentParser(
        prog="presence bench turns", description=__doc__.split("\n")[0]
    )
    parser.add_argument("pipeline", nargs="?", default="local")
    parser.add_argument("--voices", default="all", help="all, own, or comma-separated names")
    parser.add_argument("--questions", type=Path, default=QUESTIONS_FILE)
    parser.add_argument("--decode-ms", type=float, default=350.0)
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    report = run_turns_benchmark(
        resolve_pipeline_path(args.pipeline), overrides=args.overrides,
        questions_file=args.questions, voices=args.voices, decode_ms=args.decode_ms,
        limit=args.limit,
    )  # fmt: skip
    s = report["summary"]
    print(f"{s['utterances']} utterances ({s['with_pause']} with a pause): split "
          f"{s['split_utterances']} ({100 * s['split_rate']:.1f}%; "
          f"{100 * s['split_rate_of_paused']:.1f}% of paused); decision wait p50/p95 "
          f"{s['decision_wait_ms']['p50']}/{s['decision_wait_ms']['p95']} ms; "
          f"word error {s['wer']:.3f}; answered right {s['answered_right']}/{s['utterances']} "
          f"(split ones after the split: {s['answered_right_after_split']}/"
          f"{s['split_utterances']}); decode p50 {s['decode_ms']['p50']} ms")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(report, indent=1) + "\n")
    return report


if __name__ == "__main__":
    main()
