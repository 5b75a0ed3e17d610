"""The guards: each vetoes a match, whatever the score, when two questions differ in what is asked.

Every guard is a pure function of two analysed questions that returns why they differ, or None.
A recorded answer is served for a reworded question only when no guard objects.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable

from .text import Analysis, lemma

MIN_TYPO_LENGTH = 5  # shorter words are never typos of each other ("pause"/"cause" are both words anyway)
LONG_WORD = 9  # from this length two slips in one word are still a typo
# A rewording may add up to this many words to the recorded question's ("how do I reset my password,
# I forgot it"), never take one away: a near miss swaps a word, so it always lacks one of the recording's.
EXTRA_WORDS = 3
# The only words a rewording may add: hedges, pronouns, everyday verbs and the nouns of a question's frame
# ("what are the steps to X", "what causes X", "how does X work"). Any other added word is a detail
# (a modifier, a condition, a person, a part, a time, a place, a quantity) and makes another question:
# "how do I reset my work password" must not get the answer of "how do I reset my password".
FREE_ADDITIONS = frozenset(
    ["just", "actually", "exactly", "really", "currently", "again", "still", "even", "also", "ever", "now"]
    + ["correct", "anyway", "here", "somewhere", "anywhere", "once", "if", "since", "that", "this", "it", "its", "they"]
    + ["their", "them", "get", "have", "go", "take", "make", "come", "put", "do", "help", "forget", "together", "all"]
    # Not a noun that also names a kind of thing before another ("work", "city", "command", "setting"):
    # "my work laptop" is a detail.
    + ["step", "way", "option", "cause"]
)
# The nouns of a question's frame ("what are the steps to X"): they cost the score nothing.
FRAME_NOUNS = frozenset(["step", "way", "option", "cause"])
# Words a rewording never adds: they turn the question round (negation, tense, modality, another question word).
NEVER_ADDED = frozenset(
    ["not", "no", "never", "without", "nothing", "none", "nobody", "nowhere", "past", "can", "should", "must", "or"]
    + ["how", "what", "why", "when", "where", "who", "whom", "whose"]
)


def numbers(a: Analysis, b: Analysis) -> str | None:
    """Numbers, in order ("2 months" vs "3 months", "15% of 240" vs "240% of 15")."""
    if a.numbers != b.numbers:
        return f"numbers differ: {_listed(a.numbers)} vs {_listed(b.numbers)}"
    return None


def units(a: Analysis, b: Analysis) -> str | None:
    """What each number counts, where both questions say it ("100 grams of rice" vs "100 calories"):
    the same words around the same number can ask the other way round."""
    for x, y in zip(a.units, b.units):
        if x and y and x != y and not (is_typo(x, a, y, b) or is_typo(y, b, x, a)):  # the content guard counts typos
            return f"a number counts another thing: {x} vs {y}"
    return None


def quoted(a: Analysis, b: Analysis) -> str | None:
    """Quoted strings of several words, exactly and in order ("`pip install`" vs "`pip uninstall`"); one
    quoted in one question only must be there in the other's words, unquoted ("why does pip install fail")."""
    if a.quoted == b.quoted:
        return None
    in_both = [q for q in a.quoted if q in b.quoted]
    unquoted = [q for q in a.quoted if q not in b.quoted and not _said(q, b)]
    unquoted += [q for q in b.quoted if q not in a.quoted and not _said(q, a)]
    if unquoted or in_both != [q for q in b.quoted if q in a.quoted]:
        return f"quoted strings differ: {_listed(a.quoted)} vs {_listed(b.quoted)}"
    return None


def _said(string: str, other: Analysis) -> bool:
    """Whether a quoted string's words stand, in order and unquoted, in the other question."""
    words = _plain(string)
    return bool(words) and f" {words} " in f" {other.surface} " and all(_plain(q) != words for q in other.quoted)


def _plain(text: str) -> str:
    return " ".join(re.sub(r"[^0-9a-z%$€£]+", " ", text.lower()).split())


def entities(a: Analysis, b: Analysis) -> str | None:
    """Names and identifiers: each one of either question must be in the other, in any case ("York" vs "Leeds")."""
    for this, other in ((a, b), (b, a)):
        for entity in sorted(this.entities):
            if entity not in other.entities and entity not in other.content:
                return f"name {entity!r} is only in one question"
    return None


def content(a: Analysis, b: Analysis) -> str | None:
    """Content words, as lemmas: the same multiset, up to one typo ("password" vs "router"), up to
    EXTRA_WORDS added to either, or (a the new question, b the recorded one) the new one's all in the
    recorded one's but its everyday verbs ("why am I getting a permission error" for "why does it fail
    with a permission error"): a near miss swaps in a word that says something, not "get" or "have"."""
    if typo_pairing(a, b) is None and added(a, b) is None and not vague_rewording(a, b):
        only_a = sorted((a.content - b.content).elements())
        only_b = sorted((b.content - a.content).elements())
        return f"content words differ: {_listed(only_a)} vs {_listed(only_b)}"
    return None


def asks(a: Analysis, b: Analysis) -> str | None:
    """The kind of answer wanted: two questions that both say it say the same ("when can I contact X"
    is not "how do I contact X"); one that does not say it may be either ("X: opening hours?")."""
    if a.asks and b.asks and a.asks.isdisjoint(b.asks):
        return f"asks another thing: {_listed(sorted(a.asks))} vs {_listed(sorted(b.asks))}"
    return None


def directions(a: Analysis, b: Analysis) -> str | None:
    """Which way each word shared by both questions points: a word that follows a direction word in
    both must follow the same ones ("from York to Leeds" vs "from Leeds to York"). A word pointed at in
    one question only is free ("5 km in miles" = "convert 5 km to miles" once rewritten, "is it safe
    to take X" = "is taking X safe")."""
    pairing = typo_pairing(a, b) or {}
    pointed_a = _pointed(a.directions, {})
    pointed_b = _pointed(b.directions, pairing)
    for target in sorted(pointed_a.keys() & pointed_b.keys()):
        if pointed_a[target] != pointed_b[target]:
            return (
                f"directions differ: {_listed(sorted(pointed_a[target].elements()))} {target} "
                f"vs {_listed(sorted(pointed_b[target].elements()))} {target}"
            )
    # And a direction word used in both points at the same shared words, one's a part of the other's
    # ("5 miles to km" vs "5 km to miles": "to" points at another word of the two).
    shared = a.content.keys() & {pairing.get(t, t) for t in b.content}
    for marker in sorted({m for m, _ in a.directions} & {m for m, _ in b.directions}):
        targets_a = {t for m, t in a.directions if m == marker} & shared
        targets_b = {pairing.get(t, t) for m, t in b.directions if m == marker} & shared
        if not (targets_a <= targets_b or targets_b <= targets_a):
            return f"directions differ: {marker} {_listed(sorted(targets_a))} vs {marker} {_listed(sorted(targets_b))}"
    return None


def _pointed(directions: Counter, pairing: dict[str, str]) -> dict[str, Counter]:
    out: dict[str, Counter] = {}
    for (marker, target), n in directions.items():
        out.setdefault(pairing.get(target, target), Counter())[marker] += n
    return out


def roles(a: Analysis, b: Analysis) -> str | None:
    """The same words in other roles: one word goes from its plain form to an inflected one while another
    goes the other way ("delete a restored file" vs "restore a deleted file", "stop a running process"
    vs "run a stopped process"). Content words are compared as a multiset, so without this the two ask
    alike; a rewording keeps each word's role ("how can a deleted file be restored": deleted stays)."""
    # Only a word written in both (in one form or another), not two synonyms folded into one token.
    shared = sorted(t for t in a.content.keys() & b.content.keys() if lemma(a.spelled.get(t, t)) == lemma(b.spelled.get(t, t)))
    plain_first = [t for t in shared if _form(t, a) == "plain" and _form(t, b) != "plain"]
    plain_then = [t for t in shared if _form(t, a) != "plain" and _form(t, b) == "plain"]
    if plain_first and plain_then:
        x, y = plain_first[0], plain_then[0]
        return f"words in other roles: {a.spelled[x]!r} and {a.spelled[y]!r} vs {b.spelled[x]!r} and {b.spelled[y]!r}"
    return None


def _form(token: str, a: Analysis) -> str:
    """How a content word is written: "ing", "past" ("deleted", "broken", "undone") or "plain" (its
    dictionary form, a plural, an abbreviation such as "m" for "metre")."""
    word = a.spelled.get(token, token)
    base = lemma(word)
    if base == word or word.endswith("s") or len(word) < 3 or word[:2] != base[:2]:
        return "plain"
    return "ing" if word.endswith("ing") else "past"


def empty(a: Analysis, b: Analysis) -> str | None:
    """A question with no content word ("Thanks!", "Hi") matches only itself."""
    if (not a.content or not b.content) and a.surface != b.surface:
        return "a question without content words matches only the same text"
    return None


# The order in which a veto is reported; all of them must pass.
Guard = Callable[[Analysis, Analysis], str | None]
GUARDS: tuple[Guard, ...] = (empty, numbers, quoted, entities, content, asks, directions, units, roles)


def veto(a: Analysis, b: Analysis) -> tuple[str, str] | None:
    """(guard name, reason) of the first guard that objects, or None when every guard lets the pair through."""
    for guard in GUARDS:
        reason = guard(a, b)
        if reason is not None:
            return guard.__name__, reason
    return None


def added(a: Analysis, b: Analysis) -> Counter | None:
    """The words one question adds to all of the other's (at most EXTRA_WORDS, no negation), or None;
    words the new question `a` adds must be FREE_ADDITIONS, never a detail."""
    if a.content == b.content:
        return None
    small, big = (a, b) if sum(a.content.values()) < sum(b.content.values()) else (b, a)
    if not small.content or small.content - big.content:
        return None
    extra = big.content - small.content
    # An added word is a new one: "the opening opening" is not "the opening hours" reworded.
    if sum(extra.values()) > EXTRA_WORDS or any(t in NEVER_ADDED or t in small.content for t in extra):
        return None
    # The new question may only add words that ask the same; it may leave out a word of the recorded one.
    if big is a and any(t not in FREE_ADDITIONS for t in extra):
        return None
    return extra


# Verbs so general that a rewording puts one where the recorded question has a precise one.
VAGUE_VERBS = frozenset(["get", "have", "go", "take", "put", "come"])


def vague_rewording(a: Analysis, b: Analysis) -> bool:
    """Whether the new question `a`, its everyday verbs left out, has only words of the recorded `b`
    and leaves out at most one of them (of four or more) (never a negation, a number or a quoted string)."""
    # Only a verb: a frame noun put where a word was left out is how a near miss swaps a noun ("the fees to
    # cancel ..." for "the steps to cancel ...").
    precise = Counter({t: n for t, n in a.content.items() if t not in VAGUE_VERBS})
    if precise == a.content or not precise or precise - b.content:
        return False
    left_out = b.content - precise
    return (
        sum(left_out.values()) <= 1
        and sum(b.content.values()) >= 4
        and not any(t in NEVER_ADDED or t[:1] in "#\x00" for t in left_out)
    )


def typo_pairing(a: Analysis, b: Analysis) -> dict[str, str] | None:
    """{b's token: a's token} for the one typo that makes the content equal; {} when equal; None otherwise."""
    if a.content == b.content:
        return {}
    only_a = a.content - b.content
    only_b = b.content - a.content
    if sum(only_a.values()) != 1 or sum(only_b.values()) != 1:
        return None
    x, y = next(iter(only_a)), next(iter(only_b))
    return {y: x} if is_typo(x, a, y, b) else None


def is_typo(x: str, a: Analysis, y: str, b: Analysis) -> bool:
    """Whether one of two words is a slip of the other: one is in the dictionary, the other is not,
    neither is a name, a number or a quoted string, and they are one edit apart (two in long words)."""
    names = a.entities | b.entities
    if x in names or y in names or x[:1] in "#\x00" or y[:1] in "#\x00":
        return False
    x_unknown, y_unknown = x in a.unknown, y in b.unknown
    if x_unknown == y_unknown:
        return False  # two real words ("toaster"/"roaster") or two unknown ones: not a typo
    # Compared as lemmas and as written: "calories"/"claories" are one swap apart, "calorie"/"claory" are not.
    x_spelled, y_spelled = a.spelled.get(x, x), b.spelled.get(y, y)
    word = y_spelled if x_unknown else x_spelled
    if len(word) < MIN_TYPO_LENGTH:
        return False
    allowed = 2 if len(word) >= LONG_WORD else 1
    return edit_distance(x, y, limit=2) <= allowed or edit_distance(x_spelled, y_spelled, limit=2) <= allowed


def edit_distance(a: str, b: str, limit: int) -> int:
    """Optimal-string-alignment distance (a swap of two neighbours is one edit), capped at limit + 1."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        current = [i] + [0] * len(b)
        for j, cb in enumerate(b, start=1):
            cost = 0 if ca == cb else 1
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                current[j] = min(current[j], previous2[j - 2] + 1)
        if min(current) > limit:
            return limit + 1
        previous2, previous = previous, current
    return previous[-1]


def _listed(values) -> str:
    """Tokens as a person reads them: numbers without their "#", a quoted string as <quoted>."""
    shown = ["<quoted>" if str(v) == "\x00quoted" else str(v).removeprefix("#") for v in values]
    return ", ".join(shown) if shown else "(none)"
