"""Answer every spoken transcript the benchmark results hold, and 60 off-topic questions, at
several guess thresholds of the knowledge-base responder.

Usage (from the repository root)::

    python benchmarks/results/kb-guess/sweep.py 0.25 0.22 0.2 [--skip unseen8]

The transcripts are the whole heard questions of ``bench conversation`` results and the last
transcript of each ``bench turns`` row, one per distinct (set, question, text), judged as ``bench
conversation`` judges replies (``judge_answer``) against the question's ``expect``. Prints, per
threshold, the answers right per set and the off-topic questions that got an answer or a guess
instead of the fallback. ``--skip NAME`` leaves out the sets whose file name contains NAME, ``--only NAME`` keeps only
those.
"""

import json
import sys
from collections import defaultdict
from pathlib import Path

from pipecat.processors.aggregators.llm_context import LLMContext

from presence.benchmarks.conversation.metrics import judge_answer, passage_refs
from presence.benchmarks.conversation.questions import load_questions
from presence.framework.builder import build_stage, make_context
from presence.framework.config import load_pipeline

expects = {}
for f in Path("benchmarks/conversation").glob("questions*.yaml"):
    for q in load_questions(f):
        expects[(f.name, q.id)] = q.expect
SKIP = [sys.argv[i + 1] for i, a in enumerate(sys.argv) if a == "--skip"]
ONLY = [sys.argv[i + 1] for i, a in enumerate(sys.argv) if a == "--only"]
items = set()
for path in sorted(Path("benchmarks/results").rglob("*.json")):
    try:
        d = json.loads(path.read_text())
    except Exception:
        continue
    if not isinstance(d, dict):
        continue
    qf = d.get("questions_file") or (d.get("question_set") or {}).get("file")
    if not qf:
        continue
    name = Path(qf).name
    for qid, heard in [(r["id"], r["heard"]) for r in d.get("rows") or []] + [
        (q["id"], q["heard"])
        for q in d.get("questions") or []
        if isinstance(q, dict) and q.get("heard")
    ]:
        if (
            (name, qid) in expects
            and not any(k in name for k in SKIP)
            and all(k in name for k in ONLY)
        ):
            items.add((name, qid, heard))
items = sorted(items)
OFF = [
    "What's the weather like in Paris today?",
    "Who won the football match last night?",
    "Can you recommend a good pizza place near me?",
    "How tall is Mount Everest?",
    "What's the capital of Australia?",
    "Tell me a joke about cats.",
    "How do I bake sourdough bread?",
    "What time does the bank open on Saturdays?",
    "Can you book me a flight to Madrid?",
    "What's your favourite colour?",
    "How many calories are in a banana?",
    "Who is the president of France?",
    "What's the best way to learn the guitar?",
    "Can you help me with my tax return?",
    "Is it going to rain tomorrow?",
    "What's a good name for a puppy?",
    "How far away is the moon?",
    "Which movie should I watch tonight?",
    "How do I fix a flat bicycle tyre?",
    "What's the stock price of Apple?",
    "Can you recommend a good webcam for video calls?",
    "How do I reset my wifi router?",
    "What's a good microphone for recording podcasts?",
    "My laptop battery drains fast, what should I do?",
    "How do I take a screenshot on a Mac?",
    "What's the difference between a cold and the flu?",
    "Can you translate hello into Japanese?",
    "How long should I boil an egg?",
    "What's the best programming language for beginners?",
    "How do I change my Zoom background?",
    "Why is my phone so slow lately?",
    "What year did the Berlin Wall fall?",
    "How do I make my resume stand out?",
    "Can you write me a poem about autumn?",
    "What's the speed of light?",
    "How do I unsubscribe from a newsletter?",
    "Where can I buy cheap concert tickets?",
    "How do I keep my houseplants alive?",
    "What should I cook for dinner tonight?",
    "How many players are on a soccer team?",
    "How do I get better sleep?",
    "Can you explain how vaccines work?",
    "How do I set up a new printer?",
    "What's the best way to save money each month?",
    "Which streaming service has the most films?",
    "How do I clean a cast iron pan?",
    "What's a good exercise for back pain?",
    "Can you tell me the news today?",
    "How do I learn to swim as an adult?",
    "Which laptop should I buy for gaming?",
    "How do I record my screen on Windows?",
    "What's the tallest building in the world?",
    "How do I speak more confidently in meetings?",
    "Can you play some music for me?",
    "Do you know any good hiking trails?",
    "How do I convert Celsius to Fahrenheit?",
]
for g in [float(x) for x in sys.argv[1:] if x.replace(".", "").isdigit()]:
    loaded = load_pipeline(Path("pipelines/local.yaml"), [f"stages.llm.guess_score={g}"])
    llm = build_stage(loaded.stages["llm"], make_context(loaded))
    refs = passage_refs(llm.responder.index)
    per = defaultdict(lambda: [0, 0])
    for name, qid, heard in items:
        reply = llm.respond(LLMContext([{"role": "user", "content": heard}])).text
        per[name][0] += judge_answer(reply, expects[(name, qid)], refs)["right"]
        per[name][1] += 1
    off_answered = []
    for q in OFF:
        a = llm.respond(LLMContext([{"role": "user", "content": q}]))
        if not a.text.startswith("Sorry"):
            off_answered.append((q, a.text[:60]))
    tot = sum(a for a, n in per.values()), sum(n for a, n in per.values())
    print(
        g,
        "right",
        tot,
        round(tot[0] / tot[1], 3),
        " ".join(f"{k[10:-5] or 'main'}:{a}/{n}" for k, (a, n) in sorted(per.items())),
        "| off-topic answered",
        len(off_answered),
        off_answered,
        flush=True,
    )
