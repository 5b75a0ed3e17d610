"""Server-sent events: read and write the wire format, and turn a streamed answer into the plain
answer the API would have given, and back. Pure functions, no I/O.

A recorded answer is kept in the shape it came in (body or events); these functions let one shape
answer a request that asked for the other, shaped exactly as the openai SDKs expect.
"""

from __future__ import annotations

import array
import base64
import copy
import json
import re
import sys
from collections.abc import Iterable
from typing import Any

from ..core.constants import CHAT, COMPLETIONS, RESPONSES
from ..core.entry import Entry, SSEEvent
from ..core.jsontext import compact_json
from ..core.key import normalize_endpoint

DONE = "[DONE]"

# Terminal events of a Responses stream that carry a whole, storable answer. `incomplete` is a
# real answer too (e.g. max_output_tokens reached), the same one a plain request returns with 200.
_RESPONSE_FINISHED = {"response.completed", "response.incomplete"}
_RESPONSE_FAILED = {"response.failed", "error"}
_TERMINAL_EVENT_BY_STATUS = {"incomplete": "response.incomplete", "failed": "response.failed"}


class MalformedStream(ValueError):
    """A stream that cannot be turned into an answer: bad JSON, an error frame, nothing in it."""


# --------------------------------------------------------------------------------------------
# Wire format (https://html.spec.whatwg.org/multipage/server-sent-events.html)

_LINE_END = re.compile(rb"\r\n|\r|\n")
_DATA_LINE_END = re.compile(r"\r\n|\r|\n")


class SSEParser:
    """Incremental SSE parser: feed it chunks as they arrive, get the events completed so far.

    Lines end in LF, CRLF or CR, even when a CRLF is split between two chunks. Lines are decoded
    only once whole, so a UTF-8 character split between chunks decodes right.
    """

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self._partial = bytearray()  # the start of a line whose end has not arrived yet
        self._skip_lf = False  # the last chunk ended in CR: a LF opening the next one ends nothing
        self._first_line = True
        self._data: list[str] = []
        self._event: str | None = None

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        events: list[SSEEvent] = []
        if not chunk:
            return events
        chunk = bytes(chunk)  # bytearray / memoryview from a socket read
        start = 0
        if self._skip_lf and chunk[:1] == b"\n":
            start = 1
        self._skip_lf = False
        for match in _LINE_END.finditer(chunk, start):
            if self._partial:
                self._partial += chunk[start : match.start()]
                line = bytes(self._partial)
                self._partial.clear()
            else:
                line = chunk[start : match.start()]
            start = match.end()
            event = self._line(line)
            if event is not None:
                events.append(event)
        if start < len(chunk):
            self._partial += chunk[start:]
        elif chunk.endswith(b"\r"):
            self._skip_lf = True
        return events

    def close(self) -> list[SSEEvent]:
        """The end of the stream: a last event the upstream did not end with a blank line.

        The spec drops such an event; we keep it so a stream whose final `[DONE]` lacks its blank
        line still counts as complete. The parser is ready for a new stream afterwards.
        """
        events: list[SSEEvent] = []
        if self._partial:
            line = bytes(self._partial)
            self._partial.clear()
            self._line(line)
        event = self._dispatch()
        if event is not None:
            events.append(event)
        self._reset()
        return events

    def _line(self, raw: bytes) -> SSEEvent | None:
        line = raw.decode("utf-8", "replace")
        if self._first_line:
            self._first_line = False
            line = line.removeprefix("\ufeff")
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value or None
        # `id` and `retry` steer browser reconnection; OpenAI sends neither and an entry keeps no
        # place for them. Unknown fields are ignored, as the spec says.
        return None

    def _dispatch(self) -> SSEEvent | None:
        data, event = self._data, self._event
        self._data, self._event = [], None
        if not data:  # the spec: an event without data lines is not dispatched
            return None
        return SSEEvent(data="\n".join(data), event=event)


def parse_sse(data: bytes) -> list[SSEEvent]:
    """Every event of a whole SSE body."""
    parser = SSEParser()
    return parser.feed(data) + parser.close()


def format_event(event: SSEEvent) -> bytes:
    """One event on the wire: `event:` when named, one `data:` line per line of data, blank line."""
    parts = []
    if event.event:
        if _DATA_LINE_END.search(event.event):
            raise ValueError(f"an SSE event name cannot hold a line break: {event.event!r}")
        parts.append(f"event: {event.event}\n")
    for line in _DATA_LINE_END.split(event.data):
        parts.append(f"data: {line}\n")
    parts.append("\n")
    return "".join(parts).encode("utf-8")


def format_sse(events: Iterable[SSEEvent]) -> bytes:
    return b"".join(format_event(event) for event in events)


def _event(obj: dict[str, Any], name: str | None = None) -> SSEEvent:
    return SSEEvent(data=compact_json(obj), event=name)


# --------------------------------------------------------------------------------------------
# Is a recorded stream whole?


def _is_done(event: SSEEvent) -> bool:
    return event.data.startswith(DONE)  # the SDK's own test


def ends_stream(events: Iterable[SSEEvent]) -> bool:
    """Whether these events carry a stream's last word: `[DONE]`, or a Responses terminal event."""
    return any(_is_done(e) or e.event in _RESPONSE_FINISHED or e.event in _RESPONSE_FAILED for e in events)


def _load(event: SSEEvent) -> Any:
    try:
        return json.loads(event.data)
    except ValueError:
        raise MalformedStream(f"a stream frame is not JSON: {event.data[:200]!r}") from None


def _error_of(event: SSEEvent, obj: Any) -> str | None:
    """The message of an error frame (the SDK raises on these), else None."""
    if isinstance(obj, dict) and obj.get("error"):
        error = obj["error"]
        message = error.get("message") if isinstance(error, dict) else None
        return message if isinstance(message, str) and message else "an error occurred during streaming"
    if event.event == "error" or (isinstance(obj, dict) and obj.get("type") == "error"):
        message = obj.get("message") if isinstance(obj, dict) else None
        return message if isinstance(message, str) and message else "an error occurred during streaming"
    return None


def _response_event_type(event: SSEEvent, obj: Any) -> str | None:
    if isinstance(obj, dict) and isinstance(obj.get("type"), str):
        return obj["type"]
    return event.event


def stream_complete(endpoint: str, events: list[SSEEvent]) -> bool:
    """True when the stream ended as the API ends a whole answer, with no error frame in it, and
    `assemble` builds the answer from it (so a stored stream can always answer a plain request).

    Chat and completions end with `[DONE]`; Responses with `response.completed` (or
    `response.incomplete`, a whole answer cut by max_output_tokens). A stream cut short lacks
    that ending; one that carried an error frame or a frame that is not JSON is not whole either.
    """
    endpoint = normalize_endpoint(endpoint)
    if endpoint not in (CHAT, COMPLETIONS, RESPONSES):
        return False
    if endpoint != RESPONSES and not any(_is_done(event) for event in events):
        return False
    try:
        assemble(endpoint, events)
    except ValueError:
        return False
    return True


def _frames(events: list[SSEEvent]) -> list[tuple[SSEEvent, dict[str, Any]]]:
    """The JSON frames of a stream, `[DONE]` left out. Error frames and junk raise MalformedStream."""
    frames = []
    for event in events:
        if _is_done(event):
            continue
        obj = _load(event)
        error = _error_of(event, obj)
        if error is not None:
            raise MalformedStream(f"the stream carried an error frame: {error}")
        if not isinstance(obj, dict):
            raise MalformedStream(f"a stream frame is not a JSON object: {event.data[:200]!r}")
        frames.append((event, obj))
    if not frames:
        raise MalformedStream("the stream carried no frame to build an answer from")
    return frames


# --------------------------------------------------------------------------------------------
# Stream -> plain answer


def _copy(value: Any) -> Any:
    return copy.deepcopy(value) if isinstance(value, (dict, list)) else value


def _is_indexed(value: Any) -> bool:
    return isinstance(value, list) and any(isinstance(item, dict) and "index" in item for item in value)


def _merge_indexed(acc: list[Any], entries: list[Any]) -> list[Any]:
    # Entries of one list (tool calls) arrive in pieces that name their slot with `index`.
    for entry in entries:
        if not isinstance(entry, dict):
            raise MalformedStream(f"a streamed list entry is not an object: {entry!r}")
        slot = next((item for item in acc if isinstance(item, dict) and item.get("index") == entry.get("index")), None)
        if slot is None:
            acc.append(_merge_delta({}, entry))
        else:
            _merge_delta(slot, entry)
    return acc


def _merge_delta(acc: dict[str, Any], delta: dict[str, Any]) -> dict[str, Any]:
    """Fold one delta into the accumulated object, as the SDK does: strings concatenate, lists
    grow (indexed ones merge by index), objects merge; numbers and flags take the latest value.
    A key seen only with null stays, so the answer has the same keys the stream had."""
    for key, value in delta.items():
        old = acc.get(key)
        if old is None:
            acc[key] = _merge_indexed([], value) if _is_indexed(value) else _copy(value)
        elif value is None:
            continue
        elif key in ("index", "type", "id"):  # names, not text: never concatenated
            acc[key] = _copy(value)
        elif isinstance(old, str) and isinstance(value, str):
            acc[key] = old + value
        elif isinstance(old, dict) and isinstance(value, dict):
            _merge_delta(old, value)
        elif isinstance(old, list) and isinstance(value, list):
            if _is_indexed(value):
                _merge_indexed(old, value)
            else:
                old.extend(_copy(value))
        else:
            acc[key] = _copy(value)
    return acc


def _sorted_indexed(entries: list[Any]) -> list[Any]:
    ordered = sorted(entries, key=lambda item: item.get("index", 0) if isinstance(item, dict) else 0)
    return [{k: v for k, v in item.items() if k != "index"} for item in ordered]


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


def _assemble_choices(chunks: list[dict[str, Any]], delta_key: str | None) -> list[dict[str, Any]]:
    """Fold the choices of every chunk by `index`. delta_key: "delta" for chat (folded into
    `message`); None for legacy completions, whose choice carries `text` itself."""
    accs: dict[int, dict[str, Any]] = {}
    for chunk in chunks:
        for choice in chunk.get("choices") or []:
            if not isinstance(choice, dict):
                raise MalformedStream(f"a streamed choice is not an object: {choice!r}")
            index = choice.get("index", 0)
            if not isinstance(index, int) or isinstance(index, bool):
                raise MalformedStream(f"a streamed choice has index {index!r}, not a number")
            acc = accs.setdefault(index, {"index": index, "message": {}} if delta_key else {"text": "", "index": index})
            for key, value in choice.items():
                if key == "index":
                    continue
                if key == delta_key:
                    if not isinstance(value, (dict, type(None))):
                        raise MalformedStream(f"a streamed delta is not an object: {value!r}")
                    _merge_delta(acc["message"], value or {})
                elif key in ("logprobs", "text"):
                    _merge_delta(acc, {key: value})
                elif value is not None or key not in acc:  # finish_reason and any extra: latest wins
                    acc[key] = value
    choices = []
    for index in sorted(accs):
        acc = accs[index]
        acc.setdefault("finish_reason", None)
        if delta_key:
            message = acc["message"]
            message.setdefault("role", "assistant")
            if isinstance(message.get("tool_calls"), list):
                message["tool_calls"] = _sorted_indexed(message["tool_calls"])
            order = ["index", "message", "logprobs", "finish_reason"]
        else:
            order = ["text", "index", "logprobs", "finish_reason"]
        choices.append({**{k: acc[k] for k in order if k in acc}, **acc})
    return choices


def _assemble_chunks(chunks: list[dict[str, Any]], obj: str, delta_key: str | None) -> dict[str, Any]:
    top = _top_level(chunks)
    body: dict[str, Any] = {
        "id": top.pop("id", None),
        "object": obj,
        "created": top.pop("created", None),
        "model": top.pop("model", None),
        "choices": _assemble_choices(chunks, delta_key),
    }
    usage_seen, usage = _usage(chunks)
    if usage_seen:
        body["usage"] = usage
    body.update(top)
    return body


def _assemble_response(frames: list[tuple[SSEEvent, dict[str, Any]]]) -> dict[str, Any]:
    done_items: dict[int, Any] = {}
    for event, obj in frames:
        kind = _response_event_type(event, obj)
        if kind == "response.output_item.done" and isinstance(obj.get("output_index"), int):
            done_items[obj["output_index"]] = obj.get("item")
        elif kind in _RESPONSE_FINISHED:
            response = obj.get("response")
            if not isinstance(response, dict):
                raise MalformedStream(f"a {kind} event without its response object")
            response = copy.deepcopy(response)
            if response.get("output") is None:  # the SDK rebuilds it from the finished items too
                response["output"] = [done_items[i] for i in sorted(done_items)]
            return response
        elif kind in _RESPONSE_FAILED:
            raise MalformedStream(f"the stream ended with {kind}")
    raise MalformedStream("the stream has no response.completed event: it was cut short")


def assemble(endpoint: str, events: list[SSEEvent]) -> dict[str, Any]:
    """A streamed answer as the plain body the API returns to the same request without `stream`."""
    endpoint = normalize_endpoint(endpoint)
    frames = _frames(events)
    if endpoint == RESPONSES:
        return _assemble_response(frames)
    chunks = [obj for _, obj in frames]
    if endpoint == CHAT:
        return _assemble_chunks(chunks, "chat.completion", "delta")
    if endpoint == COMPLETIONS:
        return _assemble_chunks(chunks, "text_completion", None)
    raise ValueError(f"{endpoint} does not stream; nothing to assemble")


# --------------------------------------------------------------------------------------------
# Plain answer -> stream

_WORD = re.compile(r"\S+\s*|\s+")


def _pieces(text: str) -> list[str]:
    """Word-sized pieces (a word and the space after it) that join back into the text."""
    return _WORD.findall(text)


def _token_pieces(text: Any, tokens: Any) -> list[str] | None:
    """The logprob tokens as stream pieces, when they spell the text exactly (so each chunk can
    carry its own token's logprob, as the API does)."""
    if not isinstance(text, str) or not isinstance(tokens, list) or not tokens:
        return None
    if not all(isinstance(t, str) and t for t in tokens) or "".join(tokens) != text:
        return None
    return tokens


def _round_robin(plans: list[list[dict[str, Any]]]) -> list[list[dict[str, Any]]]:
    # n > 1: choices take turns, one per chunk, first appearing in index order (the SDK's
    # accumulator relies on that order).
    out = []
    for step in range(max((len(plan) for plan in plans), default=0)):
        out.extend([plan[step]] for plan in plans if step < len(plan))
    return out


def _by_index(choices: Any) -> list[dict[str, Any]]:
    if not isinstance(choices, list):
        raise ValueError("the answer has no `choices` list to stream")
    return sorted((c for c in choices if isinstance(c, dict)), key=lambda c: c.get("index", 0))


def _chat_choice_plan(choice: dict[str, Any]) -> list[dict[str, Any]]:
    index = choice.get("index", 0)
    message = dict(choice.get("message") or {})
    has_logprobs = "logprobs" in choice
    logprobs = choice.get("logprobs")
    extras = {k: v for k, v in choice.items() if k not in ("index", "message", "logprobs", "finish_reason")}

    def piece(delta: dict[str, Any], piece_logprobs: Any = None) -> dict[str, Any]:
        out: dict[str, Any] = {"index": index, "delta": delta}
        if has_logprobs:
            out["logprobs"] = piece_logprobs
        out["finish_reason"] = None
        return out

    content, refusal = message.get("content"), message.get("refusal")
    tool_calls = message.get("tool_calls")
    streamed_calls = isinstance(tool_calls, list) and tool_calls
    first: dict[str, Any] = {"role": message.pop("role", "assistant")}
    for key, value in message.items():
        if key in ("content", "refusal"):
            first[key] = "" if isinstance(value, str) else value
        elif not (key == "tool_calls" and streamed_calls):
            first[key] = _copy(value)
    plan = [piece(first)]

    tokens = None
    if isinstance(logprobs, dict) and set(logprobs) <= {"content", "refusal"} and logprobs.get("refusal") is None:
        tokens = _token_pieces(content, [e.get("token") if isinstance(e, dict) else None for e in logprobs.get("content") or []])
    if tokens:
        rest = {k: None for k in logprobs if k != "content"}
        for token, entry in zip(tokens, logprobs["content"]):
            plan.append(piece({"content": token}, {"content": [_copy(entry)], **rest}))
    elif isinstance(content, str):
        plan.extend(piece({"content": p}) for p in _pieces(content))
    if isinstance(refusal, str):
        plan.extend(piece({"refusal": p}) for p in _pieces(refusal))
    for slot, call in enumerate(tool_calls if streamed_calls else []):
        plan.extend(piece({"tool_calls": [d]}) for d in _tool_call_deltas(slot, call))

    last = piece({}, None if tokens else _copy(logprobs))
    last["finish_reason"] = choice.get("finish_reason")
    last.update(_copy(extras))
    plan.append(last)
    return plan


def _tool_call_deltas(slot: int, call: Any) -> list[dict[str, Any]]:
    # First the call with empty arguments (id, type, name), then the arguments in pieces.
    if not isinstance(call, dict):
        raise ValueError(f"a tool call is not an object: {call!r}")
    head = {"index": slot, **_copy(call)}
    function = head.get("function")
    arguments = function.get("arguments") if isinstance(function, dict) else None
    if not isinstance(arguments, str):
        return [head]
    function["arguments"] = ""
    return [head] + [{"index": slot, "function": {"arguments": p}} for p in _pieces(arguments)]


def _completion_choice_plan(choice: dict[str, Any]) -> list[dict[str, Any]]:
    index = choice.get("index", 0)
    text = choice.get("text")
    has_logprobs = "logprobs" in choice
    logprobs = choice.get("logprobs")
    extras = {k: v for k, v in choice.items() if k not in ("text", "index", "logprobs", "finish_reason")}

    def piece(part: str, piece_logprobs: Any = None) -> dict[str, Any]:
        out: dict[str, Any] = {"text": part, "index": index}
        if has_logprobs:
            out["logprobs"] = piece_logprobs
        out["finish_reason"] = None
        return out

    plan = []
    tokens = None
    if isinstance(logprobs, dict):
        lists = [v for v in logprobs.values() if v is not None]
        tokens = _token_pieces(text, logprobs.get("tokens"))
        if tokens and not all(isinstance(v, list) and len(v) == len(tokens) for v in lists):
            tokens = None
    if tokens:
        for i, token in enumerate(tokens):
            sliced = {k: (None if v is None else _copy(v[i : i + 1])) for k, v in logprobs.items()}
            plan.append(piece(token, sliced))
    elif isinstance(text, str):
        plan.extend(piece(p) for p in _pieces(text))
    last = piece("", None if tokens else _copy(logprobs))
    last["finish_reason"] = choice.get("finish_reason")
    last.update(_copy(extras))
    plan.append(last)
    return plan


def _split_chunks(body: dict[str, Any], include_usage: bool, obj: str, plan_of: Any) -> list[SSEEvent]:
    head = {"id": body.get("id"), "object": obj, "created": body.get("created"), "model": body.get("model")}
    repeated = {k: body[k] for k in ("service_tier", "system_fingerprint") if k in body}
    extras = {k: v for k, v in body.items() if k not in head and k not in repeated and k not in ("choices", "usage")}
    with_usage = include_usage and "usage" in body

    def chunk(choices: list[dict[str, Any]]) -> dict[str, Any]:
        out = {**head, **repeated, "choices": choices}
        if with_usage:
            out["usage"] = None
        return out

    chunks = [chunk(choices) for choices in _round_robin([plan_of(c) for c in _by_index(body.get("choices"))])]
    if not chunks:
        chunks = [chunk([])]
    chunks[0].update(_copy(extras))  # anything else the answer carried rides on the first chunk
    if with_usage and body["usage"] is not None:
        chunks.append({**head, **repeated, "choices": [], "usage": _copy(body["usage"])})
    return [_event(c) for c in chunks] + [SSEEvent(data=DONE)]


class _Sequence:
    """Responses events are numbered in order."""

    def __init__(self) -> None:
        self.events: list[SSEEvent] = []

    def add(self, kind: str, **fields: Any) -> None:
        self.events.append(_event({"type": kind, "sequence_number": len(self.events), **fields}, kind))


def _in_progress(response: dict[str, Any]) -> dict[str, Any]:
    snapshot = copy.deepcopy(response)
    snapshot.update(status="in_progress", output=[])
    for key in ("usage", "completed_at", "incomplete_details", "error"):
        if key in snapshot:
            snapshot[key] = None
    return snapshot


def _empty_part(part: dict[str, Any]) -> dict[str, Any]:
    empty = {"text": "", "refusal": "", "annotations": [], "logprobs": []}
    return {k: empty.get(k, _copy(v)) if k != "type" else v for k, v in part.items()}


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
            seq.add("response.content_part.added", **part_at, part=_copy(part))
            seq.add("response.content_part.done", **part_at, part=_copy(part))
            continue
        seq.add("response.content_part.added", **part_at, part=_empty_part(part))
        if kind == "output_text":
            text = part.get("text") or ""
            logprobs = part.get("logprobs") or []
            tokens = _token_pieces(text, [e.get("token") if isinstance(e, dict) else None for e in logprobs])
            if tokens:
                for token, entry in zip(tokens, logprobs):
                    seq.add("response.output_text.delta", **part_at, delta=token, logprobs=[_copy(entry)])
            else:
                for p in _pieces(text):
                    seq.add("response.output_text.delta", **part_at, delta=p, logprobs=[])
            for a, annotation in enumerate(part.get("annotations") or []):
                seq.add(
                    "response.output_text.annotation.added", **part_at, annotation_index=a, annotation=_copy(annotation)
                )
            seq.add("response.output_text.done", **part_at, text=text, logprobs=_copy(logprobs))
        else:
            refusal = part.get("refusal") or ""
            for p in _pieces(refusal):
                seq.add("response.refusal.delta", **part_at, delta=p)
            seq.add("response.refusal.done", **part_at, refusal=refusal)
        seq.add("response.content_part.done", **part_at, part=_copy(part))
    seq.add("response.output_item.done", output_index=at, item=copy.deepcopy(item))


def _function_call_events(seq: _Sequence, at: int, item: dict[str, Any]) -> None:
    where = {"item_id": item.get("id") or "", "output_index": at}
    arguments = item.get("arguments") or ""
    added = {**copy.deepcopy(item), "arguments": ""}
    if "status" in added:
        added["status"] = "in_progress"
    seq.add("response.output_item.added", output_index=at, item=added)
    for p in _pieces(arguments):
        seq.add("response.function_call_arguments.delta", **where, delta=p)
    seq.add("response.function_call_arguments.done", **where, arguments=arguments)
    seq.add("response.output_item.done", output_index=at, item=copy.deepcopy(item))


def _split_response(body: dict[str, Any]) -> list[SSEEvent]:
    seq = _Sequence()
    seq.add("response.created", response=_in_progress(body))
    seq.add("response.in_progress", response=_in_progress(body))
    for at, item in enumerate(body.get("output") or []):
        if not isinstance(item, dict):
            raise ValueError(f"a response output item is not an object: {item!r}")
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


def split(endpoint: str, body: dict[str, Any], include_usage: bool) -> list[SSEEvent]:
    """The stream the API would have sent for this plain answer, had the request said `stream`.

    include_usage: the request's `stream_options.include_usage` (chat and completions only; a
    Responses stream always carries usage in its last event).
    """
    endpoint = normalize_endpoint(endpoint)
    if not isinstance(body, dict):
        raise ValueError("only a JSON object answer can be streamed")
    if endpoint == CHAT:
        return _split_chunks(body, include_usage, "chat.completion.chunk", _chat_choice_plan)
    if endpoint == COMPLETIONS:
        return _split_chunks(body, include_usage, "text_completion", _completion_choice_plan)
    if endpoint == RESPONSES:
        return _split_response(body)
    raise ValueError(f"{endpoint} does not stream; nothing to split")


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


def adapt_stream(endpoint: str, events: list[SSEEvent], include_usage: bool) -> list[SSEEvent]:
    """A recorded stream, fitted to a request that asked (or not) for `include_usage`.

    Asked and recorded with it, or not asked and recorded without: unchanged. Not asked: the usage
    chunk and the `usage: null` of every chunk go. Asked, recorded without: when some chunk
    carries usage (some upstreams put it on the last content chunk) a usage chunk is added; the
    true token counts are otherwise unknown, so nothing is made up.
    """
    endpoint = normalize_endpoint(endpoint)
    if endpoint not in (CHAT, COMPLETIONS):
        return list(events)
    out: list[SSEEvent] = []
    found_usage = None
    has_usage_chunk = False
    for event in events:
        if _is_done(event):
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
        if not isinstance(obj, dict) or _error_of(event, obj) is not None:
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
        at = next((i for i, e in enumerate(out) if _is_done(e)), len(out))
        out.insert(at, _event(usage_chunk))
    return out


# --------------------------------------------------------------------------------------------
# Embeddings: float lists <-> base64 (little-endian float32, as the API sends and the SDK decodes)


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


def convert_embeddings(body: dict[str, Any], encoding_format: str | None) -> dict[str, Any]:
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


def answer_body(entry: Entry) -> Any:
    """An entry's answer as one JSON body: a streamed one assembled the way a plain call would get it
    (MalformedStream when the recorded stream cannot be assembled)."""
    if entry.events is not None:
        return assemble(entry.endpoint, entry.events)
    return entry.body


def answer_summary(endpoint: str, body: dict[str, Any]) -> tuple[str | None, str | None]:
    """(model, system_fingerprint) of a plain answer, for the entry's summary fields."""
    if not isinstance(body, dict):
        return None, None
    model, fingerprint = body.get("model"), body.get("system_fingerprint")
    return (model if isinstance(model, str) else None, fingerprint if isinstance(fingerprint, str) else None)
