"""Rule-based paraphrases of a question, offline: `paraphrases(text, n, seed=0)`.

Each paraphrase keeps every word that carries meaning (numbers, quoted strings, names, content words)
and rewords the rest: politeness ("please", "could you tell me ..."), function-word synonyms ("how do I"
-> "how can I"), contractions, the order of independent clauses and fronted phrases, inflections
(singular/plural), case and punctuation, and at most one light typo. Used to check the similar-questions
tier (`seedreplay similar calibrate`) and fine-tuned models (`seedreplay finetune verify`).
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable

from .similar.text import FUNCTION_WORDS, is_name, known, lemma

_QUOTED = re.compile(r"(\"[^\"]*\"|'[^'\s][^']*'(?!\w)|`[^`]*`|\u201c[^\u201d]*\u201d|\u2018[^\u2019]*\u2019)")

CONTRACTIONS = [
    ("what is", "what's"),
    ("it is", "it's"),
    ("that is", "that's"),
    ("where is", "where's"),
    ("who is", "who's"),
    ("there is", "there's"),
    ("do not", "don't"),
    ("does not", "doesn't"),
    ("did not", "didn't"),
    ("is not", "isn't"),
    ("are not", "aren't"),
    ("can not", "can't"),
    ("cannot", "can't"),
    ("will not", "won't"),
    ("I am", "I'm"),
    ("I have", "I've"),
    ("would not", "wouldn't"),
    ("should not", "shouldn't"),
    ("could not", "couldn't"),
]
# Function words only, one way each (pattern, replacement): each pair asks the same thing.
SYNONYMS = [
    (r"\bhow do I\b", "how can I"),
    (r"\bhow can I\b", "how do I"),
    (r"\bhow do I\b", "how should I"),
    (r"\bhow can I\b", "how could I"),
    (r"\bhow do I\b", "how would I"),
    (r"\bhow do I\b", "how do you"),
    (r"^can I\b", "could I"),
    (r"^could I\b", "can I"),
    (r"^can I\b", "am I able to"),
    (r"^can I\b", "is it possible to"),
    (r"\bwhere can I\b", "where could I"),
    (r"\bwhich\b", "what"),
    (r"^what time\b", "when"),
    (r"\bwill I\b", "do I"),
    (r"\bdo I get\b", "will I get"),
    (r"^what happens\b", "what will happen"),
]
POLITE_PREFIXES = ["Please, ", "Hi, ", "Hello! ", "Quick question: ", "Hey, "]
POLITE_SUFFIXES = [" Thanks!", " Thank you.", " Please.", " Thanks in advance."]
QUESTION_STARTERS = frozenset(
    [
        "how",
        "what",
        "where",
        "when",
        "why",
        "who",
        "which",
        "is",
        "are",
        "am",
        "can",
        "could",
        "do",
        "does",
        "did",
        "should",
        "will",
        "would",
    ]
)
_FRONTABLE = re.compile(
    r"^(?P<body>.+?)\s+(?P<phrase>(?:in|at|near|during|for)\s+(?:the\s+|my\s+|a\s+)?[\w'\-]+(?:\s+[\w'\-]+)?)(?P<end>[?.!]*)$"
)
_SUBORDINATE = re.compile(r"^(?P<clause>(?:If|When|Before|After)\s[^,]+),\s*(?P<main>.+?)(?P<end>[?.!]*)$")
_TRAILING_IF = re.compile(r"^(?P<main>.+?)\s+(?P<clause>if\s.+?)(?P<end>[?.!]*)$")


def paraphrases(text: str, n: int, seed: int = 0) -> list[str]:
    """Up to n distinct rewordings of `text` (never `text` itself); the same for the same seed."""
    rng = random.Random(f"{seed}\0{text}")
    found: list[str] = []
    seen = {_plain(text)}
    for _ in range(max(0, n) * 12):
        if len(found) >= n:
            break
        candidate = _reword(text, rng)
        if candidate and _plain(candidate) not in seen:
            seen.add(_plain(candidate))
            found.append(candidate)
    return found


def _plain(text: str) -> str:
    return " ".join(text.split())


def _reword(text: str, rng: random.Random) -> str | None:
    allowed = typo_candidates(text)
    rules = [rule for rule in RULES if rule(text, random.Random(0)) is not None]
    if not rules:
        return None
    chosen = rng.sample(rules, k=min(len(rules), rng.choice((1, 1, 2, 2, 3))))
    chosen.sort(key=RULES.index)  # structure first, spelling last: a typo must not break a later rule's match
    out = text
    for rule in chosen:
        out = (typo(out, rng, allowed) if rule is typo else rule(out, rng)) or out
    return _plain(out)


# --- the rules: each returns the reworded text, or None when it does not apply --------------------


def _outside_quotes(text: str, change: Callable[[str], str]) -> str:
    """Apply `change` to the text between quoted strings only (a quoted string is never touched)."""
    parts = _QUOTED.split(text)
    return "".join(part if i % 2 else change(part) for i, part in enumerate(parts))


def _swap_phrase(text: str, pairs: list[tuple[str, str]], rng: random.Random) -> str | None:
    """One of the (pattern, replacement) pairs that applies, applied once, outside quoted strings."""
    options = [(old, new) for old, new in pairs if re.search(old, text.strip(), flags=re.IGNORECASE)]
    if not options:
        return None
    old, new = rng.choice(options)

    def replace(match: re.Match) -> str:
        return _upper_first(new) if match.group(0)[0].isupper() else new

    return _outside_quotes(text.strip(), lambda part: re.sub(old, replace, part, count=1, flags=re.IGNORECASE))


def contraction(text: str, rng: random.Random) -> str | None:
    """ "what is" <-> "what's", "do not" <-> "don't", ..."""
    pairs = [(rf"\b{re.escape(a)}\b", b) for a, b in CONTRACTIONS] + [(rf"\b{re.escape(b)}", a) for a, b in CONTRACTIONS]
    return _swap_phrase(text, pairs, rng)


def function_synonym(text: str, rng: random.Random) -> str | None:
    """ "how do I" <-> "how can I", "can I" <-> "is it possible to", "which" <-> "what", ..."""
    return _swap_phrase(text, SYNONYMS, rng)


def politeness(text: str, rng: random.Random) -> str | None:
    """ "Please, ...", "... Thanks!", "Could you tell me how to ...", "Can you ... ?" for a request."""
    stripped = text.strip()
    first = stripped.split(" ", 1)[0]
    embedded = _embed(stripped)
    if embedded and rng.random() < 0.5:
        return embedded
    if rng.random() < 0.5:
        return rng.choice(POLITE_PREFIXES) + _lower_first(stripped)
    if first.lower() not in QUESTION_STARTERS and rng.random() < 0.5:
        return f"Can you {_lower_first(stripped).rstrip('.!?')}?"  # an instruction asked as a request
    return stripped + rng.choice(POLITE_SUFFIXES)


def _embed(text: str) -> str | None:
    """ "How do I X?" -> "Could you tell me how to X?"; "What is X?" -> "Can you tell me what X is?"."""
    match = re.match(r"^how (?:do|can|should) I (?P<rest>.+?)[?.!]*$", text, flags=re.IGNORECASE)
    if match:
        return f"Could you tell me how to {match.group('rest')}?"
    match = re.match(r"^what (?P<verb>is|are) (?P<rest>[^,;]+?)[?.!]*$", text, flags=re.IGNORECASE)
    if match and "'" not in match.group("rest"):
        return f"Can you tell me what {match.group('rest')} {match.group('verb').lower()}?"
    return None


def clause_order(text: str, rng: random.Random) -> str | None:
    """Two sentences swapped; "If X, Y?" <-> "Y if X?"; a trailing "in/on/at ..." phrase put first."""
    sentences = re.findall(r"\S.*?[.?!]+(?=\s|$)", text.strip())
    if len(sentences) == 2 and " ".join(sentences) == text.strip() and not _QUOTED.search(text):
        first, second = (s.strip() for s in sentences)
        return f"{second} {first}"
    match = _SUBORDINATE.match(text.strip())
    if match:
        return f"{_upper_first(match.group('main'))} {_lower_first(match.group('clause'))}{match.group('end') or '?'}"
    match = _TRAILING_IF.match(text.strip())
    if match and "," not in text:
        return f"{_upper_first(match.group('clause'))}, {_lower_first(match.group('main'))}{match.group('end') or '?'}"
    match = _FRONTABLE.match(text.strip())
    if match and not _QUOTED.search(match.group("phrase")) and len(match.group("body").split()) >= 3:
        return f"{_upper_first(match.group('phrase'))}, {_lower_first(match.group('body'))}{match.group('end')}"
    return None


def inflection(text: str, rng: random.Random) -> str | None:
    """One noun after a determiner made plural (or singular): "boil an egg" -> "boil eggs"."""
    options = []
    for match in re.finditer(
        r"\b(?P<det>an?|the|my|your)\s+(?P<noun>[a-z]{3,})(?=\s*(?:[?.!,]|$|\s(?:in|on|at|for|to|from|with|of)\b))", text
    ):
        noun = match.group("noun")
        other = _other_number(noun)
        if other:
            options.append((match, other))
    if not options:
        return None
    match, other = rng.choice(options)
    det = match.group("det")
    replacement = other if det in ("a", "an") else f"{det} {other}"
    if det in ("a", "an") and lemma(other) == other:
        return None  # "a parcel" becomes "parcels"; the reverse needs an article it may not take
    return text[: match.start()] + replacement + text[match.end() :]


def _other_number(noun: str) -> str | None:
    """The plural of a singular noun, or the singular of a plural, when the dictionary agrees."""
    base = lemma(noun)
    if base != noun and known(noun) and noun.startswith(base[:-1]):
        return base  # plural -> singular
    for plural in (noun + "s", noun + "es", noun[:-1] + "ies" if noun.endswith("y") else ""):
        if plural and known(plural) and lemma(plural) == noun:
            return plural
    return None


def case_and_punctuation(text: str, rng: random.Random) -> str | None:
    """All lower case (quoted strings kept), the question mark dropped or doubled, commas dropped."""
    choice = rng.randrange(4)
    if choice == 0:
        return _outside_quotes(text, str.lower)
    if choice == 1 and text.rstrip().endswith(("?", ".", "!")):
        return text.rstrip().rstrip("?.!")
    if choice == 2 and text.rstrip().endswith("?"):
        return text.rstrip() + "?"
    if "," in text:
        return _outside_quotes(text, lambda part: part.replace(",", ""))
    return _outside_quotes(text, str.lower)


def typo(text: str, rng: random.Random, allowed: frozenset[str] | None = None) -> str | None:
    """One slip in one longer content word (two letters swapped, one dropped or doubled) that makes no other word.

    Names, function words and quoted strings are never misspelt; `allowed` limits it to the question's own words."""
    words = [(m.start(), m.group(0)) for m in re.finditer(r"(?<![\w'\"`.@/-])[a-z]{6,}(?![\w'\"`.@/-])", _mask_quotes(text))]
    words = [(start, w) for start, w in words if (allowed is None or w in allowed) and w not in FUNCTION_WORDS]
    rng.shuffle(words)
    for start, word in words:
        slipped = _slip(word, rng)
        if slipped != word and not known(slipped):
            return text[:start] + slipped + text[start + len(word) :]
    return None


def typo_candidates(text: str) -> frozenset[str]:
    """The words of a question a typo may fall on: lower case wherever they appear, so never a name."""
    written = re.findall(r"[A-Za-z]+", _mask_quotes(text))
    capitalised = {w.lower() for i, w in enumerate(written) if w[:1].isupper() and i > 0}
    return frozenset(w for w in written if w.islower() and w not in capitalised and not is_name(w))


def _mask_quotes(text: str) -> str:
    return _QUOTED.sub(lambda m: "\x01" * len(m.group(0)), text)


def _slip(word: str, rng: random.Random) -> str:
    at = rng.randrange(1, len(word) - 2)
    kind = rng.randrange(3)
    if kind == 0:
        return word[:at] + word[at + 1] + word[at] + word[at + 2 :]
    if kind == 1:
        return word[:at] + word[at + 1 :]
    return word[:at] + word[at] + word[at:]


def _lower_first(text: str) -> str:
    first = text.split(" ", 1)[0]
    bare = re.sub(r"\W", "", first)
    if bare == "I" or not bare or bare.lower() != bare and not _common(bare):
        return text
    return text[:1].lower() + text[1:]


def _common(word: str) -> bool:
    """A capitalised first word that is an ordinary word, not a name ("How", not "York")."""
    lower = word.lower()
    return lower in QUESTION_STARTERS or (known(lower) and not is_name(lower))


def _upper_first(text: str) -> str:
    return text[:1].upper() + text[1:]


RULES: list[Callable[[str, random.Random], str | None]] = [
    clause_order,
    function_synonym,
    politeness,
    contraction,
    inflection,
    case_and_punctuation,
    typo,
]
