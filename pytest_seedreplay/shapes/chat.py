"""`/v1/chat/completions` answers: a `chat.completion` body, or its stream of
`chat.completion.chunk` deltas (content, refusal, tool calls in indexed pieces, logprobs per token)."""

from __future__ import annotations

from typing import Any

from ..core.entry import SSEEvent
from . import chunks
from .pieces import UnstreamableAnswer, copied, token_pieces, words
from .sse import MalformedStream
from .text import call_text


def _new_choice(index: int) -> dict[str, Any]:
    return {"index": index, "message": {}}


def _finish_choice(choice: dict[str, Any]) -> dict[str, Any]:
    message = choice["message"]
    message.setdefault("role", "assistant")
    if isinstance(message.get("tool_calls"), list):
        message["tool_calls"] = _sorted_indexed(message["tool_calls"])
    return chunks.ordered(choice, ["index", "message", "logprobs", "finish_reason"])


def _sorted_indexed(entries: list[Any]) -> list[Any]:
    if not all(isinstance(item, dict) for item in entries):
        raise MalformedStream(f"a streamed tool call is not an object: {entries[:3]!r}")
    ordered = sorted(entries, key=lambda item: item.get("index", 0))
    return [{k: v for k, v in item.items() if k != "index"} for item in ordered]


def _choice_plan(choice: dict[str, Any]) -> list[dict[str, Any]]:
    """A chat choice as its deltas: the role (with every other message field, content empty), the
    content in tokens or words, the refusal, each tool call opened then its arguments, and last
    the finish_reason (with the logprobs when they could not ride on their tokens)."""
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
    streamed_calls: list[Any] = tool_calls if isinstance(tool_calls, list) else []
    first: dict[str, Any] = {"role": message.pop("role", "assistant")}
    for key, value in message.items():
        if key in ("content", "refusal"):
            first[key] = "" if isinstance(value, str) else value
        elif not (key == "tool_calls" and streamed_calls):
            first[key] = copied(value)
    plan = [piece(first)]

    tokens = None
    if isinstance(logprobs, dict) and set(logprobs) <= {"content", "refusal"} and logprobs.get("refusal") is None:
        tokens = token_pieces(content, [e.get("token") if isinstance(e, dict) else None for e in logprobs.get("content") or []])
    if tokens and isinstance(logprobs, dict):
        rest = {k: None for k in logprobs if k != "content"}
        for token, entry in zip(tokens, logprobs["content"]):
            plan.append(piece({"content": token}, {"content": [copied(entry)], **rest}))
    elif isinstance(content, str):
        plan.extend(piece({"content": p}) for p in words(content))
    if isinstance(refusal, str):
        plan.extend(piece({"refusal": p}) for p in words(refusal))
    for slot, call in enumerate(streamed_calls):
        plan.extend(piece({"tool_calls": [d]}) for d in _tool_call_deltas(slot, call))

    last = piece({}, None if tokens else copied(logprobs))
    last["finish_reason"] = choice.get("finish_reason")
    last.update(copied(extras))
    plan.append(last)
    return plan


def _tool_call_deltas(slot: int, call: Any) -> list[dict[str, Any]]:
    # First the call with empty arguments (id, type, name), then the arguments in pieces.
    if not isinstance(call, dict):
        raise UnstreamableAnswer(f"a tool call is not an object: {call!r}")
    head = {"index": slot, **copied(call)}
    function = head.get("function")
    arguments = function.get("arguments") if isinstance(function, dict) else None
    if not isinstance(function, dict) or not isinstance(arguments, str):
        return [head]
    function["arguments"] = ""
    return [head] + [{"index": slot, "function": {"arguments": p}} for p in words(arguments)]


FORMAT = chunks.ChunkFormat(
    plain_object="chat.completion",
    chunk_object="chat.completion.chunk",
    delta_key="delta",
    new_choice=_new_choice,
    finish_choice=_finish_choice,
    plan=_choice_plan,
)


# --- stream <-> plain answer --------------------------------------------------------------------


def assemble(events: list[SSEEvent]) -> dict[str, Any]:
    return chunks.assemble(FORMAT, events)


def split(body: dict[str, Any], include_usage: bool) -> list[SSEEvent]:
    return chunks.split(FORMAT, body, include_usage)


def adapt_stream(events: list[SSEEvent], include_usage: bool) -> list[SSEEvent]:
    return chunks.adapt_stream(events, include_usage)


def read_stream(events: list[SSEEvent]) -> tuple[dict[str, Any] | None, str | None]:
    return chunks.read_stream(FORMAT, events)


def error_event(error: dict[str, Any]) -> SSEEvent:
    return chunks.error_event(error)


# --- what the answer says -----------------------------------------------------------------------


def _message(choice: dict[str, Any]) -> dict[str, Any]:
    message = choice.get("message")
    return message if isinstance(message, dict) else {}


def _calls(message: dict[str, Any]) -> list[Any]:
    calls = message.get("tool_calls")
    return calls if isinstance(calls, list) else []


def answer_text(body: Any) -> str:
    """Each choice's content (or refusal) and tool calls; choices (n > 1) apart by a `---` line."""
    texts = []
    for choice in chunks.choices(body):
        message = _message(choice)
        pieces = [message.get("content") or message.get("refusal") or ""]
        pieces += [f"[tool call] {call_text(c)}" for c in _calls(message)]
        texts.append("\n".join(p for p in pieces if p))
    return "\n---\n".join(texts)


def reply_text(body: Any) -> str | None:
    """The first choice's text content, None when it has none (tool calls only, a refusal)."""
    found = chunks.choices(body)
    content = _message(found[0]).get("content") if found else None
    return content if isinstance(content, str) and content else None


def answer_parts(body: Any) -> list[Any]:
    """What the model said, without ids, timestamps or usage: content, refusal and tool calls per choice."""
    parts = []
    for choice in chunks.choices(body):
        message = _message(choice)
        parts.append([message.get("content"), message.get("refusal"), [call_text(c) for c in _calls(message)]])
    return parts


finish_reason = chunks.finish_reason
