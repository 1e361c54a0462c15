"""The typed client: checked against ``service/openapi.json``, then driven against a real app."""

from __future__ import annotations

import inspect
import json
import re
import time
from pathlib import Path

import pytest
from helpers.service import KEY_A, KEY_B, PipecatLauncher, call, free_port, make_settings, serve_app
from pydantic import TypeAdapter, ValidationError

from presence.framework.errors import ConfigError
from presence.service.app import create_app
from presence.service.client import (
    DERIVED,
    ENDPOINTS,
    AsyncPresenceClient,
    PresenceAPIError,
    PresenceClient,
    ServiceUnreachable,
)

SPEC = json.loads((Path(__file__).parents[2] / "service" / "openapi.json").read_text())


def _resolve(schema: dict, defs: dict | None = None) -> dict:
    ref = schema.get("$ref")
    if not ref:
        return schema
    name = ref.rsplit("/", 1)[1]
    return (defs or {}).get(name) or SPEC["components"]["schemas"][name]


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


def _shapes(schema: dict, defs: dict | None = None) -> list:
    """Each alternative of a body or answer: its name, every field's schema and the required ones.

    A union (``oneOf``/``anyOf``) gives one entry per alternative, a list ``("array", item)``.
    """
    schema = _resolve(schema, defs)
    alternatives = schema.get("oneOf") or schema.get("anyOf")
    if alternatives and "properties" not in schema:  # not a model's own one-of-these-fields
        return [shape for alt in alternatives for shape in _shapes(alt, defs)]
    if schema.get("type") == "array":
        return [("array", _shapes(schema["items"], defs))]
    return [
        (schema["title"], _normal(schema.get("properties", {})), set(schema.get("required", [])))
    ]


def _ours(kind, mode: str) -> list:
    schema = TypeAdapter(kind).json_schema(mode=mode)
    return _shapes(schema, schema.get("$defs", {}))


def _operations() -> set[tuple[str, str]]:
    return {
        (method.upper(), path)
        for path, item in SPEC["paths"].items()
        if path.startswith("/v2/")
        for method in item
    }


def test_every_route_the_api_serves_has_a_client_method():
    declared = {(e.method, e.path) for e in ENDPOINTS.values()}
    assert _operations() - declared == set(), "routes without a client method"
    assert declared - _operations() == set(), "client methods without a route"


@pytest.mark.parametrize("name", sorted(ENDPOINTS))
def test_each_method_matches_the_published_api(name):
    endpoint = ENDPOINTS[name]
    operation = SPEC["paths"].get(endpoint.path, {}).get(endpoint.method.lower())
    assert operation is not None, f"{endpoint.method} {endpoint.path} is not in openapi.json"
    params = operation.get("parameters", [])
    path_params = {p["name"] for p in params if p["in"] == "path"}
    assert path_params == set(re.findall(r"{(\w+)}", endpoint.path))
    assert set(endpoint.query) == {p["name"] for p in params if p["in"] == "query"}
    # every query parameter but Tavus's no-op verbose flag is a keyword of the method
    signature = inspect.signature(getattr(PresenceClient(api_key="k"), name))
    assert set(endpoint.query) - {"verbose"} <= set(signature.parameters)

    content = (operation.get("requestBody") or {}).get("content", {})
    if endpoint.body is not None:
        published = _shapes(content["application/json"]["schema"])
        assert _ours(endpoint.body, "validation") == published
    elif endpoint.form:
        published = _resolve(content["multipart/form-data"]["schema"])
        assert set(endpoint.form) == set(published["properties"])
        assert "file" in published["required"]
    else:
        assert not content, f"{name} sends no body but the API takes one"

    if endpoint.download:
        assert endpoint.download in operation["responses"]["200"]["content"]
    elif endpoint.response is None:
        assert "204" in operation["responses"]
    else:
        published = _shapes(operation["responses"]["200"]["content"]["application/json"]["schema"])
        assert _ours(endpoint.response, "serialization") == published


def test_every_public_method_has_a_declared_route_in_both_clients():
    def public(client):
        return {n for n in dir(client) if not n.startswith("_") and callable(getattr(client, n))}

    sync = public(PresenceClient(api_key="k")) - {"close"}
    async_client = AsyncPresenceClient(api_key="k")
    async_ = public(async_client) - {"aclose"}
    assert sync == async_
    assert sync == set(ENDPOINTS) | set(DERIVED)
    for name in sync:
        assert inspect.iscoroutinefunction(getattr(async_client, name)), name
        assert getattr(PresenceClient, name).__doc__, f"{name} has no docstring"


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


KETTLE = (
    "# Kettle\n\nThe kettle boils a litre in three minutes.\n\nDescale it monthly with vinegar."
)
GUARDRAIL = {"guardrail_name": "no_competitors", "phrases": ["Acme"], "replacement": "Ask me."}
OBJECTIVE = {"objective_name": "get_email", "output_variables": ["email"]}


def test_documents_memories_guardrails_and_objectives_through_the_client(service, tmp_path):
    presence = PresenceClient(api_key=KEY_A, http=service)
    faq = tmp_path / "kettle-faq.md"
    faq.write_text(KETTLE)
    uploaded = presence.upload_document(faq, tags=["faq", "kettle"], properties={"team": "a"})
    assert (uploaded.document_name, uploaded.content_type) == ("kettle-faq", "markdown")
    assert uploaded.status == "ready" and uploaded.chunk_count >= 1
    assert (uploaded.tags, uploaded.properties) == (["faq", "kettle"], {"team": "a"})
    as_bytes = presence.upload_document(b"Opening hours: 9 to 5.", file_name="hours.txt")
    assert as_bytes.content_type == "text"
    text = presence.create_document(text=KETTLE, document_name="Inline")
    assert text.status == "ready"

    assert presence.list_documents(tags=["kettle"]).total_count == 1
    newest = presence.list_documents(sort="descending", limit=1).data[0]
    assert newest.document_id == text.document_id
    renamed = presence.patch_document(text.document_id, document_name="Renamed", tags=["x"])
    assert (renamed.document_name, renamed.tags) == ("Renamed", ["x"])
    presence.delete_document(as_bytes.document_id)
    with pytest.raises(PresenceAPIError) as gone:
        presence.get_document(as_bytes.document_id)
    assert gone.value.status_code == 404 and as_bytes.document_id in gone.value.error

    memory = presence.add_memory("ada", "Ada prefers tea.", kind="preference")
    assert presence.list_memories("ada").data == [memory]
    assert [(s.memory_store, s.memory_count) for s in presence.list_memory_stores().data] == [
        ("ada", 1)
    ]
    presence.delete_memory("ada", memory.memory_id)
    presence.add_memory("ada", "Ada lives in Lyon.", kind="location")
    presence.delete_memory_store("ada")
    assert presence.list_memories("ada").total_count == 0

    guardrails = presence.create_guardrails(name="Brand", data=[GUARDRAIL])
    single = presence.create_guardrails(**GUARDRAIL)  # Tavus's individual guardrail
    assert single.guardrails_name == "no_competitors"
    assert presence.list_guardrails().total_count == 2
    renamed_set = presence.patch_guardrails(guardrails.guardrails_id, name="Brand safety")
    assert presence.get_guardrails(guardrails.guardrails_id).guardrails_name == "Brand safety"
    # a JSON Patch that changes nothing answers 304; the client returns the set as it is
    unchanged = presence.patch_guardrails(
        guardrails.guardrails_id, [{"op": "replace", "path": "/name", "value": "Brand safety"}]
    )
    assert unchanged == renamed_set

    objectives = presence.create_objectives(name="Lead", data=[OBJECTIVE])
    assert objectives.data[0]["objective_name"] == "get_email"
    persona = presence.create_persona(
        persona_name="Sales",
        guardrails_id=guardrails.guardrails_id,
        objectives_id=objectives.objectives_id,
        document_tags=["faq"],
    )
    with pytest.raises(PresenceAPIError) as in_use:
        presence.delete_objectives(objectives.objectives_id)
    assert in_use.value.status_code == 409 and persona.persona_id in in_use.value.error
    patched = presence.patch_persona(persona.persona_id, objectives_id=None)
    assert patched.objectives_id is None
    presence.delete_objectives(objectives.objectives_id)
    assert presence.list_objectives().total_count == 0


def test_replicas_interactions_recordings_and_usage_through_the_client(service, tmp_path):
    import numpy as np
    from PIL import Image

    presence = PresenceClient(api_key=KEY_A, http=service)
    wall = tmp_path / "wall.png"
    Image.fromarray(np.full((128, 128, 3), 128, np.uint8)).save(wall)
    replica = presence.create_replica(wall, replica_name="Wall")
    assert (replica.replica_name, replica.status) == ("Wall", "training")
    deadline = time.monotonic() + 30
    while (state := presence.get_replica(replica.replica_id)).status == "training":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert state.status == "error" and state.error_message  # no face in a grey wall
    assert [r.replica_id for r in presence.list_replicas().data] == [replica.replica_id]
    with pytest.raises(PresenceAPIError) as wrong:
        presence.create_replica(b"hello", file_name="notes.txt")
    assert wrong.value.status_code == 422 and "file" in wrong.value.error
    presence.delete_replica(replica.replica_id)

    talk = presence.create_conversation(conversation_name="usage")
    assert presence.echo(talk.conversation_id, "Hello there.").event_type == "conversation.echo"
    with pytest.raises(ValueError) as unknown_level:  # the client checks the body first
        presence.set_sensitivity(talk.conversation_id, interrupt="loud")
    assert "participant_interrupt_sensitivity" in str(unknown_level.value)
    presence.end_conversation(talk.conversation_id)
    # an ended call takes no interactions: the service's 409 reason reaches the caller
    with pytest.raises(PresenceAPIError) as ended:
        presence.echo(talk.conversation_id, "Still there?")
    assert ended.value.status_code == 409 and "ended" in ended.value.error
    with pytest.raises(PresenceAPIError) as no_recording:
        presence.download_recording(talk.conversation_id, tmp_path / "call.mp4")
    assert no_recording.value.status_code == 404 and not (tmp_path / "call.mp4").exists()
    usage = presence.usage()
    assert [c.conversation_id for c in usage.conversations] == [talk.conversation_id]
    assert usage.total_minutes == usage.conversations[0].minutes
    presence.delete_conversation(talk.conversation_id, hard=True)
    assert presence.list_conversations().total_count == 0


async def test_the_async_client_drives_a_real_service(tmp_path):
    port = free_port()
    settings = make_settings(tmp_path, public_url=f"http://127.0.0.1:{port}")
    with serve_app(create_app(settings, launcher=PipecatLauncher()), port) as url:
        async with AsyncPresenceClient(url, KEY_A) as presence:
            doc = await presence.upload_document(KETTLE.encode(), file_name="kettle.md")
            assert doc.status == "ready" and doc.document_name == "kettle"
            persona = await presence.create_persona(
                persona_name="Ada", document_ids=[doc.document_id]
            )
            patched = await presence.patch_persona(
                persona.persona_id, [{"op": "replace", "path": "/persona_name", "value": "Bea"}]
            )
            assert patched.persona_name == "Bea" and patched.document_ids == [doc.document_id]
            talk = await presence.create_conversation(
                persona_id=persona.persona_id, memory_stores=["bea"]
            )
            assert (await presence.end_conversation(talk.conversation_id)).status == "ended"
            assert await presence.transcript(talk.conversation_id) == [
                {"role": "assistant", "content": "hello"}
            ]
            memory = await presence.add_memory("bea", "Bea likes jazz.")
            assert (await presence.list_memories("bea")).data[0].memory_id == memory.memory_id
            with pytest.raises(PresenceAPIError) as refused:
                await presence.get_persona("p_nope")
            assert refused.value.status_code == 404 and "p_nope" in refused.value.error
