"""The chunk streams chat completions and legacy completions share: every frame a JSON chunk
repeating id, created and model, choices arriving in pieces named by `index`, an optional usage
chunk, `[DONE]` last. Each endpoint's module says what its choices look like (`ChunkFormat`)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..core.entry import SSEEvent
from ..core.jsontext import compact_json
from .pieces import UnstreamableAnswer, copied
from .sse import DONE, MalformedStream, error_of, frames, is_done, json_event


@dataclass(frozen=True)
class ChunkFormat:
    """How one endpoint's choices stream.

    delta_key: the choice field whose pieces fold into `message` ("delta" for chat); None when the
    choice carries its text itself. new_choice(index): the empty choice pieces fold into.
    finish_choice: the folded choice as the plain answer has it. plan: a plain choice as the
    list of pieces that stream it.
    """

    plain_object: str
    chunk_object: str
    delta_key: str | None
    new_choice: Callable[[int], dict[str, Any]]
    finish_choice: Callable[[dict[str, Any]], dict[str, Any]]
    plan: Callable[[dict[str, Any]], list[dict[str, Any]]]


def ordered(choice: dict[str, Any], order: list[str]) -> dict[str, Any]:
    """The choice with these keys first, in this order (as the API writes them), the rest after."""
    return {**{k: choice[k] for k in order if k in choice}, **choice}


# --------------------------------------------------------------------------------------------
# Stream -> plain answer


def read_stream(fmt: ChunkFormat, events: list[SSEEvent]) -> tuple[dict[str, Any] | None, str | None]:
    """(the assembled answer or None, why the stream is not a whole answer or None). Whole: it
    ended with `[DONE]`, carried no error frame, and every frame folds into the answer."""
    try:
        body = assemble(fmt, events)
    except ValueError as exc:
        return None, str(exc)
    if not any(is_done(event) for event in events):
        return body, "the stream has no [DONE]: it was cut short"
    return body, None


def assemble(fmt: ChunkFormat, events: list[SSEEvent]) -> dict[str, Any]:
    chunks = [obj for _, obj in frames(events)]
    top = _top_level(chunks)
    body: dict[str, Any] = {
        "id": top.pop("id", None),
        "object": fmt.plain_object,
        "created": top.pop("created", None),
        "model": top.pop("model", None),
        "choices": _fold_choices(fmt, chunks),
    }
    usage_seen, usage = _usage(chunks)
    if usage_seen:
        body["usage"] = usage
    body.update(top)
    return body


def merge_delta(acc: dict[str, Any], delta: dict[str, Any]) -> dict[str, Any]:
    """Fold one delta into the accumulated object, as the SDK does: strings concatenate, lists
    grow (indexed ones merge by index), objects merge; numbers and flags take the latest value.
    A key seen only with null stays, so the answer has the same keys the stream had.

    Strings are gathered as pieces (`_Text`) and joined once by `joined`: concatenating per delta
    copies the text so far each time, quadratic in the answer's length (a 32 MB answer in 8 KB
    deltas took a minute of the loop every client shares)."""
    for key, value in delta.items():
        old = acc.get(key)
        if old is None:
            acc[key] = _merge_indexed([], value) if _is_indexed(value) else copied(value)
        elif value is None:
            continue
        elif key in ("index", "type", "id"):  # names, not text: never concatenated
            acc[key] = copied(value)
        elif isinstance(old, _Text) and isinstance(value, str):
            old.pieces.append(value)
        elif isinstance(old, str) and isinstance(value, str):
            acc[key] = _Text([old, value])
        elif isinstance(old, dict) and isinstance(value, dict):
            merge_delta(old, value)
        elif isinstance(old, list) and isinstance(value, list):
            if _is_indexed(value):
                _merge_indexed(old, value)
            else:
                old.extend(copied(value))
        else:
            acc[key] = copied(value)
    return acc


class _Text:
    """A string still arriving in pieces (see `merge_delta`)."""

    __slots__ = ("pieces",)

    def __init__(self, pieces: list[str]):
        self.pieces = pieces


def joined(value: Any) -> Any:
    """`value` folded by `merge_delta`, with every string still in pieces joined (in place)."""
    if isinstance(value, _Text):
        return "".join(value.pieces)
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, (_Text, dict, list)):
                value[key] = joined(item)
    elif isinstance(value, list):
        for at, item in enumerate(value):
            if isinstance(item, (_Text, dict, list)):
                value[at] = joined(item)
    return value


def _is_indexed(value: Any) -> bool:
    return isinstance(value, list) and any(isinstance(item, dict) and "index" in item for item in value)


def _merge_indexed(acc: list[Any], entries: list[Any]) -> list[Any]:
    # Entries of one list (tool calls) arrive in pieces that name their slot with `index`.
    for entry in entries:
        if not isinstance(entry, dict):
            raise MalformedStream(f"a streamed list entry is not an object: {entry!r}")
        slot = next((item for item in acc if isinstance(item, dict) and item.get("index") == entry.get("index")), None)
        if slot is None:
            acc.append(merge_delta({}, entry))
        else:
            merge_delta(slot, entry)
    return acc


_CHUNK_ONLY_KEYS = {"choices", "usage", "object", "obfuscation"}


def _top_level(chunks: list[dict[str, Any]]) -> dict[str, Any]:
    # Every chunk repeats id, created, model...: the latest non-null value of each key wins.
    top: dict[str, Any] = {}
    for chunk in chunks:
        for key, value in chunk.items():
            if key not in _CHUNK_ONLY_KEYS and (value is not None or key not in top):
                top[key] = value
    return top


def _usage(chunks: list[dict[str, Any]]) -> tuple[bool, Any]:
    seen, usage = False, None
    for chunk in chunks:
        if "usage" in chunk:
            seen = True
            if chunk["usage"] is not None:
                usage = chunk["usage"]
    return seen, usage


def _fold_choices(fmt: ChunkFormat, chunks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Fold the choices of every chunk by `index`."""
    accs: dict[int, dict[str, Any]] = {}
    for chunk in chunks:
        for choice in chunk.get("choices") or []:
            if not isinstance(choice, dict):
                raise MalformedStream(f"a streamed choice is not an object: {choice!r}")
            index = choice.get("index", 0)
            if not isinstance(index, int) or isinstance(index, bool):
                raise MalformedStream(f"a streamed choice has index {index!r}, not a number")
            acc = accs.setdefault(index, fmt.new_choice(index))
            for key, value in choice.items():
                if key == "index":
                    continue
                if key == fmt.delta_key:
                    if not isinstance(value, (dict, type(None))):
                        raise MalformedStream(f"a streamed delta is not an object: {value!r}")
                    merge_delta(acc["message"], value or {})
                elif key in ("logprobs", "text"):
                    merge_delta(acc, {key: value})
                elif value is not None or key not in acc:  # finish_reason and any extra: latest wins
                    acc[key] = value
    choices = []
    for index in sorted(accs):
        acc = joined(accs[index])
        acc.setdefault("finish_reason", None)
        choices.append(fmt.finish_choice(acc))
    return choices


# --------------------------------------------------------------------------------------------
# Plain answer -> stream


def split(fmt: ChunkFormat, body: dict[str, Any], include_usage: bool) -> list[SSEEvent]:
    head = {"id": body.get("id"), "object": fmt.chunk_object, "created": body.get("created"), "model": body.get("model")}
    repeated: dict[str, Any] = {k: body[k] for k in ("service_tier", "system_fingerprint") if k in body}
    extras = {k: v for k, v in body.items() if k not in head and k not in repeated and k not in ("choices", "usage")}
    with_usage = include_usage and "usage" in body

    def chunk(choices: list[dict[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {**head, **repeated, "choices": choices}
        if with_usage:
            out["usage"] = None
        return out

    chunks = [chunk(choices) for choices in _round_robin([fmt.plan(c) for c in _by_index(body.get("choices"))])]
    if not chunks:
        chunks = [chunk([])]
    chunks[0].update(copied(extras))  # anything else the answer carried rides on the first chunk
    if with_usage and body["usage"] is not None:
        chunks.append({**head, **repeated, "choices": [], "usage": copied(body["usage"])})
    return [json_event(c) for c in chunks] + [SSEEvent(data=DONE)]


def _round_robin(plans: list[list[dict[str, Any]]]) -> list[list[dict[str, Any]]]:
    # n > 1: choices take turns, one per chunk, first appearing in index order (the SDK's
    # accumulator relies on that order).
    out: list[list[dict[str, Any]]] = []
    for step in range(max((len(plan) for plan in plans), default=0)):
        out.extend([plan[step]] for plan in plans if step < len(plan))
    return out


def _by_index(choices: Any) -> list[dict[str, Any]]:
    if not isinstance(choices, list):
        raise UnstreamableAnswer("the answer has no `choices` list to stream")
    return sorted((c for c in choices if isinstance(c, dict)), key=lambda c: c.get("index", 0))


# --------------------------------------------------------------------------------------------
# A recorded stream fitted to the usage a request asked for


def _is_usage_chunk(obj: Any) -> bool:
    return isinstance(obj, dict) and obj.get("choices") == [] and obj.get("usage") is not None


_NULL_USAGE = '"usage":null'
_LAST_NULL_USAGE = ',"usage":null}'


def _fit_by_text(event: SSEEvent, include_usage: bool) -> SSEEvent | None:
    """`adapt_stream`'s answer for one frame when its text settles it without decoding, else None.

    Exact for a frame that is JSON (every frame of a stored stream is; one that is not may lose a
    trailing `,"usage":null`). With no \\u escape in the text, a key "usage" can only appear as
    those letters. No mention: nothing to fit. One mention, as `"usage":null`: not a usage chunk
    and no usage to find, so the frame stays when usage was asked; when it was not, and that
    member ends the top-level object (the last member before the final brace always belongs to
    it), the member is cut from the text. Error frames keep theirs: they take the decoding path.
    """
    data = event.data
    if "\\u" in data:
        return None
    mentions = data.count("usage")
    if mentions == 0:
        return event
    if mentions != 1 or _NULL_USAGE not in data:
        return None
    if include_usage:
        return event
    if data.endswith(_LAST_NULL_USAGE) and event.event != "error" and '"error"' not in data:
        return SSEEvent(data=data[: -len(_LAST_NULL_USAGE)] + "}", event=event.event)
    return None


def adapt_stream(events: list[SSEEvent], include_usage: bool) -> list[SSEEvent]:
    """A recorded stream, fitted to a request that asked (or not) for `include_usage`.

    Asked and recorded with it, or not asked and recorded without: unchanged. Not asked: the usage
    chunk and the `usage: null` of every chunk go. Asked, recorded without: when some chunk
    carries usage (some upstreams put it on the last content chunk) a usage chunk is added; the
    true token counts are otherwise unknown, so nothing is made up.
    """
    out: list[SSEEvent] = []
    found_usage = None
    has_usage_chunk = False
    for event in events:
        if is_done(event):
            out.append(event)
            continue
        fitted = _fit_by_text(event, include_usage)
        if fitted is not None:
            out.append(fitted)
            continue
        try:
            obj = json.loads(event.data)
        except ValueError:
            out.append(event)
            continue
        if not isinstance(obj, dict) or error_of(event, obj) is not None:
            out.append(event)
            continue
        if _is_usage_chunk(obj):
            has_usage_chunk = True
            if include_usage:
                out.append(event)
            continue
        if obj.get("usage") is not None:
            found_usage = obj
        if not include_usage and "usage" in obj:
            obj = {k: v for k, v in obj.items() if k != "usage"}
            out.append(SSEEvent(data=compact_json(obj), event=event.event))
        else:
            out.append(event)
    if include_usage and not has_usage_chunk and found_usage is not None:
        usage_chunk = {k: v for k, v in found_usage.items() if k not in ("choices", "usage", "obfuscation")}
        usage_chunk.update(choices=[], usage=found_usage["usage"])
        at = next((i for i, e in enumerate(out) if is_done(e)), len(out))
        out.insert(at, json_event(usage_chunk))
    return out


def error_event(error: dict[str, Any]) -> SSEEvent:
    """The frame that ends a broken-off stream: the SDKs raise on any frame whose data holds `error`."""
    return SSEEvent(json.dumps({"error": error}))


# --------------------------------------------------------------------------------------------
# Reading a plain answer's choices


def choices(body: Any) -> list[dict[str, Any]]:
    """The answer's choices that are objects ([] for anything else)."""
    found = body.get("choices") if isinstance(body, dict) else None
    return [c for c in found if isinstance(c, dict)] if isinstance(found, list) else []


def finish_reason(body: Any) -> str | None:
    """Every choice's finish_reason, comma-separated (n > 1), None when there is no choice."""
    reasons = [str(c.get("finish_reason")) for c in choices(body)]
    return ",".join(reasons) if reasons else None
