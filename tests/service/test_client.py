"""The typed client: checked against ``service/openapi.json``, then driven against a real app."""

from __future__ import annotations

import inspect
import json
import re
import time
from pathlib import Path

import pytest
from helpers.service import KEY_A, KEY_B, call, free_port
from pydantic import ValidationError

from presence.framework.errors import ConfigError
from presence.service.client import (
    ENDPOINTS,
    AsyncPresenceClient,
    PresenceAPIError,
    PresenceClient,
    ServiceUnreachable,
)

SPEC = json.loads((Path(__file__).parents[2] / "service" / "openapi.json").read_text())
DERIVED = {"transcript": "get_conversation"}  # methods that read another method's route


def _resolve(schema: dict) -> dict:
    ref = schema.get("$ref")
    return SPEC["components"]["schemas"][ref.rsplit("/", 1)[1]] if ref else schema


def _normal(value):
    """A schema as FastAPI publishes it: no ``default: null``, refs to ``components``."""
    if isinstance(value, dict):
        return {k: _normal(v) for k, v in value.items() if not (k == "default" and v is None)} | (
            {"$ref": value["$ref"].replace("#/$defs/", "#/components/schemas/")}
            if "$ref" in value
            else {}
        )
    if isinstance(value, list):
        return [_normal(v) for v in value]
    return value


def _shape(schema: dict) -> tuple[str, dict, set[str]]:
    """Name, every field's schema (type, bounds, default, nested refs) and the required ones."""
    return schema["title"], _normal(schema.get("properties", {})), set(schema.get("required", []))


@pytest.mark.parametrize("name", sorted(ENDPOINTS))
def test_each_method_matches_the_published_api(name):
    endpoint = ENDPOINTS[name]
    operation = SPEC["paths"].get(endpoint.path, {}).get(endpoint.method.lower())
    assert operation is not None, f"{endpoint.method} {endpoint.path} is not in openapi.json"
    params = operation.get("parameters", [])
    path_params = {p["name"] for p in params if p["in"] == "path"}
    assert path_params == set(re.findall(r"{(\w+)}", endpoint.path))
    assert set(endpoint.query) <= {p["name"] for p in params if p["in"] == "query"}

    body = operation.get("requestBody")
    if endpoint.body is None:
        assert body is None, f"{name} sends no body but the API takes one"
    else:
        published = _resolve(body["content"]["application/json"]["schema"])
        assert _shape(endpoint.body.model_json_schema()) == _shape(published)

    if endpoint.response is None:
        assert "204" in operation["responses"]
    else:
        published = _resolve(operation["responses"]["200"]["content"]["application/json"]["schema"])
        ours = endpoint.response.model_json_schema(mode="serialization")
        assert _shape(ours) == _shape(published)


def test_every_public_method_has_a_declared_route_in_both_clients():
    def public(cls):
        return {n for n, _ in inspect.getmembers(cls, inspect.isfunction) if not n.startswith("_")}

    sync, async_ = public(PresenceClient) - {"close"}, public(AsyncPresenceClient) - {"aclose"}
    assert sync == async_
    assert sync == set(ENDPOINTS) | set(DERIVED)
    for name in sync:
        assert inspect.iscoroutinefunction(getattr(AsyncPresenceClient, name)), name


def test_personas_and_a_conversation_through_the_client(service, launcher):
    presence = PresenceClient(api_key=KEY_A, http=service)
    persona = presence.create_persona(persona_name="Guide", greeting="Welcome!")
    assert presence.get_persona(persona.persona_id).greeting == "Welcome!"
    assert [p.persona_id for p in presence.list_personas().data] == [persona.persona_id]

    talk = presence.create_conversation(persona_id=persona.persona_id, conversation_name="demo")
    assert talk.status == "active" and talk.conversation_url.endswith(f"/c/{talk.conversation_id}/")
    call(service, launcher.say(talk.conversation_id, "Ask me anything."))
    deadline = time.monotonic() + 10
    while len(presence.transcript(talk.conversation_id)) < 2:
        assert time.monotonic() < deadline, presence.transcript(talk.conversation_id)
        time.sleep(0.05)
    active = presence.list_conversations(status="active")
    assert [c.conversation_id for c in active.data] == [talk.conversation_id]

    ended = presence.end_conversation(talk.conversation_id)
    assert ended.status == "ended" and ended.shutdown_reason == "end_conversation_endpoint_hit"
    assert [t["content"] for t in presence.transcript(talk.conversation_id)] == [
        "Welcome!",
        "Ask me anything.",
    ]
    assert presence.list_conversations(status="active").total_count == 0
    assert (
        presence.list_conversations(status="ended", persona_id=persona.persona_id).total_count == 1
    )

    presence.delete_conversation(talk.conversation_id)
    with pytest.raises(PresenceAPIError) as gone:
        presence.get_conversation(talk.conversation_id)
    assert gone.value.status_code == 404
    assert gone.value.detail == f"conversation {talk.conversation_id} not found"
    presence.delete_persona(persona.persona_id)
    assert presence.list_personas().total_count == 0


def test_refusals_carry_the_status_and_the_services_reason(service):
    mine = PresenceClient(api_key=KEY_A, http=service).create_persona(persona_name="Mine")
    other = PresenceClient(api_key=KEY_B, http=service)
    with pytest.raises(PresenceAPIError) as forbidden:
        other.create_conversation(persona_id=mine.persona_id)
    assert forbidden.value.status_code == 403
    assert f"does not own persona {mine.persona_id}" in str(forbidden.value)

    with pytest.raises(PresenceAPIError) as unknown_key:
        PresenceClient(api_key="not-a-key", http=service).list_personas()
    assert (unknown_key.value.status_code, unknown_key.value.detail) == (401, "invalid API key")

    # a value only the service can judge: the 422's field list is flattened into the message
    with pytest.raises(PresenceAPIError) as bad:
        PresenceClient(api_key=KEY_A, http=service).list_personas(limit=1000)
    assert bad.value.status_code == 422 and "query.limit" in str(bad.value)

    # a misspelt field never leaves the client
    with pytest.raises(ValidationError, match="sytem_prompt"):
        PresenceClient(api_key=KEY_A, http=service).create_persona(sytem_prompt="x")


def test_a_missing_key_or_an_absent_service_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("PRESENCE_API_KEY", raising=False)
    with pytest.raises(ConfigError, match="PRESENCE_API_KEY"):
        PresenceClient()
    monkeypatch.setenv("PRESENCE_API_KEY", KEY_A)
    url = f"http://127.0.0.1:{free_port()}"
    with PresenceClient(url, timeout=5) as presence, pytest.raises(ServiceUnreachable, match=url):
        presence.list_personas()
