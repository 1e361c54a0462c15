"""``presence bench sessions``: N conversations at once through the service, each with a user.

The benchmark starts (or joins, ``ray_address``) a Ray cluster, starts ``presence serve
--placement process|ray`` as a child process on a loopback port, creates ``sessions``
conversations at once through ``POST /v2/conversations``, and joins each with the Python WebRTC
user (``presence.transports.webrtc.client.WebRTCUser``). Each user waits for the greeting to end
(RTVI ``bot-stopped-speaking`` for every ``bot-started-speaking``, then 1 s without sound), then all
say a question from the conversation benchmark at the same moment (the worst case for the
cluster), and the call is held ``hold_s`` more. Per conversation it reports (see ``report``):

- ``node``: the Ray node its actor ran on (its id and address; ``local`` under ``process``);
- ``create_ms``: ``POST /v2/conversations`` until it answered;
- ``joined_ms``: that POST until the ``system.replica_joined`` webhook arrived (the user's
  offer answered and the pipeline started);
- ``fps``: video frames the user received per second, from its first frame to the hang-up;
- ``answer_ms``: from the user's last voiced audio sample (the question's WAV says where its
  speech ends; ±20 ms: the microphone's frame) to the first loud 20 ms the user heard after it,
  counted once the persona's RTVI ``bot-started-speaking`` for the answer arrived;
- ``transcript_lines``: lines stored when the call ended.

Totals add the conversations placed and refused (429), conversations per node, and the CPU the
service and the Ray nodes used during the calls (``cores_per_session``: CPU-seconds per second of
call per conversation), so cost per session can be compared as N grows. Joining a cluster
(``ray_address``) counts the service only: its nodes are not this machine's to measure.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psutil
from loguru import logger

from presence.benchmarks.sessions.cluster import LocalRayCluster
from presence.benchmarks.sessions.report import Hooks, summarize
from presence.framework.errors import PresenceError

GREETING = "Hello there! Welcome to the presence demo."
GREETING_TIMEOUT_S = 120.0
ANSWER_TIMEOUT_S = 60.0
QUIET_S = 1.0  # the greeting is over once nothing loud arrived for this long
SERVICE_TIMEOUT_S = 120.0
PLACEMENTS = ("process", "ray")


class SessionsBenchmarkError(PresenceError):
    """The sessions benchmark cannot run as asked (bad option, service did not start)."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Service:
    """``presence serve`` as a child process on a loopback port (stopped on exit)."""

    def __init__(self, data_dir: Path, placement: str, ray_address: str | None, env: dict):
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.key = "pk_bench_" + secrets.token_hex(8)
        command = [sys.executable, "-m", "presence.framework.cli", "serve", "--port",
                   str(self.port), "--data-dir", str(data_dir), "--placement", placement]  # fmt: skip
        if ray_address:
            command += ["--ray-address", ray_address]
        self.log = data_dir / "service.log"
        with self.log.open("w") as out:
            self.process = subprocess.Popen(
                command,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env={
                    **os.environ,
                    **env,
                    "PRESENCE_API_KEYS": self.key,
                    "NO_COLOR": "1",
                    "PRESENCE_ICE_HOST_ADDRESSES": "127.0.0.1",
                },  # fmt: skip
            )

    def wait_ready(self) -> None:
        """Wait until the API answers (``SessionsBenchmarkError`` if it exits or never does)."""
        deadline = time.monotonic() + SERVICE_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SessionsBenchmarkError(
                    f"presence serve exited: {self.log.read_text()[-2000:]}"
                )
            with contextlib.suppress(httpx.HTTPError):
                r = httpx.get(f"{self.base}/v2/personas", headers={"x-api-key": self.key})
                if r.status_code == 200:
                    return
            time.sleep(0.5)
        raise SessionsBenchmarkError("presence serve did not answer within 120 s")

    def tree(self) -> list[psutil.Process]:
        """The service process and every session process it started."""
        with contextlib.suppress(psutil.Error):
            root = psutil.Process(self.process.pid)
            return [root, *root.children(recursive=True)]
        return []

    def stop(self) -> None:
        """SIGTERM (it ends its calls), then SIGKILL after 30 s."""
        tree = self.tree()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        for process in psutil.wait_procs(tree, timeout=5)[1]:
            with contextlib.suppress(psutil.Error):
                process.kill()


def _cpu_seconds(processes: list[psutil.Process]) -> float:
    total = 0.0
    for process in processes:
        with contextlib.suppress(psutil.Error):
            times = process.cpu_times()
            total += times.user + times.system
    return total


def _where(address: str, cids: list[str], env: dict) -> dict[str, dict]:
    """Where each conversation's actor runs, asked from a throwaway Ray driver."""
    result = subprocess.run(
        [sys.executable, "-c", _WHERE, address, *cids],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    if result.returncode != 0:
        logger.warning(f"could not ask Ray where the actors run: {result.stderr[-500:]}")
        return {}
    return json.loads(result.stdout.strip().splitlines()[-1])


_WHERE = """
import json, sys, ray
ray.init(address=sys.argv[1], namespace="presence", log_to_driver=False, logging_level="ERROR")
out = {}
for cid in sys.argv[2:]:
    try:
        out[cid] = ray.get(ray.get_actor("presence-" + cid).where.remote(), timeout=30)
    except Exception as exc:
        out[cid] = {"error": type(exc).__name__}
print(json.dumps(out))
"""


def _speaking(messages: list, what: str) -> int:
    """How many RTVI ``bot-started-speaking`` (``what="started"``) or ``-stopped-`` arrived."""
    kind = f"bot-{what}-speaking"
    return sum(isinstance(m, dict) and m.get("type") == kind for m in messages)


async def _call(api: httpx.AsyncClient, persona: str, hook: str, pcm: np.ndarray,
                speech_end_s: float, said: asyncio.Event, ready: list) -> dict:  # fmt: skip
    """One conversation: create, join, hear the greeting, say the question (when ``said``)."""
    from presence.transports.webrtc.client import SILENCE_RMS, WebRTCUser

    loud = SILENCE_RMS * 10
    row: dict[str, Any] = {"t_create": time.monotonic()}
    created = await api.post(
        "/v2/conversations", json={"persona_id": persona, "callback_url": hook}
    )
    row["t_created"] = time.monotonic()
    if created.status_code == 429:
        row.update(refused=created.json().get("detail"))
        ready.append(None)
        return row
    created.raise_for_status()
    row["cid"] = created.json()["conversation_id"]
    user = row["user"] = WebRTCUser(created.json()["conversation_url"])
    row["t_offer"] = time.monotonic()
    await user.connect()
    got = user.received
    await user.wait_for_audible(timeout=GREETING_TIMEOUT_S)
    deadline = time.monotonic() + GREETING_TIMEOUT_S
    while time.monotonic() < deadline:  # the greeting is over (RTVI) and nothing loud for QUIET_S
        began, ended = _speaking(got.messages, "started"), _speaking(got.messages, "stopped")
        loud_times = [t for t, r in zip(got.audio_times, got.audio_rms, strict=False) if r > loud]
        if began and ended >= began and time.monotonic() - loud_times[-1] > QUIET_S:
            break
        await asyncio.sleep(0.1)
    ready.append(row["cid"])
    await said.wait()
    row["t_said"], mark = time.monotonic(), len(got.messages)
    user.say(pcm)
    row["t_last_voiced"] = row["t_said"] + speech_end_s
    deadline = row["t_last_voiced"] + ANSWER_TIMEOUT_S
    while time.monotonic() < deadline:
        answer = [
            t for t, r in zip(got.audio_times, got.audio_rms, strict=False)
            if r > loud and t > row["t_last_voiced"]
        ]  # fmt: skip
        if answer and _speaking(got.messages[mark:], "started"):  # the persona's answer began
            row["t_answer"] = answer[0]
            break
        await asyncio.sleep(0.05)
    return row


async def _measure(service: Service, sessions: int, size: int, fps: int, hold_s: float,
                   hooks: Hooks, processes, locate) -> dict:  # fmt: skip
    from presence.benchmarks.conversation.questions import load_questions, render
    from presence.transports.webrtc import limit_ice_host_addresses
    from presence.transports.webrtc.client import read_wav

    limit_ice_host_addresses(["127.0.0.1"])
    questions = [render(q) for q in load_questions()[:4]]
    speech = [(read_wav(q.path), q.speech_end_s, q.question.id) for q in questions]
    headers = {"x-api-key": service.key}
    async with httpx.AsyncClient(base_url=service.base, headers=headers, timeout=120) as api:
        layers = {"transport": {"video": {"width": size, "height": size, "fps": fps}}}
        body = {"persona_name": "Bench", "greeting": GREETING, "layers": layers}
        persona = (await api.post("/v2/personas", json=body)).json()["persona_id"]
        said, ready, wall = asyncio.Event(), [], time.monotonic()
        calls = [
            asyncio.create_task(
                _call(api, persona, hooks.url, *speech[i % len(speech)][:2], said, ready)
            )
            for i in range(sessions)
        ]
        while len(ready) < sessions and not any(c.done() and c.exception() for c in calls):
            await asyncio.sleep(0.1)
        cpu_start, t_start = _cpu_seconds(processes()), time.monotonic()
        said.set()
        rows = await asyncio.gather(*calls, return_exceptions=True)
        await asyncio.sleep(hold_s)
        t_end = time.monotonic()
        cpu = _cpu_seconds(processes()) - cpu_start
        for i, row in enumerate(rows):
            if isinstance(row, BaseException):
                rows[i] = {"error": f"{type(row).__name__}: {row}"}
            elif "user" in row:
                row["question"] = speech[i % len(speech)][2]
        live = [r for r in rows if "cid" in r]
        where = await asyncio.to_thread(locate, [r["cid"] for r in live]) if live else {}
        ended = await asyncio.gather(
            *(api.post(f"/v2/conversations/{r['cid']}/end") for r in live), return_exceptions=True
        )
        for row, response in zip(live, ended, strict=True):
            user = row.pop("user")
            got = user.received
            first = got.first_frame_after(row["t_offer"])
            row["first_frame_ms"] = round(first * 1000) if first is not None else None
            row["fps"] = round(got.fps(row["t_offer"] + first, t_end), 1) if first else 0.0
            if isinstance(response, httpx.Response) and response.status_code == 200:
                row["transcript"] = response.json().get("transcript") or []
            await user.close()
    hooks.wait_for_joined([r["cid"] for r in live], timeout=10)
    return {"rows": rows, "wall_s": t_end - wall, "call_s": t_end - t_start, "cpu_s": cpu,
            "where": where}  # fmt: skip


def run_sessions_benchmark(
    *,
    placement: str = "ray",
    sessions: int = 2,
    nodes: int = 2,
    ray_address: str | None = None,
    cpus_per_node: float | None = None,
    pin: bool = True,
    worker_niceness: int = 0,
    size: int = 256,
    fps: int = 25,
    hold_s: float = 10.0,
    json_path: str | Path | None = None,
    command: str | None = None,
) -> dict[str, Any]:
    """Run the benchmark (see the module docstring) and return (and write) its report.

    Args:
        placement: ``process`` (session processes on this machine) or ``ray``.
        sessions: Conversations created at once.
        nodes: Local Ray nodes to start for ``ray`` (ignored with ``ray_address``).
        ray_address: Join this cluster instead of starting one (its token in ``RAY_AUTH_TOKEN``).
        cpus_per_node: Logical CPUs each local node offers (default: enough for its share).
        pin: Give each local node its own cores.
        worker_niceness: Niceness of the local nodes' workers (Ray's own default is 15).
        size: The persona's video size (pixels, square).
        fps: The renderer's frame rate.
        hold_s: Seconds the calls are held after every answer began.
        json_path: Write the report here.
        command: The command line, recorded in the report.

    Raises:
        SessionsBenchmarkError: A bad option, or the service or cluster did not start.
    """
    if placement not in PLACEMENTS:
        raise SessionsBenchmarkError(f"--placement must be process or ray, not {placement!r}")
    if sessions < 1 or nodes < 1 or hold_s < 0:
        raise SessionsBenchmarkError("--sessions and --nodes must be at least 1, --hold-s >= 0")
    local = placement == "ray" and not ray_address
    cpus = cpus_per_node or math.ceil(sessions / nodes)
    hooks = Hooks()
    cluster = (
        LocalRayCluster(nodes=nodes, num_cpus=cpus, pin=pin, worker_niceness=worker_niceness)
        if local
        else None
    )
    load_before = os.getloadavg()
    with contextlib.ExitStack() as stack:
        data = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="presence-bench-")))
        hooks.up()
        stack.callback(hooks.down)
        env: dict[str, str] = {"PRESENCE_MAX_SESSIONS": str(sessions)}
        address = ray_address
        if cluster is not None:
            stack.enter_context(cluster)
            env.update(cluster.env)
            address = cluster.address
        service = Service(data, placement, address, env)
        stack.callback(service.stop)
        service.wait_ready()

        def processes() -> list[psutil.Process]:
            from presence.benchmarks.sessions.cluster import _tree

            trees = [p for n in (cluster.started if cluster else []) for p in _tree(n.process.pid)]
            return service.tree() + trees

        def locate(cids: list[str]) -> dict[str, dict]:
            return _where(address, cids, env) if placement == "ray" else {}

        measured = asyncio.run(
            _measure(service, sessions, size, fps, hold_s, hooks, processes, locate)
        )
    report = summarize(
        measured,
        hooks,
        placement=placement,
        sessions=sessions,
        nodes=nodes if local else None,
        cpus_per_node=cpus if local else None,
        pinned=pin and local,
        worker_niceness=worker_niceness if local else None,
        size=size,
        fps=fps,
        hold_s=hold_s,
        ray_address=ray_address,
        load_before=load_before,
        command=command,
    )
    if json_path:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(json_path).write_text(json.dumps(report, indent=2) + "\n")
    return report
