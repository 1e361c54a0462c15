"""Fuzzing the served API with schemathesis: every ``/v2`` operation, with the API key, answers
as ``service/openapi.json`` says (status code, content type, body schema, ``Allow`` on 405) and
never with a 5xx; schema-violating requests are refused; sequences of calls (create, get, end,
delete) hold up too.

The service is a real uvicorn on 127.0.0.1 (lifespan, database, outbox and supervisor running)
with a launcher whose conversations are tiny pipecat pipelines that take interactions. Bounded:
a fixed number of examples per operation, derandomized, so a run takes the same ~30 s on CI.
Callback and document URLs the fuzzer makes up are pointed at a local receiver: no webhook or
document fetch leaves the host.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
from helpers.service import KEY_A, PipecatLauncher, Receiver, free_port, make_settings

pytestmark = pytest.mark.background

schemathesis = pytest.importorskip("schemathesis")
import httpx  # noqa: E402
import hypothesis  # noqa: E402
import uvicorn  # noqa: E402
from pydantic import AnyHttpUrl, TypeAdapter, ValidationError  # noqa: E402

from presence.processors.interactions.engines.protocol import (  # noqa: E402
    NotRunningError,
    parse_interaction,
)
from presence.service.app import create_app  # noqa: E402

EXAMPLES = 15  # per operation and phase (deterministic: the same cases every run)
STATEFUL_SCENARIOS, STATEFUL_STEPS = 12, 6

# Checks that cannot hold for these operations, and why:
# - a persona's layers are stage parameters validated against the pipeline's providers, and an
#   upload's file type is its name's suffix: no JSON Schema can say which are accepted, so a
#   schema-valid request may rightly get a 422 naming the field;
# - a conversation's recording exists only once the conversation has ended.
UNSATISFIABLE = [
    {
        "include-path-regex": "^/v2/personas",
        "include-method-regex": "^(POST|PATCH)$",
        "checks": {"positive_data_acceptance": {"enabled": False}},
    },
    {
        "include-path": "/v2/replicas",
        "include-method": "POST",
        "checks": {"positive_data_acceptance": {"enabled": False}},
    },
    {
        # a document's kind and readable text are decided by its bytes (an uploaded file, the
        # inline text): a schema-valid request may rightly get a 415, or a 422 naming the field
        "include-path": "/v2/documents",
        "include-method": "POST",
        "checks": {"positive_data_acceptance": {"enabled": False}},
    },
    {
        "include-path": "/v2/conversations/{conversation_id}/recording",
        "checks": {"ensure_resource_availability": {"enabled": False}},
    },
]


class InteractiveLauncher(PipecatLauncher):
    """Tiny pipecat conversations that validate interactions as a live session does."""

    async def interact(self, conversation_id: str, message) -> str:
        session = self.sessions.get(conversation_id)
        if session is None or session.task is None or session.task.done():
            raise NotRunningError("the conversation's pipeline is not running")
        return parse_interaction(message, conversation_id).event_type


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """``(base_url, receiver)``: the service on a free 127.0.0.1 port."""
    receiver = Receiver()
    receiver.up()
    app = create_app(
        make_settings(tmp_path_factory.mktemp("fuzz"), max_sessions=3),
        launcher=InteractiveLauncher(),
    )
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
    )
    thread = threading.Thread(target=server.run, name="fuzzed-service", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the service did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", receiver
    server.should_exit = True
    thread.join(20)
    receiver.down()


@pytest.fixture(scope="module")
def api_schema(served):
    base_url, _ = served
    config = schemathesis.Config.from_dict(
        {
            "headers": {"x-api-key": KEY_A},
            "request-timeout": 30,
            "generation": {"max-examples": EXAMPLES, "deterministic": True, "database": "none"},
            "phases": {"stateful": {"max-steps": STATEFUL_STEPS}},
            "operations": UNSATISFIABLE,
        }
    )
    return schemathesis.openapi.from_url(f"{base_url}/openapi.json", config=config)


def local_callbacks(case, receiver: Receiver) -> None:
    """Point a made-up (valid) ``callback_url`` or ``document_url`` at the local receiver."""
    body = case.body
    for field in ("callback_url", "document_url"):
        if isinstance(body, dict) and isinstance(body.get(field), str):
            try:
                TypeAdapter(AnyHttpUrl).validate_python(body[field])
            except ValidationError:
                continue  # an invalid URL stays: the request must be refused
            body[field] = receiver.url


def _operations() -> list[tuple[str, str, schemathesis.GenerationMode]]:
    """``(method, path, mode)`` for every operation in the stored description (kept equal to
    the served one by ``test_api``), so each is a test of its own: valid requests for all,
    schema-violating ones where a request can violate it (a path id alone cannot: any text is an
    id)."""
    spec = json.loads(
        (Path(__file__).resolve().parents[2] / "service" / "openapi.json").read_text()
    )
    out = []
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            out.append((method.upper(), path, schemathesis.GenerationMode.POSITIVE))
            constrained = operation.get("requestBody") or any(
                p["in"] != "path" for p in operation.get("parameters", [])
            )
            if constrained:
                out.append((method.upper(), path, schemathesis.GenerationMode.NEGATIVE))
    return out


SETTINGS = hypothesis.settings(
    max_examples=EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(hypothesis.HealthCheck),
)


@pytest.mark.parametrize(("method", "path", "mode"), _operations())
def test_every_operation_answers_as_documented(api_schema, served, method, path, mode):
    operation = api_schema[path][method]

    @SETTINGS
    @hypothesis.given(case=operation.as_strategy(mode))
    def call(case):
        local_callbacks(case, served[1])
        case.call_and_validate()

    call()


@pytest.mark.parametrize(
    "mode", [schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE]
)
def test_interactions_with_a_live_conversation_answer_as_documented(api_schema, served, mode):
    """Random interaction bodies reach a running session: accepted, or a 422 naming the field."""
    base_url, _ = served
    headers = {"x-api-key": KEY_A}
    # the other tests may have left conversations live, up to the service's cap
    live = httpx.get(
        f"{base_url}/v2/conversations", params={"status": "active", "limit": 100}, headers=headers
    ).json()["data"]
    for conversation in live:
        httpx.post(
            f"{base_url}/v2/conversations/{conversation['conversation_id']}/end",
            headers=headers,
            timeout=30,
        )
    created = httpx.post(f"{base_url}/v2/conversations", json={}, headers=headers, timeout=30)
    assert created.status_code == 200, created.text
    cid = created.json()["conversation_id"]
    operation = api_schema["/v2/conversations/{conversation_id}/interactions"]["POST"]
    answers: set[int] = set()

    @SETTINGS
    @hypothesis.given(case=operation.as_strategy(mode, path_parameters={"conversation_id": cid}))
    def call(case):
        response = case.call_and_validate()
        answers.add(response.status_code)
        if response.status_code == 422 and isinstance(case.body, dict):
            # an object was sent: the error names the field in it to change
            assert all(len(e["loc"]) > 1 for e in response.json()["detail"]), response.text

    try:
        call()
    finally:
        httpx.delete(f"{base_url}/v2/conversations/{cid}", headers=headers, timeout=30)
    assert answers <= {200, 400, 422}  # 400: a body that is not JSON at all
    assert (200 in answers) == (mode == schemathesis.GenerationMode.POSITIVE)


def test_call_sequences_answer_as_documented(api_schema, served):
    receiver = served[1]

    class Calls(api_schema.as_state_machine()):
        def before_call(self, case):
            local_callbacks(case, receiver)

    Calls.run(
        settings=hypothesis.settings(
            SETTINGS, max_examples=STATEFUL_SCENARIOS, stateful_step_count=STATEFUL_STEPS
        )
    )
