"""The index of recorded chat questions (Chat Completions and Anthropic Messages): which recording, if
any, answers a reworded question.

Requests are grouped by everything but the last user message (model, system prompt, earlier turns,
seed, temperature, tools, response_format, every other output-changing parameter): only the last
user message may differ. Within a group a question can only match one with the same content tokens
up to one typo, so the candidates are found by dictionary look-ups on the sorted content tokens
(and on them minus one token, for the typo) instead of a scan; the guards and the score then decide.
"""

from __future__ import annotations

import hashlib
import itertools
import threading
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..core.constants import CHAT, MESSAGES, RESPONSES, SIMILAR_DEFAULT_THRESHOLD
from ..core.key import canonical_json
from .guards import EXTRA_WORDS, FREE_ADDITIONS, MIN_TYPO_LENGTH, NEVER_ADDED, VAGUE_VERBS, typo_pairing, veto
from .measure import score as builtin_score
from .text import Analysis, analyse

# The threshold used when none is given or calibrated: the built-in score of a question that passes
# every guard is at least 0.6 (its content tokens are the same), and the lowest paraphrase of the
# shipped set scores 0.81; 0.7 leaves the surface free to change by about half its character trigrams.
DEFAULT_THRESHOLD = SIMILAR_DEFAULT_THRESHOLD


class Scorer(Protocol):
    """A similarity in [0, 1] between a new question and a recorded one (the guards run apart)."""

    name: str

    def score(self, query: Analysis, recorded: Analysis) -> float: ...


class BuiltinScorer:
    """The built-in measure (`measure.score`): no network, no model."""

    name = "builtin"

    def score(self, query: Analysis, recorded: Analysis) -> float:
        return builtin_score(query, recorded)


@dataclass(frozen=True)
class Match:
    """The recording that answers a reworded question: its key, the score, and the recorded question."""

    key: str
    score: float
    question: str


@dataclass(frozen=True)
class Question:
    """The last user message of one recorded chat request, and the group of requests it belongs to."""

    key: str
    group: str
    analysis: Analysis


# Where each endpoint keeps its turns, and the type of a text part in them.
_TURNS = {CHAT: "messages", MESSAGES: "messages", RESPONSES: "input"}
_TEXT_PART = {CHAT: "text", MESSAGES: "text", RESPONSES: "input_text"}


def question_of(canonical: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """(the last user text, the request's params with that text left out) of a canonical request this
    tier can answer, else None: Chat Completions, Anthropic's Messages (the key has dropped its cache
    markers) and the Responses API (`input` as a string is one user turn), when the last turn is the
    user's, in plain text or text parts only."""
    endpoint = canonical.get("endpoint")
    params = canonical.get("params")
    if endpoint not in _TURNS or not isinstance(params, dict):
        return None
    field = _TURNS[endpoint]
    turns = params.get(field)
    if endpoint == RESPONSES and isinstance(turns, str):
        return turns, {**params, field: None}
    if not isinstance(turns, list) or not turns or not isinstance(turns[-1], dict):
        return None
    last = turns[-1]
    if last.get("role") != "user" or last.get("type", "message") != "message":
        return None
    text = _text_of(last.get("content"), _TEXT_PART[endpoint])
    if text is None:
        return None
    return text, {**params, field: [*turns[:-1], {**last, "content": None}]}


def _text_of(content: Any, part_type: str) -> str | None:
    if isinstance(content, str):
        return content
    if (
        isinstance(content, list)
        and content
        and all(isinstance(p, dict) and p.get("type") == part_type and isinstance(p.get("text"), str) for p in content)
    ):
        return "\n".join(p["text"] for p in content)
    return None  # images, audio, files: another question whatever the words


def last_user_text(canonical: dict[str, Any]) -> str | None:
    """The last user text of a request this tier can answer (see `question_of`), else None."""
    found = question_of(canonical)
    return None if found is None else found[0]


def turns(canonical: dict[str, Any]) -> int:
    """How many turns a request this tier can answer holds (1 for a Responses `input` string)."""
    field = _TURNS.get(canonical.get("endpoint", ""), "messages")
    found = canonical.get("params", {}).get(field)
    return len(found) if isinstance(found, list) else 1


def split_request(canonical: dict[str, Any]) -> tuple[str, str] | None:
    """(group, last user text) of a canonical request; None when this tier cannot answer it.

    The group is a digest of the canonical request with the last user message's text left out (for
    Messages its `anthropic-version` / `anthropic-beta` headers stay in: they change the answer's shape)."""
    found = question_of(canonical)
    if found is None:
        return None
    text, params = found
    rest = canonical_json({**canonical, "params": params})
    return hashlib.sha256(rest.encode("utf-8", "surrogatepass")).hexdigest(), text


def _typo_slots(analysis: Analysis) -> list[str]:
    """Content tokens that may be a typo of another word (the only ones a match may differ in)."""
    return [
        t
        for t in analysis.content
        if max(len(t), len(analysis.spelled.get(t, t))) >= MIN_TYPO_LENGTH - 1
        and t[:1] not in "#\x00"
        and t not in analysis.entities
    ]


# Words added or left out are looked up for questions up to this many content tokens: the look-ups
# grow as the cube of the length, and a long message reworded is rarely a question asked again.
REWORDED_MAX_TOKENS = 16


def _shorter(signature: tuple[str, ...]) -> set[tuple[str, ...]]:
    """The signature less the words a rewording may leave out: one (of three or more), or two (of five
    or more), never a number, a quoted string or a negation."""
    if len(signature) > REWORDED_MAX_TOKENS:
        return set()
    free = [t for t in dict.fromkeys(signature) if t[:1] not in "#\x00" and t not in NEVER_ADDED]
    out: set[tuple[str, ...]] = set()
    for size in (1, 2):
        if len(signature) < 1 + 2 * size:
            break
        for left_out in itertools.combinations(free, size):
            rest = list(signature)
            for token in left_out:
                rest.remove(token)
            out.add(tuple(rest))
    return out


def _without(signature: tuple[str, ...], token: str) -> tuple[str, ...]:
    out = list(signature)
    out.remove(token)
    return tuple(out)


@dataclass
class _Group:
    by_signature: dict[tuple[str, ...], set[str]] = field(default_factory=dict)
    # The signature minus one typo-able token -> {key: whether that token is a dictionary word}: a question
    # with one typo finds its recording here. A typo pairs a known word with an unknown one, so only
    # those entries are candidates (templated questions share many partial signatures).
    by_partial: dict[tuple[str, ...], dict[str, bool]] = field(default_factory=dict)
    # The signature minus one or two tokens (`_shorter`): a rewording that leaves a word out ("calories in 100 g of
    # rice?" for "how many calories are in ..."). A near miss swaps a word, so it never only leaves one out.
    by_fewer: dict[tuple[str, ...], set[str]] = field(default_factory=dict)

    def add(self, question: Question) -> None:
        analysis = question.analysis
        signature = analysis.signature
        self.by_signature.setdefault(signature, set()).add(question.key)
        for token in _typo_slots(analysis):
            self.by_partial.setdefault(_without(signature, token), {})[question.key] = token not in analysis.unknown
        for shorter in _shorter(signature):
            self.by_fewer.setdefault(shorter, set()).add(question.key)

    def remove(self, question: Question) -> None:
        signature = question.analysis.signature
        _discard(self.by_signature, signature, question.key)
        for token in _typo_slots(question.analysis):
            _discard(self.by_partial, _without(signature, token), question.key)
        for shorter in _shorter(signature):
            _discard(self.by_fewer, shorter, question.key)

    def candidates(self, analysis: Analysis) -> set[str]:
        signature = analysis.signature
        found = set(self.by_signature.get(signature, ()))
        found.update(self.by_fewer.get(signature, ()))
        precise = tuple(t for t in signature if t not in VAGUE_VERBS)
        if precise != signature:  # "why am I getting an error" for "why does it fail with an error"
            found.update(self.by_signature.get(precise, ()))
            found.update(self.by_fewer.get(precise, ()))
        # A rewording that adds words: the recording's signature is the query's minus up to EXTRA_WORDS,
        # each one a word that asks the same (guards.FREE_ADDITIONS; any other is a detail).
        free = [t for t in signature if t in FREE_ADDITIONS]
        longest = min(EXTRA_WORDS, len(free), len(signature) - 1)
        if len(signature) > REWORDED_MAX_TOKENS + EXTRA_WORDS:
            longest = 0
        for size in range(1, longest + 1):
            for dropped in set(itertools.combinations(free, size)):
                rest = list(signature)
                for token in dropped:
                    rest.remove(token)
                found.update(self.by_signature.get(tuple(rest), ()))
        for token in _typo_slots(analysis):
            partial = self.by_partial.get(_without(signature, token))
            if partial:
                query_known = token not in analysis.unknown
                found.update(key for key, known in partial.items() if known != query_known)
        return found

    def __bool__(self) -> bool:
        return bool(self.by_signature)


def _discard(mapping: dict[tuple[str, ...], Any], signature: tuple[str, ...], key: str) -> None:
    keys = mapping.get(signature)
    if keys is not None:
        if isinstance(keys, set):
            keys.discard(key)
        else:
            keys.pop(key, None)
        if not keys:
            del mapping[signature]


def _words_apart(query: Analysis, recorded: Analysis) -> int:
    """How many content words one question has and the other has not (a typo counts as the same word)."""
    pairing = typo_pairing(query, recorded) or {}
    renamed = Counter({pairing.get(t, t): n for t, n in recorded.content.items()})
    return sum((renamed - query.content).values()) + sum((query.content - renamed).values())


class SimilarIndex:
    """Recorded chat requests, looked up by a reworded last user message.

    `add(key, canonical)` / `remove(key)` keep it in step with a store; `lookup(canonical)` returns the
    best `Match` that passes every guard and scores at least the threshold, or None. Safe to share
    between threads."""

    def __init__(self, threshold: float = DEFAULT_THRESHOLD, scorer: Scorer | None = None):
        self.threshold = threshold
        self.scorer: Scorer = scorer or BuiltinScorer()
        self._questions: dict[str, Question] = {}
        self._groups: dict[str, _Group] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_requests(
        cls, requests: Iterable[tuple[str, dict[str, Any]]], threshold: float = DEFAULT_THRESHOLD, scorer: Scorer | None = None
    ) -> SimilarIndex:
        """An index over (key, canonical request) pairs, e.g. a store's `iter_requests()`."""
        index = cls(threshold, scorer)
        for key, canonical in requests:
            index.add(key, canonical)
        return index

    def add(self, key: str, canonical: dict[str, Any]) -> bool:
        """Index one recorded request; False when this tier cannot answer with it (not a chat request
        ending with a user message)."""
        split = split_request(canonical) if isinstance(canonical, dict) else None
        if split is None:
            return False
        group, text = split
        question = Question(key, group, analyse(text))
        prepare = getattr(self.scorer, "prepare", None)
        if prepare is not None:
            prepare([question.analysis])
        with self._lock:
            self._remove(key)
            self._questions[key] = question
            self._groups.setdefault(group, _Group()).add(question)
        return True

    def remove(self, key: str) -> bool:
        with self._lock:
            return self._remove(key)

    def _remove(self, key: str) -> bool:
        question = self._questions.pop(key, None)
        if question is None:
            return False
        group = self._groups[question.group]
        group.remove(question)
        if not group:
            del self._groups[question.group]
        return True

    def sync(self, requests: Iterable[tuple[str, dict[str, Any]]]) -> tuple[int, int]:
        """Make the index hold exactly these recordings (a store's `iter_requests()`): (added, removed)."""
        seen: set[str] = set()
        added = 0
        for key, canonical in requests:
            seen.add(key)
            if key not in self._questions and self.add(key, canonical):
                added += 1
        gone = [key for key in list(self._questions) if key not in seen]
        for key in gone:
            self.remove(key)
        return added, len(gone)

    def lookup(self, canonical: dict[str, Any], threshold: float | None = None) -> Match | None:
        """The recording that answers this request's reworded last user message, if one is close enough."""
        found = self.passing(canonical)
        if found is None:
            return None
        ranked = self.ranked(*found, self.threshold if threshold is None else threshold)
        return ranked[0] if ranked else None

    def matches(self, canonical: dict[str, Any]) -> list[Match]:
        """Every recording that passes the guards for this request, best score first (no threshold)."""
        found = self.passing(canonical)
        return self.ranked(*found, float("-inf")) if found is not None else []

    def passing(self, canonical: dict[str, Any]) -> tuple[Analysis, list[Question]] | None:
        """The request's last user message analysed, and the recorded questions of its group that pass
        every guard against it (not yet scored); None when no recording can answer this request."""
        split = split_request(canonical) if isinstance(canonical, dict) else None
        if split is None:
            return None
        group_id, text = split
        with self._lock:
            group = self._groups.get(group_id)
            if group is None:
                return None
            query = analyse(text)
            candidates = [self._questions[key] for key in sorted(group.candidates(query))]
        return query, [c for c in candidates if veto(query, c.analysis) is None]

    def ranked(self, query: Analysis, questions: list[Question], threshold: float) -> list[Match]:
        """`questions` (from `passing`) scoring at least `threshold`, best first (ties: by key)."""
        # The recording with the fewest words apart comes first, then the best score: "the boiling time
        # for an egg" is "how long should I boil an egg", before "... an egg for a soft yolk".
        found = [
            (_words_apart(query, q.analysis), Match(q.key, self.scorer.score(query, q.analysis), q.analysis.text))
            for q in questions
        ]
        return [m for _, m in sorted(((d, m) for d, m in found if m.score >= threshold), key=lambda dm: (dm[0], -dm[1].score))]

    def __len__(self) -> int:
        return len(self._questions)

    def __contains__(self, key: object) -> bool:
        return key in self._questions

    @property
    def groups(self) -> int:
        return len(self._groups)
