"""Service settings from the environment: isolation mode, placement, and their validation."""

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


def test_ray_placement_and_its_resources_come_from_flags_and_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("PRESENCE_API_KEYS", "k")
    monkeypatch.setenv("PRESENCE_RAY_NUM_CPUS", "2")
    monkeypatch.setenv("PRESENCE_RAY_NUM_GPUS", "0.5")
    monkeypatch.setenv(
        "PRESENCE_ICE_SERVERS",
        '["stun:stun.example.org", {"urls": "turn:turn.example.org", "username": "u", '
        '"credential": "c"}]',
    )
    settings = ServiceSettings.from_env(
        data_dir=tmp_path, placement="ray", ray_address="10.0.0.1:6379"
    )
    assert (settings.placement, settings.ray_address) == ("ray", "10.0.0.1:6379")
    assert (settings.ray_num_cpus, settings.ray_num_gpus) == (2.0, 0.5)
    assert settings.ice_servers[1]["username"] == "u"
    monkeypatch.setenv("PRESENCE_ICE_SERVERS", "stun:a.example.org, stun:b.example.org")
    assert ServiceSettings.from_env(data_dir=tmp_path).ice_servers == [
        "stun:a.example.org",
        "stun:b.example.org",
    ]


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("PRESENCE_PLACEMENT", "kubernetes", "process, ray"),
        ("PRESENCE_RAY_NUM_CPUS", "lots", "must be a number"),
        ("PRESENCE_ICE_SERVERS", "[nope", "not valid JSON"),
    ],
)
def test_bad_placement_settings_name_the_variable(tmp_path, monkeypatch, name, value, says):
    monkeypatch.setenv("PRESENCE_API_KEYS", "k")
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as info:
        ServiceSettings.from_env(data_dir=tmp_path)
    assert info.value.field == name and says in str(info.value)


def test_a_restarted_replica_keeps_its_instance_id_and_two_ports_differ(tmp_path, monkeypatch):
    monkeypatch.setenv("PRESENCE_API_KEYS", "k")
    monkeypatch.delenv("PRESENCE_INSTANCE_ID", raising=False)
    first = ServiceSettings.from_env(data_dir=tmp_path, port=8000).instance_id
    assert ServiceSettings.from_env(data_dir=tmp_path, port=8000).instance_id == first
    assert ServiceSettings.from_env(data_dir=tmp_path, port=8001).instance_id != first
