"""Typed perception frames.

All are ``SystemFrame``s: they report what is true *now*, so they must not wait behind queued
audio or text, and an interruption must not drop them (a lifecycle that ends the call after the
user left must see ``UserPresenceFrame(present=False)`` even while the bot is talking).

::

    PerceptionEventFrame            any debounced event (kind in EVENT_KINDS)
    ├── UserPresenceFrame           user_present / user_absent   (present: bool)
    └── UserAttentionFrame          attending / looking_away     (attending: bool)
    PerceptionDescriptionFrame      a vision model's one-line description
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pipecat.frames.frames import SystemFrame


@dataclass
class PerceptionEventFrame(SystemFrame):
    """A debounced perception event.

    Parameters:
        kind: Event name, e.g. ``smiling``, ``too_dark``, ``nod`` (see ``engines.events``).
        at: Seconds since perception started (live), or since the first camera frame (file input).
        detail: Small JSON-able extras (e.g. the face centre).
    """

    kind: str = ""
    at: float = 0.0
    detail: dict[str, Any] = field(default_factory=dict)

    def __str__(self):
        return f"{self.name}(kind: {self.kind}, at: {self.at:.2f})"


@dataclass
class UserPresenceFrame(PerceptionEventFrame):
    """The user appeared on or left the camera (``kind`` is ``user_present``/``user_absent``).

    Parameters:
        present: True when the user is now on camera.
    """

    present: bool = True


@dataclass
class UserAttentionFrame(PerceptionEventFrame):
    """The user turned to or away from the persona (``attending``/``looking_away``).

    Parameters:
        attending: True when the user is now facing the camera.
    """

    attending: bool = True


@dataclass
class PerceptionDescriptionFrame(SystemFrame):
    """A vision model's one-line description of the user's camera frame.

    Parameters:
        text: The description, e.g. "leaning back, arms crossed, looks skeptical".
        at: Seconds since perception started (live), or since the first camera frame (file input).
    """

    text: str = ""
    at: float = 0.0
