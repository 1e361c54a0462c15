"""REST API: every route, auth failures, validation errors, Tavus-shaped fields."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from helpers.service import DATABASES, KEY_B, call

pytestmark = pytest.mark.background

REPO = Path(__file__).resolve().parents[2]
DATABASE_KINDS = DATABASES  # each test using the database runs on SQLite and PostgreSQL

PORTRAIT = REPO / "pipelines" / "personas" / "guide" / "replica.png"


def test_every_route_needs_a_valid_key(service):
    routes = [
        ("get", "/v2/personas"),
        ("post", "/v2/personas"),
        ("get", "/v2/personas/p1"),
        ("patch", "/v2/personas/p1"),
        ("delete", "/v2/personas/p1"),
        ("get", "/v2/replicas"),
        ("post", "/v2/replicas"),
        ("get", "/v2/replicas/r1"),
        ("delete", "/v2/replicas/r1"),
        ("get", "/v2/conversations"),
        ("post", "/v2/conversations"),
        ("get", "/v2/conversations/c1"),
        ("post", "/v2/conversations/c1/end"),
        ("post", "/v2/conversations/c1/interactions"),
        ("get", "/v2/conversations/c1/recording"),
        ("delete", "/v2/conversations/c1"),
        ("get", "/v2/usage"),
        ("post", "/v2/documents"),
        ("get", "/v2/documents"),
        ("get", "/v2/documents/d1"),
        ("patch", "/v2/documents/d1"),
        ("delete", "/v2/documents/d1"),
        ("get", "/v2/memories"),
        ("get", "/v2/memories/s1"),
        ("post", "/v2/memories/s1"),
        ("delete", "/v2/memories/s1"),
        ("delete", "/v2/memories/s1/m1"),
    ]
    for method, path in routes:
        missing = service.request(method, path, headers={"x-api-key": ""})
        assert missing.status_code == 401, (method, path)
        assert "x-api-key" in missing.json()["detail"]
        wrong = service.request(method, path, headers={"x-api-key": "nope"})
        assert wrong.status_code == 401, (method, path)


def test_persona_crud_and_ownership(service):
    created = service.post(
        "/v2/personas",
        json={
            "persona_name": "Tutor",
            "system_prompt": "You teach.",
            "context": "Algebra.",
            "greeting": "Hi there",
            "layers": {"tts": {"voice": "en-us"}},
            "documents": [{"document_name": "faq", "content": "# FAQ\nx is a variable."}],
        },
    )
    assert created.status_code == 200, created.text
    persona = created.json()
    pid = persona["persona_id"]
    assert persona["persona_name"] == "Tutor" and persona["layers"] == {"tts": {"voice": "en-us"}}
    assert persona["documents"] == [{"document_name": "faq"}]

    assert service.get(f"/v2/personas/{pid}").json()["system_prompt"] == "You teach."
    listed = service.get("/v2/personas").json()
    assert listed["total_count"] == 1 and listed["data"][0]["persona_id"] == pid

    patched = service.patch(f"/v2/personas/{pid}", json={"context": "Geometry."})
    assert patched.status_code == 200 and patched.json()["context"] == "Geometry."
    assert patched.json()["system_prompt"] == "You teach."

    other = {"x-api-key": KEY_B}
    assert service.get(f"/v2/personas/{pid}", headers=other).status_code == 403
    assert service.patch(f"/v2/personas/{pid}", json={}, headers=other).status_code == 403
    assert service.delete(f"/v2/personas/{pid}", headers=other).status_code == 403
    assert service.get("/v2/personas", headers=other).json()["total_count"] == 0

    assert service.delete(f"/v2/personas/{pid}").status_code == 204
    missing = service.get(f"/v2/personas/{pid}")
    assert missing.status_code == 404 and pid in missing.json()["detail"]


def test_validation_errors_name_the_field(service):
    bad_name = service.post("/v2/personas", json={"persona_name": 7, "system_prompt": "x"})
    assert bad_name.status_code == 422
    assert any(e["loc"][-1] == "persona_name" for e in bad_name.json()["detail"])

    typo = service.post("/v2/personas", json={"persona_name": "a", "sytem_prompt": "x"})
    assert typo.status_code == 422
    assert any(e["loc"][-1] == "sytem_prompt" for e in typo.json()["detail"])

    bad_layer = service.post("/v2/personas", json={"persona_name": "a", "layers": {"video": {}}})
    assert bad_layer.status_code == 422
    assert any("video" in e["loc"] for e in bad_layer.json()["detail"])

    bad_pipeline = service.post("/v2/personas", json={"persona_name": "a", "pipeline": "../etc"})
    assert bad_pipeline.status_code == 422 and "pipeline" in bad_pipeline.text

    bad_props = service.post(
        "/v2/conversations",
        json={"properties": {"max_call_duration": -1, "participant_left_timeout": "soon"}},
    )
    assert bad_props.status_code == 422
    fields = {e["loc"][-1] for e in bad_props.json()["detail"]}
    assert {"max_call_duration", "participant_left_timeout"} <= fields

    bad_url = service.post("/v2/conversations", json={"callback_url": "not a url"})
    assert bad_url.status_code == 422 and bad_url.json()["detail"][0]["loc"][-1] == "callback_url"

    unknown_persona = service.post("/v2/conversations", json={"persona_id": "p123"})
    assert unknown_persona.status_code == 404


def test_replica_registration_reports_progress_then_ready(service):
    with PORTRAIT.open("rb") as f:
        created = service.post(
            "/v2/replicas", files={"file": ("me.png", f, "image/png")}, data={"replica_name": "Me"}
        )
    assert created.status_code == 200, created.text
    replica = created.json()
    assert replica["status"] == "training" and replica["replica_name"] == "Me"
    rid = replica["replica_id"]
    deadline = time.monotonic() + 60
    while (state := service.get(f"/v2/replicas/{rid}").json())["status"] == "training":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert state["status"] == "ready", state
    assert state["training_progress"] == "100/100"
    assert service.get("/v2/replicas").json()["total_count"] == 1
    assert service.get(f"/v2/replicas/{rid}", headers={"x-api-key": KEY_B}).status_code == 403

    # A conversation can use it; deleting removes it.
    conv = service.post("/v2/conversations", json={"replica_id": rid})
    assert conv.status_code == 200 and conv.json()["replica_id"] == rid
    assert service.delete(f"/v2/replicas/{rid}").status_code == 204
    assert service.get(f"/v2/replicas/{rid}").status_code == 404


def test_replica_without_a_face_ends_in_error_with_reason(service, tmp_path):
    import numpy as np
    from PIL import Image

    blank = tmp_path / "wall.png"
    Image.fromarray(np.full((256, 256, 3), 128, np.uint8)).save(blank)
    with blank.open("rb") as f:
        rid = service.post("/v2/replicas", files={"file": ("wall.png", f, "image/png")}).json()[
            "replica_id"
        ]
    deadline = time.monotonic() + 30
    while (state := service.get(f"/v2/replicas/{rid}").json())["status"] == "training":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert state["status"] == "error" and state["error_message"]

    not_ready = service.post("/v2/conversations", json={"replica_id": rid})
    assert not_ready.status_code == 422 and "error" in not_ready.text

    wrong_type = service.post("/v2/replicas", files={"file": ("notes.txt", b"hi", "text/plain")})
    assert wrong_type.status_code == 422 and ".txt" in wrong_type.text
    assert service.post("/v2/replicas").status_code == 422  # no file at all


def test_conversation_lifecycle_fields_and_usage(service, launcher):
    persona = service.post("/v2/personas", json={"persona_name": "Guide", "greeting": "Welcome!"})
    pid = persona.json()["persona_id"]
    created = service.post(
        "/v2/conversations",
        json={
            "persona_id": pid,
            "conversation_name": "demo",
            "conversational_context": "The user is new.",
            "properties": {"max_call_duration": 600, "language": "english"},
        },
    )
    assert created.status_code == 200, created.text
    conv = created.json()
    cid = conv["conversation_id"]
    assert conv["status"] == "active"
    assert conv["conversation_url"] == f"http://127.0.0.1:8000/c/{cid}/"
    assert conv["properties"]["max_call_duration"] == 600
    assert conv["properties"]["participant_left_timeout"] == 60  # Tavus default
    spec = launcher.sessions[cid].spec
    assert spec.persona["greeting"] == "Welcome!"
    assert spec.persona["conversational_context"] == "The user is new."

    call(service, launcher.say(cid, "Ask me anything."))
    deadline = time.monotonic() + 5
    while len(service.get(f"/v2/conversations/{cid}").json()["transcript"]) < 2:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    transcript = service.get(f"/v2/conversations/{cid}").json()["transcript"]
    assert [t["content"] for t in transcript] == ["Welcome!", "Ask me anything."]

    assert service.get("/v2/conversations", params={"status": "active"}).json()["total_count"] == 1
    assert service.get("/v2/conversations", params={"status": "nope"}).status_code == 422
    assert service.get(f"/v2/conversations/{cid}", headers={"x-api-key": KEY_B}).status_code == 403
    assert (
        service.post(f"/v2/conversations/{cid}/end", headers={"x-api-key": KEY_B}).status_code
        == 403
    )

    time.sleep(0.1)  # minutes are counted from creation to end; a fast machine needs a moment
    ended = service.post(f"/v2/conversations/{cid}/end")
    assert ended.status_code == 200
    body = ended.json()
    assert body["status"] == "ended" and body["shutdown_reason"] == "end_conversation_endpoint_hit"
    assert launcher.sessions[cid].ended_with == "end_conversation_endpoint_hit"
    assert len(body["transcript"]) == 2
    again = service.post(f"/v2/conversations/{cid}/end")
    assert again.json()["shutdown_reason"] == "end_conversation_endpoint_hit"

    listed = service.get("/v2/conversations", params={"status": "ended", "persona_id": pid}).json()
    assert listed["total_count"] == 1
    usage = service.get("/v2/usage").json()
    assert usage["conversations"][0]["conversation_id"] == cid
    assert usage["total_minutes"] == usage["conversations"][0]["minutes"] > 0

    assert service.delete(f"/v2/conversations/{cid}").status_code == 204
    assert service.get(f"/v2/conversations/{cid}").status_code == 404
    assert service.post(f"/v2/conversations/{cid}/end").status_code == 404


def test_concurrency_cap_answers_429_with_reason(service):
    first = service.post("/v2/conversations", json={}).json()["conversation_id"]
    service.post("/v2/conversations", json={})
    third = service.post("/v2/conversations", json={})
    assert third.status_code == 429 and "PRESENCE_MAX_SESSIONS" in third.json()["detail"]
    service.post(f"/v2/conversations/{first}/end")
    assert service.post("/v2/conversations", json={}).status_code == 200


def test_times_carry_their_offset_and_filters_in_any_offset_agree(service):
    from datetime import datetime, timedelta, timezone

    created = service.post("/v2/conversations", json={}).json()
    stamp = datetime.fromisoformat(created["created_at"])
    assert stamp.utcoffset() == timedelta(0)  # RFC 3339 with its offset, in UTC
    listed = service.get("/v2/conversations").json()["data"][0]
    assert datetime.fromisoformat(listed["created_at"]) == stamp  # read back from the database
    # one minute earlier, written in UTC+05:00: the same instant, so the conversation is found
    earlier = (stamp - timedelta(minutes=1)).astimezone(timezone(timedelta(hours=5)))
    for route in ("/v2/conversations", "/v2/usage"):
        found = service.get(route, params={"created_after": earlier.isoformat()}).json()
        items = found.get("data", found.get("conversations"))
        assert [c["conversation_id"] for c in items] == [created["conversation_id"]], route
    refused = service.get("/v2/usage", params={"created_after": "1700000000"})
    assert refused.status_code == 422 and refused.json()["detail"][0]["loc"] == [
        "query",
        "created_after",
    ]
    service.post(f"/v2/conversations/{created['conversation_id']}/end")


def test_openapi_is_served_and_the_repo_copy_is_current(service):
    from presence.service.cli import openapi_app

    served = service.get("/openapi.json").json()
    assert "/v2/conversations/{conversation_id}/end" in served["paths"]
    stored = json.loads((REPO / "service" / "openapi.json").read_text())
    assert stored == json.loads(json.dumps(openapi_app().openapi(), sort_keys=True)), (
        "service/openapi.json is stale; run: python -m presence.service.cli openapi"
    )


def test_persona_layers_are_validated_against_the_pipeline(service):
    bad = service.post(
        "/v2/personas", json={"persona_name": "a", "layers": {"llm": {"provider": "gpt-17"}}}
    )
    assert bad.status_code == 422
    assert "stages.llm.provider" in bad.text and "knowledge-base" in bad.text
    bad_param = service.post(
        "/v2/personas", json={"persona_name": "a", "layers": {"tts": {"speed_of_light": 3}}}
    )
    assert bad_param.status_code == 422 and "speed_of_light" in bad_param.text


def test_conversation_url_serves_the_page_bound_to_its_signalling(tmp_path):
    from fastapi.testclient import TestClient
    from helpers.service import KEY_A, make_settings

    from presence.service.app import create_app

    app = create_app(make_settings(tmp_path))  # the default browser launcher
    with TestClient(app, headers={"x-api-key": KEY_A}) as client:
        conv = client.post("/v2/conversations", json={}).json()
        assert conv["status"] == "active", conv
        path = conv["conversation_url"].removeprefix("http://127.0.0.1:8000")
        page = client.get(path, headers={"x-api-key": ""})  # the person joining has no key
        assert page.status_code == 200 and "/static/app.js" in page.text
        script = client.get("/static/app.js")
        # the page's signalling URLs are relative, so from /c/{id}/ they reach this conversation
        assert script.status_code == 200 and 'fetch("api/offer"' in script.text
        assert '"/api/' not in script.text
        offer = client.post(f"{path}api/offer", json={"sdp": "garbage", "type": "offer"})
        assert offer.status_code == 400  # answered by this conversation's SmallWebRTC handler
        assert client.post("/c/cnope/api/offer", json={}).status_code == 404
        client.post(f"/v2/conversations/{conv['conversation_id']}/end")
        assert client.get(path).status_code == 404
