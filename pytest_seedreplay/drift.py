"""Live drift: how a live answer compares with its recording. Pure functions, no I/O."""

from __future__ import annotations

import difflib
import math
from dataclasses import asdict, dataclass
from typing import Any

from .core.entry import Entry
from .shapes import Summary, answer_parts, entry_summary, prompt_text, vectors


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

    @property
    def fingerprint_changed(self) -> bool:
        return self.recorded and self.recorded_fingerprint != self.live_fingerprint

    @property
    def finish_reason_changed(self) -> bool:
        return self.recorded and self.recorded_finish_reason != self.live_finish_reason

    @property
    def drifted(self) -> bool:
        """The answer itself changed. A new fingerprint alone is reported but is not drift."""
        return self.recorded and (not self.verbatim or self.finish_reason_changed)

    def describe(self) -> str:
        """One line for a terminal: what changed, how similar the texts still are."""
        if not self.recorded:
            return f"{self.endpoint} {self.key}: no recording to compare with (live answer not checked)"
        if not self.drifted:
            note = " (system_fingerprint changed)" if self.fingerprint_changed else ""
            return f"{self.endpoint} {self.key}: unchanged{note}"
        return f"{self.endpoint} {self.key}: answer drifted ({', '.join(self.changes())})"

    def changes(self) -> list[str]:
        """The similarity, then only what changed: finish_reason, system_fingerprint."""
        parts = [f"similarity {self.similarity:.2f}"]
        if self.finish_reason_changed:
            parts.append(f"finish_reason {self.recorded_finish_reason} → {self.live_finish_reason}")
        if self.fingerprint_changed:
            parts.append(f"system_fingerprint {self.recorded_fingerprint} → {self.live_fingerprint}")
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
        )
        return data


def compare(recorded: Entry | None, live: Entry, live_read: Summary | None = None) -> Drift:
    """Set a live answer against its recording: verbatim, similarity, fingerprint, finish_reason.

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
    }
    if recorded is None:
        return Drift(recorded_text="", verbatim=False, similarity=0.0, recorded=False, **common)
    then = entry_summary(recorded)
    old_vectors, new_vectors = vectors(live.endpoint, then.body), vectors(live.endpoint, now.body)
    if old_vectors is not None and new_vectors is not None:
        verbatim, similarity = old_vectors == new_vectors, vector_similarity(old_vectors, new_vectors)
    else:
        verbatim = answer_parts(live.endpoint, then.body) == answer_parts(live.endpoint, now.body)
        similarity = 1.0 if verbatim else text_similarity(then.text, now.text)
    return Drift(
        recorded_text=then.text,
        verbatim=verbatim,
        similarity=similarity,
        recorded_fingerprint=then.system_fingerprint,
        recorded_finish_reason=then.finish_reason,
        **common,
    )


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
    scores = []
    for a, b in zip(recorded, live):
        if len(a) != len(b):
            return 0.0
        norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
        scores.append(sum(x * y for x, y in zip(a, b)) / norm if norm else float(a == b))
    return max(0.0, round(sum(scores) / len(scores), 4))  # 0.0 first: never a negative score, nor -0.0
