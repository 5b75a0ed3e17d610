"""Measuring the tier on a set of questions: paraphrases that should get their question's answer,
negatives that should get none; precision, recall and the lowest threshold with no wrong answer.

File formats (JSON Lines, one object a line, `#` lines and blank lines skipped):

    paraphrases: {"question": "How do I reset my password?", "paraphrases": ["how can I reset my password", ...]}
    negatives:   {"question": "How do I reset my password?", "negatives": ["How do I reset my router?"], "kind": "content"}

`question` is a recorded question; each paraphrase must be answered with that question's recording,
each negative must be answered with no recording at all (not this question's, not any other's).
`kind` (optional, any word) groups the figures. A question may have several lines.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.constants import CHAT
from .index import Match, Scorer, SimilarIndex
from .measure import score as builtin_score
from .text import analyse

PARAPHRASE, NEGATIVE = "paraphrase", "negative"


class SetError(ValueError):
    """A paraphrase or negative file cannot be read; the message names the file, the line and the fault."""


@dataclass(frozen=True)
class Probe:
    """One question asked of the index and what it must get: its question's answer, or none."""

    text: str
    question: str
    positive: bool
    kind: str


@dataclass(frozen=True)
class Outcome:
    """What the index answered a probe with, before any threshold: the best match that passed the guards."""

    probe: Probe
    match: Match | None

    @property
    def score(self) -> float | None:
        return None if self.match is None else self.match.score

    def wrong(self, threshold: float) -> bool:
        """A hit that serves an answer the probe must not get."""
        match = self.match
        if match is None or match.score < threshold:
            return False
        return not self.probe.positive or match.question != self.probe.question

    def hit(self, threshold: float) -> bool:
        return self.match is not None and self.match.score >= threshold


@dataclass
class Figures:
    """Precision and recall of one threshold over a list of outcomes."""

    threshold: float
    paraphrases: int
    negatives: int
    hits: int
    right: int
    wrong: int
    by_kind: dict[str, dict[str, int]] = field(default_factory=dict)
    wrong_examples: list[dict[str, Any]] = field(default_factory=list)

    @property
    def precision(self) -> float:
        return self.right / self.hits if self.hits else 1.0

    @property
    def recall(self) -> float:
        return self.right / self.paraphrases if self.paraphrases else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "threshold": self.threshold,
            "paraphrases": self.paraphrases,
            "negatives": self.negatives,
            "hits": self.hits,
            "right": self.right,
            "wrong": self.wrong,
            "precision": round(self.precision, 4),
            "recall": round(self.recall, 4),
            "by_kind": self.by_kind,
            "wrong_examples": self.wrong_examples,
        }


# --- reading the files ----------------------------------------------------------------------------


def _lines(path: str | Path) -> Iterable[tuple[int, dict[str, Any]]]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SetError(f"cannot read {path}: {exc}") from None
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise SetError(f"{path}:{number}: not JSON ({exc.msg}); each line is one JSON object") from None
        if not isinstance(row, dict) or not isinstance(row.get("question"), str) or not row["question"].strip():
            raise SetError(f'{path}:{number}: each line needs "question": "<a recorded question>"')
        yield number, row


def _texts(path: str | Path, number: int, row: dict[str, Any], field_name: str) -> list[str]:
    values = row.get(field_name)
    if not isinstance(values, list) or not all(isinstance(v, str) and v.strip() for v in values):
        raise SetError(f'{path}:{number}: "{field_name}" must be a list of non-empty strings')
    return values


def read_paraphrases(path: str | Path) -> list[Probe]:
    """Paraphrase probes from a JSONL file (see the module docstring)."""
    return [
        Probe(text, row["question"], True, str(row.get("kind") or PARAPHRASE))
        for number, row in _lines(path)
        for text in _texts(path, number, row, "paraphrases")
    ]


def read_negatives(path: str | Path) -> list[Probe]:
    """Negative probes from a JSONL file (see the module docstring)."""
    return [
        Probe(text, row["question"], False, str(row.get("kind") or NEGATIVE))
        for number, row in _lines(path)
        for text in _texts(path, number, row, "negatives")
    ]


# --- asking -------------------------------------------------------------------------------------


def question_request(text: str) -> dict[str, Any]:
    """The canonical chat request a bare question stands for: every question in one group."""
    return {"endpoint": CHAT, "params": {"messages": [{"role": "user", "content": text}], "model": "similar-set"}}


def question_index(questions: Iterable[str], scorer: Scorer | None = None) -> SimilarIndex:
    """An index whose recordings are these questions (keyed by their text)."""
    index = SimilarIndex(threshold=0.0, scorer=scorer)
    for question in dict.fromkeys(questions):
        index.add(question, question_request(question))
    return index


def ask(index: SimilarIndex, probes: Iterable[Probe]) -> list[Outcome]:
    """Each probe's best match, a recording with exactly the probe's own text left out (that one is
    an exact hit, not this tier's answer)."""
    outcomes = []
    for probe in probes:
        found = [m for m in index.matches(question_request(probe.text)) if m.question != probe.text]
        outcomes.append(Outcome(probe, found[0] if found else None))
    return outcomes


def figures(outcomes: list[Outcome], threshold: float, examples: int = 10) -> Figures:
    """Precision and recall at one threshold."""
    result = Figures(threshold, 0, 0, 0, 0, 0)
    kinds: dict[str, Counter] = {}
    for outcome in outcomes:
        probe = outcome.probe
        tally = kinds.setdefault(probe.kind, Counter())
        tally["probes"] += 1
        if probe.positive:
            result.paraphrases += 1
        else:
            result.negatives += 1
        if not outcome.hit(threshold):
            continue
        result.hits += 1
        tally["hits"] += 1
        if outcome.wrong(threshold) and outcome.match is not None:
            result.wrong += 1
            tally["wrong"] += 1
            if len(result.wrong_examples) < examples:
                result.wrong_examples.append(
                    {
                        "asked": probe.text,
                        "answered_with": outcome.match.question,
                        "score": round(outcome.match.score, 4),
                        "question": probe.question,
                        "kind": probe.kind,
                    }
                )
        elif probe.positive:
            result.right += 1
            tally["right"] += 1
    result.by_kind = {kind: {k: tally[k] for k in ("probes", "hits", "right", "wrong")} for kind, tally in sorted(kinds.items())}
    return result


def lowest_safe_threshold(outcomes: list[Outcome], floor: float) -> float:
    """The lowest threshold (3 decimals, not below `floor`) at which no probe gets a wrong answer."""
    wrong = [o.match.score for o in outcomes if o.match is not None and o.wrong(-1.0)]
    if not wrong:
        return floor
    return max(floor, math.floor(max(wrong) * 1000 + 1) / 1000)


def score_alone(questions: list[str], probes: list[Probe]) -> tuple[float, float]:
    """(threshold, recall) of the built-in score with the guards off: what a threshold alone must give
    up for zero wrong answers. Compares every probe with every question (for sets, not stores)."""
    analysed = {q: analyse(q) for q in dict.fromkeys(questions)}
    outcomes = []
    for probe in probes:
        query = analyse(probe.text)
        scored = [(builtin_score(query, a), q) for q, a in analysed.items() if q != probe.text]
        best = max(scored, default=None)
        outcomes.append(Outcome(probe, None if best is None else Match(best[1], best[0], best[1])))
    threshold = lowest_safe_threshold(outcomes, 0.0)
    return threshold, figures(outcomes, threshold).recall
