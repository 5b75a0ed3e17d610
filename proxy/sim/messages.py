"""`POST /v1/messages` (Anthropic's Messages API), plain and streamed, and `/v1/messages/count_tokens`.

The text comes from the same model as chat's (`inference`), the tool calls from the same choice of
tools (`structured`). The API has no seed: the answer is seeded by the request itself, so the same
request gets the same answer. Errors are Anthropic's (`{"type": "error", "error": {...}}`: the app's
error middleware shapes them so on these paths), and so is the auth: `x-api-key` and `anthropic-version`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from pytest_seedreplay.core.constants import MESSAGES
from pytest_seedreplay.shapes.messages import split

from .errors import APIError
from .inference import BaseBrain, Prompt, Sampling, rng_for
from .model import count_tokens, pieces
from .runtime import CONFIG, first_token_delay, pause, read_json, token_interval
from .sse import open_stream
from .structured import ToolChoice, check_schema, chosen_tools, tool_call

ROLES = ("user", "assistant")
# A fixed seed: the same request draws the same answer (the API takes none; temperature 0 is not needed).
_SEED = 0


def check_auth(headers: Any) -> None:
    """Anthropic's API wants `x-api-key` and `anthropic-version` on every request (the app's auth
    middleware asks this on Anthropic's paths)."""
    # The SDK sends its key as x-api-key, or (2.x) as a bearer token: either will do.
    scheme, _, token = headers.get("Authorization", "").partition(" ")
    if not headers.get("x-api-key", "").strip() and not (scheme.lower() == "bearer" and token.strip()):
        raise APIError(401, "x-api-key header is required", type="authentication_error")
    if not headers.get("anthropic-version", "").strip():
        raise APIError(400, "anthropic-version: header is required")


def _invalid(message: str) -> APIError:
    return APIError(400, message)


# --- reading the request -------------------------------------------------------------------------


@dataclass
class Request:
    model: str
    max_tokens: int
    prompt: Prompt
    sampling: Sampling
    stop_sequences: list[str]
    tools: list[dict[str, Any]]  # as `structured` wants them: {"name", "parameters"}
    choice: ToolChoice
    parallel: bool
    history: list[dict[str, Any]]  # the conversation as `structured.chosen_tools` reads it
    thinking: bool


def _block_text(block: Any, where: str) -> str:
    if not isinstance(block, dict) or not isinstance(block.get("type"), str):
        raise _invalid(f"{where}: Input should be a valid content block object with a 'type'")
    kind = block["type"]
    if kind == "text":
        if not isinstance(block.get("text"), str):
            raise _invalid(f"{where}.text: Field required")
        return block["text"]
    if kind == "tool_result":
        return _content_text(block.get("content", ""), f"{where}.content")
    if kind == "tool_use":
        return json.dumps(block.get("input"), sort_keys=True)
    if kind == "thinking":
        return str(block.get("thinking", ""))
    return ""  # images, documents...: no words the model reads here


def _content_text(content: Any, where: str) -> str:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise _invalid(f"{where}: Input should be a valid string or list of content blocks")
    return "\n".join(_block_text(b, f"{where}.{i}") for i, b in enumerate(content))


def _system_text(system: Any) -> str:
    if system is None:
        return ""
    if isinstance(system, str):
        return system
    if isinstance(system, list):
        return "\n".join(_block_text(b, f"system.{i}") for i, b in enumerate(system))
    raise _invalid("system: Input should be a valid string or list of text blocks")


def _history(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The conversation as chat's tool choice reads it: assistant tool_use blocks as `tool_calls`, a
    user turn of tool results as a `tool` message."""
    out: list[dict[str, Any]] = []
    for message in messages:
        content = message.get("content")
        blocks = [b for b in content if isinstance(b, dict)] if isinstance(content, list) else []
        calls = [{"function": {"name": b.get("name")}} for b in blocks if b.get("type") == "tool_use"]
        results = blocks and all(b.get("type") == "tool_result" for b in blocks)
        out.append({"role": "tool" if results else message["role"], "tool_calls": calls})
    return out


def _messages(body: dict[str, Any]) -> tuple[Prompt, list[dict[str, Any]]]:
    messages = body.get("messages")
    if messages is None:
        raise _invalid("messages: Field required")
    if not isinstance(messages, list) or not messages:
        raise _invalid("messages: Input should be a non-empty list")
    tokens, last_user = 0, ""
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise _invalid(f"messages.{i}: Input should be a valid dictionary")
        if message.get("role") not in ROLES:
            raise _invalid(f"messages.{i}.role: Input should be 'user' or 'assistant'")
        if "content" not in message:
            raise _invalid(f"messages.{i}.content: Field required")
        text = _content_text(message["content"], f"messages.{i}.content")
        tokens += 4 + count_tokens(text)
        if message["role"] == "user" and text:
            last_user = text
    system = _system_text(body.get("system"))
    tokens += count_tokens(system)
    key = json.dumps([body.get("system"), messages], sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return Prompt(key=key, last_user=last_user, tokens=tokens), messages


def _number(body: dict[str, Any], name: str, low: float, high: float, default: float) -> float:
    value = body.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise _invalid(f"{name}: Input should be a number between {low:g} and {high:g}")
    return float(value)


def _tools(body: dict[str, Any]) -> list[dict[str, Any]]:
    tools = body.get("tools")
    if tools is None:
        return []
    if not isinstance(tools, list):
        raise _invalid("tools: Input should be a valid list")
    out = []
    for i, tool in enumerate(tools):
        if not isinstance(tool, dict) or not isinstance(tool.get("name"), str):
            raise _invalid(f"tools.{i}.name: Field required")
        if tool.get("type") not in (None, "custom"):
            continue  # server tools (web search, ...) run on Anthropic's side: never called here
        schema = tool.get("input_schema")
        if not isinstance(schema, dict):
            raise _invalid(f"tools.{i}.input_schema: Field required")
        check_schema(schema, f"tools.{i}.input_schema", f"tool '{tool['name']}'")  # as the API checks every tool
        out.append({"name": tool["name"], "parameters": schema})
    return out


def _tool_choice(value: Any, tools: list[dict[str, Any]]) -> tuple[ToolChoice, bool]:
    """(what the model may call, whether it may call several at once)."""
    if value is None:
        return ToolChoice("auto", tools), True
    if not isinstance(value, dict) or value.get("type") not in ("auto", "any", "tool", "none"):
        raise _invalid("tool_choice: Input tag should be 'auto', 'any', 'tool' or 'none'")
    parallel = value.get("disable_parallel_tool_use") is not True
    kind = value["type"]
    if kind == "none":
        return ToolChoice("none", []), parallel
    if kind == "auto":
        return ToolChoice("auto", tools), parallel
    if kind == "any":
        return ToolChoice("required", tools), parallel
    named = [t for t in tools if t["name"] == value.get("name")]
    if not named:
        raise _invalid(f"tool_choice.name: no tool named {value.get('name')!r} among the request's tools")
    return ToolChoice("required", named), parallel


def read_request(body: dict[str, Any]) -> Request:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise _invalid("model: Field required" if model is None else "model: Input should be a valid string")
    max_tokens = body.get("max_tokens")
    if max_tokens is None:
        raise _invalid("max_tokens: Field required")
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        raise _invalid("max_tokens: Input should be an integer of at least 1")
    prompt, messages = _messages(body)
    sampling = Sampling(seed=_SEED, temperature=_number(body, "temperature", 0, 1, 1.0), top_p=_number(body, "top_p", 0, 1, 1.0))
    stops = body.get("stop_sequences") or []
    if not isinstance(stops, list) or not all(isinstance(s, str) and s for s in stops):
        raise _invalid("stop_sequences: Input should be a list of non-empty strings")
    tools = _tools(body)
    if body.get("tool_choice") is not None and not tools:
        raise _invalid("tool_choice may only be specified while providing tools")
    choice, parallel = _tool_choice(body.get("tool_choice"), tools)
    thinking = body.get("thinking")
    thinks = isinstance(thinking, dict) and thinking.get("type") == "enabled"
    return Request(model, max_tokens, prompt, sampling, stops, tools, choice, parallel, _history(messages), thinks)


# --- the answer ----------------------------------------------------------------------------------


def _text(request: Request, drift: str) -> tuple[str, str, str | None]:
    """(text, stop_reason, stop_sequence): the model's reply cut at the first stop sequence, then at max_tokens."""
    rng = rng_for(request.model, request.prompt, request.sampling, drift, 0)
    text = BaseBrain().reply(request.prompt, rng, request.sampling)
    reason, sequence = "end_turn", None
    found = [(text.find(s), s) for s in request.stop_sequences if s in text]
    if found:
        at, sequence = min(found)
        text, reason = text[:at], "stop_sequence"
    parts = pieces(text)
    if len(parts) > request.max_tokens:
        text, reason, sequence = "".join(parts[: request.max_tokens]), "max_tokens", None
    return text, reason, sequence


def _tool_uses(request: Request, drift: str) -> list[dict[str, Any]]:
    rng = rng_for(request.model, request.prompt, request.sampling, drift, 1000)
    chosen = chosen_tools(request.choice, request.prompt.last_user, request.history, rng, request.parallel)
    blocks = []
    for function in chosen:
        call = tool_call(function, rng, request.prompt.last_user)
        blocks.append(
            {
                "type": "tool_use",
                "id": "toolu_" + call["id"][5:],
                "name": call["function"]["name"],
                "input": json.loads(call["function"]["arguments"]),
            }
        )
    return blocks


def _thinking(request: Request, drift: str) -> dict[str, Any]:
    rng = rng_for(request.model, request.prompt, request.sampling, drift, 2000)
    thought = BaseBrain().reply(request.prompt, rng, request.sampling)
    signature = base64.b64encode(hashlib.sha256(thought.encode()).digest()).decode()
    return {"type": "thinking", "thinking": thought, "signature": signature}


def answer(request: Request, drift: str) -> dict[str, Any]:
    """The `message` for a request: deterministic but for its id."""
    content: list[dict[str, Any]] = [_thinking(request, drift)] if request.thinking else []
    uses = _tool_uses(request, drift)
    if uses:
        content += uses
        reason, sequence = "tool_use", None
        output = sum(count_tokens(u["name"] + json.dumps(u["input"])) + 3 for u in uses)
    else:
        text, reason, sequence = _text(request, drift)
        content.append({"type": "text", "text": text})
        output = len(pieces(text))
    if request.thinking:
        output += count_tokens(content[0]["thinking"])
    return {
        "id": "msg_" + secrets.token_hex(12),
        "type": "message",
        "role": "assistant",
        "model": request.model,
        "content": content,
        "stop_reason": reason,
        "stop_sequence": sequence,
        "usage": {
            "input_tokens": request.prompt.tokens,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "output_tokens": output,
            "service_tier": "standard",
        },
    }


def _stream_flag(body: dict[str, Any]) -> bool:
    value = body.get("stream", False)
    if value is not None and not isinstance(value, bool):
        raise _invalid("stream: Input should be a valid boolean")
    return bool(value)


async def create_message(request: web.Request) -> web.StreamResponse:
    body = await read_json(request)
    asked = read_request(body)
    streaming = _stream_flag(body)
    message = answer(asked, request.app[CONFIG].drift)
    await first_token_delay(request)
    headers = {"request-id": "req_" + secrets.token_hex(12)}
    interval = token_interval(request.app)
    if not streaming:
        await pause(request.app, message["usage"]["output_tokens"] * interval)
        return web.json_response(message, headers=headers)
    events = split(message, include_usage=True)
    stream = await open_stream(request, len(events), headers)
    for event in events:
        await stream.send(event.data, event.event)
        await pause(request.app, interval)
    await stream.response.write_eof()
    return stream.response


async def count_message_tokens(request: web.Request) -> web.Response:
    body = await read_json(request)
    if not isinstance(body.get("model"), str):
        raise _invalid("model: Field required")
    prompt, _ = _messages(body)
    return web.json_response({"input_tokens": prompt.tokens})


def add_routes(app: web.Application) -> None:
    app.router.add_post(MESSAGES, create_message)
    app.router.add_post(MESSAGES + "/count_tokens", count_message_tokens)
