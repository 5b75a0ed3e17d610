"""`/v1/messages` answers (Anthropic's Messages API): a `message` body of content blocks, or its stream
of named events: `message_start`, per block `content_block_start` / `content_block_delta` (`text_delta`,
`input_json_delta`, `thinking_delta`, `signature_delta`, `citations_delta`) / `content_block_stop`, then
`message_delta` (stop reason, output usage) and `message_stop`; `ping` anywhere; `error` ends a failed one.
"""

from __future__ import annotations

import json
from typing import Any

from ..core.entry import SSEEvent
from .pieces import UnstreamableAnswer, copied, cut, words
from .sse import MalformedStream, frames, json_event

# Blocks whose `input` streams as JSON text (`input_json_delta`): the model's tool calls and the server's.
_INPUT_BLOCKS = frozenset({"tool_use", "server_tool_use", "mcp_tool_use"})
# What each delta type adds to its block: (the block's field, the delta's field).
_TEXT_DELTAS = {
    "text_delta": ("text", "text"),
    "thinking_delta": ("thinking", "thinking"),
    "signature_delta": ("signature", "signature"),
    "input_json_delta": ("input", "partial_json"),
}


# --- stream -> plain answer ---------------------------------------------------------------------


class _Block:
    """One content block being assembled: its start, and the pieces of each streamed field (joined
    once at the end: linear in the stream's length)."""

    def __init__(self, start: dict[str, Any]):
        self.block = start
        self.pieces: dict[str, list[str]] = {}
        self.citations: list[Any] = []

    def add(self, delta: dict[str, Any]) -> None:
        kind = delta.get("type")
        if kind == "citations_delta":
            self.citations.append(delta.get("citation"))
            return
        fields = _TEXT_DELTAS.get(kind)  # type: ignore[arg-type]
        if fields is None:
            raise MalformedStream(f"a content_block_delta of unknown type {kind!r}")
        piece = delta.get(fields[1])
        if not isinstance(piece, str):
            raise MalformedStream(f"a {kind} without its {fields[1]!r} text")
        self.pieces.setdefault(fields[0], []).append(piece)

    def finish(self) -> dict[str, Any]:
        block = self.block
        for name, pieces in self.pieces.items():
            text = "".join(pieces)
            if name == "input":
                try:
                    block["input"] = json.loads(text) if text else {}
                except ValueError:
                    raise MalformedStream(f"a tool_use block's streamed input is not JSON: {text[:200]!r}") from None
            else:
                block[name] = (block.get(name) or "") + text if isinstance(block.get(name), str) else text
        if self.citations:
            block["citations"] = [*(block.get("citations") or []), *self.citations]
        return block


def assemble(events: list[SSEEvent]) -> dict[str, Any]:
    """The `message` a plain request gets, from its stream (MalformedStream when it is not whole)."""
    message: dict[str, Any] | None = None
    blocks: dict[int, _Block] = {}
    stopped = False
    for _, frame in frames(events):
        kind = frame.get("type")
        if kind == "message_start":
            message = copied(frame.get("message"))
            if not isinstance(message, dict):
                raise MalformedStream("message_start carries no message object")
        elif kind == "content_block_start":
            blocks[_index(frame)] = _Block(copied(_dict(frame, "content_block")))
        elif kind == "content_block_delta":
            block = blocks.get(_index(frame))
            if block is None:
                raise MalformedStream(f"a content_block_delta for block {frame.get('index')} that never started")
            block.add(_dict(frame, "delta"))
        elif kind == "message_delta":
            if message is None:
                raise MalformedStream("message_delta before message_start")
            message.update(copied(_dict(frame, "delta")))
            usage = frame.get("usage")
            if isinstance(usage, dict):
                message["usage"] = {**(message.get("usage") or {}), **copied(usage)}
        elif kind == "message_stop":
            stopped = True
        # content_block_stop and ping add nothing; unknown events are kept in the stream, not the answer
    if message is None:
        raise MalformedStream("the stream has no message_start")
    if not stopped:
        raise MalformedStream("the stream ended before message_stop")
    message["content"] = [blocks[i].finish() for i in sorted(blocks)]
    return message


def _index(frame: dict[str, Any]) -> int:
    index = frame.get("index")
    if type(index) is not int:
        raise MalformedStream(f"a {frame.get('type')} event without an integer index")
    return index


def _dict(frame: dict[str, Any], name: str) -> dict[str, Any]:
    value = frame.get(name)
    if not isinstance(value, dict):
        raise MalformedStream(f"a {frame.get('type')} event without its {name!r} object")
    return value


def read_stream(events: list[SSEEvent]) -> tuple[dict[str, Any] | None, str | None]:
    """(the assembled answer or None, why the stream is not a whole answer or None)."""
    try:
        return assemble(events), None
    except ValueError as exc:
        return None, str(exc)


def adapt_stream(events: list[SSEEvent], include_usage: bool) -> list[SSEEvent]:
    """A Messages stream always carries its usage (message_start, message_delta): nothing to fit."""
    return list(events)


# --- plain answer -> stream ---------------------------------------------------------------------


def _event(kind: str, **fields: Any) -> SSEEvent:
    return json_event({"type": kind, **fields}, kind)


def _delta(index: int, kind: str, field: str, text: str) -> SSEEvent:
    return _event("content_block_delta", index=index, delta={"type": kind, field: text})


def _block_events(index: int, block: Any) -> list[SSEEvent]:
    """One block as the API streams it: started empty, its text (or input JSON) in pieces, stopped."""
    if not isinstance(block, dict):
        raise UnstreamableAnswer(f"a content block is not an object: {block!r}")
    start = copied(block)
    deltas: list[SSEEvent] = []
    kind = block.get("type")
    if kind == "text" and isinstance(block.get("text"), str):
        start["text"] = ""
        citations = start.pop("citations", None)
        if citations is not None:
            start["citations"] = []
        deltas = [_delta(index, "text_delta", "text", p) for p in words(block["text"])]
        deltas += [
            _event("content_block_delta", index=index, delta={"type": "citations_delta", "citation": copied(c)})
            for c in citations or []
        ]
    elif kind == "thinking" and isinstance(block.get("thinking"), str):
        start["thinking"] = ""
        signature = start.pop("signature", None)
        deltas = [_delta(index, "thinking_delta", "thinking", p) for p in words(block["thinking"])]
        if isinstance(signature, str):
            deltas.append(_delta(index, "signature_delta", "signature", signature))
    elif kind in _INPUT_BLOCKS and "input" in block:
        start["input"] = {}
        text = json.dumps(block["input"], ensure_ascii=False, separators=(",", ":"))
        deltas = [_delta(index, "input_json_delta", "partial_json", p) for p in _json_pieces(text)]
    return [
        _event("content_block_start", index=index, content_block=start),
        *deltas,
        _event("content_block_stop", index=index),
    ]


def _json_pieces(text: str, size: int = 16) -> list[str]:
    # Tool input JSON has few spaces: cut it by length, as the API does, not by words; a large
    # input in at most ~1,000 pieces (a bounded event count, whatever its size).
    return cut(text, max(size, -(-len(text) // 1000))) or [""]


def split(body: dict[str, Any], include_usage: bool) -> list[SSEEvent]:
    """The stream the API sends for this `message`: assembling it gives the message back exactly."""
    content = body.get("content")
    if not isinstance(content, list):
        raise UnstreamableAnswer("a message answer without a content list cannot be streamed")
    start = {k: copied(v) for k, v in body.items()}
    start["content"] = []
    usage = body.get("usage")
    ending = {k: copied(body[k]) for k in ("stop_reason", "stop_sequence") if k in body}
    for name in ending:
        start[name] = None
    events = [_event("message_start", message=start), _event("ping")]
    for index, block in enumerate(content):
        events.extend(_block_events(index, block))
    delta: dict[str, Any] = {"delta": ending}
    if isinstance(usage, dict) and "output_tokens" in usage:
        delta["usage"] = {"output_tokens": usage["output_tokens"]}
    events.append(_event("message_delta", **delta))
    events.append(_event("message_stop"))
    return events


def error_event(error: dict[str, Any]) -> SSEEvent:
    """The `error` event that ends a broken stream (`error`: the OpenAI-shaped object the proxy makes)."""
    return _event("error", error={"type": error.get("type") or "api_error", "message": error.get("message") or ""})


# --- what the answer says -----------------------------------------------------------------------


def _blocks(body: Any) -> list[dict[str, Any]]:
    content = body.get("content") if isinstance(body, dict) else None
    return [b for b in content if isinstance(b, dict)] if isinstance(content, list) else []


def _tool_text(block: dict[str, Any]) -> str:
    return f"{block.get('name')}({json.dumps(block.get('input'), ensure_ascii=False, sort_keys=True)})"


def answer_text(body: Any) -> str:
    """The text blocks, then each tool call as `[tool call] name({...})`."""
    pieces = [b["text"] for b in _blocks(body) if b.get("type") == "text" and isinstance(b.get("text"), str)]
    pieces += [f"[tool call] {_tool_text(b)}" for b in _blocks(body) if b.get("type") in _INPUT_BLOCKS]
    return "\n".join(p for p in pieces if p)


def reply_text(body: Any) -> str | None:
    """The text blocks as one reply; None when the answer has no text (tool calls only)."""
    text = "".join(b["text"] for b in _blocks(body) if b.get("type") == "text" and isinstance(b.get("text"), str))
    return text or None


def answer_parts(body: Any) -> list[Any]:
    """What the model said, without ids or usage: each block's type and its text or call."""
    parts: list[Any] = []
    for block in _blocks(body):
        kind = block.get("type")
        if kind == "text":
            parts.append(["text", block.get("text")])
        elif kind == "thinking":
            parts.append(["thinking", block.get("thinking")])
        elif kind in _INPUT_BLOCKS:
            parts.append([kind, _tool_text(block)])
        else:
            parts.append([kind])
    return parts


def finish_reason(body: Any) -> str | None:
    """The message's stop_reason (end_turn, max_tokens, stop_sequence, tool_use, ...)."""
    reason = body.get("stop_reason") if isinstance(body, dict) else None
    return reason if isinstance(reason, str) else None
