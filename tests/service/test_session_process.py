"""What a session process reports reaches the supervisor's events, through a pickling queue."""

from __future__ import annotations

import pickle
import queue
from types import SimpleNamespace

from presence.service.process_launcher import ProcessLauncher
from presence.service.session_process import QueueEvents


class Recorded:
    def __init__(self):
        self.calls = []

    def __getattr__(self, name):
        return lambda *args: self.calls.append((name, args))


def test_guardrail_and_objective_events_cross_the_process_boundary():
    q: queue.Queue = queue.Queue()
    events = QueueEvents(q)
    trigger = {"guardrail_name": "no_unreleased", "side": "output", "matched": "Project Falcon"}
    completion = {"objective_name": "get_email", "output_variables": {"email": "jo@example.com"}}
    state = [{"objective_name": "get_email", "status": "completed"}]
    events.guardrail(trigger)
    events.objective(completion, state)

    recorded = Recorded()
    handle = SimpleNamespace(events=recorded)
    launcher = ProcessLauncher.__new__(ProcessLauncher)
    while not q.empty():
        name, args = pickle.loads(pickle.dumps(q.get()))  # as a multiprocessing queue does
        launcher._dispatch(handle, name, args)
    assert recorded.calls == [("guardrail", (trigger,)), ("objective", (completion, state))]
