"""Does a transcript read as a finished English sentence? Pure text rules, no model.

``unfinished(text)`` names why the words so far cannot be the end of what the user means to say,
or returns None when they could be. It is deliberately conservative in one direction: it flags
only endings that a finished sentence almost never has, because a false "unfinished" costs the
user a second of waiting, while a false "finished" makes the persona talk over them.

Rules, in order:

* **trailing off** — the transcript ends in an ellipsis or a dash (Whisper writes "so how do I..."
  for a voice that trails off);
* **hanging word** — the last word is an article, possessive, preposition, conjunction, "I" or a
  filler ("the", "my", "to", "and", "um"); a wh-question may still end on its preposition ("which
  services does it rely on", "what is it for"), but not on "for"/"with" right after a verb whose
  object the wh-phrase already is ("what picture should I use for": Whisper often drops the
  article that followed, "... use for the | face"); after "how" or "why" only a verb's particle
  ends it ("how do I log in", not "how do I plug it into"); a relative clause may end on its
  preposition too ("is there a voice I can switch to", "any terms I should know about"), but
  never on the "to" of an infinitive ("is there a tool I need to");
* **question without its verb** — a question opened by a wh-word or an auxiliary whose subject has
  no verb yet: "which transports" (a wh-word and a noun, no verb), "how does the renderer"
  (auxiliary, then only a determiner and one word), "what is" (nothing after the auxiliary);
* **only a greeting** — "hello there", "hi", "ok so": a question usually follows;
* **verb without its object** — a how/yes-no question that ends on a verb (or phrasal verb) that
  needs an object, after a pronoun subject: "how do I change", "can I use", "how does it figure
  out" ("what can I use" is finished: the wh-word is the object); or a verb of showing or telling
  still missing what is shown: "is there a command that shows me";
* **only a subordinate clause** — the words open with "if", "without", "after" and the like and no
  main clause follows: "without a cloud model", "if I have no internet" (but "if I have no internet,
  what do I get" is finished).

A question may also open after a lead clause: "once my class is written, how do people" lacks its
verb too, and "what are my options, and what" its rest. Set phrases ("over and over", "in
between") and a phrasal verb's particle ("so people can phone in") end a sentence.

Whether the words ask anything or set context for a question to come is ``intent``'s.
"""

from __future__ import annotations

import re

# Words after which an English sentence cannot end: the speaker is mid-phrase.
HANGING_WORDS = frozenset(
    # articles, possessives, the subject "I"
    "a an the my your our their its i".split()
    # prepositions
    + "to of in on at for with from by about into onto over under through between than".split()
    # conjunctions
    + "and or but so because if when while whether nor".split()
    # fillers, and "just" ("... and not just")
    + "um uh umm uhm em er erm ah hmm mm just".split()
)
# Prepositions a wh-question may end on ("what is it for", "which one do I plug in").
STRANDABLE = frozenset(
    "on in for about from with of at into to up out through under by over after against".split()
) - {"to"}
WH_WORDS = frozenset("what which how where when who whom whose why".split())
# Wh-words that can be a preposition's object ("what is it for"; not "how", "why", "when").
_OBJECT_WH = frozenset("what which who whom whose where".split())
# Prepositions that are also a verb's particle ("log in", "turn it on", "hand it over").
_PARTICLES = frozenset("in on over up out off through back down".split())
# Subjects that open a relative clause with no "that" ("the one I can switch to").
CLAUSE_SUBJECTS = frozenset(
    "i you we they he she i'm you're we're they're i've you've we've they've i'd you'd we'd "
    "i'll you'll we'll".split()
)
# Verbs after which "to" is a preposition, not the mark of an infinitive ("the one I switch to").
TO_VERBS = frozenset(
    """switch switching talk talking speak speaking listen listening connect connecting reply
    replying respond responding belong belongs point pointing send sending upload uploading
    stream streaming attach attaching migrate migrating move moving add adding write writing
    link linking compare comparing""".split()
)
DO_MODALS = frozenset(
    "do does did can could will would should shall may might must don't doesn't can't won't "
    "couldn't wouldn't shouldn't".split()
)
BE_HAVE = frozenset("is are was were am has have had isn't aren't wasn't".split())
PRONOUNS = frozenset("i you we they he she it one someone somebody people".split())
DETERMINERS = frozenset(
    "the a an my your our their its his her this that these those some any each every".split()
)
# Verbs that take an object in nearly every use ("how do I change ..." needs what to change).
OBJECT_VERBS = frozenset(
    """use change swap replace make get add set put build create write configure install connect
    choose pick select give take find load call try enable disable turn switch deploy host
    measure record open send upload register plug""".split()
)
# Verbs common in questions to a guide, base form. "what does a pipeline file" has none after its
# subject (and "file" is not read as one there), so the question still lacks its verb.
COMMON_VERBS = OBJECT_VERBS | frozenset(
    """do be have work run look mean cost need know start stop help talk sound move blink listen
    answer reply respond support handle happen go come see hear speak say tell show explain
    understand learn mind matter stand depend rely compare differ fit scale sync render animate
    detect recognize recognise spot notice track follow join leave end begin last take send
    store save keep cache require include contain offer provide ship come bundle cost charge
    update upgrade integrate communicate decide figure think feel seem look appear handle deal
    react wait sleep idle stream play behave fail break crash recover retry log stop pause
    transcribe generate produce output input read stop count measure compute process mix time
    cover test check expose accept return emit print allow""".split()
)
_SET_PHRASES = (["over", "and", "over"], ["again", "and", "again"], ["in", "between"])
# Verbs that end a sentence with their particle ("phone in", "sign up", "hook it up").
_PHRASAL_VERBS = frozenset("phone call dial sign log plug hook check drop opt tune zoom".split())
# Phrasal verbs that need an object ("how does it figure out" what?).
PHRASAL_OBJECT_VERBS = frozenset(
    {("figure", "out"), ("point", "out"), ("find", "out"), ("look", "up"), ("fill", "in"),
     ("turn", "off"), ("hook", "up"), ("pick", "out"), ("work", "out"), ("set", "up")}
)  # fmt: skip
# A verb whose object the wh-phrase is leaves these hanging: "what should I use for" (... the face).
PURPOSE_PREPOSITIONS = frozenset({"for", "with"})
# Verbs of showing and telling: "shows me" still lacks what is shown.
TELLING_VERBS = frozenset("show shows tell tells give gives teach teaches send sends".split())
# Words that open a subordinate clause or an adverbial phrase, not a sentence on their own.
SUBORDINATORS = frozenset(
    "if unless because although though without after before since until once whenever "
    "whereas besides except instead".split()
)
LEAD_INS = frozenset(
    "so and ok okay well hey hi hello hiya there now then yes yeah right alright good morning "
    "afternoon evening um uh".split()
)
# Nouns written with a hyphen whose second part is a preposition.
_COMPOUNDS = tuple(
    "add-on plug-in built-in log-in sign-in opt-in check-in drop-in follow-up set-up sign-up "
    "hand-off take-off roll-out".split()
)
# Words after which a pronoun starts a reported clause, not a relative one ("I think I ...").
_REPORTING = frozenset("that think know guess mean say said hope sure wonder suppose".split())
_WORD = re.compile(r"[a-z']+")
SENTENCES = re.compile(r"(?<=[.?!])\s+")
_TRAILING = re.compile(r"(\.\.\.|…|--|—|-)\s*$")


def words_of(text: str) -> list[str]:
    """Lower-case words of ``text``, punctuation dropped."""
    return _WORD.findall(text.lower())


def _question_start(words: list[str]) -> int | None:
    """Index of the wh-word or auxiliary that opens a question, skipping a lead-in ("so", "ok")."""
    for i, word in enumerate(words[:3]):
        if word in WH_WORDS or word in DO_MODALS or word in BE_HAVE:
            return i
        if word not in LEAD_INS:
            return None
    return None


def _stranded(words: list[str], *, particles: bool = True) -> bool:
    """A wh-question may end on its preposition: "which services does it rely on", "what is it for".

    True when the last word is such a preposition, a wh-word that can be its object opens the
    question and a verb or auxiliary stands between them. ``particles``: after "how" or "why", a
    verb's particle may end it ("how do I log in").
    """
    if words[-1] not in STRANDABLE or len(words) < 3:
        return False
    if words[-1] in PURPOSE_PREPOSITIONS and words[-2] in OBJECT_VERBS | {"need", "want"}:
        return False
    start = _question_start(words)
    if start is None or words[start] not in WH_WORDS:
        return False
    # after a wh-word a preposition cannot take ("how", "why"), only a verb's particle ends
    # the question: "how do I log in" is finished, "how do I plug it into" is not
    wh = max(i for i, w in enumerate(words[:-1]) if w in WH_WORDS)
    if words[wh] not in _OBJECT_WH and (not particles or words[-1] not in _PARTICLES):
        return False
    middle = words[start + 1 : -1]
    return any(w in DO_MODALS or w in BE_HAVE for w in middle) or len(middle) >= 3


def _set_phrase(words: list[str]) -> bool:
    """The last words are a phrase that ends a sentence.

    "over and over", "in between", or a phrasal verb's particle ("so people can phone in", "how
    do I plug it in").
    """
    if any(words[-len(p) :] == p for p in _SET_PHRASES):
        return True
    if words[-1] not in _PARTICLES or len(words) < 2:
        return False
    at = len(words) - 2
    if words[at] in {"it", "them", "this", "that"}:
        at -= 1  # "plug it in"
    if at < 0 or words[at] not in _PHRASAL_VERBS:
        return False
    return at == 0 or words[at - 1] not in DETERMINERS  # "the plug in" is a noun


def _relative_stranded(words: list[str]) -> bool:
    """A relative clause may end on its preposition: "is there a voice I can switch to".

    ``words`` are the last sentence's. True when the last word is such a preposition and, within
    the last eight words, a subject pronoun right after a noun (not after an auxiliary, a
    preposition, a conjunction, "that" or a lead-in: "how do I", "so that I") opens a clause that
    runs to the end (no auxiliary past its first word: "something we sell is there anything
    about" is two clauses); "to" only after a verb that takes it as a preposition ("switch to",
    not "want to", "able to").
    """
    last = words[-1]
    if last not in STRANDABLE | {"to"} or len(words) < 4:
        return False
    if last == "to" and words[-2] not in TO_VERBS:
        return False
    not_nouns = DO_MODALS | BE_HAVE | HANGING_WORDS | WH_WORDS | LEAD_INS | SUBORDINATORS
    for k in range(max(1, len(words) - 8), len(words) - 2):
        if words[k] in CLAUSE_SUBJECTS:
            before, clause = words[k - 1], words[k + 2 : -1]
            if any(w in DO_MODALS or w in BE_HAVE for w in clause):
                return False  # a new clause began: "something we sell, is there anything about"
            return before not in not_nouns | (PRONOUNS - {"one"}) | _REPORTING
    return False


def unfinished(text: str) -> str | None:
    """Why ``text`` cannot be a finished sentence, or None when it could be.

    Args:
        text: The user's words so far this turn (punctuation, when the recogniser gives it, is
            used: a trailing ellipsis or dash means the voice trailed off).

    Returns:
        A short reason ("hanging 'the'", "no verb after 'which'", ...), or None.
    """
    words = words_of(text)
    if not words:
        return None
    if _TRAILING.search(text.strip()):
        return "trailing off"
    last = words[-1]
    compound = text.lower().rstrip(" ?.!,").endswith(_COMPOUNDS)  # "my add-on": not "on"
    sentence = words_of(SENTENCES.split(text.strip())[-1]) or words
    tail = words_of(re.split(r"[,;:.?!]", text.strip().rstrip(",;:.?! "))[-1]) or words
    # after a lead clause only what/which... may strand: "please, how ... my last word in" is
    # more often a garbled hanging word than "how do I log in" (a phrasal verb: see _set_phrase)
    stranded = _stranded(words) or _stranded(tail, particles=False)
    ends_well = stranded or _relative_stranded(sentence)
    if last in HANGING_WORDS and not (compound or ends_well or _set_phrase(words)):
        return f"hanging '{last}'"
    if all(w in LEAD_INS for w in words):
        return "only a greeting"
    if len(words) >= 2 and words[-1] in {"me", "us"} and words[-2] in TELLING_VERBS:
        return f"'{words[-2]} {words[-1]}' without what"
    clause = _subordinate_only(text)
    if clause:
        return clause
    reason = _question_unfinished(words, asked=text.rstrip().endswith("?"))
    if reason is None and len(tail) < len(words):
        # a question after a lead clause: "once my class is written, how do people"
        reason = _tail_unfinished(tail)
    return reason


def _tail_unfinished(words: list[str]) -> str | None:
    """Why a question begun after a lead clause is cut short, or None.

    Only plain forms count (a recogniser's commas also cut whole questions: "how many stages,
    does a pipeline, have"): a wh-word or modal, a pronoun or determiner subject and no more
    ("..., how do people", "..., can the agent"); a lone wh-word after "and" ("..., and what").
    A negated tag closes a statement ("it runs offline, doesn't it").
    """
    start = _question_start(words)
    if start is None:
        return None
    opener, rest = words[start], words[start + 1 :]
    after_and = words[start - 1 : start] == ["and"]
    if not rest:
        return f"no verb after '{opener}'" if after_and and opener in WH_WORDS else None
    if after_and:
        return None  # "and do that": a verb phrase, not a question
    wh = opener if opener in WH_WORDS else None
    if wh:
        opener, rest = rest[0], rest[1:]
    if opener not in DO_MODALS or not rest or rest[0] not in PRONOUNS | DETERMINERS:
        return None
    if len(rest) == 1 and opener.endswith("n't"):
        return None
    return _after_auxiliary(opener, rest, wh=wh)


def _question_unfinished(words: list[str], *, asked: bool) -> str | None:
    """Why the question ``words`` open lacks its verb or object, or None (also when no question)."""
    start = _question_start(words)
    if start is None:
        return None
    opener, rest = words[start], words[start + 1 :]
    if not rest and opener in WH_WORDS and asked and words[start - 1 : start] != ["and"]:
        return None  # "Why?" on its own is a whole question; "... and what?" is not
    if opener in WH_WORDS:
        aux = next((i for i, w in enumerate(rest) if w in DO_MODALS or w in BE_HAVE), None)
        if aux is None:
            # "which transports", "how much" — but "who knows", "how come" could be whole:
            # only a wh-word followed by nothing or by a determiner phrase is unfinished.
            if (
                not rest
                or rest[0] in DETERMINERS
                or (opener in {"which", "what"} and len(rest) <= 2)
            ):
                return f"no verb after '{opener}'"
            return None
        after = rest[aux + 1 :]
        return _after_auxiliary(rest[aux], after, wh=opener)
    return _after_auxiliary(opener, rest, wh=None)


def _after_auxiliary(aux: str, after: list[str], *, wh: str | None) -> str | None:
    """Whether the words after a question's auxiliary lack the verb (or its object)."""
    if not after:
        return f"nothing after '{aux}'"
    if aux in BE_HAVE:
        return None  # "what is presence", "is it free": a copula needs no further verb
    subject_ends = 1
    if after[0] in DETERMINERS:
        subject_ends = 2  # "the renderer"
    if len(after) <= subject_ends:
        return f"no verb after '{aux} {' '.join(after)}'"
    if (
        aux in {"do", "does", "did"}
        and after[0] in DETERMINERS
        and len(after) <= 4
        and not any(w in COMMON_VERBS or w.endswith(("ed", "ly")) for w in after[1:])
    ):
        return f"no verb after '{aux} {' '.join(after)}'"  # "what does a pipeline file"
    if after[0] in PRONOUNS and wh not in {"what", "which", "who", "whom"}:
        if after[-1] in OBJECT_VERBS:
            return f"'{after[-1]}' without its object"
        if tuple(after[-2:]) in PHRASAL_OBJECT_VERBS:
            return f"'{' '.join(after[-2:])}' without its object"
    return None


def _subordinate_only(text: str) -> str | None:
    """The text is one subordinate clause or adverbial phrase, with no main clause after it."""
    clauses = [words_of(c) for c in re.split(r"[,;:.?!]", text)]
    clauses = [c for c in clauses if c and not all(w in LEAD_INS for w in c)]
    if len(clauses) != 1:
        return None
    words = [w for w in clauses[0] if w not in LEAD_INS] or clauses[0]
    if words[0] not in SUBORDINATORS:
        return None
    if any(w in WH_WORDS or w in DO_MODALS for w in words[1:]):
        return None  # "if I have no internet can I still use it": the main clause follows
    return f"only a clause opened by '{words[0]}'"
