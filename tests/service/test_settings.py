"""Service settings from the environment: isolation mode and its validation."""

from __future__ import annotations

import pytest

from presence.framework.errors import ConfigError
from presence.service.app import default_launcher
from presence.service.launcher import WebRTCLauncher
from presence.service.process_launcher import ProcessLauncher
from presence.service.settings import ServiceSettings


def test_a_process_per_conversation_is_the_default_and_inline_is_a_choice(tmp_path, monkeypatch):
    monkeypatch.setenv("PRESENCE_API_KEYS", "k")
    monkeypatch.delenv("PRESENCE_SESSION_ISOLATION", raising=False)
    assert isinstance(
        default_launcher(ServiceSettings.from_env(data_dir=tmp_path)), ProcessLauncher
    )
    monkeypatch.setenv("PRESENCE_SESSION_ISOLATION", "Inline")
    assert isinstance(default_launcher(ServiceSettings.from_env(data_dir=tmp_path)), WebRTCLauncher)


def test_an_unknown_isolation_mode_names_the_variable_and_the_choices(tmp_path, monkeypatch):
    monkeypatch.setenv("PRESENCE_API_KEYS", "k")
    monkeypatch.setenv("PRESENCE_SESSION_ISOLATION", "threads")
    with pytest.raises(ConfigError) as info:
        ServiceSettings.from_env(data_dir=tmp_path)
    assert info.value.field == "PRESENCE_SESSION_ISOLATION"
    assert "process, inline" in str(info.value) and "'threads'" in str(info.value)
