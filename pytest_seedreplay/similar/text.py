"""What a question is made of, for the guards and the score: `analyse(text) -> Analysis`.

A question is reduced to the words that decide what is asked (content tokens: lemmas, with question
words, negation, pronouns, modals, prepositions and numbers kept), plus what must match exactly:
numbers, quoted strings, names and identifiers, and which word follows a direction word ("from York",
"to Leeds", "than the bus"). What cannot change what is asked is dropped or folded before that:
case, punctuation, contractions ("what's" = "what is"), articles and politeness, auxiliaries ("how
do I" = "how can I" = "how to"), request frames ("could you tell me", "is it possible to"),
inflections (a dictionary lemmatiser, simplemma: "boiled" = "boil", "children" = "child").

Everything not on those small lists counts: an unknown word is a content word. Precision first.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache

from .synonyms import LIGHT, REWRITES, SYNONYMS

# --- the word lists -------------------------------------------------------------------------------

# Words that never change what is asked: articles, politeness, fillers, present-tense auxiliaries
# and the copula ("is it open" = "it is open" = "open?"), future auxiliaries ("what happens" = "what
# will happen"), "of" ("the York branch's hours" = "the hours of the York branch"), existential "there".
IGNORED = frozenset(
    [
        "a",
        "an",
        "the",
        "my",
        "our",
        "please",
        "pls",
        "plz",
        "kindly",
        "thanks",
        "thank",
        "thx",
        "hi",
        "hello",
        "hey",
        "just",
        "actually",
        "basically",
        "really",
        "so",
        "ok",
        "okay",
        "um",
        "uh",
        "do",
        "does",
        "doing",
        "is",
        "are",
        "am",
        "be",
        "been",
        "being",
        "will",
        "would",
        "shall",
        "of",
        "there",
    ]
)

# Function words with a synonym: each maps to one representative. Tense stays ("did", "was" -> past).
CLASSES = {
    "could": "can",
    "may": "can",
    "might": "can",
    "was": "past",
    "were": "past",
    "did": "past",
    "had": "past",
    "has": "have",
    "having": "have",
    "u": "you",
    "ur": "you",
    "me": "i",
    "myself": "i",
    "mine": "i",
    "us": "we",
    "ourselves": "we",
    "ours": "we",
    "your": "you",
    "yours": "you",
    "yourself": "you",
    "yourselves": "you",
    "him": "he",
    "his": "he",
    "himself": "he",
    "her": "she",
    "hers": "she",
    "herself": "she",
    "them": "they",
    "their": "they",
    "theirs": "they",
    "themselves": "they",
    "which": "what",
    "whether": "if",
    "into": "to",
    "onto": "on",
    "towards": "to",
    "toward": "to",
    "versus": "vs",
    "till": "until",
    "whilst": "when",
    "while": "when",  # "while charging" = "when charging"
    "amongst": "among",
}
SYMBOL_WORDS = {"%": "percent", "$": "dollar", "€": "euro", "£": "pound", "+": "plus", "&": "and"}

# Direction words: the word after one says which way ("from York to Leeds" vs "from Leeds to York",
# "km to miles" vs "miles to km", "the train than the bus" vs "the bus than the train").
MARKERS = frozenset(["to", "from", "than", "vs", "minus", "before", "after", "until", "per"])

# Question words that each want another kind of answer (a time, a person, a reason, a manner or a
# place: "where do I turn on X" in an app is "how do I turn on X"), once the frames are folded ("what
# time" = "when", "how come" = "why", "what's the way to" = "how").
ASKS = {"how": "how", "where": "how", "when": "when", "who": "who", "why": "why"}
WH_WORDS = frozenset(["how", "what", "which", "where", "when", "who", "why", "whom", "whose"])
AUXILIARIES = frozenset(["can", "could", "may", "might", "should", "will", "would", "shall", "do", "does"])
# After a question word, "<auxiliary> <one of these>" loses the auxiliary: "how do I" = "how can I".
AUX_SUBJECTS = frozenset(["i", "we", "one", "it"])

# Words that are never a name, a content word worth swapping, or a typo's victim.
FUNCTION_WORDS = (
    IGNORED
    | AUXILIARIES
    | MARKERS
    | WH_WORDS
    | frozenset(CLASSES)
    | frozenset(
        [
            "i",
            "you",
            "we",
            "he",
            "she",
            "it",
            "they",
            "not",
            "no",
            "and",
            "or",
            "if",
            "in",
            "on",
            "at",
            "for",
            "with",
            "by",
            "this",
            "that",
            "these",
            "those",
            "should",
            "must",
            "can",
            "get",
            "please",
            "question",
            "any",
            "some",
            "possible",
            "able",
            "wondering",
            "thanks",
            "thank",
        ]
    )
)

# Clause-initial frames that only wrap the question ("could you tell me how ..." = "how ...").
_TELL = r"(?:tell|show|give|explain(?: to)?)"
# "can you", "would you be able to", "please", "kindly": a request put politely.
_YOU = r"(?:(?:can|could|would|will) you (?:be able to )?)?(?:please |kindly )?"
_WH = "|".join(sorted(WH_WORDS))
FRAMES = [
    (re.compile(rf"^{_YOU}(?:{_TELL} me|let me know) (?:please )?(?:if |whether )"), ""),
    (re.compile(rf"^{_YOU}(?:{_TELL} me|let me know) (?:please )?(?=(?:{_WH}) )"), ""),
    (re.compile(rf"^{_YOU}{_TELL} me (?:please )?(?:about )?"), "what "),
    (re.compile(rf"^{_YOU}explain (?=(?:{_WH}) )"), ""),
    (re.compile(rf"^{_YOU}explain "), "what "),
    (
        re.compile(
            r"^(?:do you know|i wonder|i am wondering|i was wondering|wondering|i would like to know|i want to know"
            r"|i need to know|i would like to ask|can i ask|may i ask)(?: if| whether)? "
        ),
        "",
    ),
    (
        re.compile(
            r"^(?:is it possible(?: for me)? to|would it be possible(?: for me)? to|am i able to|is there a way(?: for me)? to"
            r"|is there any way(?: for me)? to) "
        ),
        "can i ",
    ),
    (re.compile(r"^(?:can|could|would|will) you (?:please )?(?!(?:" + "|".join(AUX_SUBJECTS | {"you", "not"}) + r") )"), ""),
    (re.compile(r"^how to "), "how i "),
    # Asking to be guided or advised is asking how: "walk me through X", "please advise on X".
    (re.compile(rf"^{_YOU}(?:walk|talk|take|guide) me through (?:how to )?"), "how i "),
    (re.compile(rf"^{_YOU}advise(?: me)?(?: on| about)?(?: how to)? "), "how i "),
    (re.compile(rf"^{_YOU}teach me (?:how )?to "), "how i "),
    (re.compile(r"^i am (?:trying|attempting|looking) to "), "i want to "),
]
# Politeness that may stand anywhere: dropped wherever it is.
POLITE_PHRASES = [
    tuple(p.split())
    for p in (
        "thank you very much",
        "thank you so much",
        "thank you",
        "thanks a lot",
        "thanks so much",
        "thanks in advance",
        "many thanks",
        "quick question",
        "quick q",
        "if possible",
        "if you can",
    )
]
PHRASES = [
    (re.compile(r"\b(?:is it possible|would it be possible|is there a way|is there any way)(?: for me)? to\b"), "can i"),
    (re.compile(r"\bam i able to\b"), "can i"),
    (re.compile(r"\bwhat times?\b"), "when"),
    (re.compile(r"\bhow come\b"), "why"),
    (re.compile(r"\bper cent\b"), "percent"),
]

CONTRACTIONS = {
    "won't": "will not",
    "can't": "can not",
    "shan't": "shall not",
    "cannot": "can not",
    "let's": "let us",
    # Apostrophes left out, as people type them.
    "dont": "do not",
    "doesnt": "does not",
    "didnt": "did not",
    "isnt": "is not",
    "arent": "are not",
    "wasnt": "was not",
    "werent": "were not",
    "cant": "can not",
    "wont": "will not",
    "couldnt": "could not",
    "shouldnt": "should not",
    "wouldnt": "would not",
    "hasnt": "has not",
    "havent": "have not",
    "hadnt": "had not",
    "im": "i am",
    "ive": "i have",
    "youre": "you are",
    "theyre": "they are",
    "whats": "what is",
    "thats": "that is",
    "wheres": "where is",
    "whos": "who is",
    "hows": "how is",
}
_IS_BEFORE = frozenset(
    [
        "it",
        "that",
        "what",
        "where",
        "who",
        "how",
        "there",
        "here",
        "when",
        "why",
        "he",
        "she",
        "this",
        "everything",
        "nothing",
        "something",
    ]
)
_SUFFIXES = {"n't": " not", "'re": " are", "'m": " am", "'ve": " have", "'ll": " will", "'d": " would"}

_NUMBER_WORDS = {
    w: i
    for i, w in enumerate(
        [
            "zero",
            "one",
            "two",
            "three",
            "four",
            "five",
            "six",
            "seven",
            "eight",
            "nine",
            "ten",
            "eleven",
            "twelve",
            "thirteen",
            "fourteen",
            "fifteen",
            "sixteen",
            "seventeen",
            "eighteen",
            "nineteen",
        ]
    )
}
_TENS = {w: 10 * i for i, w in enumerate(["twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"], start=2)}
_SCALES = {"hundred": 100, "thousand": 1000, "million": 1_000_000, "billion": 1_000_000_000}
_ORDINALS = {
    w: i
    for i, w in enumerate(
        ["first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth", "eleventh", "twelfth"],
        start=1,
    )
}
_UNITS = [
    "am",
    "pm",
    "k",
    "km",
    "m",
    "cm",
    "mm",
    "kg",
    "g",
    "mg",
    "mb",
    "gb",
    "tb",
    "kb",
    "ms",
    "s",
    "h",
    "hr",
    "hrs",
    "min",
    "mins",
    "ml",
    "l",
    "x",
]
# Verbs the dictionary reads as nouns ("what does X mean" = "what X means").
LEMMA_FIXES = {"means": "mean"}
_DEGREES = frozenset(
    ["better", "best", "worse", "worst", "more", "most", "less", "least", "further", "furthest", "farther", "farthest"]
)

# --- tokenising -----------------------------------------------------------------------------------

_QUOTE_CHARS = str.maketrans(
    {
        "\u201c": '"',
        "\u201d": '"',
        "\u201e": '"',
        "\u00ab": '"',
        "\u00bb": '"',
        "\u2018": "'",
        "\u2019": "'",
        "\u201a": "'",
        "\u2032": "'",
    }
)
_QUOTED = re.compile(r'"([^"\n]{1,300})"|`([^`\n]{1,300})`|(?<![\w\'])\'([^\'\n]{1,300})\'(?![\w])')
_URL = re.compile(r"\b(?:https?://|www\.)[^\s<>\"']+[^\s<>\"'.,;:!?)]")
_EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")
_TOKEN = re.compile(r"\x00\d+\x00|[A-Za-z0-9_]+(?:['\-.:,/][A-Za-z0-9_]+)*'?|[?!.;:,\n]|[%$€£#&+]")
_DASH = re.compile(r"(?<=[A-Za-z])\s+[-\u2013\u2014]+\s+(?=[A-Za-z])|(?<=[A-Za-z])[\u2013\u2014](?=[A-Za-z])")
_SENTENCE_END = frozenset("?!.;:\n")
_CLAUSE_END = _SENTENCE_END | {","}
_NUMERIC = re.compile(r"\d+(?:[.,:]\d+)*\Z")
_ORDINAL = re.compile(r"(\d+)(?:st|nd|rd|th)\Z")
_NUMBER_UNIT = re.compile(r"(\d+(?:\.\d+)?)(" + "|".join(_UNITS) + r")\Z")
_CAMEL = re.compile(r"[a-z][A-Z]")
_VERSION = re.compile(r"[vV](\d+(?:\.\d+)+|\d+)\Z")


@dataclass(frozen=True)
class Word:
    """One word after tokenising: its text (lower case), and what kind of thing it is."""

    text: str
    kind: str = "word"  # word | number | entity | quoted
    capitalised: bool = False
    sentence_start: bool = False


@dataclass
class Analysis:
    """A question reduced to what decides what is asked (see the module docstring)."""

    text: str
    content: Counter = field(default_factory=Counter)  # content token -> count
    numbers: tuple[str, ...] = ()
    quoted: tuple[str, ...] = ()
    entities: frozenset[str] = frozenset()
    directions: Counter = field(default_factory=Counter)  # (marker, next content token) -> count
    unknown: frozenset[str] = frozenset()  # content tokens not in the dictionary (may be typos)
    spelled: dict[str, str] = field(default_factory=dict)  # content token -> the word as written (lower case)
    surface: str = ""  # lower case, letters and digits only: what the trigram score reads
    words: frozenset[str] = frozenset()  # every word as written (lower case), entities matched against these
    asks: frozenset[str] = frozenset()  # the question words that say what kind of answer is wanted (ASKS)
    units: tuple[str, ...] = ()  # per number, the content token right after it, or "" ("100 grams": "gram")

    @property
    def signature(self) -> tuple[str, ...]:
        """The content tokens, sorted: two questions can only match when these are equal (up to one typo)."""
        return tuple(sorted(self.content.elements()))


def _placeholders(text: str) -> tuple[str, list[Word]]:
    """Quoted strings, URLs and e-mail addresses out of the text, each replaced by a \\x00N\\x00 marker."""
    found: list[Word] = []

    def keep(kind: str, value: str) -> str:
        found.append(Word(value, kind))
        return f" \x00{len(found) - 1}\x00 "

    text = _URL.sub(lambda m: keep("entity", m.group(0).lower()), text)
    text = _EMAIL.sub(lambda m: keep("entity", m.group(0).lower()), text)
    text = _QUOTED.sub(lambda m: keep("quoted", " ".join(next(g for g in m.groups() if g is not None).split())), text)
    return text, found


def _shouting(tokens: list[str]) -> tuple[bool, bool]:
    """Whether the text is written in capitals or Title Case: then case says nothing about names."""
    alpha = [t for t in tokens if t[:1].isalpha()]
    if not alpha:
        return False, False
    upper = sum(t.isupper() and len(t) > 1 for t in alpha)
    title = sum(t[:1].isupper() for t in alpha)
    return upper > len(alpha) / 2, title > len(alpha) / 2 and len(alpha) > 2


def words_of(text: str) -> list[Word]:
    """The text as words: numbers normalised, identifiers and names marked, contractions expanded."""
    text = unicodedata.normalize("NFKC", text).translate(_QUOTE_CHARS)
    text, placeholders = _placeholders(text)
    text = _DASH.sub(" ; ", text)  # "password reset - how does it work?": two clauses
    tokens = _TOKEN.findall(text)
    shouting, title_case = _shouting(tokens)
    out: list[Word] = []
    sentence_start = True
    for token in tokens:
        if token.startswith("\x00"):
            out.append(placeholders[int(token.strip("\x00"))])
            sentence_start = False
            continue
        if token in _CLAUSE_END:
            out.append(Word(token, "punct"))
            sentence_start = token in _SENTENCE_END
            continue
        for word in _split_token(token, shouting, title_case):
            out.append(Word(word.text, word.kind, word.capitalised and not sentence_start, sentence_start))
            sentence_start = False
    return out


def _split_token(token: str, shouting: bool, title_case: bool) -> list[Word]:
    if token in SYMBOL_WORDS:
        return [Word(SYMBOL_WORDS[token])]
    if token == "#":
        return []  # "order #48213" = "order 48213"
    token = token.rstrip("'")
    if _NUMERIC.match(token):
        return [Word(_number(token), "number")]
    if "," in token or (":" in token and not any(c.isdigit() for c in token)):
        return [w for part in re.split(r"[,:]", token) for w in _split_token(part, shouting, title_case)]
    match = _ORDINAL.match(token.lower())
    if match:
        return [Word(ordinal(int(match.group(1))), "number")]
    match = _NUMBER_UNIT.match(token.lower())
    if match:
        return [Word(_number(match.group(1)), "number"), Word(match.group(2))]
    match = _VERSION.match(token)
    if match:
        return [Word("version"), Word(_number(match.group(1)), "number")]  # "v3.2" = "version 3.2"
    if _is_identifier(token):
        return [Word(token.lower().replace("-", ""), "entity")]
    if "-" in token:
        parts = token.split("-")
        if all(p.lower() in _NUMBER_WORDS or p.lower() in _TENS for p in parts):
            return [Word(p.lower()) for p in parts]
        joined = "".join(parts)
        # "Wi-Fi" = "wifi", "e-mail" = "email"; a pair the dictionary does not know as one word is two
        # ("a soft-yolk egg" = "an egg with a soft yolk").
        if not known(joined.lower()) and all(p.isalpha() and known(p.lower()) for p in parts):
            return [w for p in parts for w in _split_token(p, shouting, title_case)]
        token = joined
    lower = token.lower()
    if lower in CONTRACTIONS or "'" in lower:
        return [Word(w) for w in _expand(lower).split()]
    if token.isupper() and len(token) > 1 and not shouting:
        return [Word(lower, "entity")]  # an acronym: CSV, PIN, CPU
    capitalised = token[:1].isupper() and token != "I" and not shouting and not title_case
    return [Word(lower, "word", capitalised)]


def ordinal(n: int) -> str:
    """1 -> "1st", 2 -> "2nd", 11 -> "11th": "first" and "1st" are the same number."""
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _is_identifier(token: str) -> bool:
    """snake_case, camelCase, dotted.names, paths, and words mixing letters and digits (gpt-4o, A4)."""
    if "_" in token or "/" in token or _CAMEL.search(token):
        return True
    if "." in token:
        return True
    return any(c.isdigit() for c in token) and any(c.isalpha() for c in token)


def _number(text: str) -> str:
    if "," in text and re.fullmatch(r"\d{1,3}(?:,\d{3})+", text):
        text = text.replace(",", "")
    if re.fullmatch(r"\d+", text):
        return str(int(text))
    return text


def _expand(word: str) -> str:
    if word in CONTRACTIONS:
        return CONTRACTIONS[word]
    for suffix, replacement in _SUFFIXES.items():
        if word.endswith(suffix) and len(word) > len(suffix):
            return word[: -len(suffix)] + replacement
    if word.endswith("'s"):
        base = word[:-2]
        return f"{base} is" if base in _IS_BEFORE else base  # otherwise a possessive: "King's Cross"
    return word.replace("'", "")


# --- reducing to content tokens ------------------------------------------------------------------


def _numbers_in_words(words: list[Word]) -> list[Word]:
    """Number words as numbers ("two" = "2", "twenty five" = "25", "first" = "1st")."""
    out: list[Word] = []
    i = 0
    while i < len(words):
        word = words[i]
        if word.kind == "word" and word.text in _ORDINALS and not _second_as_time(words, i):
            out.append(Word(ordinal(_ORDINALS[word.text]), "number"))
            i += 1
            continue
        value, used = _read_number(words, i)
        if used:
            out.append(Word(str(value), "number"))
            i += used
            continue
        out.append(word)
        i += 1
    return _with_meridiem(out)


# "11 am" and "11 pm" are two times: the meridiem is part of the number, never a word to leave out.
_MERIDIEM = {"am": "am", "a.m": "am", "a.m.": "am", "pm": "pm", "p.m": "pm", "p.m.": "pm"}
_CLOCK = re.compile(r"(1[0-2]|0?[1-9])([:.][0-5][0-9])?")


# A part of the day says the same of a time on the clock: "7:30 tomorrow morning" = "7:30 am tomorrow".
_DAY_PARTS = {"morning": "am", "afternoon": "pm", "evening": "pm", "night": "pm", "tonight": "pm"}


def _with_meridiem(words: list[Word]) -> list[Word]:
    out: list[Word] = []
    for word in _past_the_hour(words):
        if word.text in _MERIDIEM and out and out[-1].kind == "number" and _CLOCK.fullmatch(out[-1].text):
            out[-1] = Word(_clock(out[-1].text) + _MERIDIEM[word.text], "number")
            continue
        out.append(word)
    parts = {_DAY_PARTS[w.text] for w in out if w.kind == "word" and w.text in _DAY_PARTS}
    if len(parts) == 1:
        (meridiem,) = parts
        for i, word in enumerate(out):
            if _on_the_clock(out, i):
                out[i] = Word(_clock(word.text) + meridiem, "number")
    return out


def _clock(text: str) -> str:
    """A time of day with a dot is the same time with a colon: "7.30 am" = "7:30 am" (only once it is
    known to be a time: "7.30" alone may be a price)."""
    return text.replace(".", ":")


_PAST_THE_HOUR = {("half", "past"): 30, ("quarter", "past"): 15, ("quarter", "to"): -15}


def _past_the_hour(words: list[Word]) -> list[Word]:
    """ "half past seven" = "7:30", "quarter to 8" = "7:45": the clock time, as a number."""
    out: list[Word] = []
    i = 0
    while i < len(words):
        minutes = _PAST_THE_HOUR.get((words[i].text, words[i + 1].text)) if i + 2 < len(words) else None
        hour = words[i + 2].text if minutes is not None and words[i + 2].kind == "number" else ""
        if minutes is not None and hour.isdigit() and 1 <= int(hour) <= 12:
            h = int(hour) if minutes > 0 else (int(hour) - 2) % 12 + 1
            out.append(Word(f"{h}:{minutes % 60:02d}", "number"))
            i += 3
            continue
        out.append(words[i])
        i += 1
    return out


def _on_the_clock(words: list[Word], i: int) -> bool:
    """A number that reads as a time of day: "7:30", or "at 11"."""
    word = words[i]
    if word.kind != "number" or not _CLOCK.fullmatch(word.text):
        return False
    return not word.text.isdigit() or (i > 0 and words[i - 1].text == "at")


def _second_as_time(words: list[Word], i: int) -> bool:
    # "a second", "per second", "30 second delay": time, not an ordinal.
    return words[i].text == "second" and i > 0 and words[i - 1].text in ("a", "per", "one", "each", "every")


def _read_number(words: list[Word], i: int) -> tuple[int, int]:
    total, current, used = 0, 0, 0
    while i + used < len(words) and words[i + used].kind == "word":
        text = words[i + used].text
        if text in _NUMBER_WORDS:
            current += _NUMBER_WORDS[text]
        elif text in _TENS:
            current += _TENS[text]
        elif text in _SCALES and used:
            current = max(current, 1) * _SCALES[text]
            if _SCALES[text] >= 1000:
                total, current = total + current, 0
        elif text == "and" and used and i + used + 1 < len(words) and words[i + used + 1].text in _NUMBER_WORDS:
            pass
        else:
            break
        used += 1
    return total + current, used


def _clauses(words: list[Word]) -> list[list[Word]]:
    clauses: list[list[Word]] = [[]]
    for word in words:
        if word.kind == "punct":
            if clauses[-1]:
                clauses.append([])
        else:
            clauses[-1].append(word)
    return [c for c in clauses if c]


def _reframe(clause: list[Word]) -> list[Word]:
    """Request frames and auxiliaries that only wrap the question, removed or folded (see FRAMES)."""
    plain = [w for w in clause if w.kind == "word"]
    if not plain:
        return clause
    # Frames are matched on the words' text; the words that survive keep their kind and case.
    start = 0
    while (
        start < len(clause)
        and clause[start].kind == "word"
        and clause[start].text in ("please", "so", "ok", "okay", "hi", "hello", "hey", "and")
    ):
        start += 1
    clause = _drop_polite(clause[start:])
    for _ in range(3):  # frames nest: "could you tell me | how to | reset ..."
        clause, changed = _strip_frame(clause)
        if not changed:
            break
    rendered = _render(clause)
    for pattern, template in REWRITES:
        match = pattern.fullmatch(rendered[0])
        if match is not None:
            clause = _rewrite(clause, rendered[1], match, template)
            rendered = _render(clause)
    text = " ".join(w.text for w in clause)
    for pattern, replacement in PHRASES:
        if pattern.search(text):
            clause = _replace_phrase(clause, pattern, replacement)
            text = " ".join(w.text for w in clause)
    return _drop_auxiliary(clause)


def _rendered(word: Word, i: int) -> str:
    if word.kind == "number":
        return "#" + word.text
    if word.kind == "quoted" or (word.kind == "entity" and not word.text.isalpha()):
        return f"\x01{word.kind[0]}{i}"
    return word.text


def _render(clause: list[Word]) -> tuple[str, list[tuple[int, int]]]:
    """The clause as `synonyms.REWRITES` read it, and where each word stands in that text."""
    spans, parts, at = [], [], 0
    for i, word in enumerate(clause):
        part = _rendered(word, i)
        spans.append((at, at + len(part)))
        parts.append(part)
        at += len(part) + 1
    return " ".join(parts), spans


def _rewrite(clause: list[Word], spans: list[tuple[int, int]], match: re.Match, template: str) -> list[Word]:
    """The clause rewritten by one of `synonyms.REWRITES` whose pattern matched all of it; the
    words a group matched keep their kind and case (a name stays a name, a number a number)."""
    out: list[Word] = []
    for piece in template.split():
        if piece.startswith("\\"):
            start, end = match.span(int(piece[1:]))
            out.extend(w for w, (a, b) in zip(clause, spans) if a >= start and b <= end)
        else:
            out.append(Word(piece))
    return out


def _drop_polite(clause: list[Word]) -> list[Word]:
    texts = [w.text if w.kind == "word" else "\x00" for w in clause]
    i, out = 0, []
    while i < len(clause):
        phrase = next((p for p in POLITE_PHRASES if tuple(texts[i : i + len(p)]) == p), None)
        if phrase:
            i += len(phrase)
        else:
            out.append(clause[i])
            i += 1
    return out


def _strip_frame(clause: list[Word]) -> tuple[list[Word], bool]:
    head = " ".join(w.text for w in clause) + " "
    for pattern, replacement in FRAMES:
        match = pattern.match(head)
        if match and _only_words(clause, match.end()):
            consumed = len(head[: match.end()].split())
            return [Word(t) for t in replacement.split()] + clause[consumed:], True
    return clause, False


def _only_words(clause: list[Word], length: int) -> bool:
    """A frame never swallows a number, a name or a quoted string."""
    consumed = 0
    for word in clause:
        if consumed >= length:
            return True
        if word.kind != "word":
            return False
        consumed += len(word.text) + 1
    return True


def _replace_phrase(clause: list[Word], pattern: re.Pattern, replacement: str) -> list[Word]:
    texts = [w.text for w in clause]
    for size in range(min(7, len(texts)), 0, -1):
        for i in range(len(texts) - size + 1):
            if all(w.kind == "word" for w in clause[i : i + size]) and pattern.fullmatch(" ".join(texts[i : i + size])):
                return clause[:i] + [Word(t) for t in replacement.split()] + clause[i + size :]
    return clause


def _drop_auxiliary(clause: list[Word]) -> list[Word]:
    """After a question word: "<aux> I/we/one/it" loses the aux ("where can I park" = "where do I park")."""
    seen_wh = None
    for i, word in enumerate(clause[:-1]):
        if word.kind != "word":
            continue
        if word.text in WH_WORDS and seen_wh is None:
            seen_wh = word.text
        elif seen_wh and word.text in AUXILIARIES:
            subject = clause[i + 1].text
            if seen_wh == "how" and subject in ("you", "one", "we"):
                return clause[:i] + [Word("i")] + clause[i + 2 :]  # "how do you/we/one X" = "how do I X"
            if subject in AUX_SUBJECTS:
                return clause[:i] + clause[i + 1 :]
            return clause
    return clause


@lru_cache(maxsize=1)
def _lemmatiser():
    import simplemma  # imported on first use: loading its English dictionary takes ~0.2 s

    return simplemma


@lru_cache(maxsize=65536)
def lemma(word: str) -> str:
    """The dictionary form of a lower-case word; comparatives and superlatives keep their degree."""
    if word in _DEGREES:
        return word
    if word in LEMMA_FIXES:
        return LEMMA_FIXES[word]
    simplemma = _lemmatiser()
    found = simplemma.lemmatize(word, lang="en").lower().replace("-", "")
    if found != word and word.endswith(("er", "est")) and not found.endswith(("er", "est")):
        return word  # "cheaper" is not "cheap"
    if found == word and not known(word):
        return _strip_inflection(word)
    if word.endswith("ing") and word not in ING_NOUNS and (found == word or found == word[:-3] + "e"):
        return _verb_of(word)  # also where the dictionary adds an e it should not ("growing" -> "growe")
    return found


# Words in -ing that the dictionary keeps as they are: a noun of their own ("the building", "the
# morning"), not the verb's gerund (those fold: "clearing the cache" = "clear the cache").
ING_NOUNS = frozenset(
    ["building", "morning", "evening", "ceiling", "wedding", "feeling", "clothing", "heading", "ending"]
    + ["warning", "hearing", "timing", "meaning", "thing", "string", "spring", "ring", "king", "wing", "during"]
    + ["pudding", "stuffing", "filling", "topping", "dressing", "lining", "seasoning", "setting"]
    + ["housing", "funding", "icing", "offering", "saving", "being", "nothing"]
    + ["something", "anything", "everything", "sing", "bring", "sling", "sting", "swing", "fling", "cling"]
)


def _verb_of(word: str) -> str:
    """ "clearing" -> "clear", "closing" -> "close", "pricing" -> "price"; the word itself when no verb fits."""
    stem = word[:-3]
    # "closing" -> "close", "hoping" -> "hope" (the e dropped), but "growing" -> "grow", "clearing" -> "clear",
    # "listing" -> "list" (never an e after w, x or y, nor after a vowel and a consonant or two at the end):
    # the order matters, the dictionary knows odd words either way ("clos", "growe").
    kept_e = stem[-1:] not in ("w", "x", "y") and stem[-3:-2] not in ("a", "e", "i", "o", "u")
    ordered = (stem + "e", stem) if kept_e else (stem, stem + "e")
    for base in (*ordered, stem[:-1] if len(stem) > 2 and stem[-1] == stem[-2] else ""):
        if len(base) >= 3 and known(base):
            return base
    return word


@lru_cache(maxsize=65536)
def known(word: str) -> bool:
    """Whether the word is in the dictionary (an unknown word may be a typo)."""
    return bool(_lemmatiser().is_known(word, lang="en"))


@lru_cache(maxsize=65536)
def is_name(word: str) -> bool:
    """Whether the dictionary knows a lower-case word as a proper noun ("york", "monday")."""
    return _lemmatiser().lemmatize(word, lang="en")[:1].isupper()


def _strip_inflection(word: str) -> str:
    """For words the dictionary does not know (typos, jargon): the plain suffix rules."""
    for suffix, replacement in (("ies", "y"), ("sses", "ss"), ("es", "e"), ("s", ""), ("ing", ""), ("ed", "")):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3 and not word.endswith("ss"):
            return word[: -len(suffix)] + replacement
    return word


def quoted_name(word: Word) -> str | None:
    """A quoted string of one word is that word named, as a name is (case aside): "'notes.txt'" = "notes.txt",
    "the word 'ephemeral'" = "the word ephemeral". Quoted strings of several words stay exact strings."""
    if word.kind != "quoted" or not word.text or any(c.isspace() for c in word.text):
        return None
    return word.text.lower().replace("-", "")


def _token(word: Word) -> str:
    if word.kind == "quoted":
        return quoted_name(word) or "\x00quoted"
    if word.kind == "number":
        return "#" + word.text
    if word.kind == "entity":
        return word.text
    mapped = CLASSES.get(word.text)
    if mapped is not None:
        return mapped
    found = lemma(word.text)
    return SYNONYMS.get(word.text) or SYNONYMS.get(found) or found


# Words never joined with a neighbour into one compound: particles ("work out" is not a "workout", "set
# up" not a "setup") and adjectives whose compound names another thing ("a green house", "a greenhouse").
_NOT_COMPOUND = frozenset(
    ["up", "down", "out", "off", "over", "back", "away", "through", "under", "along", "around", "after", "every"]
    + ["green", "black", "white", "red", "blue", "yellow", "brown", "grey", "gray", "pink", "hot", "cold", "dark"]
    + ["light", "high", "low", "old", "new", "big", "small", "long", "short", "soft", "hard", "free", "full", "half"]
    + ["good", "bad", "open", "smart", "fast", "quick", "slow", "wild", "super", "other", "another", "one", "same"]
)


def _compounds(clause: list[Word]) -> list[Word]:
    """Two words the dictionary knows as one, joined: "sun roof" = "sunroof", "user name" = "username"."""
    out: list[Word] = []
    for word in clause:
        before = out[-1] if out else None
        if before is not None and _joinable(before, word):
            out[-1] = Word(before.text + word.text, "word", False, before.sentence_start)
        else:
            out.append(word)
    return out


def _joinable(a: Word, b: Word) -> bool:
    return (
        a.kind == b.kind == "word"
        and not (a.capitalised or b.capitalised)
        and min(len(a.text), len(b.text)) >= 3
        and not ({a.text, b.text} & (FUNCTION_WORDS | _NOT_COMPOUND))
        and known(a.text + b.text)
    )


# A noun that only names the kind of another word of the question, left out when that word is there:
# "which city is Australia's capital" = "what is Australia's capital", "is it open on a Monday" = "on
# Mondays" without "day". Kinds of a number or a quoted string must stand right before it: "order
# number 48213" = "order 48213", "the word 'ephemeral'" = "'ephemeral'", "a file called 'notes.txt'".
_WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
_MONTHS = ["january", "february", "march", "april", "june", "july", "august", "september", "october", "november", "december"]
KINDS_OF = {
    "city": frozenset(["capital"]),
    "town": frozenset(["capital"]),
    "day": frozenset(_WEEKDAYS + ["today", "tomorrow", "yesterday"]),
    "month": frozenset(_MONTHS),
    "language": frozenset(["english", "french", "spanish", "german", "italian", "portuguese", "dutch", "chinese"])
    | frozenset(["japanese", "russian", "arabic", "python", "javascript"]),  # not "go" (a verb), "rust"
    # A measure named beside its unit: "at an altitude of 2000 metres" = "at 2000 metres".
    "altitude": frozenset(["metre", "foot", "feet", "kilometre", "mile"]),
    "elevation": frozenset(["metre", "foot", "feet", "kilometre", "mile"]),
    "distance": frozenset(["metre", "foot", "feet", "kilometre", "mile"]),
    "weight": frozenset(["kilogram", "gram", "pound", "ounce", "stone"]),
    "colour": frozenset(["red", "blue", "green", "yellow", "black", "white", "orange", "purple", "pink", "brown", "grey"]),
}
# Not "no": "are there no 5 star hotels" is a negation.
KINDS_BEFORE = {"number": "number", "num": "number", "version": "number", "word": "quoted", "term": "quoted"}
KINDS_BEFORE.update({"phrase": "quoted", "expression": "quoted", "called": "*", "named": "*"})


# A noun after a name or a word of its kind adds nothing: "PIN number", "internet connection".
_LINKS = frozenset(["wifi", "internet", "broadband", "bluetooth", "ethernet", "network"])
KINDS_AFTER = {"number": frozenset(), "connection": _LINKS}


def _only_a_kind(clause: list[Word], i: int, token: str, present: set[str]) -> bool:
    members = KINDS_OF.get(token)
    if members is not None and members & present:
        return True
    before = clause[i - 1] if i else None
    if (
        before is not None
        and clause[i].text in KINDS_AFTER
        and (before.kind == "entity" or before.text in KINDS_AFTER[clause[i].text])
    ):
        return True  # "my PIN number" = "my PIN", "the internet connection" = "the internet"
    kind = KINDS_BEFORE.get(clause[i].text)
    if kind is None or i + 1 >= len(clause):
        return False
    after = clause[i + 1]
    if kind == "*":  # "called X", "named X": a name or a quoted string follows
        return after.kind in ("quoted", "entity") or after.capitalised
    return after.kind == kind or (kind == "quoted" and _named_word(clause, i + 1))


# Words of a question about a word: there "the word X" names X, as "the word 'X'" does.
_ABOUT_A_WORD = frozenset(["mean", "meaning", "define", "definition", "spell", "pronounce", "translate", "synonym"])
_ABOUT_A_WORD |= frozenset(["antonym", "plural", "rhyme", "origin", "etymology"])


def _named_word(clause: list[Word], i: int) -> bool:
    """Whether clause[i] is the word a question about a word names: "what does the word ephemeral mean"."""
    return (
        0 < i < len(clause)
        and clause[i].kind == "word"
        and clause[i - 1].text in ("word", "term")
        and clause[i].text not in FUNCTION_WORDS
        and any(w.kind == "word" and w.text in _ABOUT_A_WORD for w in clause)
    )


# A short message's one-word clause that names again a word of another clause adds nothing ("List vs
# tuple: what's the difference?"); in a longer message a repeated word may be one of many items.
RESTATED_MAX_CLAUSES = 3


def _drop_restated(content: Counter, per_clause: list[list[str]]) -> None:
    if len(per_clause) > RESTATED_MAX_CLAUSES:
        return
    for tokens in per_clause:
        if len(tokens) == 1 and tokens[0] and content[tokens[0]] > 1:
            content[tokens[0]] -= 1


@lru_cache(maxsize=1024)
def _quoted_words(text: str) -> Analysis:
    """The analysis of a quoted string's own words (as they would count unquoted)."""
    return analyse(text)


def analyse(text: str) -> Analysis:
    """The content tokens, numbers, quoted strings, names and directions of a question."""
    words = _numbers_in_words(words_of(text))
    content: Counter = Counter()
    directions: Counter = Counter()
    numbers: list[str] = []
    quoted: list[str] = []
    entities: set[str] = set()
    unknown: set[str] = set()
    spelled: dict[str, str] = {}
    clauses = [_compounds(_reframe(clause)) for clause in _clauses(words)]
    present = {_token(w) for clause in clauses for w in clause if w.kind == "word" or w.kind == "entity" or w.capitalised}
    per_clause: list[list[str]] = []
    units: list[str] = []  # per number, the content token right after it ("100 grams": "gram"), or ""
    for clause in clauses:
        pending: list[str] = []  # markers waiting for the next content token
        per_clause.append([])
        after_number = False
        for i, word in enumerate(clause):
            if word.kind == "word" and word.text in IGNORED:
                continue
            token = _token(word)
            if word.kind == "word" and (token in LIGHT or _only_a_kind(clause, i, token, present)):
                continue
            if word.kind == "word" and token in MARKERS:
                # A direction word is not a content word ("is it safe to take X" = "is taking X safe"): it
                # only says which way the next one points (the directions guard).
                pending.append(token)
                continue
            if after_number and word.kind == "word":
                units[-1] = token
            after_number = word.kind == "number"
            if word.kind == "number":
                numbers.append(word.text)
                units.append("")
            elif word.kind == "quoted" and quoted_name(word) is None:
                # A string of several words counts as its words (the quoted guard holds it exact): the
                # same words unquoted in another question are the same content ("`pip install`").
                quoted.append(word.text)
                inner = _quoted_words(word.text)
                content.update(inner.content)
                numbers.extend(inner.numbers)
                units.extend(inner.units)
                per_clause[-1].append("")
                if pending and inner.content:
                    first = next(iter(inner.content))
                    directions.update((marker, first) for marker in pending)
                    pending = []
                continue
            elif word.kind in ("entity", "quoted") or word.capitalised or _named_word(clause, i):
                entities.add(token)
            elif word.kind == "word" and word.text not in CLASSES and not known(word.text):
                unknown.add(token)
            content[token] += 1
            per_clause[-1].append(token if word.kind == "word" else "")
            spelled.setdefault(token, word.text)
            if pending:
                directions.update((marker, token) for marker in pending)
                pending = []
    _drop_restated(content, per_clause)
    asks = frozenset(ASKS[w.text] for clause in clauses for w in clause if w.kind == "word" and w.text in ASKS)
    surface = " ".join(re.sub(r"[^0-9a-z%$€£]+", " ", unicodedata.normalize("NFKC", text).lower()).split())
    all_words = frozenset(w.text for w in words if w.kind in ("word", "entity")) | frozenset(
        lemma(w.text) for w in words if w.kind == "word"
    )
    return Analysis(
        text,
        content,
        tuple(numbers),
        tuple(quoted),
        frozenset(entities),
        directions,
        frozenset(unknown),
        spelled,
        surface,
        all_words,
        asks,
        tuple(units),
    )
