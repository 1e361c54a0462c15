"""Answered right from the words as written against from the words as heard, per result file.

Usage (from the repository root)::

    python benchmarks/results/responder/as_written.py benchmarks/results/conversation-local-unseen16.json

For each question of a ``presence bench conversation`` JSON, the guide's ``knowledge-base``
responder (built as the provider builds it) answers the question's ``reference`` (what the voice
was given to say) and its ``heard`` (Whisper's transcript, all turns joined). Right: the answer's
passage is one the question expects. It separates what mishearing costs from what the responder
misses on its own. The benchmark's own ``answered_right`` also judges the spoken reply, so its
count can differ from the "heard" column here.
"""

import json
import sys
from pathlib import Path

from presence.framework.persona import load_persona
from presence.processors.llm.engines.responder import Responder
from presence.processors.llm.engines.retrieval import KnowledgeIndex
from presence.processors.llm.engines.semantic import load_semantic

GUIDE = Path("pipelines/personas/guide/persona.yaml")


def responder() -> Responder:
    persona = load_persona(GUIDE)
    index = KnowledgeIndex.from_paths([persona.knowledge_base])
    return Responder(index, fallback_answer=persona.fallback_answer, name=persona.name,
                     semantic=load_semantic(index.passages))  # fmt: skip


def passage(r: Responder, text: str) -> str:
    answer = r.answer(text)
    if answer.kind not in ("knowledge", "guess"):
        return answer.kind
    top = answer.passages[0].passage
    return f"{top.source}#{top.title}"


def main(paths: list[str]) -> None:
    r = responder()
    for path in paths:
        questions = json.loads(Path(path).read_text())["questions"]
        written = heard = 0
        for q in questions:
            got_w, got_h = passage(r, q["reference"]), passage(r, q["heard"] or "")
            written += got_w in q["expect"]
            heard += got_h in q["expect"]
            if got_w not in q["expect"]:
                print(f"  {q['id']} as written -> {got_w}  ({q['reference']})")
        print(f"{path}: as written {written}/{len(questions)}, as heard {heard}/{len(questions)}")


if __name__ == "__main__":
    main(sys.argv[1:])
