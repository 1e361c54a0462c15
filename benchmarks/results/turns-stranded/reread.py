"""Re-read every transcript the benchmark results hold with two versions of the turn syntax rules.

Usage (from the repository root)::

    python benchmarks/results/turns-stranded/reread.py 9ee3938

Loads ``processors/turns/syntax.py`` as it was at the given revision and as it is now, applies
``unfinished()`` of each to every distinct transcript in ``benchmarks/results`` (the pause and end
points of ``bench turns`` results, the whole heard question of ``bench conversation`` results),
and prints each transcript whose verdict differs, then the counts.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from presence.processors.turns.syntax import unfinished

try:
    from presence.processors.turns.intent import sets_context
except ImportError:  # before the intent module was split out
    from presence.processors.turns.syntax import sets_context

RESULTS = Path("benchmarks/results")


def _load(revision: str, file: str, name: str, replace: tuple[str, str] | None = None):
    source = subprocess.run(
        ["git", "show", f"{revision}:processors/turns/{file}"],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    if replace:
        source = source.replace(*replace)
    path = Path(tempfile.mkdtemp()) / f"{name}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def old_unfinished(revision: str):
    module = _load(revision, "syntax.py", "old_syntax")
    if hasattr(module, "sets_context"):
        return _verdict(module.unfinished, module.sets_context)
    intent = _load(revision, "intent.py", "old_intent",
                   ("presence.processors.turns.syntax", "old_syntax"))  # fmt: skip
    return _verdict(module.unfinished, intent.sets_context)


def _verdict(unfinished, sets_context):
    """The floor's reason to hold from the text alone: unfinished, else context first."""

    def verdict(text: str) -> str | None:
        return unfinished(text) or ("context first" if sets_context(text) else None)

    return verdict


def transcripts():
    for path in sorted(RESULTS.rglob("*.json")):
        data = json.loads(path.read_text())
        if not isinstance(data, dict):
            continue
        for row in data.get("rows") or []:
            for point in row.get("points", []):
                yield point["final"], point["heard"]
        for question in data.get("questions") or []:
            if isinstance(question, dict) and question.get("heard"):
                yield True, question["heard"]


def main() -> None:
    before = old_unfinished(sys.argv[1])
    seen: set[tuple[bool, str]] = set()
    changed = {True: 0, False: 0}
    for final, text in transcripts():
        if (final, text) in seen:
            continue
        seen.add((final, text))
        a, b = before(text), _verdict(unfinished, sets_context)(text)
        if a != b:
            changed[final] += 1
            print(f"{'end  ' if final else 'pause'} {a!r} -> {b!r} | {text}")
    print(f"{len(seen)} distinct transcripts; verdict changed at {changed[True]} question ends "
          f"and {changed[False]} pauses")  # fmt: skip


if __name__ == "__main__":
    main()
