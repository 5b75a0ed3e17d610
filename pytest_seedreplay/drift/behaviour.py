"""What an answer *does*, per endpoint: its tool calls, refusal, finish reason and text.

One small reader per endpoint, picked by `behaviour()`, so the verdict never branches on the
endpoint itself: adding an API is one function and one line in `_READERS`. Pure, no I/O.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..core.constants import CHAT, COMPLETIONS, MESSAGES, RESPONSES
from ..core.key import normalize_endpoint

# Responses items that are the model's own bookkeeping, not something it did.
_QUIET_ITEMS = frozenset({"message", "reasoning"})
_ANTHROPIC_CALLS = frozenset({"tool_use", "server_tool_use", "mcp_tool_use"})


@dataclass(frozen=True)
class Call:
    """One tool call: its name and its arguments (parsed JSON when they parse, else the raw text)."""

    name: str
    arguments: Any = None

    def key(self) -> str:
        return self.name + "\0" + json.dumps(self.arguments, sort_keys=True, ensure_ascii=False, default=str)


@dataclass
class Behaviour:
    """One choice of an answer (chat and completions may have several), read for the verdict."""

    text: str = ""
    calls: list[Call] = field(default_factory=list)
    refusal: bool = False
    finish_reason: str | None = None
    finish_field: str = "finish_reason"  # what the API calls it (Anthropic: stop_reason)


def behaviour(endpoint: str, body: Any) -> list[Behaviour] | None:
    """The answer's behaviour per choice; None for an endpoint without one (embeddings: vectors)."""
    reader = _READERS.get(normalize_endpoint(endpoint))
    return reader(body) if reader is not None else None


def structured(request: Any) -> bool:
    """Whether the request asked for a JSON answer (json_object / json_schema, the SDK's `parse`):
    then the answer's shape is behaviour, its values are words."""
    params = request.get("params", request) if isinstance(request, dict) else {}
    if not isinstance(params, dict):
        return False
    formats = [params.get("response_format"), params.get("output_format")]
    text = params.get("text")
    if isinstance(text, dict):
        formats.append(text.get("format"))
    return any(isinstance(f, dict) and f.get("type") in ("json_object", "json_schema") for f in formats)


def seed_of(request: Any) -> Any:
    params = request.get("params", request) if isinstance(request, dict) else {}
    return params.get("seed") if isinstance(params, dict) else None


# --- one reader per endpoint ---------------------------------------------------------------------


def _arguments(raw: Any) -> Any:
    if isinstance(raw, str):
        try:
            return json.loads(raw)
        except ValueError:
            return raw
    return raw


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _choices(body: Any) -> list[dict[str, Any]]:
    return _dicts(body.get("choices")) if isinstance(body, dict) else []


def _chat(body: Any) -> list[Behaviour]:
    found = []
    for choice in _choices(body):
        found_message = choice.get("message")
        message: dict[str, Any] = found_message if isinstance(found_message, dict) else {}
        calls = [
            Call(str(f.get("name")), _arguments(f.get("arguments")))
            for c in _dicts(message.get("tool_calls"))
            if isinstance(f := c.get("function") or c.get("custom"), dict)
        ]
        found.append(
            Behaviour(str(message.get("content") or ""), calls, bool(message.get("refusal")), choice.get("finish_reason"))
        )
    return found


def _completions(body: Any) -> list[Behaviour]:
    return [Behaviour(str(c.get("text") or ""), finish_reason=c.get("finish_reason")) for c in _choices(body)]


def _responses(body: Any) -> list[Behaviour]:
    if not isinstance(body, dict):
        return []
    texts, calls, refusal = [], [], False
    for item in _dicts(body.get("output")):
        kind = item.get("type")
        if kind == "message":
            for part in _dicts(item.get("content")):
                refusal = refusal or part.get("type") == "refusal"
                texts.append(str(part.get("text") or ""))
        elif kind in ("function_call", "custom_tool_call"):
            calls.append(Call(str(item.get("name")), _arguments(item.get("arguments", item.get("input")))))
        elif kind not in _QUIET_ITEMS:  # a hosted tool: web_search_call, file_search_call, ...
            calls.append(Call(str(kind)))
    details = body.get("incomplete_details")
    reason = (details.get("reason") if isinstance(details, dict) else None) or body.get("status")
    return [Behaviour("".join(texts), calls, refusal, reason)]


def _messages(body: Any) -> list[Behaviour]:
    if not isinstance(body, dict):
        return []
    blocks = _dicts(body.get("content"))
    text = "".join(str(b.get("text") or "") for b in blocks if b.get("type") == "text")
    calls = [Call(str(b.get("name")), b.get("input")) for b in blocks if b.get("type") in _ANTHROPIC_CALLS]
    reason = body.get("stop_reason")
    return [Behaviour(text, calls, reason == "refusal", reason, "stop_reason")]


_READERS: dict[str, Callable[[Any], list[Behaviour]]] = {
    CHAT: _chat,
    COMPLETIONS: _completions,
    RESPONSES: _responses,
    MESSAGES: _messages,
}
