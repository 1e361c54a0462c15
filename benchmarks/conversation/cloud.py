"""Cloud pipelines against the local wire-protocol fakes in ``tests/fakes`` (needs the repository).

Per question, three servers start on 127.0.0.1 and the pipeline file is loaded again with
``--set`` overrides pointing ``stages.stt.base_url``, ``stages.llm.base_url`` and
``stages.tts.base_url`` at them (as ``tests/e2e/test_cloud_pipelines.py`` does):

* **Deepgram** (``FakeSpokenDeepgram``): hears bursts of sound and names them with the question's
  words in order, so its transcript is the reference cut or shifted wherever its burst counting
  does not match real words (continuous speech merges words). Word error here measures the fake;
* **Anthropic** (``KnowledgeAnthropic``): answers each request like the knowledge-base responder
  would, from the last user message it receives, with no delay. "Answered right" therefore tests
  the plumbing from the fake transcript to the spoken reply, not a model;
* **ElevenLabs** (``FakeElevenLabs``): a constant sample per character, 20 ms per character.

What this run measures for real: turn taking (VAD, smart-turn), splits, talk-over and the
latency of the whole cloud pipeline when every provider answers instantly over its real protocol.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
from collections.abc import AsyncIterator
from pathlib import Path

from presence.benchmarks.conversation.questions import RenderedQuestion
from presence.framework.config import LoadedPipeline
from presence.framework.errors import ConfigError

TESTS = Path(__file__).resolve().parents[2] / "tests"
KEYS = ("DEEPGRAM_API_KEY", "ANTHROPIC_API_KEY", "ELEVENLABS_API_KEY")


def _import_fakes():
    """The fake servers from ``tests/fakes`` (put on ``sys.path``)."""
    if not (TESTS / "fakes").is_dir():
        raise ConfigError(f"--fakes needs the repository's tests/fakes folder ({TESTS} not found)")
    if str(TESTS) not in sys.path:
        sys.path.insert(0, str(TESTS))
    from fakes.anthropic import FakeAnthropic, Reply
    from fakes.deepgram_speech import FakeSpokenDeepgram
    from fakes.elevenlabs import FakeElevenLabs

    return FakeAnthropic, Reply, FakeSpokenDeepgram, FakeElevenLabs


def _last_user_text(body: dict) -> str:
    for message in reversed(body.get("messages") or []):
        if message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, list):
            content = " ".join(p.get("text", "") for p in content if isinstance(p, dict))
        return content if isinstance(content, str) else ""
    return ""


def knowledge_anthropic(loaded: LoadedPipeline):
    """A ``FakeAnthropic`` whose every reply is the knowledge-base responder's answer."""
    fake_anthropic, reply_cls, _, _ = _import_fakes()
    from presence.processors.llm.engines.responder import Responder
    from presence.processors.llm.engines.retrieval import KnowledgeIndex

    persona = loaded.persona
    index = KnowledgeIndex.from_paths([persona.knowledge_base]) if persona.knowledge_base else None
    responder = Responder(index, fallback_answer=persona.fallback_answer, name=persona.name) if index else None  # fmt: skip

    class KnowledgeAnthropic(fake_anthropic):
        def next_reply(self):
            question = _last_user_text(self.requests[-1]) if self.requests else ""
            answer = responder.answer(question) if responder else None
            sentences = answer.sentences if answer and answer.sentences else ["OK."]
            return reply_cls(text=[f"{s} " for s in sentences])

    return KnowledgeAnthropic()


def use_dummy_keys() -> None:
    """Set the cloud providers' API key variables to dummy values where unset (fakes only)."""
    for key in KEYS:
        os.environ.setdefault(key, f"fake-{key.lower()}")


@contextlib.asynccontextmanager
async def fakes_for(rq: RenderedQuestion, loaded: LoadedPipeline) -> AsyncIterator[list[str]]:
    """Start the three fakes for one question; yield the overrides that point the pipeline at them.

    Dummy API keys are set in the environment for the variables the cloud pipeline requires
    (only where unset).
    """
    _, _, spoken_deepgram, fake_elevenlabs = _import_fakes()
    use_dummy_keys()
    words = re.findall(r"[a-z0-9']+", rq.question.reference.lower()) or ["?"]
    async with (
        spoken_deepgram(words) as deepgram,
        knowledge_anthropic(loaded) as llm,
        fake_elevenlabs() as tts,
    ):
        yield [
            f"stages.stt.base_url={deepgram.base_url}",
            f"stages.llm.base_url={llm.base_url}",
            f"stages.tts.base_url={tts.url}",
        ]
