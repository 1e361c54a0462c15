"""Memories: what a user shares in one conversation is in the next one of the same store, until forgotten."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from fakes.openai import FakeOpenAI, Reply
from fastapi.testclient import TestClient
from helpers.service import KEY_A, KEY_B, PipecatLauncher, make_settings

from presence.service.app import create_app
from presence.service.db import ConversationRow
from presence.service.memories import extract_offline, second_person
from presence.service.settings import owner_of

pytestmark = pytest.mark.background

ANNA = [
    "Hi! My name is Anna and I work at Acme Robotics.",
    "I really like green tea, but I hate coffee.",
    "I'm fine, thanks. I have a question about the kettle.",
]


def test_the_offline_extractor_keeps_what_the_user_shared_about_themselves():
    found = {m.content: m.kind for m in extract_offline(ANNA + ["I live in Lisbon.", "I'm Tom."])}
    assert found == {
        "The user's name is Anna.": "name",
        "The user works at Acme Robotics.": "work",
        "The user likes green tea.": "preference",
        "The user hates coffee.": "preference",
        "The user lives in Lisbon.": "location",
        "The user's name is Tom.": "name",
    }
    assert extract_offline(["I'm fine.", "I have a question.", "I'm looking for a kettle."]) == []
    assert second_person("The user's name is Anna.") == "Your name is Anna."
    assert second_person("The user likes green tea.") == "You like green tea."


def _talk(service, launcher, body: dict, user_turns: list[str]) -> str:
    """A conversation in which the user says ``user_turns``, ended; returns its id."""
    answer = service.post("/v2/conversations", json=body)
    assert answer.status_code == 200, answer.text
    cid = answer.json()["conversation_id"]
    session = launcher.sessions[cid]
    turns = [t for text in user_turns for t in ({"role": "user", "content": text},
             {"role": "assistant", "content": "I see."})]  # fmt: skip
    session.turns.extend(turns)  # the session's own transcript (its greeting may still come)
    service.portal.call(lambda: session.events.transcript(session.turns))
    assert service.post(f"/v2/conversations/{cid}/end").status_code == 200
    return cid


def _memories(service, store: str, *, at_least: int = 1, timeout: float = 20.0) -> list[dict]:
    deadline = time.monotonic() + timeout
    while (page := service.get(f"/v2/memories/{store}").json())["total_count"] < at_least:
        assert time.monotonic() < deadline, page
        time.sleep(0.05)
    return page["data"]


def test_memories_reach_the_next_conversation_of_the_store_and_can_be_forgotten(service, launcher):
    first = _talk(service, launcher, {"memory_stores": ["anna_p1"]}, ANNA)
    remembered = _memories(service, "anna_p1", at_least=4)
    assert {m["content"] for m in remembered} == {
        "The user's name is Anna.", "The user works at Acme Robotics.",
        "The user likes green tea.", "The user hates coffee.",
    }  # fmt: skip
    assert all(m["conversation_id"] == first and m["source"] == "offline" for m in remembered)

    second = service.post("/v2/conversations", json={"memory_stores": ["anna_p1"]}).json()
    spec = launcher.sessions[second["conversation_id"]].spec
    context = spec.persona["conversational_context"]
    assert "The user's name is Anna." in context and "green tea" in context
    kb = Path(spec.persona["knowledge_base"])  # the offline responder can answer from them
    assert "Your name is Anna." in (kb / "memories.md").read_text()
    assert second["warnings"] == []
    stranger = service.post("/v2/conversations", json={"memory_stores": ["bob_p1"]}).json()
    assert "conversational_context" not in launcher.sessions[stranger["conversation_id"]].spec.persona  # fmt: skip

    # a new name replaces the old one; what is already known is not repeated
    service.post(f"/v2/conversations/{second['conversation_id']}/end")
    service.post(f"/v2/conversations/{stranger['conversation_id']}/end")
    _talk(
        service, launcher, {"memory_stores": ["anna_p1"]}, ["Call me Annie.", "I like green tea."]
    )
    deadline = time.monotonic() + 20
    while "The user's name is Annie." not in {m["content"] for m in _memories(service, "anna_p1")}:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    contents = [m["content"] for m in _memories(service, "anna_p1")]
    assert "The user's name is Anna." not in contents and contents.count("The user likes green tea.") == 1  # fmt: skip

    stores = service.get("/v2/memories").json()
    assert {s["memory_store"]: s["memory_count"] for s in stores["data"]} == {"anna_p1": 4}
    assert service.get("/v2/memories/anna_p1", headers={"x-api-key": KEY_B}).json()["total_count"] == 0  # fmt: skip

    coffee = next(m for m in _memories(service, "anna_p1") if "coffee" in m["content"])
    assert service.delete(f"/v2/memories/anna_p1/{coffee['memory_id']}", headers={"x-api-key": KEY_B}).status_code == 404  # fmt: skip
    assert service.delete(f"/v2/memories/anna_p1/{coffee['memory_id']}").status_code == 204
    assert service.delete(f"/v2/memories/anna_p1/{coffee['memory_id']}").status_code == 404
    assert "coffee" not in json.dumps(service.get("/v2/memories/anna_p1").json())

    added = service.post("/v2/memories/anna_p1", json={"content": "The user is vegetarian."})
    assert added.status_code == 200 and added.json()["source"] == "api"
    assert service.post("/v2/memories/anna_p1", json={"content": ""}).status_code == 422
    assert service.post("/v2/memories/anna_p1", json={"content": "  "}).status_code == 422
    # kept trimmed, and the same content (any case, any spacing) is the same memory
    spaced = service.post("/v2/memories/anna_p1", json={"content": "  Die Nutzerin mag Äpfel. "})
    assert spaced.status_code == 200 and spaced.json()["content"] == "Die Nutzerin mag Äpfel."
    again = service.post("/v2/memories/anna_p1", json={"content": "DIE NUTZERIN MAG ÄPFEL."})
    assert again.status_code == 200 and again.json()["memory_id"] == spaced.json()["memory_id"]
    assert datetime.fromisoformat(again.json()["created_at"]).utcoffset() == timedelta(0)

    assert service.delete("/v2/memories/anna_p1").status_code == 204  # the right to be forgotten
    assert service.get("/v2/memories/anna_p1").json() == {"data": [], "total_count": 0}
    after = service.post("/v2/conversations", json={"memory_stores": ["anna_p1"]}).json()
    assert "conversational_context" not in launcher.sessions[after["conversation_id"]].spec.persona


def test_a_cloud_llm_extracts_the_memories_and_the_offline_rules_stand_in_when_it_fails(
    service, launcher
):
    answer = json.dumps(
        {"memories": [{"kind": "name", "content": "The user's name is Anna."},
                      {"kind": "preference", "content": "The user prefers oolong to green tea."}]}
    )  # fmt: skip
    fake = FakeOpenAI(
        Reply(text=[answer[:20], answer[20:]]), Reply(fault="500"), Reply(fault="500")
    )
    service.portal.call(fake.__aenter__)
    try:
        persona = service.post(
            "/v2/personas",
            json={
                "persona_name": "P",
                "layers": {"llm": {"base_url": fake.base_url, "model": "m"}},
            },
        ).json()
        body = {"persona_id": persona["persona_id"], "memory_stores": ["anna"]}
        _talk(service, launcher, body, ["My name is Anna. Oolong beats green tea for me."])
        memories = _memories(service, "anna", at_least=2)
        assert {m["content"] for m in memories} == {
            "The user's name is Anna.", "The user prefers oolong to green tea."
        }  # fmt: skip
        assert all(m["source"] == "llm" for m in memories)
        prompt = fake.requests[0]["messages"][-1]["content"]
        assert "user: My name is Anna. Oolong beats green tea for me." in prompt

        body["memory_stores"] = ["anna_2"]  # the LLM fails twice: the rules still find the name
        _talk(service, launcher, body, ["My name is Anna."])
        fallback = _memories(service, "anna_2")
        assert [(m["content"], m["source"]) for m in fallback] == [
            ("The user's name is Anna.", "offline")
        ]
    finally:
        service.portal.call(fake.__aexit__, None, None, None)


def test_a_conversation_the_service_was_stopped_in_still_leaves_its_memories(tmp_path):
    settings = make_settings(tmp_path)
    with TestClient(create_app(settings, launcher=PipecatLauncher()), headers={"x-api-key": KEY_A}) as api:  # fmt: skip
        with api.app.state.sessions.begin() as db:  # as a killed service leaves it: still live
            db.add(
                ConversationRow(
                    id="ckilled", owner=owner_of(KEY_A), status="active", properties={},
                    transcript=[{"role": "user", "content": "My name is Anna."}],
                    tavus_fields={"memory_stores": ["anna"]},
                )
            )  # fmt: skip
    with TestClient(create_app(settings, launcher=PipecatLauncher()), headers={"x-api-key": KEY_A}) as api:  # fmt: skip
        memories = _memories(api, "anna")
        assert [(m["content"], m["conversation_id"]) for m in memories] == [
            ("The user's name is Anna.", "ckilled")
        ]
        assert api.get("/v2/conversations/ckilled").json()["shutdown_reason"] == "service_restart"
