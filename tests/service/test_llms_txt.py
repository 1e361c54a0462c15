"""``/llms.txt``: the API for agents, without a key, generated from the routes themselves."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from helpers.service import PipecatLauncher, make_settings

from presence.service.app import create_app

pytestmark = pytest.mark.background


def test_llms_txt_lists_every_route_with_auth_and_fields_without_a_key(service):
    answer = service.get("/llms.txt", headers={"x-api-key": ""})
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    text = answer.text
    assert text.startswith("# presence conversations API\n\n> ")
    assert "`x-api-key` header" in text
    spec = service.get("/openapi.json").json()
    for path, item in spec["paths"].items():
        for method in item:
            assert f"`{method.upper()} {path}`" in text, (method, path)
    assert "`persona_name`" in text and "`tts_engine`: 'cartesia' | 'elevenlabs'" in text
    assert "`properties`: ConversationProperties" in text
    assert "(http://127.0.0.1:8000/openapi.json)" in text  # links use the public URL


def test_llms_txt_follows_a_route_added_to_the_app(tmp_path):
    app = create_app(make_settings(tmp_path), launcher=PipecatLauncher())

    @app.get("/v2/brand-new", summary="A route the text was never told about")
    def brand_new(limit: int = 3) -> dict:
        return {}

    with TestClient(app) as client:
        text = client.get("/llms.txt").text
    assert "`GET /v2/brand-new`: A route the text was never told about" in text
    assert "`limit`: integer" in text
