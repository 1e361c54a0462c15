"""A small domain language model for pocketsphinx, built at start-up from a persona's documents.

The generic en-us model misrecognizes most of a narrow domain (about 65% WER on synthetic speech);
a trigram model over the persona's own phrases and the questions they suggest does far better
(about 10% on the guide persona's questions, cold). The pipeline here:

1. ``domain_sentences`` turns markdown files into normalized word sequences: headings, sentences,
   list items and table cells, plus the questions users ask about them: topics ("A replica is
   ...", a heading) get "what is X", "tell me about X", ...; actions ("Changing the voice",
   "To swap a provider, ...") get "how do I X", "can I X", ... with "your" turned into "my";
   wh-headings are inverted ("How fast presence is" -> "how fast is it"); plus a few stock
   conversational phrases. Questions matter: on synthetic questions they halve the WER.
2. ``Lexicon`` maps words to CMUdict phones. A word missing from the dictionary gets a guessed
   pronunciation when it splits into dictionary words ("pipecat" = "pipe" + "cat"), into a word
   and an acronym ("opencv"), or is short enough to spell letter by letter ("stt"); a few
   product and format names have fixed pronunciations (``NAMES``); other unknown words are dropped (the sentence is cut
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
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

from presence.processors.stt.engines.arpa import build_arpa  # noqa: F401  (re-exported)

STOCK_PHRASES = (
    "hello|hi there|hey|good morning|thank you|thanks|goodbye|bye|yes|no|okay|sure|please|sorry|"
    "wait|stop|never mind|who are you|what is your name|what can you do|how are you|"
    "can you help me|can you repeat that|say that again|tell me more|what do you mean|"
    "i don't understand|i don't know|how does it work|what is it|how do i use it|why|how|what|"
    "that's great|i see"
).split("|")
# {is} becomes "are" after a plural subject ("what are webhooks", "how do renderers work").
QUESTION_TEMPLATES = (
    "what {is} {}|tell me about {}|how {does} {} work|what about {}|explain {}|can you explain {}"
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
# Names and formats common in this domain that CMUdict lacks or spells as letters.
NAMES = {
    "yaml": "Y AE M AH L",
    "json": "JH EY S AH N",
    "ollama": "OW L AA M AH",
    "anthropic": "AE N TH R AA P IH K",
    "github": "G IH T HH AH B",
}
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
ACTION_TEMPLATES = "how do i {}|how can i {}|how to {}|can i {}|i want to {}".split("|")
PRONOUNS = {"you": "i", "your": "my", "yours": "mine", "yourself": "myself"}
NOT_SUBJECTS = frozenset("it this that there they he she if when so and but".split())
# Stems that take back a silent e: writ(e), mak(e), us(e), chang(e), giv(e).
_SILENT_E = re.compile(r"(^|[^aeiou])[aeiou][^aeiouwxy]$|ng$|[cgv]$")
WH_WORDS = ("what", "how", "why", "where", "who", "when", "which")


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


def _gerund_to_verb(word: str) -> str | None:
    """Base verb of a gerund ("changing" -> "change", "swapping" -> "swap"), else None."""
    if not word.endswith("ing") or len(word) < 6:
        return None
    stem, known = word[:-3], _cmudict()
    if len(stem) >= 3 and stem[-1] == stem[-2] and stem[-1] not in "aeiouls":
        return stem[:-1]  # swapp -> swap, gett -> get (but not "call", "pass")
    if stem + "e" in known and (stem not in known or _SILENT_E.search(stem)):
        return stem + "e"  # writ -> write, chang -> change, us -> use
    return stem if stem in known else None


def _swap_pronouns(words: list[str]) -> list[str]:
    """Documents say "you"; users ask about themselves ("make your own" -> "make my own")."""
    return [PRONOUNS.get(w, w) for w in words]


Phrase = list[str]


def _questions(text: str, words: Phrase) -> tuple[list[Phrase], Phrase | None, Phrase | None]:
    """Questions a heading or sentence suggests: (questions, subject, action).

    "What presence is" -> "what is presence"; "How fast presence is" -> "how fast is presence"
    and "how fast is it"; "Changing the voice" -> action "change the voice"; "To swap a
    provider, edit ..." -> action "swap a provider"; "A replica is ..." -> subject "a replica".
    """
    questions: list[list[str]] = []
    subject = action = None
    if words and words[0] in WH_WORDS and words[-1] in ("is", "are") and len(words) >= 3:
        head = 2 if words[0] == "how" and len(words) >= 4 else 1
        middle = words[head:-1]
        questions += [words[:head] + words[-1:] + middle, words[:head] + words[-1:] + ["it"]]
    elif words and (verb := _gerund_to_verb(words[0])):
        action = [verb, *words[1:]]
    elif m := re.match(r"\s*to\s+([^,.;:]+),", text, re.IGNORECASE):
        action = normalize(m.group(1))
    for verb in ("is", "are"):
        if words and words[0] not in WH_WORDS and verb in words[1 : _MAX_SUBJECT_WORDS + 1]:
            subject = words[: words.index(verb, 1)]
            break
    return questions, subject, action


def domain_sentences(
    files: Iterable[Path], extra_phrases: Iterable[str] = (), *, question_weight: int = 1
) -> list[list[str]]:
    """Word sequences for the domain model from markdown ``files`` and ``extra_phrases``.

    Args:
        files: Markdown documents (a persona's knowledge base). Unreadable files are skipped.
        extra_phrases: Additional phrases users are likely to say, taken as given and also
            expanded with the question templates.
        question_weight: How many times each generated question is counted, so questions
            outweigh the documents' own prose in the model (users ask; documents tell).

    Returns:
        Normalized, non-empty word lists, including question templates and stock phrases.

    """
    sentences: list[list[str]] = [normalize(p) for p in STOCK_PHRASES]
    questions: list[list[str]] = []
    subjects: list[list[str]] = []
    actions: list[list[str]] = []

    def learn(text: str, *, heading: bool) -> None:
        words = normalize(text)
        sentences.append(words)
        asked, subject, action = _questions(text, words)
        questions.extend(asked)
        if heading and not asked and not action and words and words[0] not in WH_WORDS:
            subject = words  # a heading names a topic
        for found, into in ((subject, subjects), (action, actions)):
            if found and len(found) <= _MAX_SUBJECT_WORDS:
                into.append(found)

    for path in files:
        try:
            text = Path(path).read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        headings, body = _markdown_units(text)
        for heading in headings:
            learn(heading, heading=True)
        for sentence in body:
            learn(sentence, heading=False)
    for phrase in extra_phrases:  # a name or an action: both kinds of template
        words = normalize(phrase)
        sentences.append(words)
        subjects.append(words)
        actions.append(words)
    for subject in subjects:
        if subject[0] in NOT_SUBJECTS:
            continue
        plural = re.search(r"[^su]s$", subject[-1]) is not None
        verbs = {"is": "are", "does": "do"} if plural else {"is": "is", "does": "does"}
        questions.extend(
            normalize(t.format(" ".join(subject), **verbs)) for t in QUESTION_TEMPLATES
        )
    for action in actions:
        phrase = " ".join(_swap_pronouns(action))
        questions.extend(normalize(t.format(phrase)) for t in ACTION_TEMPLATES)
    sentences.extend(q for q in questions for _ in range(question_weight))
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
        if word in NAMES:
            return [NAMES[word]]
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
        for suffix, phones in SUFFIXES:  # personas, renderer, renderer's
            stem = word[: -len(suffix)]
            if word.endswith(suffix) and len(stem) >= 3:
                for base in (stem, stem + "e"):
                    # a guessed stem counts too: renderer's = (render + er) + 's
                    known = self._entries.get(base) or (base == stem and self.pronunciations(base))
                    if known:
                        return [f"{p} {phones}" for p in known]
        for i in (1, 2, len(word) - 3, len(word) - 2) if word.isalpha() else ():
            head, tail = word[:i], word[i:]
            # a short acronym and a word: e + speak, open + cv
            if len(head) <= 2 and len(tail) >= 4 and tail in self._entries:
                return [f"{self._spell(head)} {self._entries[tail][0]}"]
            if len(tail) <= 3 and len(head) >= 3 and head in self._entries:
                return [f"{self._entries[head][0]} {self._spell(tail)}"]
        if len(word) <= 4 and word.isalpha():
            return [self._spell(word)]
        return None

    @staticmethod
    def _spell(letters: str) -> str:
        return " ".join(LETTERS[c] for c in letters)

    def write_dict(self, words: Iterable[str], path: Path) -> None:
        """Write a dictionary file holding only ``words`` (all their pronunciations)."""
        with open(path, "w", encoding="utf-8") as out:
            for word in sorted(set(words)):
                for i, phones in enumerate(self.pronunciations(word) or ()):
                    out.write(f"{word}{f'({i + 1})' if i else ''} {phones}\n")


def _cmudict() -> dict[str, list[str]]:
    return _read_dict(str(model_dir() / "cmudict-en-us.dict"))


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
