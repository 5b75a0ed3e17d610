"""The canonical form of an Anthropic Messages request (`/v1/messages`): equivalent spellings made one,
and the headers that change the answer's shape. Pure; `key.canonical_request` calls it."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from .constants import ANTHROPIC_KEYED_HEADERS

# `cache_control` marks a prompt-caching breakpoint: it changes the price, never the answer.
_CACHE_CONTROL = "cache_control"


def _block(block: Any, canonical: Callable[[Any], Any]) -> Any:
    """A content block without its cache marker (a tool result's own blocks too)."""
    if type(block) is not dict:
        return canonical(block)
    out = {k: canonical(v) for k, v in block.items() if k != _CACHE_CONTROL and v is not None}
    if out.get("type") == "tool_result" and type(out.get("content")) is list:
        out["content"] = _blocks(out["content"], canonical)
    return out


def _blocks(content: Any, canonical: Callable[[Any], Any]) -> Any:
    """A content string, or its blocks: one plain text block says the same as the string."""
    if type(content) is not list:
        return canonical(content)
    blocks = [_block(b, canonical) for b in content]
    if len(blocks) == 1:
        only = blocks[0]
        if type(only) is dict and only.keys() == {"type", "text"} and only["type"] == "text" and type(only["text"]) is str:
            return only["text"]
    return blocks


def _message(message: Any, canonical: Callable[[Any], Any]) -> Any:
    if type(message) is not dict:
        return canonical(message)
    out = {k: canonical(v) for k, v in message.items() if k != "content" and v is not None}
    if "content" in message:
        out["content"] = _blocks(message["content"], canonical)
    return out


def _tool_choice(choice: Any, has_tools: bool) -> Any:
    """None when the choice is the default: `auto` (parallel use allowed) where tools are given."""
    if type(choice) is not dict:
        return choice
    choice = {k: v for k, v in choice.items() if not (k == "disable_parallel_tool_use" and v is False)}
    return None if has_tools and choice == {"type": "auto"} else choice


def canonical_params(params: dict[str, Any], body: Mapping[str, Any], canonical: Callable[[Any], Any]) -> dict[str, Any]:
    """`params` (already canonical by the general rules) with the Messages API's own spellings made one."""
    if "system" in params:
        params["system"] = _blocks(body["system"], canonical)
    if type(body.get("messages")) is list:
        params["messages"] = [_message(m, canonical) for m in body["messages"]]
    if type(body.get("tools")) is list:
        params["tools"] = [_block(t, canonical) for t in body["tools"]]
    if "tool_choice" in params:
        choice = _tool_choice(params["tool_choice"], bool(params.get("tools")))
        if choice is None:
            del params["tool_choice"]
        else:
            params["tool_choice"] = choice
    return params


def keyed_headers(headers: Mapping[str, str] | Iterable[tuple[str, str]] | None) -> dict[str, Any]:
    """The request headers in the key: `anthropic-version` as sent, `anthropic-beta` as the sorted set
    of features it names (several headers, or one comma-separated, say the same)."""
    if not headers:
        return {}
    items = headers.items() if isinstance(headers, Mapping) else headers
    version: str | None = None
    betas: set[str] = set()
    for name, value in items:
        lower = name.lower()
        if lower not in ANTHROPIC_KEYED_HEADERS:
            continue
        if lower == "anthropic-version":
            version = value.strip()
        else:
            betas.update(b.strip() for b in value.split(",") if b.strip())
    out: dict[str, Any] = {}
    if version:
        out["anthropic-version"] = version
    if betas:
        out["anthropic-beta"] = sorted(betas)
    return out
