"""A conversation's knowledge base: its documents and memories ground the persona's answers.

The end-to-end tests run the real offline pipeline over the file transport (``FileLauncher``;
the user stays silent and asks through ``conversation.respond``): the knowledge-base responder
answers from an uploaded document and from a memory, and a cloud LLM (the local OpenAI fake)
gets the document's passage in its turn's system instruction.
"""

from __future__ import annotations

import time
import wave
from pathlib import Path

import numpy as np
import pytest
from fakes.openai import FakeOpenAI, Reply
from fastapi.testclient import TestClient
from helpers.service import KEY_A, FileLauncher, make_settings

from presence.service.app import create_app

KETTLE = """# Zephyr kettle

The Zephyr kettle boils a full litre of water in ninety seconds. Its base glows blue while it heats.

## Cleaning

Descale the Zephyr kettle every month with white vinegar.
"""
LIGHT = {  # the offline pipeline, made light: a small still face, the espeak voice
    "tts": {"provider": "espeak"},
    "transport": {"video": {"width": 96, "height": 96, "fps": 10}},
}


def silence(path: Path, seconds: float) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(np.zeros(int(16000 * seconds), np.int16).tobytes())
    return path


def wait(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)
    return value


@pytest.fixture
def live(tmp_path):
    """An app whose conversations run the real pipeline over silent WAVs (two conversations)."""
    wavs = [silence(tmp_path / f"mic{i}.wav", 40) for i in range(2)]
    launcher = FileLauncher(wavs, tmp_path / "out", fast=False)
    app = create_app(make_settings(tmp_path), launcher=launcher)
    with TestClient(app, headers={"x-api-key": KEY_A}) as api:
        yield api


def _ask(api: TestClient, cid: str, question: str) -> str:
    """Ask once the persona has finished speaking; returns its answer."""

    def finished() -> list[str]:
        turns = api.get(f"/v2/conversations/{cid}").json()["transcript"]
        return [t["content"] for t in turns if t["role"] == "assistant" and t.get("ended_ms")]

    before = len(wait(finished, 40, "the greeting"))
    sent = api.post(
        f"/v2/conversations/{cid}/interactions",
        json={"event_type": "conversation.respond", "properties": {"text": question}},
    )
    assert sent.status_code == 200, sent.text
    return wait(lambda: finished()[before:], 30, f"the answer to {question!r}")[0]


def test_the_offline_persona_answers_from_an_uploaded_document_and_a_memory(live):
    doc = live.post(
        "/v2/documents",
        files={"file": ("zephyr.md", KETTLE.encode(), "text/markdown")},
        data={"tags": "kettles"},
    ).json()
    assert doc["status"] == "ready", doc
    persona = live.post(
        "/v2/personas",
        json={"persona_name": "Kettle helper", "greeting": "Hello.", "layers": LIGHT},
    ).json()
    live.post("/v2/memories/anna", json={"kind": "name", "content": "The user's name is Anna."})
    cid = live.post(
        "/v2/conversations",
        json={
            "persona_id": persona["persona_id"],
            "document_tags": ["kettles"],
            "memory_stores": ["anna"],
        },
    ).json()["conversation_id"]

    boil = _ask(live, cid, "How long does the Zephyr kettle take to boil water?")
    assert "ninety seconds" in boil.lower(), boil
    name = _ask(live, cid, "What is my name?")
    assert "anna" in name.lower(), name
    live.post(f"/v2/conversations/{cid}/end")


def test_a_cloud_llm_turn_is_grounded_in_the_documents_passages(live):
    fake = FakeOpenAI(Reply(text=["Hello."]), Reply(text=["About ninety seconds."]))
    live.portal.call(fake.__aenter__)
    try:
        doc = live.post("/v2/documents", json={"text": KETTLE, "document_name": "Zephyr"}).json()
        layers = {**LIGHT, "llm": {"base_url": fake.base_url, "model": "local-model"}}
        persona = live.post(
            "/v2/personas",
            json={"persona_name": "Cloud", "document_ids": [doc["document_id"]], "layers": layers},
        ).json()
        cid = live.post(
            "/v2/conversations",
            json={"persona_id": persona["persona_id"], "document_retrieval_strategy": "speed"},
        ).json()["conversation_id"]
        _ask(live, cid, "How do I descale the Zephyr kettle?")
        system = next(m["content"] for m in fake.requests[-1]["messages"] if m["role"] == "system")
        assert "Descale the Zephyr kettle every month with white vinegar." in system
        live.post(f"/v2/conversations/{cid}/end")
    finally:
        live.portal.call(fake.__aexit__, None, None, None)


def test_a_conversation_knows_its_personas_own_documents_its_documents_and_their_tags(
    service, launcher
):
    faq = service.post("/v2/documents", json={"text": KETTLE, "tags": ["kettles"]}).json()
    old = service.post("/v2/documents", json={"text": "Old prices.", "tags": ["old"]}).json()
    own = [{"document_name": "about", "content": "# About us\n\nWe make kettles in Porto."}]
    persona = service.post(
        "/v2/personas",
        json={"persona_name": "P", "documents": own, "document_ids": [old["document_id"]]},
    ).json()
    assert persona["warnings"] == [] and persona["document_ids"] == [old["document_id"]]
    assert service.delete(f"/v2/documents/{old['document_id']}").status_code == 204

    made = service.post(
        "/v2/conversations",
        json={"persona_id": persona["persona_id"], "document_tags": ["kettles", "nothing"]},
    ).json()
    spec = launcher.sessions[made["conversation_id"]].spec
    folder = Path(spec.persona["knowledge_base"])
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        ["persona.md", f"{faq['document_id']}.md"]
    )
    assert "Porto" in (folder / "persona.md").read_text()
    assert "ninety seconds" in (folder / f"{faq['document_id']}.md").read_text()
    assert any(old["document_id"] in w and "no longer exists" in w for w in made["warnings"])
    assert "stages.llm.semantic=false" in spec.overrides  # offline and embedding-free by default

    quality = service.post(
        "/v2/conversations",
        json={"document_ids": [faq["document_id"]], "document_retrieval_strategy": "quality"},
    ).json()
    assert "stages.llm.semantic=true" in launcher.sessions[quality["conversation_id"]].spec.overrides  # fmt: skip

    unknown = service.post("/v2/conversations", json={"document_ids": ["dmissing"]})
    assert unknown.status_code == 422 and "dmissing" in unknown.text
    service.post(f"/v2/conversations/{made['conversation_id']}/end")
    wait(lambda: not folder.exists(), 10, "the ended conversation's knowledge folder to go")
