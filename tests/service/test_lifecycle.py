"""Lifecycle: each timeout and failure ends the conversation cleanly with its reason."""

from __future__ import annotations

import time

import pytest
from helpers.service import DATABASES

DATABASE_KINDS = DATABASES  # each test using the database runs on SQLite and PostgreSQL


def wait_ended(service, cid, timeout=10.0):
    deadline = time.monotonic() + timeout
    while (state := service.get(f"/v2/conversations/{cid}").json())["status"] != "ended":
        assert time.monotonic() < deadline, state
        time.sleep(0.05)
    return state


def start(service, **props):
    response = service.post("/v2/conversations", json={"properties": props})
    assert response.status_code == 200, response.text
    return response.json()["conversation_id"]


def test_max_call_duration_ends_the_call(service, launcher):
    cid = start(service, max_call_duration=0.4)
    state = wait_ended(service, cid)
    assert state["shutdown_reason"] == "max_call_duration"
    assert launcher.sessions[cid].ended_with == "max_call_duration"
    assert state["joined_at"] is not None


@pytest.mark.parametrize("launcher", [pytest.param(None, id="nobody-joins")], indirect=True)
def test_participant_absent_timeout_when_nobody_joins(service, launcher):
    cid = start(service, participant_absent_timeout=0.3)
    state = wait_ended(service, cid)
    assert state["shutdown_reason"] == "participant_absent_timeout"
    assert state["joined_at"] is None


def test_participant_left_timeout_unless_they_come_back(service, launcher):
    cid = start(service, participant_left_timeout=0.6)
    events = launcher.sessions[cid].events
    service.portal.call(events.left)
    time.sleep(0.3)
    service.portal.call(events.joined)  # back in time: the timer is cleared
    time.sleep(0.6)
    assert service.get(f"/v2/conversations/{cid}").json()["status"] == "active"
    service.portal.call(events.left)
    t0 = time.monotonic()
    state = wait_ended(service, cid)
    assert state["shutdown_reason"] == "participant_left_timeout"
    assert time.monotonic() - t0 >= 0.5


def test_a_failing_stage_ends_with_exception_and_the_stage(service, launcher):
    cid = start(service)
    events = launcher.sessions[cid].events
    service.portal.call(events.failed, "tts", "espeak-ng crashed")
    state = wait_ended(service, cid)
    assert state["shutdown_reason"] == "exception"
    assert state["failed_stage"] == "tts" and "espeak" in state["error_message"]


def test_a_session_that_cannot_start_is_ended_with_its_stage(service, launcher):
    async def broken(spec, events):
        from presence.service.launcher import LaunchError

        raise LaunchError("stages.llm: unknown provider 'x'", stage="config")

    launcher.start = broken
    state = service.post("/v2/conversations", json={}).json()
    assert state["status"] == "ended" and state["shutdown_reason"] == "exception"
    assert state["failed_stage"] == "config"
    # Its slot is free again.
    assert len(service.app.state.supervisor.live) == 0
