"""API keys for network providers: from the params or the environment, never empty."""

from __future__ import annotations

import os


def resolve_api_key(value: str | None, env: str, provider: str, *, required: bool = True) -> str:
    """The key given in the pipeline file, else ``$env``; an empty one names the variable.

    Args:
        value: The ``api_key`` param (the file usually writes ``${ENV}``).
        env: The environment variable holding the key, e.g. ``DEEPGRAM_API_KEY``.
        provider: The provider name for the message.
        required: False for endpoints that need no key (a local OpenAI-compatible server).

    Raises:
        ValueError: The key is empty and required (pydantic turns it into a ``ConfigError``).
    """
    key = (value or "").strip() or os.environ.get(env, "").strip()
    if not key and required:
        raise ValueError(
            f"{provider} needs an API key: export {env}=... "
            f"(the pipeline file reads it as api_key: ${{{env}}})"
        )
    return key
