"""``/llms.txt``: the API described for agents, generated from the app's OpenAPI description.

Written from ``app.openapi()`` on each app (cached), so it cannot drift from the routes: the
title and description, the auth header from the security scheme, every operation with its
summary, query parameters, request fields (required ones marked) and answers, then links to the
full description. Format: the llms.txt proposal (https://llmstxt.org/): a title, a quoted
summary, then markdown sections.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

_METHODS = ("get", "post", "put", "patch", "delete")


def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if ref:
        name = ref.rsplit("/", 1)[-1]
        return spec.get("components", {}).get("schemas", {}).get(name, {})
    return schema


def _type(spec: dict[str, Any], schema: dict[str, Any]) -> str:
    schema = _resolve(spec, schema) if "$ref" in schema else schema
    if "$ref" in schema:
        return schema["$ref"].rsplit("/", 1)[-1]
    if "enum" in schema:
        return " | ".join(repr(v) if isinstance(v, str) else str(v) for v in schema["enum"])
    if "const" in schema:
        return repr(schema["const"])
    for key in ("anyOf", "oneOf"):
        if key in schema:
            parts = [_type(spec, s) for s in schema[key] if s.get("type") != "null"]
            return " | ".join(dict.fromkeys(parts)) or "null"
    if schema.get("type") == "array":
        return f"list[{_type(spec, schema.get('items', {}))}]"
    if "title" in schema and schema.get("type") == "object" and "properties" in schema:
        return schema["title"]
    return str(schema.get("type", "any"))


def _fields(spec: dict[str, Any], schema: dict[str, Any]) -> list[str]:
    schema = _resolve(spec, schema)
    if schema.get("type") == "array":
        item = _resolve(spec, schema.get("items", {}))
        return [f"a list of {item.get('title', 'items')}: " + ", ".join(_fields(spec, item))]
    required = set(schema.get("required", []))
    out = []
    for name, prop in (schema.get("properties") or {}).items():
        mark = " (required)" if name in required else ""
        out.append(f"`{name}`{mark}: {_type(spec, prop)}")
    return out


def _refs(spec: dict[str, Any], schema: Any, seen: dict[str, None]) -> None:
    """Collect the component schemas ``schema`` refers to, depth first, into ``seen``."""
    if isinstance(schema, dict):
        ref = schema.get("$ref")
        if ref:
            name = ref.rsplit("/", 1)[-1]
            if name not in seen:
                seen[name] = None
                _refs(spec, _resolve(spec, schema), seen)
            return
        for value in schema.values():
            _refs(spec, value, seen)
    elif isinstance(schema, list):
        for value in schema:
            _refs(spec, value, seen)


def _answer(spec: dict[str, Any], op: dict[str, Any]) -> str:
    parts = []
    for code, answer in sorted(op.get("responses", {}).items()):
        schema = (answer.get("content") or {}).get("application/json", {}).get("schema", {})
        name = _type(spec, schema) if schema.get("$ref") else ""
        parts.append(f"{code} {name}".strip())
    return ", ".join(parts)


def _body_lines(spec: dict[str, Any], body: dict[str, Any]) -> list[str]:
    lines = []
    for media, content in (body.get("content") or {}).items():
        schema = content.get("schema", {})
        options = schema.get("oneOf") or schema.get("anyOf") or [schema]
        for option in options:
            fields = _fields(spec, option)
            if fields:
                lines.append(f"  - body ({media}): " + "; ".join(fields))
    return lines


def render(app: FastAPI, base_url: str = "") -> str:
    """The llms.txt text for ``app`` (links absolute when ``base_url`` is given)."""
    spec = app.openapi()
    info = spec.get("info", {})
    schemes = spec.get("components", {}).get("securitySchemes", {})
    lines = [f"# {info.get('title', 'API')}", ""]
    summary = " ".join(str(info.get("description", "")).split())
    lines += [f"> {summary}", ""]
    lines += ["## Authentication", ""]
    for scheme in schemes.values():
        if scheme.get("type") == "apiKey":
            lines.append(
                f"- Send the `{scheme['name']}` {scheme.get('in', 'header')} on every operation "
                f"marked (auth): {scheme.get('description', '')}".rstrip()
            )
    lines += [
        "- Errors: 401 without a valid key, 403 for another key's resource, 404 for an "
        "unknown id, 422 naming the field of a malformed request (`detail[].loc`).",
        "",
    ]
    by_tag: dict[str, list[str]] = {}
    nested: dict[str, None] = {}
    for path, item in spec.get("paths", {}).items():
        for method in _METHODS:
            op = item.get(method)
            if op is None:
                continue
            auth = " (auth)" if op.get("security") else ""
            entry = [f"- `{method.upper()} {path}`{auth}: {op.get('summary', '')}"]
            params = [
                f"`{p['name']}`: {_type(spec, p.get('schema', {}))}"
                for p in op.get("parameters", [])
                if p.get("in") == "query"
            ]
            if params:
                entry.append("  - query: " + "; ".join(params))
            entry += _body_lines(spec, op.get("requestBody") or {})
            entry.append(f"  - answers: {_answer(spec, op)}")
            _refs(spec, op.get("requestBody") or {}, nested)
            tag = (op.get("tags") or ["other"])[0]
            by_tag.setdefault(tag, []).extend(entry)
    for tag, entries in by_tag.items():
        lines += [f"## {tag}", "", *entries, ""]
    lines += ["## Request objects", ""]
    for name in nested:
        schema = spec["components"]["schemas"][name]
        doc = " ".join(str(schema.get("description", "")).split()[:40])
        lines.append(f"- `{name}`: {doc}".rstrip())
        lines.append("  - fields: " + "; ".join(_fields(spec, schema)))
    lines.append("")
    lines += [
        "## Optional",
        "",
        f"- [OpenAPI description]({base_url}/openapi.json): every schema in full",
        f"- [Interactive docs]({base_url}/docs): try the API in a browser",
        "",
    ]
    return "\n".join(lines)
