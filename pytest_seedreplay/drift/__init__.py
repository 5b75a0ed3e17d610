"""Live drift: how a live answer compares with its recording, and the verdict on it. Pure, no I/O.

`behaviour` reads what an answer does per endpoint; `verdict` compares two of them; here they
meet the text similarity in one `Drift` per comparison.
"""

from __future__ import annotations

import difflib
from dataclasses import asdict, dataclass, field
from typing import Any

from ..core.constants import CHAT, COMPLETIONS, EMBEDDINGS, FAIL_ON_CHANGE
from ..core.entry import Entry
from ..core.key import normalize_endpoint
from ..shapes import Summary, answer_parts, entry_summary, prompt_text, vectors
from .behaviour import behaviour, seed_of, structured
from .verdict import (
    CHANGED,
    IDENTICAL,
    REWORDED,
    TEXT_MIN_SIMILARITY,
    VECTOR_MIN_COSINE,
    VERDICTS,
    cosines,
    differences,
    vector_differences,
)

__all__ = [
    "CHANGED",
    "IDENTICAL",
    "REWORDED",
    "TEXT_MIN_SIMILARITY",
    "VECTOR_MIN_COSINE",
    "VERDICTS",
    "Drift",
    "compare",
    "fails",
    "judge",
    "text_similarity",
    "vector_similarity",
]
_SEEDED_ENDPOINTS = (CHAT, COMPLETIONS)  # the APIs that take a `seed`


@dataclass
class Drift:
    """One live answer set against its recording (`recorded` False: there was nothing to compare)."""

    key: str
    endpoint: str
    prompt: str
    recorded_text: str
    live_text: str
    verbatim: bool
    similarity: float
    recorded_fingerprint: str | None = None
    live_fingerprint: str | None = None
    recorded_finish_reason: str | None = None
    live_finish_reason: str | None = None
    recorded: bool = True
    finetune: str | None = None  # the fine-tuned model that gave the live answer (live fine-tune comparison)
    verdict: str = IDENTICAL  # identical, reworded or changed (see `verdict`)
    differences: list[str] = field(default_factory=list)  # each way the behaviour changed
    seeded: bool = True  # the request carried a `seed` (embeddings need none)

    @property
    def fingerprint_changed(self) -> bool:
        return self.recorded and self.recorded_fingerprint != self.live_fingerprint

    @property
    def finish_reason_changed(self) -> bool:
        return self.recorded and self.recorded_finish_reason != self.live_finish_reason

    @property
    def drifted(self) -> bool:
        """The answer itself changed (reworded or changed). A new fingerprint alone is not drift."""
        return self.recorded and self.verdict != IDENTICAL

    @property
    def hint(self) -> str | None:
        """Why an answer may drift for no reason of the model's: its request had no seed."""
        if not self.drifted or self.seeded:
            return None
        if normalize_endpoint(self.endpoint) in _SEEDED_ENDPOINTS:
            return "the request had no seed: answers vary from call to call; pass seed=... to make them repeatable"
        return "this API takes no seed: answers vary from call to call; judge them by the verdict, not the words"

    def describe(self) -> str:
        """One line for a terminal: what changed, how similar the texts still are."""
        if not self.recorded:
            return f"{self.endpoint} {self.key}: no recording to compare with (live answer not checked)"
        if not self.drifted:
            note = " (system_fingerprint changed)" if self.fingerprint_changed else ""
            return f"{self.endpoint} {self.key}: unchanged{note}"
        return f"{self.endpoint} {self.key}: answer drifted ({', '.join(self.changes())})"

    def changes(self) -> list[str]:
        """The similarity and the verdict, then what changed: each difference, system_fingerprint,
        and the hint when the request had no seed."""
        parts = [f"similarity {self.similarity:.2f}", self.verdict]
        if self.differences:
            parts[-1] += ": " + "; ".join(self.differences)
        if self.fingerprint_changed:
            parts.append(f"system_fingerprint {self.recorded_fingerprint} → {self.live_fingerprint}")
        if self.hint:
            parts.append(self.hint)
        return parts

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Drift:
        """The drift `to_dict` wrote (it travels as plain data from xdist workers)."""
        return cls(**{name: data[name] for name in cls.__dataclass_fields__ if name in data})

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(
            drifted=self.drifted,
            fingerprint_changed=self.fingerprint_changed,
            finish_reason_changed=self.finish_reason_changed,
            hint=self.hint,
        )
        return data


def compare(recorded: Entry | None, live: Entry, live_read: Summary | None = None) -> Drift:
    """Set a live answer against its recording: the verdict and its differences, verbatim,
    similarity, fingerprint, finish_reason.

    live_read: the live answer as the proxy already read it (`shapes.summary`), so a streamed answer
    is not assembled a second time; read from `live` when not given.
    """
    now = live_read if live_read is not None else entry_summary(live)
    common: dict[str, Any] = {
        "key": live.key,
        "endpoint": live.endpoint,
        "prompt": prompt_text(live.request),
        "live_text": now.text,
        "live_fingerprint": now.system_fingerprint,
        "live_finish_reason": now.finish_reason,
        "seeded": normalize_endpoint(live.endpoint) == EMBEDDINGS or seed_of(live.request) is not None,
    }
    if recorded is None:
        return Drift(recorded_text="", verbatim=False, similarity=0.0, recorded=False, **common)
    then = entry_summary(recorded)
    old_vectors, new_vectors = vectors(live.endpoint, then.body), vectors(live.endpoint, now.body)
    if old_vectors is not None and new_vectors is not None:
        verbatim, similarity = old_vectors == new_vectors, vector_similarity(old_vectors, new_vectors)
        found = [] if verbatim else vector_differences(old_vectors, new_vectors)
    else:
        verbatim = answer_parts(live.endpoint, then.body) == answer_parts(live.endpoint, now.body)
        similarity = 1.0 if verbatim else text_similarity(then.text, now.text)
        found = _behaviour_differences(live, then, now, similarity)
    same = verbatim and then.finish_reason == now.finish_reason
    return Drift(
        recorded_text=then.text,
        verbatim=verbatim,
        similarity=similarity,
        verdict=IDENTICAL if same else CHANGED if found else REWORDED,
        differences=found,
        recorded_fingerprint=then.system_fingerprint,
        recorded_finish_reason=then.finish_reason,
        **common,
    )


def judge(endpoint: str, recorded: Any, live: Any, similarity: float, request: Any = None) -> tuple[str, list[str]]:
    """(reworded or changed, the differences) of two answer bodies already known not to be verbatim:
    for callers that compare answers outside a live run (`finetune verify`)."""
    old, new = behaviour(endpoint, recorded), behaviour(endpoint, live)
    found = differences(old, new, structured(request), similarity) if old is not None and new is not None else []
    return (CHANGED if found else REWORDED), found


def fails(policy: str, drifted: list[Drift]) -> bool:
    """Whether these drifted answers fail their test under a drift policy: `fail` for any drift,
    `fail-on-change` only for a `changed` verdict, `warn` never."""
    if policy == "fail":
        return bool(drifted)
    if policy == FAIL_ON_CHANGE:
        return any(d.verdict == CHANGED for d in drifted)
    return False


def _behaviour_differences(live: Entry, then: Summary, now: Summary, similarity: float) -> list[str]:
    old, new = behaviour(live.endpoint, then.body), behaviour(live.endpoint, now.body)
    if old is None or new is None:
        return []
    return differences(old, new, structured(live.request), similarity)


# --- similarity ---------------------------------------------------------------------------------


def text_similarity(recorded: str, live: str) -> float:
    """difflib's ratio over words (0..1): robust to small edits, cheap on long answers."""
    if recorded == live:
        return 1.0
    return round(difflib.SequenceMatcher(None, recorded.split(), live.split(), autojunk=False).ratio(), 4)


def vector_similarity(recorded: list[list[float]], live: list[list[float]]) -> float:
    """Mean cosine similarity of paired vectors as a 0..1 score (unrelated or opposite: 0); 0 when
    the shapes differ."""
    if len(recorded) != len(live) or not recorded:
        return 1.0 if recorded == live else 0.0
    scores = cosines(recorded, live)
    if any(score is None for score in scores):
        return 0.0
    return max(0.0, round(sum(s for s in scores if s is not None) / len(scores), 4))  # never negative, nor -0.0
