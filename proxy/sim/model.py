"""The simulator's language model: a word-level Markov chain over a small bundled corpus.

Pure and deterministic: every choice is drawn from the `random.Random` the caller passes in, so the
same seed gives the same text on every platform and Python version.
"""

from __future__ import annotations

import math
import random
import re
from collections import defaultdict
from collections.abc import Iterable
from functools import lru_cache
from importlib import resources

# Pieces are what the simulator calls tokens: a word or a punctuation mark with the whitespace before
# it. Joining the pieces of a text gives the text back exactly, so streamed deltas add up to it.
_PIECE_RE = re.compile(r"\s*\w+(?:['’-]\w+)*|\s*[^\w\s]|\s+")
_WORD_RE = re.compile(r"\w+(?:['’-]\w+)*|[^\w\s]")
_SENTENCE_END = frozenset({".", "!", "?"})
_NO_SPACE_BEFORE = frozenset({".", ",", ";", ":", "!", "?", ")", "'"})
_START = "<s>"
# A sentence longer than this is cut short, so a chain that never reaches a full stop still ends.
MAX_SENTENCE_WORDS = 40


def pieces(text: str) -> list[str]:
    """Split text into tokens whose concatenation is exactly `text`."""
    return _PIECE_RE.findall(text)


def count_tokens(text: str) -> int:
    """Token count used for usage figures (about one per word or punctuation mark, like BPE on prose)."""
    return len(pieces(text))


def words(text: str) -> list[str]:
    """The words and punctuation marks of a text, without whitespace."""
    return _WORD_RE.findall(text)


def detokenize(tokens: Iterable[str]) -> str:
    out: list[str] = []
    for token in tokens:
        if out and token not in _NO_SPACE_BEFORE and out[-1] != "(":
            out.append(" ")
        out.append(token)
    return "".join(out)


class MarkovModel:
    """Trigram chain with bigram back-off, built from weighted texts.

    `backoff` is the share of bigram mass mixed into every step: more of it, more wandering.
    """

    def __init__(self, texts: Iterable[tuple[str, float]], backoff: float = 0.25):
        self.backoff = backoff
        self.trigrams: dict[tuple[str, str], dict[str, float]] = defaultdict(lambda: defaultdict(float))
        self.bigrams: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        for text, weight in texts:
            self._learn(text, weight)

    def _learn(self, text: str, weight: float) -> None:
        for sentence in _sentences(words(text)):
            history = [_START, _START]
            for token in sentence:
                self.trigrams[(history[-2], history[-1])][token] += weight
                self.bigrams[history[-1]][token] += weight
                history.append(token)

    def candidates(self, a: str, b: str) -> dict[str, float]:
        """Next-token weights after (a, b): trigram counts, plus a little bigram mass for variety."""
        merged: dict[str, float] = {}
        for token, weight in self.bigrams.get(b, {}).items():
            merged[token] = self.backoff * weight
        for token, weight in self.trigrams.get((a, b), {}).items():
            merged[token] = merged.get(token, 0.0) + weight
        return merged

    def generate(
        self,
        rng: random.Random,
        *,
        topic: frozenset[str] = frozenset(),
        sentences: int = 2,
        temperature: float = 1.0,
        top_p: float = 1.0,
        presence_penalty: float = 0.0,
        frequency_penalty: float = 0.0,
        opening: str = "",
    ) -> str:
        """Write `sentences` sentences, leaning towards words in `topic` (lower-cased).

        `opening` is a word the first sentence is made to start with (when the chain knows it).
        """
        produced: list[str] = []
        counts: dict[str, int] = defaultdict(int)
        for number in range(sentences):
            history = [_START, _START]
            if number == 0 and opening and (_START, opening) in self.trigrams:
                history.append(opening)
                produced.append(opening)
            for _ in range(MAX_SENTENCE_WORDS):
                options = self.candidates(history[-2], history[-1])
                if not options:
                    break
                weights = _shape(options, topic, counts, temperature, top_p, presence_penalty, frequency_penalty)
                token = _draw(rng, weights)
                produced.append(token)
                counts[token.lower()] += 1
                history.append(token)
                if token in _SENTENCE_END:
                    break
            else:
                produced.append(".")
        return detokenize(produced)


def _sentences(tokens: list[str]) -> list[list[str]]:
    out: list[list[str]] = [[]]
    for token in tokens:
        out[-1].append(token)
        if token in _SENTENCE_END:
            out.append([])
    return [s for s in out if s]


def _shape(
    options: dict[str, float],
    topic: frozenset[str],
    counts: dict[str, int],
    temperature: float,
    top_p: float,
    presence_penalty: float,
    frequency_penalty: float,
) -> list[tuple[str, float]]:
    # Temperature 0 is handled by the caller (a fixed seed); here it only sharpens the distribution.
    power = 1.0 / max(temperature, 0.25)
    shaped = []
    for token, weight in options.items():
        if token.lower() in topic:
            weight *= 4.0
        used = counts.get(token.lower(), 0)
        if used and token.isalpha():
            weight *= math.exp(-(presence_penalty + frequency_penalty * used))
        shaped.append((token, weight**power))
    if top_p < 1.0:
        shaped.sort(key=lambda item: -item[1])
        total = sum(w for _, w in shaped)
        kept, running = [], 0.0
        for token, weight in shaped:
            kept.append((token, weight))
            running += weight
            if running >= top_p * total:
                break
        shaped = kept
    return shaped


def _draw(rng: random.Random, weights: list[tuple[str, float]]) -> str:
    total = sum(w for _, w in weights)
    point = rng.random() * total
    for token, weight in weights:
        point -= weight
        if point < 0:
            return token
    return weights[-1][0]


def corpus_text() -> str:
    return resources.files(__package__).joinpath("corpus.txt").read_text(encoding="utf-8")


@lru_cache(maxsize=1)
def base_model() -> MarkovModel:
    """The model every base chat model shares (models differ by their seed salt, not their data)."""
    return MarkovModel([(corpus_text(), 1.0)])


def topic_words(text: str) -> frozenset[str]:
    """Content words of a prompt, used to steer generation towards its subject."""
    return frozenset(w.lower() for w in words(text) if w.isalpha() and len(w) > 3)
