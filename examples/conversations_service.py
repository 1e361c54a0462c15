"""Drive the conversations service from Python: a persona, a conversation, signed webhooks.

    python examples/conversations_service.py              # starts `presence serve` on a free port
    python examples/conversations_service.py --talk 60    # ... and keeps the call open for a minute

It starts the service (``presence serve``, a temporary data dir, an API key and a webhook secret
of its own), receives webhooks on 127.0.0.1, creates a persona and a conversation (open the
printed ``conversation_url`` in a browser to talk), ends the call, then checks each webhook's
HMAC-SHA256 signature the way your receiver should. See ``service/README.md``.
"""

import argparse
import hashlib
import hmac
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

import httpx

API_KEY, SECRET = "example-key", "example-webhook-secret"


def verify(secret: str, body: bytes, timestamp: str, signature: str, tolerance: int = 300) -> bool:
    """Whether a webhook came from the service (and is not a replay older than ``tolerance`` s)."""
    if abs(time.time() - int(timestamp)) > tolerance:
        return False
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return hmac.compare_digest(f"v1={expected.hexdigest()}", signature)


def receive_webhooks() -> tuple[str, list[tuple[dict, bytes]]]:
    """A webhook receiver on 127.0.0.1; returns its URL and the list it appends to."""
    received: list[tuple[dict, bytes]] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (http.server's name)
            body = self.rfile.read(int(self.headers["content-length"]))
            received.append(({k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_port}/hook", received


def start_service(data_dir: str) -> tuple[subprocess.Popen, str]:
    """``presence serve`` on a free loopback port; returns the process and its base URL."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "PRESENCE_API_KEYS": API_KEY, "PRESENCE_WEBHOOK_SECRET": SECRET,
           "PRESENCE_SESSION_ISOLATION": "inline"}  # fmt: skip
    command = [sys.executable, "-m", "presence.framework.cli", "serve", "--port", str(port)]
    process = subprocess.Popen([*command, "--data-dir", data_dir], env=env)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/v2/personas", headers={"x-api-key": API_KEY}).is_success:
                return process, base
        except httpx.TransportError:
            time.sleep(0.2)
    process.terminate()
    raise RuntimeError("the service did not start")


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--talk", type=float, default=0, help="seconds to keep the call open")
    args = parser.parse_args(argv)

    hook_url, received = receive_webhooks()
    with tempfile.TemporaryDirectory() as data_dir:
        service, base = start_service(data_dir)
        try:
            api = httpx.Client(base_url=base, headers={"x-api-key": API_KEY}, timeout=30)
            persona = api.post("/v2/personas", json={
                "persona_name": "Guide", "greeting": "Hi! Ask me about presence.",
            }).json()  # fmt: skip
            call = api.post("/v2/conversations", json={
                "persona_id": persona["persona_id"], "callback_url": hook_url,
            }).json()  # fmt: skip
            print(f"conversation {call['conversation_id']}: open {call['conversation_url']}")
            time.sleep(args.talk)
            api.post(f"/v2/conversations/{call['conversation_id']}/end").raise_for_status()

            deadline = time.monotonic() + 30
            wanted = {"system.shutdown", "application.transcription_ready"}
            while not wanted <= {json.loads(b)["event_type"] for _, b in received}:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"webhooks so far: {[json.loads(b) for _, b in received]}")
                time.sleep(0.1)
            ended = api.get(f"/v2/conversations/{call['conversation_id']}").json()
            print(f"status {ended['status']}, shutdown_reason {ended.get('shutdown_reason')}")
        finally:
            service.terminate()
            service.wait(30)

    events = []
    for headers, body in received:
        stamp, signature = headers["x-presence-timestamp"], headers["x-presence-signature"]
        if not verify(SECRET, body, stamp, signature):
            raise RuntimeError(f"a webhook failed its signature check: {body[:200]!r}")
        event = json.loads(body)
        events.append(event)
        print(f"verified {event['event_type']}: {json.dumps(event['properties'])[:100]}")
    return events


if __name__ == "__main__":
    main()
