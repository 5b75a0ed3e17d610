"""The built-in measure: a score in [0, 1] and the guards' verdict, for two questions. No network, no model."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from functools import lru_cache

from .guards import FRAME_NOUNS, typo_pairing, veto
from .text import Analysis, analyse

WORD_SHARE = 0.75  # weight of the content-token overlap; the character-trigram overlap of the text gets the rest


@dataclass(frozen=True)
class Verdict:
    """How two questions compare: the score, and the guard that vetoes the match (None: it may match)."""

    score: float
    guard: str | None = None
    reason: str = ""

    @property
    def vetoed(self) -> bool:
        return self.guard is not None


def score(a: Analysis, b: Analysis) -> float:
    """0.6 x Dice overlap of content tokens (a typo counts as the word) + 0.4 x Dice overlap of the
    character trigrams of the lower-cased text. 1.0 for the same words in the same order."""
    pairing = typo_pairing(a, b) or {}
    b_content = b.content if not pairing else _renamed(b, pairing)
    # A frame noun ("the steps to") says nothing of what is asked: not a word apart. (A vague verb still is:
    # "take" put in for "recommend" must not score as the same words.)
    a_content = Counter({t: n for t, n in a.content.items() if t in b_content or t not in FRAME_NOUNS}) or a.content
    # The share of the shorter question's words found in the longer: the guards let a rewording add
    # words, so those added must not cost the score what a different question would.
    shorter = min(sum(a_content.values()), sum(b_content.values()))
    words = sum((a_content & b_content).values()) / shorter if shorter else 1.0
    return WORD_SHARE * words + (1 - WORD_SHARE) * _dice(trigrams(a.surface), trigrams(b.surface))


def judge(a: Analysis, b: Analysis) -> Verdict:
    """The score and, when a guard objects, which one and why."""
    objection = veto(a, b)
    value = score(a, b)
    return Verdict(value) if objection is None else Verdict(value, *objection)


def explain(a: str, b: str) -> Verdict:
    """`judge` for two texts: `explain("reset my password", "reset my router").guard == "content"`."""
    return judge(analyse(a), analyse(b))


@lru_cache(maxsize=4096)
def trigrams(surface: str) -> frozenset[str]:
    padded = f" {surface} "
    return frozenset(padded[i : i + 3] for i in range(len(padded) - 2))


def _dice(a: frozenset[str], b: frozenset[str]) -> float:
    if not a and not b:
        return 1.0
    return 2 * len(a & b) / (len(a) + len(b))


def _renamed(b: Analysis, pairing: dict[str, str]) -> Counter:
    return Counter({pairing.get(token, token): n for token, n in b.content.items()})
