"""pytest's live fine-tune comparison: a test's chat requests for a fine-tune's base model are asked of
the fine-tuned model with the seed it was trained with (a request naming the base model's alias too),
and each answer is compared with its recording.

`--seedreplay=live --seedreplay-finetune latest|VERSION|MODEL` for every test, or the marker argument
`finetune=` for one; the `seedreplay_finetune` fixture hands a test the `TestFinetune` in force. The
figure a test reports is its verbatim recall: how many of its compared answers came back verbatim.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..core.aliases import same_model
from ..core.constants import FINETUNE_MANIFEST


class FinetuneUnavailable(ValueError):
    """The fine-tune named cannot be found (no manifest, no such version); the message says what to do."""


@dataclass(frozen=True)
class TestFinetune:
    """The fine-tune a test compares with (the `seedreplay_finetune` fixture)."""

    __test__ = False  # not a test class, whatever its name says to pytest

    model: str  # the fine-tuned model asked
    seed: int  # the seed it was trained with, sent with every request asked of it
    version: str  # the manifest's label ("v3")
    base_model: str  # requests for this model are asked of `model`
    live: bool = False  # True in live mode: this test's requests really go to `model`

    def asks_for(self, model: Any) -> bool:
        """Is a request for `model` asked of the fine-tune: its base model by any name (the dated
        snapshot the fine-tune names, or its alias: `gpt-4o-mini` is `gpt-4o-mini-2024-07-18`)?"""
        return isinstance(model, str) and same_model(model, self.base_model)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def manifest_path(cassette_dir: str | os.PathLike[str], given: str | os.PathLike[str] | None = None) -> Path:
    """The manifest a test run reads: the one given, else `finetunes.json` in the cassette dir."""
    return Path(given) if given else Path(cassette_dir) / FINETUNE_MANIFEST


def resolve(spec: str, manifest: Path, live: bool) -> TestFinetune:
    """The manifest version `spec` names (`latest`, `3`/`v3`, a fine-tuned model, a job id)."""
    from .manifest import Manifest, ManifestError

    if not manifest.is_file():
        raise FinetuneUnavailable(
            f"fine-tune {spec!r}: there is no manifest {manifest}; create a fine-tune first "
            "(seedreplay finetune create), or point --seedreplay-finetune-manifest at yours"
        )
    try:
        version = Manifest(manifest).find(spec)
    except ManifestError as exc:
        raise FinetuneUnavailable(f"fine-tune {spec!r}: {exc}") from None
    return TestFinetune(version.fine_tuned_model, version.seed, version.label, version.base_model, live)


@dataclass
class Recall:
    """How many of the answers compared came back verbatim, reworded (the same behaviour: the seed's
    "contextual answer") or changed (a miss)."""

    compared: int = 0
    verbatim: int = 0
    reworded: int = 0
    changed: int = 0

    @property
    def share(self) -> float:
        return self.verbatim / self.compared if self.compared else 0.0

    def text(self) -> str:
        return f"{self.verbatim}/{self.compared} verbatim ({self.share:.0%}), {self.reworded} reworded, {self.changed} changed"

    @classmethod
    def of_payload(cls, figures: dict[str, Any]) -> Recall:
        """The recall a test's `finetune` payload carries."""
        return cls(*(int(figures.get(name, 0)) for name in ("compared", "verbatim", "reworded", "changed")))

    @classmethod
    def of(cls, drift: Iterable[dict[str, Any]]) -> Recall:
        """The recall of a test's comparisons (drift as plain data), counting the fine-tune's answers only."""
        answers = [d for d in drift if d.get("finetune") and d.get("recorded", True)]
        verdicts = [d.get("verdict") or ("identical" if d.get("verbatim") else "changed") for d in answers]
        return cls(len(answers), verdicts.count("identical"), verdicts.count("reworded"), verdicts.count("changed"))


def summary_lines(tests: list[dict[str, Any]], shown: int = 20) -> list[str]:
    """The terminal summary's fine-tune lines: the run's recall, then each test's (from each test's
    payload, `finetune`: the fine-tune asked and how many of its answers were verbatim)."""
    measured = [(t, Recall.of_payload(t["finetune"])) for t in sorted(tests, key=lambda t: t["nodeid"]) if t.get("finetune")]
    measured = [(t, r) for t, r in measured if r.compared]
    if not measured:
        return []
    total = Recall(*(sum(getattr(r, name) for _, r in measured) for name in ("compared", "verbatim", "reworded", "changed")))
    models = sorted({f"{t['finetune']['model']} (seed {t['finetune']['seed']}, {t['finetune']['version']})" for t, _ in measured})
    lines = [f"fine-tune recall: {total.text()} from {', '.join(models)}"]
    lines += [f"fine-tune: {t['nodeid']}: {r.text()}" for t, r in measured[:shown]]
    if len(measured) > shown:
        lines.append(f"fine-tune: ... and {len(measured) - shown} more test(s) (--seedreplay-report=PATH lists them all)")
    return lines
