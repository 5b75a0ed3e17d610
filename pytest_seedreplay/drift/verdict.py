"""The verdict on a live answer against its recording: identical, reworded or changed. Pure.

`identical`: the same answer (ids, timestamps, usage aside). `reworded`: the same behaviour in
other words. `changed`: the behaviour differs, and `differences()` names each way it does.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from typing import Any

from .behaviour import Behaviour, Call

IDENTICAL, REWORDED, CHANGED = "identical", "reworded", "changed"
VERDICTS = (CHANGED, REWORDED, IDENTICAL)  # worst first, the order reports show them in

# Below this word similarity (difflib's ratio over words, 0..1) a plain-text answer no longer says
# the same thing in other words: it says something else. Rewordings of one answer by the same model
# score well above it; an unrelated answer scores below.
TEXT_MIN_SIMILARITY = 0.1
# Below this cosine an embedding no longer places the text where it did: another model or a broken
# one. The same model's vectors differ by float noise only (cosine > 0.999).
VECTOR_MIN_COSINE = 0.95
_SHOWN = 40  # characters of a value shown in a difference


def differences(
    recorded: list[Behaviour], live: list[Behaviour], as_json: bool, similarity: float, text_min: float = TEXT_MIN_SIMILARITY
) -> list[str]:
    """Each way the live answer behaves differently from the recording (empty: reworded at most).

    as_json: the request asked for JSON, so the answers' shapes are compared; similarity: the
    answers' word similarity, which decides plain-text answers against `text_min`.
    """
    found = []
    if len(recorded) != len(live):
        found.append(f"choices: {len(recorded)} → {len(live)}")
    several = len(recorded) > 1
    for index, (old, new) in enumerate(zip(recorded, live)):
        prefix = f"choice {index} " if several else ""
        found += [prefix + d for d in _choice(old, new, as_json)]
    plain = not as_json and not any(b.calls for b in recorded + live)
    if plain and not found and similarity < text_min:
        found.append(f"text: similarity {similarity:.2f} below {text_min:.2f}")
    return found


def _choice(old: Behaviour, new: Behaviour, as_json: bool) -> list[str]:
    found = []
    if old.finish_reason != new.finish_reason:
        found.append(f"{new.finish_field}: {old.finish_reason} → {new.finish_reason}")
    if old.refusal != new.refusal:
        found.append("refusal: appeared" if new.refusal else "refusal: vanished")
    found += call_differences(old.calls, new.calls)
    if as_json and not (old.refusal or new.refusal):
        found += shape_differences(old.text, new.text)
    return found


# --- tool calls ----------------------------------------------------------------------------------


def call_differences(recorded: list[Call], live: list[Call]) -> list[str]:
    """Tool calls compared as a set (parallel calls come in any order): names and arguments."""
    same = Counter(c.key() for c in recorded) & Counter(c.key() for c in live)
    old, new = _without(recorded, same), _without(live, same)
    found = []
    for call in list(old):  # the same tool called with other arguments
        twin = next((c for c in new if c.name == call.name), None)
        if twin is not None:
            old.remove(call)
            new.remove(twin)
            found += [f"{call.name} argument {d}" for d in _argument_differences(call.arguments, twin.arguments)]
    for before, after in zip(old, new):
        found.append(f"tool: {before.name} → {after.name}")
    found += [f"tool call {c.name}: vanished" for c in old[len(new) :]]
    found += [f"tool call {c.name}: appeared" for c in new[len(old) :]]
    return found


def _without(calls: list[Call], matched: Counter[str]) -> list[Call]:
    left, kept = Counter(matched), []
    for call in calls:
        if left[call.key()] > 0:
            left[call.key()] -= 1
        else:
            kept.append(call)
    return kept


def _argument_differences(old: Any, new: Any) -> list[str]:
    if not (isinstance(old, dict) and isinstance(new, dict)):
        return [f"(all): {_shown(old)} → {_shown(new)}"]
    found = []
    for name in old.keys() | new.keys():
        if name not in new:
            found.append(f"{name}: missing")
        elif name not in old:
            found.append(f"{name}: added {_shown(new[name])}")
        elif old[name] != new[name]:
            found.append(f"{name}: {_shown(old[name])} → {_shown(new[name])}")
    return sorted(found)


def _shown(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= _SHOWN else text[: _SHOWN - 1] + "…"


# --- structured output ---------------------------------------------------------------------------


def shape_differences(recorded: str, live: str) -> list[str]:
    """Two JSON answers compared by shape: the same keys with the same value types."""
    old, new = _json(recorded), _json(live)
    if old is _NOT_JSON and new is _NOT_JSON:
        return []
    if old is _NOT_JSON or new is _NOT_JSON:
        return ["answer: JSON no more" if new is _NOT_JSON else "answer: became JSON"]
    before, after = shape(old), shape(new)
    found = []
    for path in sorted(before.keys() | after.keys()):
        if path not in after:
            found.append(f"key {path}: missing")
        elif path not in before:
            found.append(f"key {path}: added")
        elif before[path] != after[path]:
            found.append(f"key {path}: {before[path]} → {after[path]}")
    return found


_NOT_JSON = object()


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return _NOT_JSON


def shape(value: Any, path: str = "") -> dict[str, str]:
    """Every path in a JSON value with its type: `{"a": [{"b": 1}]}` → a: array, a[].b: number.
    An array's items merge into one `[]` path (a list grows and shrinks; its items' shape is what counts)."""
    name = path or "(root)"
    if isinstance(value, dict):
        found = {name: "object"}
        for key, item in value.items():
            found.update(shape(item, f"{path}.{key}" if path else str(key)))
        return found
    if isinstance(value, list):
        found = {name: "array"}
        for item in value:
            found.update(shape(item, f"{path}[]"))
        return found
    return {name: _type(value)}


def _type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"  # 3 and 3.0 say the same thing
    return "string"


# --- embeddings ----------------------------------------------------------------------------------


def vector_differences(recorded: list[list[float]], live: list[list[float]], threshold: float = VECTOR_MIN_COSINE) -> list[str]:
    """Vectors in another number or size, or pointing elsewhere (cosine below `threshold`)."""
    if len(recorded) != len(live):
        return [f"vectors: {len(recorded)} → {len(live)}"]
    found = []
    for index, (a, b, cosine) in enumerate(zip(recorded, live, cosines(recorded, live))):
        if cosine is None:
            found.append(f"embedding[{index}]: dimensions {len(a)} → {len(b)}")
        elif cosine < threshold:
            found.append(f"embedding[{index}]: cosine {cosine:.2f} below {threshold:.2f}")
    return found


def cosines(recorded: list[list[float]], live: list[list[float]]) -> list[float | None]:
    """The cosine of each pair of vectors (None where their sizes differ; two zero vectors: 1)."""
    found: list[float | None] = []
    for a, b in zip(recorded, live):
        if len(a) != len(b):
            found.append(None)
            continue
        norm = math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))
        found.append(sum(x * y for x, y in zip(a, b)) / norm if norm else float(a == b))
    return found
