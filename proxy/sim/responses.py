"""`POST /v1/responses`: string or message input; a plain answer or the named stream events."""

from __future__ import annotations

import secrets
import time
from typing import Any

from aiohttp import web

from .errors import invalid_type, invalid_value, missing
from .inference import Generated, Prompt, chat_prompt, cut, generate, parse_sampling, require_model, rng_for
from .model import count_tokens, pieces
from .models import resolve_text_model
from .runtime import CONFIG, first_token_delay, pause, read_json, stream_flag, token_interval
from .sse import open_stream
from .structured import json_answer

MIN_OUTPUT_TOKENS = 16


def _messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The input as chat messages (instructions first), so chat and responses share one prompt form."""
    value = body.get("input")
    if value is None:
        raise missing("input")
    messages: list[dict[str, Any]] = []
    instructions = body.get("instructions")
    if instructions is not None:
        if not isinstance(instructions, str):
            raise invalid_type("instructions", "a string", instructions)
        messages.append({"role": "developer", "content": instructions})
    if isinstance(value, str):
        messages.append({"role": "user", "content": value})
        return messages
    if not isinstance(value, list) or not value:
        raise invalid_type("input", "a string or a non-empty array of input items", value)
    for i, item in enumerate(value):
        if not isinstance(item, dict):
            raise invalid_type(f"input[{i}]", "an object", item)
        kind = item.get("type", "message")
        if kind == "message":
            if "role" not in item:
                raise missing(f"input[{i}].role")
            if "content" not in item:
                raise missing(f"input[{i}].content")
            messages.append({"role": item["role"], "content": item.get("content")})
        elif kind == "function_call_output":
            messages.append({"role": "tool", "content": str(item.get("output", ""))})
        # other item kinds (reasoning, function_call, ...) carry no text the simulator answers
    return messages


def _sampling(body: dict[str, Any]):
    limit = body.get("max_output_tokens")
    if limit is not None and not isinstance(limit, bool) and isinstance(limit, int) and limit < MIN_OUTPUT_TOKENS:
        raise invalid_value("max_output_tokens", f"integer below minimum value. Expected a value >= {MIN_OUTPUT_TOKENS}, but got {limit} instead.")
    sampling = parse_sampling({k: v for k, v in body.items() if k != "n"}, ("max_output_tokens",))
    return sampling


def _response_format(body: dict[str, Any]) -> dict[str, Any] | None:
    """`text.format` in the chat `response_format` shape (Responses puts name and schema at the top level)."""
    text = body.get("text")
    if text is None:
        return None
    if not isinstance(text, dict):
        raise invalid_type("text", "an object", text)
    fmt = text.get("format")
    if fmt is None:
        return None
    if not isinstance(fmt, dict):
        raise invalid_type("text.format", "an object", fmt)
    kind = fmt.get("type", "text")
    if kind in ("text", "json_object"):
        return {"type": kind}
    if kind == "json_schema":
        if not isinstance(fmt.get("name"), str):
            raise missing("text.format.name")
        return {"type": "json_schema", "json_schema": {"name": fmt["name"], "schema": fmt.get("schema") or {}}}
    raise invalid_value("text.format.type", f"'{kind}'. Supported values are: 'text', 'json_object' and 'json_schema'.")


def _response_object(body: dict[str, Any], rid: str, created: int, name: str, status: str,
                     output: list[dict[str, Any]], prompt: Prompt | None, answer: Generated | None) -> dict[str, Any]:
    out_tokens = count_tokens(answer.text) if answer else 0
    return {
        "id": rid,
        "object": "response",
        "created_at": created,
        "status": status,
        "background": False,
        "error": None,
        "incomplete_details": {"reason": "max_output_tokens"} if status == "incomplete" else None,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "model": name,
        "output": output,
        "parallel_tool_calls": True,
        "previous_response_id": body.get("previous_response_id"),
        "reasoning": {"effort": None, "summary": None},
        "store": body.get("store", True),
        "temperature": body.get("temperature", 1.0),
        "text": body.get("text") or {"format": {"type": "text"}},
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": body.get("tools") or [],
        "top_p": body.get("top_p", 1.0),
        "truncation": body.get("truncation", "disabled"),
        "usage": None if prompt is None else {
            "input_tokens": prompt.tokens,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": out_tokens,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": prompt.tokens + out_tokens,
        },
        "user": body.get("user"),
        "metadata": body.get("metadata") or {},
    }


def _message_item(item_id: str, text: str, status: str) -> dict[str, Any]:
    return {
        "id": item_id,
        "type": "message",
        "status": status,
        "role": "assistant",
        "content": [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}],
    }


async def create_response(request: web.Request) -> web.StreamResponse:
    body = await read_json(request)
    name = require_model(body)
    prompt, _ = chat_prompt({"messages": _messages(body)})
    sampling = _sampling(body)
    streaming = stream_flag(body)
    response_format = _response_format(body)
    model = resolve_text_model(request.app, name)
    drift = request.app[CONFIG].drift
    answer = generate(model.brain, model.seed_model, prompt, sampling, drift)[0]
    if response_format is not None:
        rng = rng_for(model.seed_model, prompt, sampling, drift, 1000)  # as chat does for its first choice
        document = json_answer(response_format, answer.text, rng, prompt.last_user)
        answer = answer if document is None else cut(document, sampling)
    status = "incomplete" if answer.finish_reason == "length" else "completed"
    rid, item_id, created = f"resp_{secrets.token_hex(24)}", f"msg_{secrets.token_hex(24)}", int(time.time())
    item = _message_item(item_id, answer.text, status)
    final = _response_object(body, rid, created, name, status, [item], prompt, answer)
    await first_token_delay(request)
    if not streaming:
        await pause(request.app, count_tokens(answer.text) * token_interval(request.app))
        return web.json_response(final)

    started = _response_object(body, rid, created, name, "in_progress", [], None, None)
    empty_part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
    where = {"item_id": item_id, "output_index": 0, "content_index": 0}
    events: list[tuple[str, dict[str, Any]]] = [
        ("response.created", {"response": started}),
        ("response.in_progress", {"response": started}),
        ("response.output_item.added", {"output_index": 0, "item": {**_message_item(item_id, "", "in_progress"), "content": []}}),
        ("response.content_part.added", {**where, "part": empty_part}),
    ]
    events += [("response.output_text.delta", {**where, "delta": part, "logprobs": []}) for part in pieces(answer.text)]
    events += [
        ("response.output_text.done", {**where, "text": answer.text, "logprobs": []}),
        ("response.content_part.done", {**where, "part": item["content"][0]}),
        ("response.output_item.done", {"output_index": 0, "item": item}),
        ("response.completed" if status == "completed" else "response.incomplete", {"response": final}),
    ]
    stream = await open_stream(request, len(events))
    interval = token_interval(request.app)
    for number, (kind, data) in enumerate(events):
        await stream.send({"type": kind, "sequence_number": number, **data}, event=kind)
        if kind == "response.output_text.delta":
            await pause(request.app, interval)
    await stream.response.write_eof()
    return stream.response


def add_routes(app: web.Application) -> None:
    app.router.add_post("/v1/responses", create_response)
