"""Calibration from the recordings: which threshold gives no wrong answer on this cache's own questions.

Positives are paraphrases of the recorded questions (generated offline, plus the user's own file);
negatives are the other recorded questions and swaps between them (another number, another name,
another content word). The result is saved where `seedreplay proxy --similar auto` reads it:
`<cache dir>/similar.json` for a directory store, `.seedreplay/similar.json` for a Redis store.
"""

from __future__ import annotations

import json
import os
import random
import re
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..core.atomic import write_atomically
from .evaluate import Figures, Outcome, Probe, ask, figures, lowest_safe_threshold, question_index
from .index import Scorer, last_user_text
from .text import FUNCTION_WORDS, analyse, known

CALIBRATION_FILE = "similar.json"
CALIBRATION_FORMAT = 1
MIN_THRESHOLD = 0.6  # a pair that passes every guard scores at least this with the built-in measure
SWAPS_PER_QUESTION = 3


class CalibrationError(ValueError):
    """A calibration file cannot be read; the message names it and says what to do."""


@dataclass
class Calibration:
    """What `seedreplay similar calibrate` measured, and the threshold `--similar auto` uses."""

    threshold: float
    measure: str
    precision: float
    recall: float
    questions: int
    paraphrases: int
    negatives: int
    created: float
    format: int = CALIBRATION_FORMAT

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


NAMESPACES_DIR = "namespaces"  # where a directory store keeps its namespaces (store.disk; not imported: diskcache)


def calibration_path(store_target: str, namespace: str | None = None) -> Path:
    """Where the calibration of a store (of one `--namespace` of it) lives: inside a directory store,
    else under .seedreplay/. Each namespace has its own: its questions are its own."""
    if "://" in store_target and not store_target.startswith("file://"):
        return Path(".seedreplay") / (f"similar-{namespace}.json" if namespace else CALIBRATION_FILE)
    directory = Path(os.path.expanduser(store_target.removeprefix("file://")))
    if namespace:
        directory = directory / NAMESPACES_DIR / namespace
    return directory / CALIBRATION_FILE


def save_calibration(calibration: Calibration, path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, (json.dumps(calibration.to_dict(), indent=2) + "\n").encode("utf-8"))


def load_calibration(path: str | Path) -> Calibration:
    """The saved calibration; a clear error when it is missing, damaged or of a newer format."""
    path = Path(path)
    hint = "run `seedreplay similar calibrate` (with the same --cache-dir/--store) to make it"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CalibrationError(f"no similar-questions calibration at {path}; {hint}") from None
    except (OSError, ValueError) as exc:
        raise CalibrationError(f"cannot read the calibration {path} ({exc}); {hint}") from None
    if (
        not isinstance(data, dict)
        or data.get("format") != CALIBRATION_FORMAT
        or not isinstance(data.get("threshold"), (int, float))
    ):
        raise CalibrationError(f"{path} is not a calibration this seedreplay reads (format {CALIBRATION_FORMAT}); {hint}")
    known_fields = Calibration.__dataclass_fields__
    return Calibration(**{k: v for k, v in data.items() if k in known_fields})


# --- questions and probes from recordings -----------------------------------------------------------


def recorded_questions(requests: Iterable[tuple[str, dict[str, Any]]]) -> list[str]:
    """The distinct last user messages of recorded chat requests (what the tier can answer with)."""
    found: dict[str, None] = {}
    for _key, canonical in requests:
        text = last_user_text(canonical) if isinstance(canonical, dict) else None
        if text is not None and text.strip():
            found[text] = None
    return list(found)


def generated_paraphrases(questions: list[str], per_question: int, seed: int) -> list[Probe]:
    from ..paraphrase import paraphrases  # the generator lives beside this package, it is shared with fine-tune

    return [Probe(p, q, True, "generated") for q in questions for p in paraphrases(q, per_question, seed=seed)]


def other_questions(questions: list[str]) -> list[Probe]:
    """Each recorded question must not be answered with another one's recording."""
    return [Probe(q, q, False, "other question") for q in questions]


def swaps(questions: list[str], seed: int, per_question: int = SWAPS_PER_QUESTION) -> list[Probe]:
    """Each question with one number, one name or one content word swapped for one from another question."""
    rng = random.Random(f"swaps\0{seed}")
    numbers = sorted({n for q in questions for n in re.findall(r"\b\d+\b", q)})
    names = sorted({w for q in questions for w in _names(q)})
    words = sorted({w for q in questions for w in _content_words(q)})
    probes: list[Probe] = []
    for question in questions:
        made = set()
        for kind, pool, found in (
            ("number swap", numbers, re.findall(r"\b\d+\b", question)),
            ("name swap", names, _names(question)),
            ("word swap", words, _content_words(question)),
        ):
            if not found:
                continue
            old = rng.choice(found)
            choices = [w for w in pool if w.lower() != old.lower()] or ([str(int(old) + 1)] if old.isdigit() else [])
            if not choices:
                continue
            new = rng.choice(choices)
            text = re.sub(rf"\b{re.escape(old)}\b", new, question, count=1)
            if text != question and text not in made:
                made.add(text)
                probes.append(Probe(text, question, False, kind))
            if len(made) >= per_question:
                break
    return probes


def _names(question: str) -> list[str]:
    words = re.findall(r"(?<![.?!]\s)(?<!^)\b[A-Z][a-z]+\b", question)
    return [w for w in words if w.lower() not in FUNCTION_WORDS]


def _content_words(question: str) -> list[str]:
    analysis = analyse(question)
    return [
        w for w in re.findall(r"\b[a-z]{4,}\b", question) if w not in FUNCTION_WORDS and known(w) and w not in analysis.entities
    ]


@dataclass
class Result:
    """A calibration and the figures behind it."""

    calibration: Calibration
    figures: Figures
    outcomes: list[Outcome]
    generated: int
    from_file: int
    other_questions: int
    swapped: int


def calibrate(
    questions: list[str],
    extra_paraphrases: Iterable[Probe] = (),
    per_question: int = 3,
    seed: int = 0,
    scorer: Scorer | None = None,
    floor: float = MIN_THRESHOLD,
) -> Result:
    """The lowest threshold with no wrong answer on probes built from these questions, and its figures."""
    extra = list(extra_paraphrases)
    pool = list(dict.fromkeys(questions + [p.question for p in extra]))
    generated = generated_paraphrases(questions, per_question, seed)
    others = other_questions(pool)
    swapped = swaps(pool, seed)
    index = question_index(pool, scorer)
    outcomes = ask(index, generated + extra + others + swapped)
    threshold = lowest_safe_threshold(outcomes, floor)
    result = figures(outcomes, threshold)
    calibration = Calibration(
        threshold=threshold,
        measure=getattr(scorer, "name", "builtin") if scorer else "builtin",
        precision=round(result.precision, 4),
        recall=round(result.recall, 4),
        questions=len(pool),
        paraphrases=result.paraphrases,
        negatives=result.negatives,
        created=time.time(),
    )
    return Result(calibration, result, outcomes, len(generated), len(extra), len(others), len(swapped))
