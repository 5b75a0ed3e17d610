"""`/v1/embeddings` answers: vectors as lists of floats or as base64 little-endian float32 (what
the SDK asks for by default and decodes). They do not stream; a recording in either encoding
answers a request for the other."""

from __future__ import annotations

import array
import base64
import sys
from typing import Any

_SHOWN_VALUES = 4  # leading components shown in a vector's text


def _floats_to_base64(values: list[float]) -> str:
    try:
        packed = array.array("f", values)
    except TypeError:
        raise ValueError("an embedding holds something that is not a number") from None
    if sys.byteorder == "big":
        packed.byteswap()
    return base64.b64encode(packed.tobytes()).decode("ascii")


def _base64_to_floats(text: str) -> list[float]:
    try:
        raw = base64.b64decode(text, validate=True)
    except ValueError:
        raise ValueError(f"an embedding is neither a list of numbers nor base64: {text[:40]!r}") from None
    if len(raw) % 4:
        raise ValueError(f"a base64 embedding holds {len(raw)} bytes, not a whole number of float32")
    packed = array.array("f")
    packed.frombytes(raw)
    if sys.byteorder == "big":
        packed.byteswap()
    return _short_float32(packed.tolist())


def _short_float32(exact: list[float]) -> list[float]:
    """Each float32 written as a short decimal that reads back as the same float32, as the API
    prints them (0.1 and 3e-05, not 0.10000000149011612 and 2.9999999242136255e-05).

    Fewest digits first: 7 cover most numbers, shorter ones too (%g drops trailing zeros), 8
    nearly all the rest, 9 always do; a number whose shortest form has 7 digits or fewer may
    come out one digit longer, the same float32 all the same. A pass works on whole lists: array() does the float32
    round trip in C.
    """
    out = list(exact)
    todo = list(range(len(exact)))
    for digits in (7, 8):
        candidates = [float(f"{exact[i]:.{digits}g}") for i in todo]
        back = array.array("f", candidates).tolist()
        rest = []
        for i, candidate, read in zip(todo, candidates, back):
            if read == exact[i]:
                out[i] = candidate
            else:
                rest.append(i)
        todo = rest
    for i in todo:
        out[i] = float(f"{exact[i]:.9g}")
    return out


def convert(body: dict[str, Any], encoding_format: str | None) -> dict[str, Any]:
    """An embeddings answer in the encoding a request asked for ("float", the default, or
    "base64"). Returns a new dict; the input is left untouched."""
    target = encoding_format or "float"
    if target not in ("float", "base64"):
        raise ValueError(f"unknown embeddings encoding_format {encoding_format!r}: expected 'float' or 'base64'")
    out = dict(body)
    data = body.get("data")
    if not isinstance(data, list):
        return out
    converted = []
    for item in data:
        if isinstance(item, dict):
            item = dict(item)
            vector = item.get("embedding")
            if target == "base64" and isinstance(vector, list):
                item["embedding"] = _floats_to_base64(vector)
            elif target == "float" and isinstance(vector, str):
                item["embedding"] = _base64_to_floats(vector)
        converted.append(item)
    out["data"] = converted
    return out


def vectors(body: Any) -> list[list[float]]:
    """Every embedding in an answer as floats, whether sent as a list or as base64 float32 ([] when
    the base64 is not float32 vectors: nothing to compare)."""
    if not isinstance(body, dict):
        return []
    try:
        data = convert(body, "float").get("data") or []
    except ValueError:
        return []
    return [
        [float(v) for v in item["embedding"]]
        for item in data
        if isinstance(item, dict) and isinstance(item.get("embedding"), list)
    ]


def answer_text(body: Any) -> str:
    """A line per vector: its index, its size and its first components."""
    lines = []
    for index, vector in enumerate(vectors(body)):
        head = ", ".join(f"{v:.6f}" for v in vector[:_SHOWN_VALUES])
        more = ", …" if len(vector) > _SHOWN_VALUES else ""
        lines.append(f"embedding[{index}] ({len(vector)} dims): [{head}{more}]")
    return "\n".join(lines)


def reply_text(body: Any) -> str | None:
    """Vectors are no text reply."""
    return None


def answer_parts(body: Any) -> list[Any]:
    """What the model said: the vectors, as floats whatever their encoding."""
    return vectors(body)


def finish_reason(body: Any) -> str | None:
    """Embeddings have no finish_reason."""
    return None
