"""The sessions benchmark's webhook receiver (``Hooks``), report (``summarize``) and table."""

from __future__ import annotations

import json
import os
import platform
import socket
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np

METHOD = (
    "N conversations created at once through POST /v2/conversations, each joined by a Python "
    "WebRTC user (aiortc) on 127.0.0.1; after every greeting ended (RTVI bot-stopped-speaking, "
    "then 1 s quiet), all users say a question at "
    "the same moment. create_ms: POST answered; joined_ms: POST -> system.replica_joined webhook "
    "arrived; fps: video frames received per second from the first frame to the hang-up "
    "(SmallWebRTC sends 30); answer_ms: the user's last voiced sample -> first loud 20 ms of the "
    "answer received once its RTVI bot-started-speaking came (+-20 ms); cores_per_session: CPU-seconds of the service, its session "
    "processes and the Ray nodes (workers included) per second of call, per conversation."
)


class Hooks:
    """A webhook receiver on 127.0.0.1 that records when each event arrived."""

    def __init__(self) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self.events: list[tuple[float, dict]] = []
        self.ids: list[str] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    def up(self) -> None:
        """Start listening."""
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                with owner._lock:
                    owner.events.append((time.monotonic(), body))
                    owner.ids.append(self.headers.get("x-presence-event-id", ""))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def down(self) -> None:
        """Stop listening."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def arrival(self, event_type: str, cid: str) -> float | None:
        """When the first ``event_type`` webhook of conversation ``cid`` arrived."""
        with self._lock:
            for t, body in self.events:
                if body.get("event_type") == event_type and body.get("conversation_id") == cid:
                    return t
        return None

    def wait_for_joined(self, cids: list[str], timeout: float) -> None:
        """Wait (bounded) until every conversation's ``system.replica_joined`` arrived."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(self.arrival("system.replica_joined", c) is not None for c in cids):
                return
            time.sleep(0.1)


def _ms(a: float | None, b: float | None) -> int | None:
    return round((b - a) * 1000) if a is not None and b is not None else None


def _stats(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    a = np.asarray(values, dtype=float)
    return {"min": round(float(a.min()), 1), "median": round(float(np.median(a)), 1),
            "max": round(float(a.max()), 1)}  # fmt: skip


def summarize(measured: dict, hooks: Hooks, **run: Any) -> dict[str, Any]:
    """The report: the run's options, one row per conversation, and totals."""
    conversations = []
    for row in measured["rows"]:
        if "cid" not in row:
            conversations.append({k: row[k] for k in ("refused", "error") if k in row})
            continue
        place = measured["where"].get(row["cid"], {})
        transcript = row.get("transcript") or []
        conversations.append({
            "conversation_id": row["cid"],
            "node": (place.get("node_id") or "")[:8] or ("local" if not place else "?"),
            "node_address": place.get("node") or platform.node(),
            "pid": place.get("pid"),
            "question": row.get("question"),
            "create_ms": _ms(row["t_create"], row["t_created"]),
            "joined_ms": _ms(row["t_create"], hooks.arrival("system.replica_joined", row["cid"])),
            "first_frame_ms": row.get("first_frame_ms"),
            "fps": row.get("fps"),
            "answer_ms": _ms(row.get("t_last_voiced"), row.get("t_answer")),
            "transcript_lines": len(transcript),
            "answered_in_transcript": any(t.get("role") == "assistant" for t in transcript[1:]),
        })  # fmt: skip
    placed = [c for c in conversations if "conversation_id" in c]
    call_s = measured["call_s"]
    totals = {
        "placed": len(placed),
        "refused": sum("refused" in c for c in conversations),
        "errors": sum("error" in c for c in conversations),
        "per_node": dict(Counter(c["node"] for c in placed)),
        "fps": _stats([c["fps"] for c in placed if c["fps"] is not None]),
        "answer_ms": _stats([c["answer_ms"] for c in placed if c["answer_ms"] is not None]),
        "answered": sum(c["answer_ms"] is not None for c in placed),
        "joined_ms": _stats([c["joined_ms"] for c in placed if c["joined_ms"] is not None]),
        "call_s": round(call_s, 1),
        "wall_s": round(measured["wall_s"], 1),
        "cpu_counted": "service and its session processes"
        if run.get("placement") == "process"
        else "service"
        if run.get("ray_address")
        else "service and Ray nodes",
        "cores_used": round(measured["cpu_s"] / max(call_s, 1e-6), 2),
        "cores_per_session": round(measured["cpu_s"] / max(call_s, 1e-6) / max(len(placed), 1), 2),
        "webhooks": len(hooks.ids),
        "duplicate_webhooks": len(hooks.ids) - len(set(hooks.ids)),
    }
    machine = {"cpus": os.cpu_count(), "load_before": [round(x, 2) for x in run.pop("load_before")],
               "platform": platform.platform()}  # fmt: skip
    return {**run, "machine": machine, "method": METHOD, "conversations": conversations,
            "totals": totals}  # fmt: skip


def print_table(report: dict[str, Any]) -> None:
    """Print the per-conversation rows and the totals."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{report['sessions']} session(s), placement {report['placement']}")
    columns = {"node": "node", "create_ms": "create ms", "joined_ms": "joined ms",
               "first_frame_ms": "1st frame ms", "fps": "fps", "answer_ms": "answer ms",
               "transcript_lines": "lines"}  # fmt: skip
    table.add_column("conversation", no_wrap=True)
    for title in columns.values():
        table.add_column(title, justify="right", no_wrap=True)
    for c in report["conversations"]:
        if "conversation_id" not in c:
            table.add_row("429 refused" if "refused" in c else "error", *[""] * len(columns))
            continue
        table.add_row(c["conversation_id"], *(str(c[k]) for k in columns))
    console = Console(width=max(Console().width, 110))
    console.print(table)
    console.print(json.dumps(report["totals"]), highlight=False, soft_wrap=True)
