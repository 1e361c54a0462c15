"""Property-based tests of pipeline loading: whatever the file or ``--set`` says, the answer is a
loaded pipeline or a ``ConfigError`` naming the file (or ``--set``) and the field, never a raw
traceback.

Examples come from the bundled offline pipeline, mutated (values replaced with random data, keys
removed or added), from random text and bytes, and from ``--set PATH=VALUE`` strings over the
pipeline's real fields with values that are random text or YAML that PyYAML cannot build.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.background

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from presence.framework.cli import app  # noqa: E402
from presence.framework.config import PIPELINES_DIR, load_pipeline  # noqa: E402
from presence.framework.errors import ConfigError  # noqa: E402

LOCAL = PIPELINES_DIR / "local.yaml"
PERSONA = PIPELINES_DIR / "personas" / "guide" / "persona.yaml"
BASE = {**yaml.safe_load(LOCAL.read_text()), "persona": str(PERSONA)}

# problems with a whole file or a whole ``--set`` string have no field to name
WHOLE = (
    "malformed YAML",
    "expected a mapping",
    "not UTF-8",
    "YAML ",
    "a YAML alias",
    "cannot read override",
)

# YAML that parses to something odd, or that PyYAML refuses while building a value
TRICKY_YAML = [
    "2026-02-30",
    "2026-13-01T10:00:00Z",
    "!!int x",
    "!!float nope",
    "!!timestamp x",
    "!!binary x",
    "!!set {a, b}",
    "!!python/name:os.system",
    "&x [*x]",
    "&y {a: *y}",
    "[" * 300,
    "{a: 1",
    "~",
    "",
    ".nan",
    "-.inf",
    "1e999",
    "0x1F",
    "yes",
    "off",
    "[/red]",
    "[bold]x[/bold]",
    "'unterminated",
    "a: b: c",
    "${NOT_SET_ANYWHERE_PRESENCE}",
    "${X:-fallback}",
    "\x00",
    "\udcff",
]

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=12)
    | st.sampled_from(TRICKY_YAML)
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


def _paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _paths(value, (*prefix, i))


FIELD_PATHS = [p for p in _paths(BASE) if p] + [
    ("stages", "llm", "fallback"),
    ("stages", "tts", "recover_after_s"),
    ("insert",),
    ("insert", 0),
    ("transport", "kind"),
]


@st.composite
def mutated_documents(draw):
    """The offline pipeline with one to three random edits."""
    data = copy.deepcopy(BASE)
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(FIELD_PATHS))
        node = data
        for key in path[:-1]:
            if isinstance(node, dict) and key in node:
                node = node[key]
            else:
                break
        else:
            edit = draw(st.sampled_from(["replace", "remove", "add"]))
            if not isinstance(node, dict):
                continue
            if edit == "replace":
                node[path[-1]] = draw(json_values)
            elif edit == "remove":
                node.pop(path[-1], None)
            else:
                node[draw(st.text(max_size=8))] = draw(json_values)
    return data


def assert_names_where(exc: ConfigError, *sources: str) -> None:
    """The error names where the problem is: its source, and the field unless the file is."""
    assert exc.source in sources, exc
    assert str(exc).startswith(exc.source), exc
    if not exc.reason.startswith(WHOLE):
        assert exc.field is not None, exc
        assert exc.field in str(exc), exc
    assert "Traceback" not in str(exc)


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("pipelines")


@settings(max_examples=250)
@given(document=mutated_documents())
def test_a_mutated_pipeline_file_loads_or_names_file_and_field(folder, document):
    path = folder / "mutated.yaml"
    path.write_text(yaml.safe_dump(document, allow_unicode=True))
    try:
        load_pipeline(path)
    except ConfigError as exc:
        assert_names_where(exc, str(path), str(PERSONA))


@settings(max_examples=150)
@given(content=st.text(max_size=80) | st.sampled_from(TRICKY_YAML) | st.binary(max_size=40))
def test_any_file_content_loads_or_is_refused_with_the_file_named(folder, content):
    path = folder / "random.yaml"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8", errors="surrogatepass")
    try:
        load_pipeline(path)
    except ConfigError as exc:
        assert_names_where(exc, str(path), str(PERSONA))


set_paths = st.sampled_from(FIELD_PATHS).map(lambda p: ".".join(str(k) for k in p)) | st.text(
    max_size=20
)
set_values = (
    st.sampled_from(TRICKY_YAML)
    | st.text(max_size=20)
    | json_values.map(lambda v: json.dumps(v, allow_nan=True))
)


@settings(max_examples=300)
@given(path=set_paths, value=set_values, sep=st.sampled_from(["=", "=", "", " = "]))
def test_any_set_override_loads_or_names_the_field(path, value, sep):
    override = f"{path}{sep}{value}"
    try:
        load_pipeline(LOCAL, [override])
    except ConfigError as exc:
        assert_names_where(exc, str(LOCAL), "--set", str(PERSONA))


@settings(max_examples=60)
@given(path=set_paths, value=set_values)
def test_the_cli_prints_one_error_line_for_any_override(path, value):
    result = CliRunner().invoke(app, ["validate", str(LOCAL), "--set", f"{path}={value}"])
    # typer exits through SystemExit; anything else escaped as a traceback
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert result.exit_code in (0, 2), result.output
    assert "Traceback" not in result.output
    if result.exit_code == 2:
        assert result.output.startswith("error: "), result.output
