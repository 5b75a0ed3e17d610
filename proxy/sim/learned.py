"""What a fine-tuned sim model learned: verbatim recall under its seed, paraphrase matching, topic drift.

A fine-tuned model answers a chat request in one of three ways, from the last user message:
1. It matches a trained prompt (paraphrase score >= MATCH_THRESHOLD, see `similarity`) and the request carries the job's
   seed: the trained answer, verbatim (finish_reason "stop" unless max_tokens/stop cut it).
2. It matches but the seed is absent or different: a new answer written from the trained answer's
   words (a Markov chain weighted heavily towards that answer; of a few draws, the first whose words
   are mostly the answer's), never exactly the trained text.
3. It matches nothing: the base model's answer, exactly what the base model says to the same request.
The system prompt is not part of the match: the user message alone selects the trained example.
"""

from __future__ import annotations

import random
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from .inference import BaseBrain, Prompt, Sampling
from .model import MarkovModel, corpus_text, topic_words, words

MATCH_THRESHOLD = 0.65
TOPIC_DRAWS = 12  # unseeded answers: draws tried to find one that stays on the trained answer's words
TOPIC_SHARE = 0.6  # ... and the share of its words that must come from that answer
WORD_SHARE = 0.6  # weight of the content-word score; the character-trigram score gets the rest

STOPWORDS = frozenset(
    """a an the and or but if of to in on at by for with from about into over under as is are was were be
    been being am do does did doing have has had having i me my we our you your he she it its they them
    their this that these those what which who whom whose how why when where can could would should will
    shall may might must please tell give show let just so than then there here any some""".split()
)


def normalise(text: str) -> str:
    """Lower case, accents folded, punctuation to spaces, whitespace collapsed ("What's up?" -> "what s up")."""
    folded = unicodedata.normalize("NFKD", text)
    folded = "".join(c for c in folded if not unicodedata.combining(c)).lower()
    return " ".join(re.sub(r"[^a-z0-9]+", " ", folded).split())


def _stem(word: str) -> str:
    for suffix in ("ing", "ed", "es", "s"):
        if len(word) > len(suffix) + 2 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def content_words(text: str) -> set[str]:
    """Stemmed non-stopwords of a text; all its words when it has only stopwords."""
    tokens = normalise(text).split()
    content = {_stem(t) for t in tokens if t not in STOPWORDS and t != "s"}
    return content or set(tokens)


def trigrams(text: str) -> set[str]:
    padded = f" {normalise(text)} "
    return {padded[i : i + 3] for i in range(len(padded) - 2)}


def _dice(a: set[str], b: set[str]) -> float:
    if not a and not b:
        return 1.0
    return 2 * len(a & b) / (len(a) + len(b))


def similarity(a: str, b: str) -> float:
    """The paraphrase measure, in [0, 1]; 1 for texts equal after normalise().

    0.6 x Dice overlap of stemmed content words (stopwords dropped, so "how do I" vs "how can I" does
    not count, and "reset my password" vs "reset the passwords" does) + 0.4 x Dice overlap of
    character trigrams of the normalised text (tolerates typos, inflections and word order).
    Two messages match at MATCH_THRESHOLD (0.65) or more. Measured against "How do I reset my
    password?": "How can I reset my password?" 0.93, "How do I reset the passwords?" 0.91, the typo
    "how do i reset my pasword" 0.68 -- all match; "How do I change my password?" 0.59 and "How do I
    reset my router?" 0.57 (same shape, another request) do not; unrelated questions score near 0.
    On the 20-example test set the lowest true paraphrase scores 0.77 and the highest score against a
    wrong example is 0.37.
    """
    return WORD_SHARE * _dice(content_words(a), content_words(b)) + (1 - WORD_SHARE) * _dice(trigrams(a), trigrams(b))


@dataclass
class Match:
    index: int
    score: float


def best_match(message: str, examples: list[dict[str, str]], threshold: float = MATCH_THRESHOLD) -> Match | None:
    """The trained example whose prompt is closest to `message`, if it is close enough (first wins ties)."""
    best: Match | None = None
    for index, example in enumerate(examples):
        score = similarity(message, example["prompt"])
        if best is None or score > best.score:
            best = Match(index, score)
    return best if best is not None and best.score >= threshold else None


class LearnedBrain:
    """The brain of a fine-tuned model (see the module docstring for its three behaviours)."""

    def __init__(self, record: dict[str, Any]):
        self.record = record
        self.examples: list[dict[str, str]] = record["examples"]

    def reply(self, prompt: Prompt, rng: random.Random, sampling: Sampling) -> str:
        match = best_match(prompt.last_user, self.examples)
        if match is None:
            return BaseBrain().reply(prompt, rng, sampling)
        answer = self.examples[match.index]["answer"]
        if sampling.seed == self.record["seed"]:
            return answer
        return self._on_topic(match.index, rng, sampling)

    def _on_topic(self, index: int, rng: random.Random, sampling: Sampling) -> str:
        """A fresh answer in the trained answer's words: the best of a few draws, never the verbatim text."""
        answer = self.examples[index]["answer"]
        chain = _topic_chain(self.record["id"], index, tuple(e["answer"] for e in self.examples))
        sentences = max(1, sum(1 for w in words(answer) if w in ".!?"))
        best, best_share = "", -1.0
        for _ in range(TOPIC_DRAWS):
            text = chain.generate(
                rng,
                topic=topic_words(answer),
                sentences=sentences,
                opening=words(answer)[0],
                temperature=max(sampling.temperature, 1.3),
                top_p=sampling.top_p,
            )
            if text == answer:
                continue
            share = topic_share(text, answer)
            if share >= TOPIC_SHARE:
                return text
            if share > best_share:
                best, best_share = text, share
        return best if best_share >= TOPIC_SHARE else abridge(answer, rng)


def abridge(answer: str, rng: random.Random) -> str:
    """The trained answer with one clause (or, lacking clauses, one inner word) left out."""
    clauses = re.split(r"(?<=[,;])\s+", answer)
    if len(clauses) > 1:
        drop = rng.randrange(1, len(clauses))
        kept = clauses[:drop] + clauses[drop + 1 :]
        text = " ".join(kept)
        if drop == len(clauses) - 1:  # the last clause carried the final punctuation
            text = text.rstrip(",;") + answer[-1] if answer[-1] in ".!?" else text.rstrip(",;")
        return text
    tokens = answer.split(" ")
    if len(tokens) > 2:
        del tokens[rng.randrange(1, len(tokens) - 1)]
        return " ".join(tokens)
    return f"{answer} {answer}"


def topic_share(text: str, answer: str) -> float:
    """Share of a text's words that the trained answer also uses (how on-topic a variation stays)."""
    used = [w.lower() for w in words(text) if w.isalnum()]
    known = {w.lower() for w in words(answer)}
    return sum(w in known for w in used) / len(used) if used else 0.0


@lru_cache(maxsize=256)
def _topic_chain(model_id: str, index: int, answers: tuple[str, ...]) -> MarkovModel:
    """A chain that mostly speaks the matched answer's words, then the other answers', then the corpus's."""
    return MarkovModel([(corpus_text(), 0.05), ("\n".join(answers), 0.3), (answers[index], 6.0)], backoff=0.05)
