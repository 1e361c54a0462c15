"""Refusals in Tavus's shape: ``error`` (and ``message`` on a 401) beside FastAPI's ``detail``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers.service import KEY_B

pytestmark = pytest.mark.background

SPEC = json.loads((Path(__file__).parents[2] / "service" / "openapi.json").read_text())


def test_a_missing_resource_says_which_one(service):
    answer = service.get("/v2/personas/p_nope")
    assert answer.status_code == 404
    assert answer.json() == {
        "error": "persona p_nope not found",
        "detail": "persona p_nope not found",
    }


@pytest.mark.parametrize(
    ("headers", "reason"),
    [({"x-api-key": ""}, "missing x-api-key header"), ({"x-api-key": "nope"}, "invalid API key")],
)
def test_an_unaccepted_key_answers_like_tavus_401(service, headers, reason):
    answer = service.get("/v2/personas", headers=headers)
    assert answer.status_code == 401
    assert answer.json() == {"error": reason, "message": reason, "detail": reason}


def test_a_bad_body_names_each_field_in_one_sentence(service):
    answer = service.post(
        "/v2/conversations",
        json={"properties": {"max_call_duration": -1}, "conversation_nam": "typo"},
    )
    assert answer.status_code == 422
    body = answer.json()
    assert body["error"].startswith("properties.max_call_duration: Input should be greater than 0")
    assert "conversation_nam: Extra inputs are not permitted" in body["error"]
    locs = [e["loc"] for e in body["detail"]]  # FastAPI's list is kept for presence clients
    assert ["body", "properties", "max_call_duration"] in locs
    assert ["body", "conversation_nam"] in locs


def test_a_refusal_of_a_routes_own_check_names_the_field(service):
    both = service.post("/v2/documents", json={"text": "hi", "document_url": "http://x.test/a"})
    assert both.status_code == 422
    assert both.json()["error"].startswith("document_url: give exactly one of document_url")

    private = service.post("/v2/conversations", json={"require_auth": True})  # a Tavus 400
    assert private.status_code == 400 and private.json()["error"].startswith("require_auth:")

    page = service.get("/v2/personas", params={"limit": 1000})
    assert page.status_code == 422 and page.json()["error"].startswith("query.limit:")


def test_other_keys_conflicts_and_wrong_methods_carry_the_reason_too(service):
    persona = service.post("/v2/personas", json={"persona_name": "Mine"}).json()["persona_id"]
    other = service.get(f"/v2/personas/{persona}", headers={"x-api-key": KEY_B})
    assert other.status_code == 403 and other.json()["error"].endswith(f"own persona {persona}")

    guardrails = service.post(
        "/v2/guardrails", json={"data": [{"guardrail_name": "g", "phrases": ["x"]}]}
    ).json()["guardrails_id"]
    service.patch(f"/v2/personas/{persona}", json={"guardrails_id": guardrails})
    in_use = service.delete(f"/v2/guardrails/{guardrails}")
    assert in_use.status_code == 409 and persona in in_use.json()["error"]

    wrong = service.put("/v2/personas")
    assert wrong.status_code == 405 and wrong.json()["error"] == "Method Not Allowed"
    assert wrong.headers["allow"] == "GET, POST"


def _schema(response: dict) -> dict:
    ref = response["content"]["application/json"]["schema"]["$ref"]
    return SPEC["components"]["schemas"][ref.rsplit("/", 1)[1]]


def test_the_published_api_gives_every_refusal_an_error_field():
    refusals = [
        (path, method, status, response)
        for path, item in SPEC["paths"].items()
        if path.startswith("/v2/")
        for method, operation in item.items()
        for status, response in operation["responses"].items()
        if status.startswith("4")
    ]
    assert len(refusals) > 100
    for path, method, status, response in refusals:
        schema = _schema(response)
        assert "error" in schema["required"], (method, path, status)
        if status == "401":
            assert "message" in schema["required"], (method, path)
