"""The versioned schema: an older database is upgraded in place and keeps its rows."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from presence.framework.errors import ConfigError
from presence.service.db import SCHEMA_VERSION, ConversationRow, init_db, make_engine

pytestmark = pytest.mark.background

V1_CONVERSATIONS = """
CREATE TABLE conversations (
    id VARCHAR(40) PRIMARY KEY, owner VARCHAR(64), persona_id VARCHAR(40), replica_id VARCHAR(40),
    conversation_name VARCHAR(200), conversational_context TEXT, custom_greeting TEXT,
    callback_url VARCHAR(2000), properties JSON, status VARCHAR(16), shutdown_reason VARCHAR(64),
    failed_stage VARCHAR(32), error_message TEXT, transcript JSON, perception_analysis JSON,
    recording_path VARCHAR(1000), created_at DATETIME, joined_at DATETIME, ended_at DATETIME,
    updated_at DATETIME)
"""


def test_a_version_1_database_is_upgraded_and_keeps_its_conversations(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    with engine.begin() as db:
        db.execute(text(V1_CONVERSATIONS))
        db.execute(
            text("CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at DATETIME)")
        )
        db.execute(text("INSERT INTO schema_version VALUES (1, '2026-01-01 00:00:00')"))
        db.execute(
            text(
                "INSERT INTO conversations (id, owner, status, transcript, properties, "
                "conversation_name, conversational_context, created_at, updated_at) VALUES "
                "('c1', 'o', 'ended', '[{\"role\": \"user\", \"content\": \"hi\"}]', '{}', '', '', "
                "'2026-01-01 00:00:00', '2026-01-01 00:00:00')"
            )
        )

    sessions = init_db(engine)

    with sessions() as db:
        row = db.get(ConversationRow, "c1")
        assert row.transcript == [{"role": "user", "content": "hi"}]
        assert row.conversation_url is None and row.recording_storage is None
        row.conversation_url = "https://example.daily.co/c1"
        db.commit()
        versions = db.execute(text("SELECT max(version) FROM schema_version")).scalar()
    assert versions == SCHEMA_VERSION
    init_db(engine)  # a second start changes nothing
    with sessions() as db:
        assert db.get(ConversationRow, "c1").conversation_url == "https://example.daily.co/c1"


def test_a_database_from_a_newer_presence_is_refused(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'new.db'}")
    init_db(engine)
    with engine.begin() as db:
        db.execute(text(f"INSERT INTO schema_version VALUES ({SCHEMA_VERSION + 1}, '2026-01-01')"))
    with pytest.raises(ConfigError, match="upgrade presence"):
        init_db(engine)
