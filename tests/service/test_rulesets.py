"""``/v2/guardrails`` and ``/v2/objectives``: Tavus's shapes, paging, 4xx with reasons, persona
references, and the conversation's progress and webhooks when a guardrail fires or an objective
completes (driven through the session's events, as a session process reports them)."""

from __future__ import annotations

import json

import pytest
from helpers.service import KEY_B, SECRET, Receiver

from presence.service.webhooks import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify_signature

pytestmark = pytest.mark.background

GUARDRAILS = {
    "name": "Compliance",
    "data": [
        {
            "guardrail_name": "no_unreleased",
            "guardrail_prompt": "Never discuss unreleased products.",
            "phrases": ["Project Falcon"],
            "replacement": "I can't talk about unreleased products.",
        },
        {"guardrail_name": "no_medical_advice", "guardrail_prompt": "Never give medical advice."},
    ],
}
OBJECTIVES = {
    "data": [
        {
            "objective_name": "get_email",
            "objective_prompt": "Ask for the user's email",
            "output_variables": ["email"],
            "next_required_objectives": ["get_phone"],
        },
        {"objective_name": "get_phone", "output_variables": ["phone_number"]},
    ]
}


def test_guardrails_crud_paging_and_warnings(service):
    created = service.post("/v2/guardrails", json=GUARDRAILS)
    assert created.status_code == 200, created.text
    body = created.json()
    gid = body["guardrails_id"]
    assert gid.startswith("g") and body["uuid"] == gid and body["guardrails_name"] == "Compliance"
    assert body["data"][0]["phrases"] == ["Project Falcon"]
    # a prompt alone cannot be enforced offline: said once, naming the guardrail and the fix
    (warning,) = body["warnings"]
    assert warning.startswith("no_medical_advice:") and "phrases or topics" in warning

    # Tavus's individual guardrail: guardrail_name at the top is a set of one
    single = service.post(
        "/v2/guardrails", json={"guardrail_name": "no_refunds", "topics": ["refund"]}
    ).json()
    assert single["guardrails_name"] == "no_refunds" and len(single["data"]) == 1

    page = service.get("/v2/guardrails", params={"limit": 1, "page": 2}).json()
    assert page["total_count"] == 2 and [g["guardrails_id"] for g in page["data"]] == [gid]
    assert service.get(f"/v2/guardrails/{gid}").json()["data"] == body["data"]

    merged = service.patch(f"/v2/guardrails/{gid}", json={"name": "Renamed"}).json()
    assert merged["guardrails_name"] == "Renamed" and merged["data"] == body["data"]
    patched = service.patch(
        f"/v2/guardrails/{gid}",
        json=[{"op": "replace", "path": "/data/0/replacement", "value": "Not yet."}],
    )
    assert patched.status_code == 200 and patched.json()["data"][0]["replacement"] == "Not yet."
    unchanged = [{"op": "replace", "path": "/name", "value": "Renamed"}]
    assert service.patch(f"/v2/guardrails/{gid}", json=unchanged).status_code == 304

    assert service.delete(f"/v2/guardrails/{gid}").status_code == 204
    assert service.get(f"/v2/guardrails/{gid}").status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"data": []}, "data"),
        ({"data": [{"guardrail_name": "has spaces"}]}, "guardrail_name"),
        ({"data": [{"guardrail_name": "x", "applies_to": "sideways"}]}, "applies_to"),
        ({"data": [{"guardrail_name": "x", "phrase": ["typo"]}]}, "phrase"),
        ({"guardrail_name": "x", "guardrail_prompt": "p" * 1001}, "guardrail_prompt"),
    ],
)
def test_a_malformed_guardrail_is_a_422_naming_the_field(service, body, field):
    answer = service.post("/v2/guardrails", json=body)
    assert answer.status_code == 422 and field in answer.text


def test_objectives_crud_and_refusals(service):
    created = service.post("/v2/objectives", json=OBJECTIVES)
    assert created.status_code == 200, created.text
    oid = created.json()["objectives_id"]
    assert oid.startswith("o") and created.json()["warnings"] == []
    # the bare list, as one of Tavus's examples sends it; an LLM-only objective is warned about
    bare = service.post(
        "/v2/objectives",
        json=[{"objective_name": "rapport", "objective_prompt": "Build rapport"}],
    ).json()
    assert "rapport:" in bare["warnings"][0] and "add criteria" in bare["warnings"][0]

    unknown = service.post(
        "/v2/objectives",
        json={"data": [{"objective_name": "a", "next_required_objectives": ["nope"]}]},
    )
    assert unknown.status_code == 422 and "unknown objectives: nope" in unknown.text
    bad_regex = service.post(
        "/v2/objectives",
        json={"data": [{"objective_name": "a", "criteria": [{"type": "regex", "pattern": "("}]}]},
    )
    assert bad_regex.status_code == 422 and "not a valid regex" in bad_regex.text
    spaced = service.post("/v2/objectives", json={"data": [{"objective_name": "get email"}]})
    assert spaced.status_code == 422 and "objective_name" in spaced.text
    broken = service.patch(
        f"/v2/objectives/{oid}", json=[{"op": "remove", "path": "/data/1"}]
    )  # get_email's successor would be gone
    assert broken.status_code == 422 and "get_phone" in broken.text

    assert service.get("/v2/objectives").json()["total_count"] == 2
    assert service.get(f"/v2/objectives/{oid}", headers={"x-api-key": KEY_B}).status_code == 403
    assert service.get("/v2/objectives/onope").status_code == 404


def test_personas_point_to_sets_which_cannot_be_deleted_while_used(service):
    gid = service.post("/v2/guardrails", json=GUARDRAILS).json()["guardrails_id"]
    oid = service.post("/v2/objectives", json=OBJECTIVES).json()["objectives_id"]
    missing = service.post("/v2/personas", json={"guardrails_id": "gnope"})
    assert missing.status_code == 404 and "gnope" in missing.text
    other = service.post("/v2/personas", json={"objectives_id": oid}, headers={"x-api-key": KEY_B})
    assert other.status_code == 403
    persona = service.post("/v2/personas", json={"guardrails_id": gid, "objectives_id": oid}).json()
    assert (persona["guardrails_id"], persona["objectives_id"]) == (gid, oid)
    in_use = service.delete(f"/v2/guardrails/{gid}")
    assert in_use.status_code == 409 and persona["persona_id"] in in_use.text
    # Tavus's JSON Patch detaches it; then the set can go
    pid = persona["persona_id"]
    detached = service.patch(
        f"/v2/personas/{pid}", json=[{"op": "remove", "path": "/guardrails_id"}]
    )
    assert detached.status_code == 200 and detached.json()["guardrails_id"] is None
    assert service.delete(f"/v2/guardrails/{gid}").status_code == 204


def test_guardrails_attached_by_tag_reach_the_conversation_and_follow_later_ones(service, launcher):
    # an individual guardrail as Tavus's older pages spell it, and one of another key
    older = {"guardrails_name": "no_prices", "guardrails_prompt": "Never quote prices.",
             "tags": ["sales"], "phrases": ["per seat"]}  # fmt: skip
    created = service.post("/v2/guardrails", json=older)
    assert created.status_code == 200, created.text
    assert created.json()["data"][0]["guardrail_name"] == "no_prices"
    service.post("/v2/guardrails", json=GUARDRAILS)  # untagged: not attached
    theirs = {"guardrail_name": "not_mine", "tags": ["sales"]}
    assert service.post("/v2/guardrails", json=theirs, headers={"x-api-key": KEY_B}).is_success
    persona = service.post("/v2/personas", json={"guardrail_tags": ["sales", "legal"]}).json()
    assert persona["guardrail_tags"] == ["sales", "legal"]

    def attached() -> list[str]:
        answer = service.post("/v2/conversations", json={"persona_id": persona["persona_id"]})
        assert answer.status_code == 200, answer.text
        cid = answer.json()["conversation_id"]
        assert service.post(f"/v2/conversations/{cid}/end").is_success
        return [g["guardrail_name"] for g in launcher.sessions[cid].spec.guardrails]

    assert attached() == ["no_prices"]
    later = {"guardrail_name": "no_contracts", "tags": ["legal"], "phrases": ["contract"]}
    assert service.post("/v2/guardrails", json=later).is_success
    assert sorted(attached()) == ["no_contracts", "no_prices"]
    # Tavus's JSON Patch replaces the tags
    pid = persona["persona_id"]
    patched = service.patch(
        f"/v2/personas/{pid}",
        json=[{"op": "replace", "path": "/guardrail_tags", "value": ["legal"]}],
    )
    assert patched.status_code == 200 and patched.json()["guardrail_tags"] == ["legal"]
    assert attached() == ["no_contracts"]


def test_firings_and_completions_reach_the_conversation_and_the_webhooks(
    service, launcher, receiver
):
    receiver.up()
    own = Receiver()  # the guardrail's own callback_url
    own.up()
    try:
        guardrails = json.loads(json.dumps(GUARDRAILS))
        guardrails["data"][0]["callback_url"] = own.url
        gid = service.post("/v2/guardrails", json=guardrails).json()["guardrails_id"]
        oid = service.post("/v2/objectives", json=OBJECTIVES).json()["objectives_id"]
        pid = service.post(
            "/v2/personas", json={"guardrails_id": gid, "objectives_id": oid}
        ).json()["persona_id"]
        conversation = service.post(
            "/v2/conversations", json={"persona_id": pid, "callback_url": receiver.url}
        ).json()
        cid = conversation["conversation_id"]
        assert [(o["objective_name"], o["status"]) for o in conversation["objectives"]] == [
            ("get_email", "active"),
            ("get_phone", "pending"),
        ]
        # the session got the persona's sets
        spec = launcher.sessions[cid].spec
        assert [g["guardrail_name"] for g in spec.guardrails] == [
            "no_unreleased",
            "no_medical_advice",
        ]
        assert [o["objective_name"] for o in spec.objectives] == ["get_email", "get_phone"]

        events = launcher.sessions[cid].events
        trigger = {"guardrail_name": "no_unreleased", "side": "output", "matched": "Project Falcon"}
        service.portal.call(events.guardrail, trigger)
        state = [
            {"objective_name": "get_email", "status": "completed",
             "output_variables": {"email": "jo@example.com"}, "completed_turn": 1},
            {"objective_name": "get_phone", "status": "active", "output_variables": {},
             "completed_turn": None},
        ]  # fmt: skip
        completion = {
            "objective_name": "get_email",
            "output_variables": {"email": "jo@example.com"},
            "next_objectives": ["get_phone"],
        }
        service.portal.call(events.objective, completion, state)

        got = receiver.wait_for(
            lambda es: (
                {"application.guardrail_triggered", "application.objective_completed"}
                <= {e["event_type"] for e in es}
            )
        )
        fired = next(e for e in got if e["event_type"] == "application.guardrail_triggered")
        assert fired["conversation_id"] == cid
        assert {k: fired["properties"][k] for k in trigger} == trigger
        done = next(e for e in got if e["event_type"] == "application.objective_completed")
        assert done["properties"]["output_variables"] == {"email": "jo@example.com"}
        assert done["properties"]["next_objectives"] == ["get_phone"]
        # the guardrail's own receiver gets its firing too, signed like every webhook
        (own_event,) = own.wait_for(lambda es: len(es) >= 1)
        assert own_event["event_type"] == "application.guardrail_triggered"
        headers, body = own.received[0]
        assert verify_signature(SECRET, body, headers[TIMESTAMP_HEADER], headers[SIGNATURE_HEADER])

        shown = service.get(f"/v2/conversations/{cid}").json()
        assert shown["objectives"] == state
        (logged,) = shown["guardrails_triggered"]
        assert logged["guardrail_name"] == "no_unreleased" and logged["side"] == "output"
    finally:
        own.down()


def test_a_persona_without_sets_has_no_objectives(service):
    conversation = service.post("/v2/conversations", json={}).json()
    assert conversation["objectives"] == [] and conversation["guardrails_triggered"] == []
