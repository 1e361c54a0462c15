"""A minimal local Anthropic ``POST /v1/messages`` server for the perception describer.

Non-streaming only: it records every request body and answers with a fixed one-line text message
(or a chosen HTTP status). For the full streaming fake used by LLM tests see ``fakes/anthropic.py``.

    with FakeAnthropicVision(reply="leaning back, smiling") as fake:
        describer = AnthropicDescriber(api_key="test", model="m", base_url=fake.url)
        ...
        fake.requests[0]["messages"][0]["content"][0]["type"] == "image"
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeAnthropicVision:
    """Threaded HTTP server on 127.0.0.1 speaking just enough of the Messages API.

    Args:
        reply: Text of the answer.
        status: HTTP status to answer with (200, or an error such as 401/529).
    """

    def __init__(
        self, reply: str = "leaning back, arms crossed, looks skeptical", status: int = 200
    ):
        self.reply = reply
        self.status = status
        self.requests: list[dict] = []
        self.headers: list[dict[str, str]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server naming
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                fake.requests.append(json.loads(body or b"{}"))
                fake.headers.append({k.lower(): v for k, v in self.headers.items()})
                if self.path != "/v1/messages":
                    return self._send(
                        404,
                        {
                            "type": "error",
                            "error": {"type": "not_found_error", "message": self.path},
                        },
                    )
                if fake.status != 200:
                    return self._send(
                        fake.status,
                        {
                            "type": "error",
                            "error": {"type": "api_error", "message": "scripted failure"},
                        },
                    )
                request = fake.requests[-1]
                self._send(
                    200,
                    {
                        "id": f"msg_fake_{len(fake.requests)}",
                        "type": "message",
                        "role": "assistant",
                        "model": request.get("model", "fake"),
                        "content": [{"type": "text", "text": fake.reply}],
                        "stop_reason": "end_turn",
                        "stop_sequence": None,
                        "usage": {"input_tokens": 100, "output_tokens": 12},
                    },
                )

            def _send(self, status: int, payload: dict):
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        """Base URL to give the SDK (``http://127.0.0.1:PORT``)."""
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> FakeAnthropicVision:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
