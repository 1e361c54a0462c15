"""Every script in ``examples/`` runs as a user would run it (a subprocess), offline, so none rots.

Example (a) ``face_in_your_bot.py`` and ``bot.py`` have their own files (a fake LLM in-process;
pipecat's runner with a WebRTC user and pipecat's eval harness).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import av

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
QUESTION = EXAMPLES / "assets/what-is-presence.wav"


def run_example(name: str, *args: str, cwd: Path, timeout: float = 180) -> str:
    """Run ``examples/<name>.py`` with ``args`` from ``cwd``; returns its stdout (fails on rc != 0)."""
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200"}
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / f"{name}.py"), *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=timeout,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return result.stdout


def assistant_turns(mp4: Path) -> list[str]:
    report = json.loads(mp4.with_suffix(".json").read_text())
    return [t["content"] for t in report["turns"] if t["role"] == "assistant"]


def test_custom_processor_inserted_from_yaml_runs_over_a_wav_to_an_mp4(tmp_path):
    out = tmp_path / "answer.mp4"
    stdout = run_example("custom_processor", "--output", str(out), "--fast", cwd=tmp_path)
    answers = assistant_turns(out)
    assert answers and "framework" in answers[0].lower()
    assert answers[0].rstrip().endswith("Anything else?")  # said by examples/signoff.py
    assert "Anything else?" in stdout
    with av.open(str(out)) as container:
        assert container.streams.video[0].codec_context.width == 256
        assert container.streams.audio


def test_swap_providers_by_config_and_by_set(tmp_path):
    out = tmp_path / "a.mp4"
    stdout = run_example(
        "swap_providers",
        "--set", "stages.tts={provider: espeak}",
        "--set", "stages.renderer={provider: still}",
        "--set", "transport.video={width: 128, height: 128}",
        "--input", str(QUESTION), "--output", str(out),
        cwd=tmp_path,
    )  # fmt: skip
    lines = dict(line.strip().split(": ", 1) for line in stdout.splitlines() if ": " in line)
    assert "'tts': 'piper'" in lines["as written"]
    assert "'tts': 'espeak'" in lines["by config (a mapping)"]
    assert "'stt': 'pocketsphinx'" in lines["by --set strings"]
    assert "stages.tts.provider" in lines["a typo"] and "allowed: " in lines["a typo"]
    assert "'tts': 'espeak'" in lines["your --set"]
    assert any("framework" in a.lower() for a in assistant_turns(out))


def test_benchmark_your_own_pipeline_and_read_the_json(tmp_path):
    report = tmp_path / "latency.json"
    stdout = run_example("benchmark", "--turns", "1", "--json", str(report), cwd=tmp_path)
    data = json.loads(report.read_text())
    assert data["summary"]["voice_to_voice_ms"]["n"] == 1
    assert "voice_to_voice_ms: p50" in stdout and stdout.count("voice to voice") == 1


def test_conversations_service_webhooks_are_received_and_verified(tmp_path):
    stdout = run_example("conversations_service", cwd=tmp_path)
    assert "status ended, shutdown_reason end_conversation_endpoint_hit" in stdout
    assert "verified system.shutdown" in stdout
    assert "verified application.transcription_ready" in stdout
