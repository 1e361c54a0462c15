"""A small domain language model for pocketsphinx, built at start-up from a persona's documents.

The generic en-us model misrecognizes most of a narrow domain (about 65% WER on synthetic speech);
a trigram model over the persona's own phrases does far better (about 18%). The pipeline here:

1. ``domain_sentences`` turns markdown files into normalized word sequences: headings, sentences,
   list items and table cells, plus question templates ("what is X", "how do I X", "tell me about
   X") over headings and subjects, plus a few stock conversational phrases.
2. ``Lexicon`` maps words to CMUdict phones. A word missing from the dictionary gets a guessed
   pronunciation when it splits into dictionary words ("pipecat" = "pipe" + "cat") or is short
   enough to spell letter by letter ("stt"); other unknown words are dropped (the sentence is cut
   there, so no false n-gram joins the pieces).
3. ``build_arpa`` estimates an absolute-discount backoff trigram model and mixes a share of the
   generic model's most frequent words into the unigrams, so out-of-domain words can still be
   recognized (the generic share costs some in-domain accuracy; ``generic_weight=0`` turns it off).

Pure Python plus the ``pocketsphinx`` package's model files; no pipecat import.
"""

from __future__ import annotations

import functools
import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from pathlib import Path

STOCK_PHRASES = (
    "hello|hi there|hey|good morning|thank you|thanks|goodbye|bye|yes|no|okay|sure|please|sorry|"
    "wait|stop|never mind|who are you|what is your name|what can you do|how are you|"
    "can you help me|can you repeat that|say that again|tell me more|what do you mean|"
    "i don't understand|i don't know|how does it work|what is it|how do i use it|why|how|what|"
    "that's great|i see"
).split("|")
QUESTION_TEMPLATES = (
    "what is {}|what are {}|tell me about {}|how does {} work|how do i {}|what about {}|"
    "explain {}|can you explain {}"
).split("|")
LETTERS = dict(
    zip(
        "abcdefghijklmnopqrstuvwxyz",
        (
            "EY|B IY|S IY|D IY|IY|EH F|JH IY|EY CH|AY|JH EY|K EY|EH L|EH M|EH N|OW|P IY|K Y UW|"
            "AA R|EH S|T IY|Y UW|V IY|D AH B AH L Y UW|EH K S|W AY|Z IY"
        ).split("|"),
        strict=True,
    )
)
_ONES = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen"
).split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
SUFFIXES = (
    ("'s", "Z"),
    ("s", "Z"),
    ("es", "IH Z"),
    ("ers", "ER Z"),
    ("er", "ER"),
    ("ing", "IH NG"),
    ("ed", "D"),
    ("ly", "L IY"),
)
_MAX_SUBJECT_WORDS = 6


def model_dir() -> Path:
    """Folder of the en-us model shipped with the ``pocketsphinx`` package."""
    from pocketsphinx import get_model_path

    return Path(get_model_path()) / "en-us"


def number_words(n: int) -> list[str]:
    """Spell 0..9999 in words ("42" -> ["forty", "two"]); larger numbers digit by digit."""
    if n < 20:
        return [_ONES[n]]
    if n < 100:
        return [_TENS[n // 10]] + ([_ONES[n % 10]] if n % 10 else [])
    if n < 1000:
        return [_ONES[n // 100], "hundred"] + (number_words(n % 100) if n % 100 else [])
    if n < 10000:
        return number_words(n // 1000) + ["thousand"] + (number_words(n % 1000) if n % 1000 else [])
    return [_ONES[int(d)] for d in str(n)]


def normalize(text: str) -> list[str]:
    """Lower-case words of ``text``: numbers spelled out, punctuation and markup dropped."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)  # [label](url) -> label
    text = re.sub(r"https?://\S+", " ", text)
    text = re.sub(r"[-_/+.@#]", " ", text.lower())
    words: list[str] = []
    for token in re.findall(r"[a-z]+(?:'[a-z]+)*|\d+", text):
        words.extend(number_words(int(token)) if token.isdigit() else [token])
    return words


def _markdown_units(text: str) -> tuple[list[str], list[str]]:
    """Split markdown into (headings, sentences); fenced code blocks are skipped."""
    headings, sentences, in_code = [], [], False
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith(("```", "~~~")):
            in_code = not in_code
            continue
        if in_code or not line or set(line) <= set("-|: =*"):
            continue
        if line.startswith("#"):
            headings.append(line.lstrip("#").strip())
            continue
        line = re.sub(r"^([-*+>]|\d+[.)])\s+", "", line)
        for cell in line.split("|"):
            sentences.extend(s for s in re.split(r"(?<=[.!?;:])\s+", cell) if s.strip())
    return headings, sentences


def domain_sentences(files: Iterable[Path], extra_phrases: Iterable[str] = ()) -> list[list[str]]:
    """Word sequences for the domain model from markdown ``files`` and ``extra_phrases``.

    Args:
        files: Markdown documents (a persona's knowledge base). Unreadable files are skipped.
        extra_phrases: Additional phrases users are likely to say, taken as given and also
            expanded with the question templates.

    Returns:
        Normalized, non-empty word lists, including question templates and stock phrases.

    """
    sentences: list[list[str]] = [normalize(p) for p in STOCK_PHRASES]
    subjects: list[list[str]] = []
    for path in files:
        try:
            text = Path(path).read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        headings, body = _markdown_units(text)
        for heading in headings:
            words = normalize(heading)
            sentences.append(words)
            subjects.append(words)
        for sentence in body:
            words = normalize(sentence)
            sentences.append(words)
            # "X is/are ..." -> X is a subject users ask about.
            for verb in ("is", "are"):
                if verb in words[1 : _MAX_SUBJECT_WORDS + 1]:
                    subjects.append(words[: words.index(verb, 1)])
                    break
    for phrase in extra_phrases:
        words = normalize(phrase)
        sentences.append(words)
        subjects.append(words)
    for subject in subjects:
        if 0 < len(subject) <= _MAX_SUBJECT_WORDS and subject[0] not in ("what", "how", "why"):
            sentences.extend(normalize(t.format(" ".join(subject))) for t in QUESTION_TEMPLATES)
    return [s for s in sentences if s]


class Lexicon:
    """CMUdict pronunciations with guesses for compounds and short acronyms.

    Args:
        dict_path: A CMUdict-format file; defaults to the one shipped with pocketsphinx.

    """

    def __init__(self, dict_path: Path | None = None):
        self._entries = _read_dict(str(dict_path or model_dir() / "cmudict-en-us.dict"))
        self._guessed: dict[str, list[str] | None] = {}

    def pronunciations(self, word: str) -> list[str] | None:
        """Phone strings for ``word`` (dictionary first, then a guess), or ``None`` if unknown."""
        if word in self._entries:
            return self._entries[word]
        if word not in self._guessed:
            self._guessed[word] = self._guess(word)
        return self._guessed[word]

    def _guess(self, word: str) -> list[str] | None:
        best: tuple[int, str] | None = None
        for i in range(3, len(word) - 2):  # two dictionary words of 3+ letters each
            head, tail = word[:i], word[i:]
            if head in self._entries and tail in self._entries:
                score = min(len(head), len(tail))
                if best is None or score > best[0]:
                    best = (score, f"{self._entries[head][0]} {self._entries[tail][0]}")
        if best is not None:
            return [best[1]]
        for suffix, phones in SUFFIXES:  # personas, renderer, replica's
            stem = word[: -len(suffix)]
            if word.endswith(suffix) and len(stem) >= 3:
                for base in (stem, stem + "e"):
                    if base in self._entries:
                        return [f"{p} {phones}" for p in self._entries[base]]
        if len(word) <= 4 and word.isalpha():
            return [" ".join(LETTERS[c] for c in word)]
        return None

    def write_dict(self, words: Iterable[str], path: Path) -> None:
        """Write a dictionary file holding only ``words`` (all their pronunciations)."""
        with open(path, "w", encoding="utf-8") as out:
            for word in sorted(set(words)):
                for i, phones in enumerate(self.pronunciations(word) or ()):
                    out.write(f"{word}{f'({i + 1})' if i else ''} {phones}\n")


@functools.lru_cache(maxsize=2)
def _read_dict(path: str) -> dict[str, list[str]]:
    entries: dict[str, list[str]] = defaultdict(list)
    with open(path, encoding="utf-8") as f:
        for line in f:
            word, _, phones = line.strip().partition(" ")
            if not phones:
                continue
            entries[re.sub(r"\(\d+\)$", "", word)].append(phones.split("#")[0].strip())
    return dict(entries)


@functools.lru_cache(maxsize=4)
def generic_unigrams(top_k: int) -> dict[str, float]:
    """Return the ``top_k`` most frequent generic en-us words, probabilities renormalized."""
    if top_k <= 0:
        return {}
    import pocketsphinx

    lm = pocketsphinx.NGramModel.readfile(str(model_dir() / "en-us.lm.bin"))
    log_base = math.log(1.0001)  # pocketsphinx's default LogMath base
    words = [w for w in _read_dict(str(model_dir() / "cmudict-en-us.dict")) if w[0].isalpha()]
    scored = sorted(((lm.prob([w]), w) for w in words), reverse=True)[:top_k]
    probs = {w: math.exp(score * log_base) for score, w in scored}
    total = sum(probs.values())
    return {w: p / total for w, p in probs.items()}


def split_known(sentences: Iterable[list[str]], lexicon: Lexicon) -> list[list[str]]:
    """Cut each sentence at words the lexicon cannot pronounce, keeping the known pieces."""
    pieces: list[list[str]] = []
    for sentence in sentences:
        current: list[str] = []
        for word in sentence:
            if lexicon.pronunciations(word):
                current.append(word)
            elif current:
                pieces.append(current)
                current = []
        if current:
            pieces.append(current)
    return pieces


def build_arpa(
    sentences: Iterable[list[str]],
    *,
    generic: dict[str, float] | None = None,
    generic_weight: float = 0.0,
    discount: float = 0.5,
) -> str:
    """Estimate an ARPA backoff trigram model (absolute discounting) over ``sentences``.

    Args:
        sentences: Word sequences; ``<s>``/``</s>`` are added around each.
        generic: Extra unigram distribution (word -> probability, summing to 1).
        generic_weight: Share of unigram probability given to ``generic`` (0..1).
        discount: Absolute discount subtracted from each bigram/trigram count (0..1).

    Returns:
        The model as ARPA text, for ``pocketsphinx`` to load from a file.

    """
    uni: Counter[str] = Counter()
    bi: Counter[tuple[str, str]] = Counter()
    tri: Counter[tuple[str, str, str]] = Counter()
    for sentence in sentences:
        toks = ["<s>", *sentence, "</s>"]
        uni.update(toks[1:])
        bi.update(zip(toks, toks[1:], strict=False))
        tri.update(zip(toks, toks[1:], toks[2:], strict=False))
    if not uni:
        raise ValueError("no sentences to build a language model from")
    generic = generic or {}
    g = generic_weight if generic else 0.0
    total = sum(uni.values())
    p1 = {w: (1 - g) * uni[w] / total + g * generic.get(w, 0.0) for w in set(uni) | set(generic)}

    hist1: Counter[str] = Counter()
    for (a, _), c in bi.items():
        hist1[a] += c
    p2 = {k: (c - discount) / hist1[k[0]] for k, c in bi.items()}
    hist2: Counter[tuple[str, str]] = Counter()
    for (a, b, _), c in tri.items():
        hist2[(a, b)] += c
    p3 = {k: (c - discount) / hist2[k[:2]] for k, c in tri.items()}

    seen1, low1 = defaultdict(float), defaultdict(float)
    for (a, b), p in p2.items():
        seen1[a] += p
        low1[a] += p1[b]
    bo1 = {a: (1 - seen1[a]) / max(1 - low1[a], 1e-9) for a in seen1}
    seen2, low2 = defaultdict(float), defaultdict(float)
    for (a, b, c), p in p3.items():
        seen2[(a, b)] += p
        low2[(a, b)] += p2[(b, c)]
    bo2 = {h: (1 - seen2[h]) / max(1 - low2[h], 1e-9) for h in seen2}

    def lg(x: float) -> str:
        return f"{math.log10(x):.4f}" if x > 0 else "-99"

    lines = [
        "\\data\\",
        f"ngram 1={len(p1) + 1}",
        f"ngram 2={len(p2)}",
        f"ngram 3={len(p3)}",
        "",
        "\\1-grams:",
        f"-99 <s> {lg(bo1.get('<s>', 1.0))}",
    ]
    lines += [f"{lg(p)} {w} {lg(bo1.get(w, 1.0))}" for w, p in sorted(p1.items())]
    lines += ["", "\\2-grams:"]
    lines += [f"{lg(p)} {a} {b} {lg(bo2.get((a, b), 1.0))}" for (a, b), p in sorted(p2.items())]
    lines += ["", "\\3-grams:"]
    lines += [f"{lg(p)} {' '.join(k)}" for k, p in sorted(p3.items())]
    lines += ["", "\\end\\", ""]
    return "\n".join(lines)
