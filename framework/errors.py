"""The one error tree of presence.

Every provider, engine and config failure surfaces as one of these, mapped at the boundary where it
happens (a provider call, a file read, a config load), so callers catch ``PresenceError`` and users
read a message that says what to change::

    PresenceError
    ├── ConfigError            a pipeline/persona file or override is wrong (names file, field, fix)
    │   └── MissingSecretError a ``${VAR}`` is not set in the environment (names the variable)
    ├── InputError             user-supplied media is unreadable or of the wrong format
    ├── ReplicaError           a replica image/video cannot be registered (no face, too small, …)
    ├── DependencyError        an optional dependency is not installed (names the extra)
    └── ProviderError          a provider failed at run time
        ├── ProviderTimeout    it did not answer within its budget
        └── ProviderUnavailable  connection refused/dropped, 5xx or 429 after retries
"""

from __future__ import annotations


class PresenceError(Exception):
    """Base of every error presence raises on purpose."""


class ConfigError(PresenceError):
    """A pipeline or persona file, or a ``--set`` override, is invalid.

    Args:
        message: What is wrong and how to fix it.
        source: The file (or ``--set``) the value came from.
        field: Dotted path of the offending field, e.g. ``stages.stt.provider``.
    """

    def __init__(self, message: str, *, source: str | None = None, field: str | None = None):
        self.source = source
        self.field = field
        self.reason = message
        where = ": ".join(p for p in (source, field) if p)
        super().__init__(f"{where}: {message}" if where else message)


class MissingSecretError(ConfigError):
    """A ``${VAR}`` placeholder refers to an unset environment variable."""


class InputError(PresenceError):
    """User-supplied media (WAV, video, image) cannot be used as given."""


class ReplicaError(PresenceError):
    """A replica image or video cannot be registered."""


class DependencyError(PresenceError):
    """An optional dependency is missing; the message names the extra to install."""


class ProviderError(PresenceError):
    """A provider (STT, LLM, TTS, …) failed while serving a turn.

    Args:
        message: What failed.
        provider: The provider's config name, e.g. ``deepgram``.
        stage: The pipeline stage, e.g. ``stt``.
    """

    def __init__(self, message: str, *, provider: str | None = None, stage: str | None = None):
        self.provider = provider
        self.stage = stage
        prefix = "/".join(p for p in (stage, provider) if p)
        super().__init__(f"{prefix}: {message}" if prefix else message)


class ProviderTimeout(ProviderError):
    """A provider did not answer within its time budget."""


class ProviderUnavailable(ProviderError):
    """A provider refused, dropped the connection, or kept failing after retries."""
