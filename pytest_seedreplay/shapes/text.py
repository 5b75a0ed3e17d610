"""The text a person reads: a request's prompt, one-line excerpts, message contents and tool calls.
Every feature that shows a request or an answer (drift, the report, the cache CLI, the terminal
summary) reads it through these functions; an answer's own text is each endpoint's module's
`answer_text`, reached through `shapes.answer_text(endpoint, body)`."""

from __future__ import annotations

import json
from typing import Any, TypeGuard

ELLIPSIS = "…"


def excerpt(text: str, width: int = 160) -> str:
    """`text` on one line in at most `width` characters: whitespace runs become one space, and a
    longer text is cut at a word boundary (mid-word only for one long word) with an ellipsis."""
    flat = " ".join(text.split())
    if len(flat) <= width:
        return flat
    cut = flat[: max(width - 1, 0)]
    if " " in cut:
        cut = cut[: cut.rindex(" ")]
    return cut.rstrip() + ELLIPSIS


def content_text(content: Any) -> str:
    """A message's content as text: a string as it is, parts joined (non-text parts named by their
    type, e.g. `[image_url]`), anything else as JSON."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for part in content:
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                texts.append(part["text"])
            elif isinstance(part, dict):
                texts.append(f"[{part.get('type', 'part')}]")
            else:
                texts.append(str(part))
        return " ".join(texts)
    return "" if content is None else json.dumps(content, ensure_ascii=False)


def call_text(call: Any) -> str:
    """A tool call as `name(arguments)`: chat's `{"function": {...}}` or a Responses function_call item."""
    if not isinstance(call, dict):
        return str(call)
    inner = call.get("function")
    function = inner if isinstance(inner, dict) else call
    return f"{function.get('name')}({function.get('arguments', '')})"


def prompt_text(canonical: dict[str, Any]) -> str:
    """The whole request as a person reads it: instructions, the messages (`role: content`), the
    prompt or input. `canonical` is the keyed form, {"endpoint": ..., "params": {...}}."""
    params = canonical.get("params") or {}
    lines = []
    if params.get("instructions"):
        lines.append(f"instructions: {params['instructions']}")
    lines += _messages_text(params.get("messages"))
    for name in ("prompt", "input"):
        value = params.get(name)
        if value is None:
            continue
        if _is_messages(value):
            lines += _messages_text(value)  # Responses input given as messages
        elif isinstance(value, list) and all(isinstance(v, (str, int, float)) for v in value):
            lines.append(f"{name}: {json.dumps(value, ensure_ascii=False)}")  # a batch: where each item ends matters
        else:
            lines.append(f"{name}: {value if isinstance(value, str) else content_text(value)}")
    return "\n".join(lines)


def prompt_line(canonical: dict[str, Any]) -> str:
    """The words a person recognises a request by: the last user message, else the prompt, input
    or instructions (the last item of a list)."""
    params = canonical.get("params") or {}
    messages = params.get("messages")
    if isinstance(messages, list):
        return _last_user_text(messages)
    for name in ("prompt", "input", "instructions"):
        value = params.get(name)
        if isinstance(value, str):
            return value
        if _is_messages(value):
            return _last_user_text(value)
        if isinstance(value, list) and value:
            last = value[-1]
            if isinstance(last, str):
                return last
            if isinstance(last, dict):
                return content_text(last.get("content"))
    return ""


def _is_messages(value: Any) -> TypeGuard[list[Any]]:
    return isinstance(value, list) and bool(value) and all(isinstance(m, dict) and "role" in m for m in value)


def _messages_text(messages: Any) -> list[str]:
    if not isinstance(messages, list):
        return []
    return [f"{m.get('role', '?')}: {content_text(m.get('content'))}" for m in messages if isinstance(m, dict)]


def _last_user_text(messages: list[Any]) -> str:
    users = [m for m in messages if isinstance(m, dict) and m.get("role") == "user"]
    chosen = users[-1] if users else (messages[-1] if messages else {})
    return content_text(chosen.get("content")) if isinstance(chosen, dict) else ""
