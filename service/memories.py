"""Memories: what a user shared in one conversation, remembered in the next (Tavus's ``memory_stores``).

A conversation created with ``memory_stores: ["anna_p123"]`` starts with that store's memories in
its context, and when it ends, what the user said is read for new ones::

    conversation ends ─▶ remember(): the user's turns of the stored transcript
        ├─ the conversation's LLM is a cloud one (openai/anthropic) ─▶ it extracts them (JSON)
        └─ otherwise, or when that fails ─▶ extract_offline(): rules for "my name is ...",
           "I like/love/prefer/hate ...", "I work at/as ...", "I live in ...", "I'm from ...",
           "my favourite X is ...", "I have a dog named ...", "I'm allergic to ...",
           "remember that ..."
    ─▶ each memory is added to every store of the conversation (one that says the same is
       skipped; a new name replaces the old one) ─▶ the next conversation with that store:
       "What you remember about the user from earlier conversations: ..." in its context, and
       "Your name is Anna." passages in its knowledge base (so the offline responder can say it)

Memories are plain sentences about "the user" (``The user's name is Anna.``), one fact each.
``GET /v2/memories/{store}`` lists them; ``DELETE`` forgets one or the whole store.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from loguru import logger
from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from presence.service.db import ConversationRow, MemoryRow, new_id, utcnow

MAX_CONTEXT_MEMORIES = 50  # the newest ones go into a conversation's context
KINDS = ("name", "preference", "work", "location", "family", "fact")
LLM_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Memory:
    """One thing the user shared."""

    kind: str
    content: str


_END = r"(?=\s*(?:[.!?;,]|\band\b|\bbut\b|\bbecause\b|\bso\b|$))"
_PHRASE = r"([\w'’ -]{2,60}?)"
_NOT_NAMES = frozenset(
    "sorry fine good okay ok here back ready sure not just really very so trying looking going "
    "calling asking wondering interested happy glad new done afraid tired from in at a an the "
    "also still always never".split()
)
_NOT_HAVE = frozenset("question questions problem problems issue issues idea doubt".split())
_RULES: list[tuple[str, re.Pattern[str], str]] = [
    (
        "name",
        re.compile(r"\b(?i:my name is|my name's|call me)\s+([A-Za-z][\w'-]*(?:\s+[A-Z][\w'-]*)?)"),
        "The user's name is {}.",
    ),  # fmt: skip
    (
        "name",
        re.compile(
            r"\b(?:I am|I'm|I’m|this is)\s+([A-Z][a-z'-]+)" + r"(?=\s*(?:[.!?,]|$|\band\b))"
        ),
        "The user's name is {}.",
    ),  # fmt: skip
    (
        "preference",
        re.compile(
            r"\bI (?:really |also |absolutely )?(like|love|enjoy|prefer|adore|hate|dislike|can't stand|don't like)\s+"
            + _PHRASE
            + _END,
            re.I,
        ),
        "The user {verb} {}.",
    ),  # fmt: skip
    (
        "preference",
        re.compile(r"\bmy (?:favou?rite)\s+([\w ]{2,30}?)\s+is\s+" + _PHRASE + _END, re.I),
        "The user's favourite {} is {}.",
    ),  # fmt: skip
    (
        "work",
        re.compile(r"\bI work (at|for|as|in)\s+" + _PHRASE + _END, re.I),
        "The user works {} {}.",
    ),  # fmt: skip
    (
        "work",
        re.compile(r"\bI(?:'m| am) (?:a|an) ([\w -]{2,40}?) by profession" + _END, re.I),
        "The user is a {} by profession.",
    ),  # fmt: skip
    ("location", re.compile(r"\bI live in\s+" + _PHRASE + _END, re.I), "The user lives in {}."),
    (
        "location",
        re.compile(r"\bI(?:'m| am) from\s+" + _PHRASE + _END, re.I),
        "The user is from {}.",
    ),  # fmt: skip
    (
        "family",
        re.compile(r"\bI have (?:a|an|two|three|four|\d+)\s+" + _PHRASE + _END, re.I),
        "The user has {}.",
    ),  # fmt: skip
    (
        "fact",
        re.compile(r"\bI(?:'m| am) allergic to\s+" + _PHRASE + _END, re.I),
        "The user is allergic to {}.",
    ),  # fmt: skip
    (
        "fact",
        re.compile(r"\bmy birthday is\s+" + _PHRASE + _END, re.I),
        "The user's birthday is {}.",
    ),  # fmt: skip
    ("fact", re.compile(r"\bremember that\s+(.{3,120}?)(?=[.!?]|$)", re.I), "{}"),
]
_VERBS = {"like": "likes", "love": "loves", "enjoy": "enjoys", "prefer": "prefers",
          "adore": "adores", "hate": "hates", "dislike": "dislikes",
          "can't stand": "can't stand", "don't like": "doesn't like"}  # fmt: skip


def _clean(phrase: str) -> str:
    return " ".join(phrase.replace("’", "'").split()).strip(" '-")


def _first_person_to_third(text: str) -> str:
    text = re.sub(r"\bI am\b|\bI'm\b", "the user is", text)
    text = re.sub(r"\bI\b", "the user", text)
    text = re.sub(r"\bmy\b", "the user's", text, flags=re.I)
    text = re.sub(r"\bme\b", "the user", text, flags=re.I)
    return text[:1].upper() + text[1:] + ("" if text.endswith((".", "!", "?")) else ".")


def extract_offline(user_turns: list[str]) -> list[Memory]:
    """Memories from what the user said, by rules (see the module docstring); no duplicates."""
    found: dict[str, Memory] = {}
    for turn in user_turns:
        for kind, pattern, template in _RULES:
            for match in pattern.finditer(turn):
                groups = [_clean(g) for g in match.groups()]
                if kind == "name":
                    name = groups[0]
                    if name.lower() in _NOT_NAMES or len(name) < 2:
                        continue
                    content = template.format(" ".join(w.capitalize() for w in name.split()))
                elif template.startswith("The user {verb}"):
                    verb, what = groups
                    content = template.format(what, verb=_VERBS[verb.lower()])
                elif kind == "family" and groups[0].split()[0].lower() in _NOT_HAVE:
                    continue
                elif kind == "family":
                    content = template.format(match.group(0)[len("I have ") :].strip())
                elif template == "{}":
                    content = _first_person_to_third(groups[0])
                else:
                    content = template.format(*groups)
                found.setdefault(content.lower(), Memory(kind, content))
    return list(found.values())


_SECOND_PERSON = {"is": "are", "was": "were", "has": "have", "does": "do", "doesn't": "don't"}


def second_person(memory: str) -> str:
    """A memory as said to the user (``The user's name is Anna.`` becomes ``Your name is Anna.``)."""
    text = re.sub(r"\bthe user's\b", "your", memory, flags=re.I)
    text = re.sub(
        r"\bthe user (is|was|has|does|doesn't)\b",
        lambda m: "you " + _SECOND_PERSON[m.group(1).lower()],
        text,
        flags=re.I,
    )
    text = re.sub(r"\bthe user (\w+?)s\b", r"you \1", text, flags=re.I)
    text = re.sub(r"\bthe user\b", "you", text, flags=re.I)
    return text[:1].upper() + text[1:]


_PROMPT = """You keep a memory of a user across conversations. From the conversation below, list \
what the USER shared about themselves that is worth remembering next time: their name, \
preferences, work, where they live, family, plans, constraints. Ignore what the assistant said \
and small talk. Write each memory as one short sentence about "the user" (e.g. "The user's name \
is Anna.", "The user prefers green tea."). Answer with JSON only: \
{"memories": [{"kind": "name|preference|work|location|family|fact", "content": "..."}]}; \
an empty list when there is nothing."""


def parse_llm_memories(text: str) -> list[Memory]:
    """The memories in an LLM's JSON answer (text around the JSON object is ignored).

    Raises:
        ValueError: No JSON object with a ``memories`` list.
    """
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end <= start:
        raise ValueError("the answer holds no JSON object")
    items = json.loads(text[start : end + 1]).get("memories")
    if not isinstance(items, list):
        raise ValueError("the answer has no 'memories' list")
    out = []
    for item in items:
        content = str((item or {}).get("content") or "").strip() if isinstance(item, dict) else ""
        kind = str(item.get("kind") or "fact") if isinstance(item, dict) else "fact"
        if content:
            out.append(Memory(kind if kind in KINDS else "fact", content[:500]))
    return out


async def extract_with_llm(transcript: list[dict[str, Any]], llm: dict[str, Any]) -> list[Memory]:
    """Memories extracted by the conversation's cloud LLM (``llm``: provider, model, base_url, api_key).

    Raises:
        Exception: The request failed or the answer is not the JSON asked for.
    """
    lines = "\n".join(f"{t['role']}: {t['content']}" for t in transcript if t.get("content"))
    messages = [{"role": "user", "content": f"{_PROMPT}\n\nConversation:\n{lines}"}]
    if llm["provider"] == "anthropic":
        from anthropic import AsyncAnthropic

        client = AsyncAnthropic(
            api_key=llm.get("api_key"), base_url=llm.get("base_url"), timeout=LLM_TIMEOUT_S
        )
        async with client.messages.stream(
            model=llm["model"], max_tokens=1024, messages=messages
        ) as stream:
            text = "".join([chunk async for chunk in stream.text_stream])
    else:
        from openai import AsyncOpenAI

        client = AsyncOpenAI(
            api_key=llm.get("api_key") or "not-needed",
            base_url=llm.get("base_url"),
            timeout=LLM_TIMEOUT_S,
            max_retries=1,
        )
        stream = await client.chat.completions.create(
            model=llm["model"], messages=messages, stream=True, max_tokens=1024
        )
        parts = [c.choices[0].delta.content or "" async for c in stream if c.choices]
        text = "".join(parts)
    return parse_llm_memories(text)


def conversation_llm(pipeline, overrides: list[str]) -> dict[str, Any] | None:
    """The conversation's cloud LLM settings, or ``None`` when it answers offline."""
    try:
        from presence.framework.config import load_pipeline

        stage = load_pipeline(pipeline, overrides).stages["llm"]
    except Exception as exc:  # a pipeline that no longer loads: extract offline
        logger.debug(f"memories: the conversation's LLM is unknown ({exc}); extracting offline")
        return None
    name = getattr(stage.provider, "name", "")
    if name not in ("openai", "anthropic"):
        return None
    p = stage.params
    return {"provider": name, "model": p.model, "base_url": p.base_url, "api_key": p.api_key}


def save_memories(
    db: Session, owner: str, stores: list[str], memories: list[Memory], conversation_id: str | None,
    source: str,
) -> int:  # fmt: skip
    """Add ``memories`` to each store (same content skipped; a new name replaces the old).

    Returns:
        How many rows were added.
    """
    added = 0
    for store in stores:
        existing = db.scalars(
            select(MemoryRow).where(MemoryRow.owner == owner, MemoryRow.memory_store == store)
        ).all()
        seen = {m.content.strip().lower() for m in existing}
        for memory in memories:
            if memory.content.strip().lower() in seen:
                continue
            if memory.kind == "name":
                for old in existing:
                    if old.kind == "name":
                        db.delete(old)
            seen.add(memory.content.strip().lower())
            db.add(
                MemoryRow(
                    id=new_id("m"), owner=owner, memory_store=store, kind=memory.kind,
                    content=memory.content, conversation_id=conversation_id, source=source,
                    created_at=utcnow(),
                )
            )  # fmt: skip
            added += 1
    return added


def store_memories(db: Session, owner: str, stores: list[str]) -> list[str]:
    """The newest ``MAX_CONTEXT_MEMORIES`` memories of ``stores``, oldest first, without repeats."""
    if not stores:
        return []
    rows = db.scalars(
        select(MemoryRow)
        .where(MemoryRow.owner == owner, MemoryRow.memory_store.in_(stores))
        .order_by(MemoryRow.created_at.desc())
        .limit(MAX_CONTEXT_MEMORIES)
    ).all()
    return list(dict.fromkeys(r.content for r in reversed(rows)))


def memory_context(memories: list[str]) -> str:
    """The text added to a conversation's context for its store's memories ("" for none)."""
    if not memories:
        return ""
    facts = "\n".join(f"- {m}" for m in memories)
    return (
        "What you remember about the user from earlier conversations (use it naturally; do not "
        f"recite it):\n{facts}"
    )


def forget(db: Session, owner: str, store: str, memory_id: str | None = None) -> int:
    """Delete one memory (``memory_id``) or every memory of a store; returns how many."""
    query = delete(MemoryRow).where(MemoryRow.owner == owner, MemoryRow.memory_store == store)
    if memory_id is not None:
        query = query.where(MemoryRow.id == memory_id)
    return db.execute(query).rowcount or 0


async def remember(sessions: sessionmaker, conversation_id: str, spec: Any) -> int:
    """Extract and store the memories of an ended conversation (see the module docstring).

    Never raises: a failure is logged and the conversation's record is unaffected.

    Returns:
        How many memories were added.
    """
    import asyncio

    def load() -> tuple[str, list[str], list[dict[str, Any]]] | None:
        with sessions() as db:
            row = db.get(ConversationRow, conversation_id)
            if row is None:
                return None
            stores = (row.tavus_fields or {}).get("memory_stores") or []
            return row.owner, list(stores), list(row.transcript or [])

    try:
        loaded = await asyncio.to_thread(load)
        if not loaded or not loaded[1]:
            return 0
        owner, stores, transcript = loaded
        user_turns = [str(t.get("content") or "") for t in transcript if t.get("role") == "user"]
        if not any(user_turns):
            return 0
        llm = await asyncio.to_thread(conversation_llm, spec.pipeline, spec.overrides)
        memories, source = None, "offline"
        if llm is not None:
            try:
                memories, source = await extract_with_llm(transcript, llm), "llm"
            except Exception as exc:
                logger.warning(
                    f"conversation {conversation_id}: the LLM did not extract memories ({exc}); "
                    "using the offline extractor"
                )
        if memories is None:
            memories = extract_offline(user_turns)

        def write() -> int:
            with sessions.begin() as db:
                return save_memories(db, owner, stores, memories, conversation_id, source)

        added = await asyncio.to_thread(write)
        logger.info(f"conversation {conversation_id}: {added} new memories ({source})")
        return added
    except Exception as exc:  # memories must never break the end of a conversation
        logger.warning(f"conversation {conversation_id}: memories not saved: {exc!r}")
        return 0
