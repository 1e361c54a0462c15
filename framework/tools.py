"""Persona tools: functions the LLM may call, declared in YAML, run as Python or HTTP.

A persona declares them under ``tools:``::

    tools:
      - name: get_opening_hours
        description: Opening hours of a venue.
        parameters:                       # JSON-schema properties
          venue: {type: string, description: Name of the venue}
        required: [venue]
        python: mypackage.venues:opening_hours      # module:function, sync or async, **arguments
      - name: book_table
        description: Book a table.
        parameters: {people: {type: integer}}
        http: {url: "https://api.example.com/book", method: POST, timeout_s: 5}

A Python tool is called with the model's arguments as keyword arguments; an HTTP tool receives
them as the JSON body (``POST``/``PUT``) or query (``GET``) and its JSON (or text) reply is the
result. The result goes back to the model, which then answers. A tool that fails returns
``{"error": "..."}`` to the model instead of ending the turn.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import httpx
from loguru import logger
from pipecat.adapters.llm.schemas.function_schema import FunctionSchema
from pipecat.adapters.llm.schemas.tools_schema import ToolsSchema
from pydantic import BaseModel, ConfigDict, Field, model_validator


class HttpTool(BaseModel):
    """An HTTP endpoint that serves a tool."""

    model_config = ConfigDict(extra="forbid")

    url: str
    method: Literal["GET", "POST", "PUT"] = "POST"
    headers: dict[str, str] = Field(default_factory=dict)
    timeout_s: float = Field(default=10.0, gt=0)


class ToolSpec(BaseModel):
    """One tool as the persona declares it (exactly one of ``python`` / ``http``)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$")
    description: str
    parameters: dict[str, Any] = Field(default_factory=dict)
    required: list[str] = Field(default_factory=list)
    python: str | None = Field(default=None, pattern=r"^[\w.]+:[\w.]+$")
    http: HttpTool | None = None

    @model_validator(mode="after")
    def _one_target(self) -> ToolSpec:
        if (self.python is None) == (self.http is None):
            raise ValueError(f"tool {self.name!r} needs exactly one of 'python' or 'http'")
        missing = [r for r in self.required if r not in self.parameters]
        if missing:
            raise ValueError(f"tool {self.name!r} requires undeclared parameters {missing}")
        return self

    @staticmethod
    def schema_of(
        specs: list[ToolSpec], handlers: dict[str, Callable] | None = None
    ) -> ToolsSchema:
        """The pipecat ``ToolsSchema`` advertising ``specs``."""
        handlers = handlers or {}
        return ToolsSchema(
            standard_tools=[
                FunctionSchema(
                    name=s.name,
                    description=s.description,
                    properties=s.parameters,
                    required=s.required,
                    handler=handlers.get(s.name),
                )
                for s in specs
            ]
        )


def persona_tools(persona: Any) -> list[ToolSpec]:
    """The validated tools of a persona (empty when it declares none)."""
    raw = getattr(persona, "tools", None) or []
    return [t if isinstance(t, ToolSpec) else ToolSpec.model_validate(t) for t in raw]


def resolve_python(target: str, base_dir: Path | None = None) -> Callable[..., Any]:
    """Import ``module:function``; the persona folder is searched first for the module."""
    module_name, _, attr = target.partition(":")
    import sys

    added = False
    if base_dir is not None and str(base_dir) not in sys.path:
        sys.path.insert(0, str(base_dir))
        added = True
    try:
        obj: Any = importlib.import_module(module_name)
    finally:
        if added:
            sys.path.remove(str(base_dir))
    for part in attr.split("."):
        obj = getattr(obj, part)
    if not callable(obj):
        raise TypeError(f"{target} is not callable")
    return obj


async def call_tool(spec: ToolSpec, arguments: dict[str, Any], fn: Callable | None = None) -> Any:
    """Run one tool and return its result (an ``{"error": ...}`` dict when it fails)."""
    try:
        if spec.http is not None:
            http = spec.http
            async with httpx.AsyncClient(timeout=http.timeout_s) as client:
                if http.method == "GET":
                    reply = await client.get(http.url, params=arguments, headers=http.headers)
                else:
                    reply = await client.request(
                        http.method, http.url, json=arguments, headers=http.headers
                    )
            reply.raise_for_status()
            try:
                return reply.json()
            except ValueError:
                return reply.text
        result = fn(**arguments)
        if inspect.isawaitable(result):
            result = await result
        return result
    except Exception as exc:
        logger.warning(f"tool {spec.name} failed: {exc!r}")
        return {"error": f"{type(exc).__name__}: {exc}"}


def install_tools(llm: Any, specs: list[ToolSpec], *, base_dir: Path | None = None) -> ToolsSchema:
    """Register a handler per tool on a pipecat ``LLMService``; return the schema to advertise.

    Raises:
        ImportError, AttributeError, TypeError: A ``python:`` target cannot be resolved (fails at
            build time, before the session starts).
    """
    handlers: dict[str, Callable] = {}
    for spec in specs:
        fn = resolve_python(spec.python, base_dir) if spec.python else None

        async def handler(params, spec=spec, fn=fn):
            result = await call_tool(spec, dict(params.arguments), fn)
            await params.result_callback(result)

        handlers[spec.name] = handler
        llm.register_function(spec.name, handler)
    return ToolSpec.schema_of(specs, handlers)
