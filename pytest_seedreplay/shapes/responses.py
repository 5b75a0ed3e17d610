"""`/v1/responses` answers: a `response` object, or its stream of named, numbered events
(created, in_progress, output items with their text / refusal / argument deltas, completed)."""

from __future__ import annotations

import copy
import json
from typing import Any

from ..core.entry import SSEEvent
from .pieces import UnstreamableAnswer, copied, token_pieces, words
from .sse import FAILED_EVENTS, FINISHED_EVENTS, MalformedStream, frames, json_event
from .text import call_text

_TERMINAL_EVENT_BY_STATUS: dict[Any, str] = {"incomplete": "response.incomplete", "failed": "response.failed"}


# --- stream -> plain answer ---------------------------------------------------------------------


def _event_type(event: SSEEvent, obj: Any) -> str | None:
    if isinstance(obj, dict) and isinstance(obj.get("type"), str):
        return obj["type"]
    return event.event


def assemble(events: list[SSEEvent]) -> dict[str, Any]:
    """The response object of the stream's `response.completed` (or `.incomplete`) event."""
    done_items: dict[int, Any] = {}
    for event, obj in frames(events):
        kind = _event_type(event, obj)
        if kind == "response.output_item.done" and isinstance(obj.get("output_index"), int):
            done_items[obj["output_index"]] = obj.get("item")
        elif kind in FINISHED_EVENTS:
            response = obj.get("response")
            if not isinstance(response, dict):
                raise MalformedStream(f"a {kind} event without its response object")
            response = copy.deepcopy(response)
            if response.get("output") is None:  # the SDK rebuilds it from the finished items too
                response["output"] = [done_items[i] for i in sorted(done_items)]
            return response
        elif kind in FAILED_EVENTS:
            raise MalformedStream(f"the stream ended with {kind}")
    raise MalformedStream("the stream has no response.completed event: it was cut short")


def read_stream(events: list[SSEEvent]) -> tuple[dict[str, Any] | None, str | None]:
    """(the assembled answer or None, why the stream is not a whole answer or None). Whole: it
    ended with `response.completed` (or `.incomplete`) and carried no error frame."""
    try:
        return assemble(events), None
    except ValueError as exc:
        return None, str(exc)


def adapt_stream(events: list[SSEEvent], include_usage: bool) -> list[SSEEvent]:
    """A Responses stream always carries its usage in the last event: nothing to fit."""
    return list(events)


# --- plain answer -> stream ---------------------------------------------------------------------


class _Sequence:
    """Responses events are numbered in order."""

    def __init__(self) -> None:
        self.events: list[SSEEvent] = []

    def add(self, kind: str, **fields: Any) -> None:
        self.events.append(json_event({"type": kind, "sequence_number": len(self.events), **fields}, kind))


def _in_progress(response: dict[str, Any]) -> dict[str, Any]:
    snapshot = copy.deepcopy(response)
    snapshot.update(status="in_progress", output=[])
    for key in ("usage", "completed_at", "incomplete_details", "error"):
        if key in snapshot:
            snapshot[key] = None
    return snapshot


def _empty_part(part: dict[str, Any]) -> dict[str, Any]:
    empty = {"text": "", "refusal": "", "annotations": [], "logprobs": []}
    return {k: empty.get(k, copied(v)) if k != "type" else v for k, v in part.items()}


def _message_item_events(seq: _Sequence, at: int, item: dict[str, Any]) -> None:
    item_id = item.get("id") or ""
    where = {"item_id": item_id, "output_index": at}
    added = {**copy.deepcopy(item), "content": []}
    if "status" in added:
        added["status"] = "in_progress"
    seq.add("response.output_item.added", output_index=at, item=added)
    for j, part in enumerate(item.get("content") or []):
        part_at = {**where, "content_index": j}
        kind = part.get("type") if isinstance(part, dict) else None
        if kind not in ("output_text", "refusal"):
            seq.add("response.content_part.added", **part_at, part=copied(part))
            seq.add("response.content_part.done", **part_at, part=copied(part))
            continue
        seq.add("response.content_part.added", **part_at, part=_empty_part(part))
        if kind == "output_text":
            text = part.get("text") or ""
            logprobs = part.get("logprobs") or []
            tokens = token_pieces(text, [e.get("token") if isinstance(e, dict) else None for e in logprobs])
            if tokens:
                for token, entry in zip(tokens, logprobs):
                    seq.add("response.output_text.delta", **part_at, delta=token, logprobs=[copied(entry)])
            else:
                for p in words(text):
                    seq.add("response.output_text.delta", **part_at, delta=p, logprobs=[])
            for a, annotation in enumerate(part.get("annotations") or []):
                seq.add("response.output_text.annotation.added", **part_at, annotation_index=a, annotation=copied(annotation))
            seq.add("response.output_text.done", **part_at, text=text, logprobs=copied(logprobs))
        else:
            refusal = part.get("refusal") or ""
            for p in words(refusal):
                seq.add("response.refusal.delta", **part_at, delta=p)
            seq.add("response.refusal.done", **part_at, refusal=refusal)
        seq.add("response.content_part.done", **part_at, part=copied(part))
    seq.add("response.output_item.done", output_index=at, item=copy.deepcopy(item))


def _function_call_events(seq: _Sequence, at: int, item: dict[str, Any]) -> None:
    where = {"item_id": item.get("id") or "", "output_index": at}
    arguments = item.get("arguments") or ""
    added = {**copy.deepcopy(item), "arguments": ""}
    if "status" in added:
        added["status"] = "in_progress"
    seq.add("response.output_item.added", output_index=at, item=added)
    for p in words(arguments):
        seq.add("response.function_call_arguments.delta", **where, delta=p)
    seq.add("response.function_call_arguments.done", **where, arguments=arguments)
    seq.add("response.output_item.done", output_index=at, item=copy.deepcopy(item))


def split(body: dict[str, Any], include_usage: bool) -> list[SSEEvent]:
    """The events the API sends for this response (include_usage does not apply: usage rides on the last event)."""
    seq = _Sequence()
    seq.add("response.created", response=_in_progress(body))
    seq.add("response.in_progress", response=_in_progress(body))
    for at, item in enumerate(body.get("output") or []):
        if not isinstance(item, dict):
            raise UnstreamableAnswer(f"a response output item is not an object: {item!r}")
        if item.get("type") == "message":
            _message_item_events(seq, at, item)
        elif item.get("type") == "function_call":
            _function_call_events(seq, at, item)
        else:  # reasoning, tool calls of hosted tools...: announced, then finished whole
            added = copy.deepcopy(item)
            if "status" in added:
                added["status"] = "in_progress"
            seq.add("response.output_item.added", output_index=at, item=added)
            seq.add("response.output_item.done", output_index=at, item=copy.deepcopy(item))
    terminal = _TERMINAL_EVENT_BY_STATUS.get(body.get("status"), "response.completed")
    seq.add(terminal, response=copy.deepcopy(body))
    return seq.events


def error_event(error: dict[str, Any]) -> SSEEvent:
    """The `error` event that ends a broken-off stream: the event's own flat fields, and the error
    object too (the SDKs raise on either)."""
    data = {
        "type": "error",
        "code": error.get("code"),
        "message": error.get("message"),
        "param": error.get("param"),
        "error": error,
    }
    return SSEEvent(json.dumps(data), "error")


# --- what the answer says -----------------------------------------------------------------------


def _output(body: Any) -> list[dict[str, Any]]:
    output = body.get("output") if isinstance(body, dict) else None
    return [item for item in output if isinstance(item, dict)] if isinstance(output, list) else []


def answer_text(body: Any) -> str:
    """The text of every message part, and each function call as `[tool call] name(arguments)`, a line each."""
    texts = []
    for item in _output(body):
        if item.get("type") == "message":
            texts += [c.get("text", "") for c in item.get("content") or [] if isinstance(c, dict)]
        elif item.get("type") == "function_call":
            texts.append(f"[tool call] {call_text(item)}")
    return "\n".join(texts)


def reply_text(body: Any) -> str | None:
    """The output text of every message (the SDK's `output_text`), None when there is none."""
    parts = [
        part.get("text", "")
        for item in _output(body)
        if item.get("type") == "message"
        for part in item.get("content") or []
        if isinstance(part, dict) and part.get("type") == "output_text"
    ]
    return "".join(parts) or None


def answer_parts(body: Any) -> list[Any]:
    """What the model said, without ids, timestamps or usage: the output items."""
    return [_without_ids(item) for item in _output(body)]


def _without_ids(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_ids(v) for k, v in value.items() if k not in ("id", "call_id", "created_at")}
    if isinstance(value, list):
        return [_without_ids(v) for v in value]
    return value


def finish_reason(body: Any) -> str | None:
    """Why an incomplete response stopped (e.g. max_output_tokens), else its status."""
    if not isinstance(body, dict):
        return None
    details = body.get("incomplete_details")
    reason = details.get("reason") if isinstance(details, dict) else None
    return reason or body.get("status")
