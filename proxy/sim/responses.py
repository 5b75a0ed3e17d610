"""`POST /v1/responses`: string or item input (messages, function calls and their outputs), continued
from `previous_response_id`; a message or function calls, plain or as the named stream events."""

from __future__ import annotations

import secrets
import time
from typing import Any

from aiohttp import web

from .errors import bad_request, check_known_responses, invalid_type, invalid_value, missing
from .inference import (
    Generated,
    Prompt,
    chat_prompt,
    completion_tokens,
    content_text,
    cut,
    generate,
    parse_sampling,
    require_model,
    rng_for,
)
from .logprobs import material, parse_top, token_logprobs
from .model import count_tokens, pieces
from .models import check_family, reasoning_tokens, resolve_text_model
from .runtime import CONFIG, STATE, first_token_delay, pause, read_json, stream_flag, token_interval
from .sse import open_stream
from .state import SimState
from .structured import chosen_tools, json_answer, parallel_calls, parse_tool_choice, parse_tools, tool_calls

# Every top-level parameter the Responses API documents (those of the openai SDK's `responses.create`,
# 3.63); any other is refused with 400 unknown_parameter, as the API refuses it.
RESPONSES_PARAMS = frozenset(
    {
        "model", "input", "access_programs", "background", "background_options", "context_management",
        "conversation", "image", "include", "instructions", "max_output_tokens", "max_tool_calls", "metadata",
        "moderation", "parallel_tool_calls", "previous_response_id", "prompt", "prompt_cache_key",
        "prompt_cache_options", "prompt_cache_retention", "reasoning", "safety_identifier", "service_tier", "store",
        "stream", "stream_options", "temperature", "text", "tool_choice", "tools", "top_logprobs", "top_p",
        "truncation", "user",
    }
)  # fmt: skip
MIN_OUTPUT_TOKENS = 16
PACED_EVENTS = frozenset({"response.output_text.delta", "response.function_call_arguments.delta"})


def _input_items(body: dict[str, Any]) -> list[dict[str, Any]]:
    """This request's `input` as a list of items (a string is one user message)."""
    value = body.get("input")
    if value is None:
        raise missing("input")
    if isinstance(value, str):
        return [{"type": "message", "role": "user", "content": value}]
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
        elif kind == "function_call":
            for field in ("call_id", "name", "arguments"):
                if not isinstance(item.get(field), str):
                    raise missing(f"input[{i}].{field}")
        elif kind == "function_call_output":
            if not isinstance(item.get("call_id"), str):
                raise missing(f"input[{i}].call_id")
            if "output" not in item:
                raise missing(f"input[{i}].output")
    return value


def _earlier_items(state: SimState, body: dict[str, Any]) -> list[dict[str, Any]]:
    """The conversation `previous_response_id` ends (its input and output), or none."""
    previous = body.get("previous_response_id")
    if previous is None:
        return []
    if not isinstance(previous, str):
        raise invalid_type("previous_response_id", "a string", previous)
    items = state.response_items(previous)
    if items is None:
        raise bad_request(
            f"Previous response with id '{previous}' not found.", "previous_response_id", "previous_response_not_found"
        )
    return items


def _messages(body: dict[str, Any], items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The conversation as chat messages (instructions first), so chat and responses share one prompt
    form and one tool logic: a function call is an assistant message with `tool_calls`, its output a
    `tool` message. Instructions are this request's own (an earlier response's are not carried over)."""
    messages: list[dict[str, Any]] = []
    instructions = body.get("instructions")
    if instructions is not None:
        if not isinstance(instructions, str):
            raise invalid_type("instructions", "a string", instructions)
        messages.append({"role": "developer", "content": instructions})
    for item in items:
        kind = item.get("type", "message")
        if kind == "message":
            messages.append({"role": item["role"], "content": item.get("content")})
        elif kind == "function_call":
            call = {"id": item["call_id"], "type": "function", "function": {"name": item["name"], "arguments": item["arguments"]}}
            messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind == "function_call_output":
            output = item.get("output")
            text = output if isinstance(output, str) else content_text(output, "function_call_output.output")
            messages.append({"role": "tool", "tool_call_id": item["call_id"], "content": text})
        # other item kinds (reasoning, item_reference, ...) carry no text the simulator answers
    return messages


def _sampling(body: dict[str, Any]):
    limit = body.get("max_output_tokens")
    if limit is not None and not isinstance(limit, bool) and isinstance(limit, int) and limit < MIN_OUTPUT_TOKENS:
        raise invalid_value(
            "max_output_tokens", f"integer below minimum value. Expected a value >= {MIN_OUTPUT_TOKENS}, but got {limit} instead."
        )
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


def _response_object(
    body: dict[str, Any],
    rid: str,
    created: int,
    name: str,
    status: str,
    output: list[dict[str, Any]],
    prompt: Prompt | None,
    out_tokens: int,
    reasoning: int = 0,
) -> dict[str, Any]:
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
        "parallel_tool_calls": body.get("parallel_tool_calls") is not False,
        "previous_response_id": body.get("previous_response_id"),
        "reasoning": {"effort": _effort(body) or ("medium" if reasoning else None), "summary": None},
        "store": body.get("store", True),
        "temperature": body.get("temperature", 1.0),
        "text": body.get("text") or {"format": {"type": "text"}},
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": body.get("tools") or [],
        "top_p": body.get("top_p", 1.0),
        "truncation": body.get("truncation", "disabled"),
        "usage": None
        if prompt is None
        else {
            "input_tokens": prompt.tokens,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": out_tokens + reasoning,
            "output_tokens_details": {"reasoning_tokens": reasoning},
            "total_tokens": prompt.tokens + out_tokens + reasoning,
        },
        "user": body.get("user"),
        "metadata": body.get("metadata") or {},
    }


def _message_item(item_id: str, text: str, status: str, logprobs: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": item_id,
        "type": "message",
        "status": status,
        "role": "assistant",
        "content": [{"type": "output_text", "text": text, "annotations": [], "logprobs": logprobs}],
    }


def _wants_logprobs(body: dict[str, Any]) -> bool:
    """`include` asks for `message.output_text.logprobs`?"""
    include = body.get("include")
    if include is None:
        return False
    if not isinstance(include, list) or not all(isinstance(i, str) for i in include):
        raise invalid_type("include", "an array of strings", include)
    return "message.output_text.logprobs" in include


def _function_call_item(call: dict[str, Any]) -> dict[str, Any]:
    """A chat-shaped tool call (structured.tool_call) as a Responses `function_call` output item."""
    return {
        "id": f"fc_{secrets.token_hex(24)}",
        "type": "function_call",
        "status": "completed",
        "call_id": call["id"],
        "name": call["function"]["name"],
        "arguments": call["function"]["arguments"],
    }


def _answer(
    request: web.Request, body: dict[str, Any], name: str, prompt: Prompt, messages: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], str, int]:
    """The output items, the status and the output tokens: function calls when the model calls
    tools, else one message (prose, or JSON for `text.format`)."""
    sampling = _sampling(body)
    response_format = _response_format(body)
    functions = parse_tools(body, nested=False)
    tool_choice = parse_tool_choice(body.get("tool_choice"), functions, nested=False)
    parallel = parallel_calls(body)
    model = resolve_text_model(request.app, name)
    check_family(model, body, None)
    drift = request.app[CONFIG].drift
    answer = generate(model.brain, model.seed_model, prompt, sampling, drift)[0]
    rng = rng_for(model.seed_model, prompt, sampling, drift, 1000)  # as chat does for its first choice
    called = chosen_tools(tool_choice, prompt.last_user, messages, rng, parallel)
    if called:
        calls = tool_calls(called, rng, prompt.last_user, parallel)
        tokens = completion_tokens(Generated(text="", finish_reason="tool_calls", tool_calls=calls))
        return [_function_call_item(c) for c in calls], "completed", tokens
    if response_format is not None:
        document = json_answer(response_format, answer.text, rng, prompt.last_user, messages)
        answer = answer if document is None else cut(document, sampling)
    status = "incomplete" if answer.finish_reason == "length" else "completed"
    top = parse_top(body, True)
    logprobs = token_logprobs(answer.text, material(model.seed_model, prompt.key, 0), top) if _wants_logprobs(body) else []
    item = _message_item(f"msg_{secrets.token_hex(24)}", answer.text, status, logprobs)
    return [item], status, count_tokens(answer.text)


def _effort(body: dict[str, Any]) -> Any:
    reasoning = body.get("reasoning")
    return reasoning.get("effort") if isinstance(reasoning, dict) else None


async def create_response(request: web.Request) -> web.StreamResponse:
    body = await read_json(request)
    check_known_responses(body, RESPONSES_PARAMS)
    name = require_model(body)
    state = request.app[STATE]
    items = _earlier_items(state, body) + _input_items(body)
    messages = _messages(body, items)
    prompt, _ = chat_prompt({"messages": messages})
    streaming = stream_flag(body)
    output, status, out_tokens = _answer(request, body, name, prompt, messages)
    reasoning = reasoning_tokens(resolve_text_model(request.app, name), _effort(body))
    if reasoning:  # a reasoning model's output opens with its (unsummarised) reasoning item, as upstream
        output = [{"id": f"rs_{secrets.token_hex(24)}", "type": "reasoning", "summary": []}, *output]
    rid, created = f"resp_{secrets.token_hex(24)}", int(time.time())
    final = _response_object(body, rid, created, name, status, output, prompt, out_tokens, reasoning)
    if body.get("store") is not False:  # as upstream: an unstored response cannot be continued
        state.remember_response(rid, [*items, *output])
    await first_token_delay(request)
    if not streaming:
        await pause(request.app, out_tokens * token_interval(request.app))
        return web.json_response(final)

    started = _response_object(body, rid, created, name, "in_progress", [], None, 0)
    events: list[tuple[str, dict[str, Any]]] = [
        ("response.created", {"response": started}),
        ("response.in_progress", {"response": started}),
    ]
    for at, item in enumerate(output):
        events += _ITEM_EVENTS[item["type"]](at, item)
    events.append(("response.completed" if status == "completed" else "response.incomplete", {"response": final}))
    stream = await open_stream(request, len(events))
    interval = token_interval(request.app)
    for number, (kind, data) in enumerate(events):
        await stream.send({"type": kind, "sequence_number": number, **data}, event=kind)
        if kind in PACED_EVENTS:
            await pause(request.app, interval)
    await stream.response.write_eof()
    return stream.response


def _message_events(at: int, item: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    text, logprobs = item["content"][0]["text"], item["content"][0]["logprobs"]
    empty_part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
    where = {"item_id": item["id"], "output_index": at, "content_index": 0}
    events = [
        ("response.output_item.added", {"output_index": at, "item": {**item, "status": "in_progress", "content": []}}),
        ("response.content_part.added", {**where, "part": empty_part}),
    ]
    events += [
        ("response.output_text.delta", {**where, "delta": part, "logprobs": logprobs[n : n + 1]})
        for n, part in enumerate(pieces(text))
    ]
    return events + [
        ("response.output_text.done", {**where, "text": text, "logprobs": logprobs}),
        ("response.content_part.done", {**where, "part": item["content"][0]}),
        ("response.output_item.done", {"output_index": at, "item": item}),
    ]


def _function_call_events(at: int, item: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """As upstream streams a function call: the item with empty arguments, the arguments in pieces,
    the arguments whole, the finished item."""
    where = {"item_id": item["id"], "output_index": at}
    events = [("response.output_item.added", {"output_index": at, "item": {**item, "status": "in_progress", "arguments": ""}})]
    events += [("response.function_call_arguments.delta", {**where, "delta": part}) for part in pieces(item["arguments"])]
    return events + [
        ("response.function_call_arguments.done", {**where, "arguments": item["arguments"]}),
        ("response.output_item.done", {"output_index": at, "item": item}),
    ]


def _reasoning_events(at: int, item: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [
        ("response.output_item.added", {"output_index": at, "item": item}),
        ("response.output_item.done", {"output_index": at, "item": item}),
    ]


_ITEM_EVENTS = {"message": _message_events, "function_call": _function_call_events, "reasoning": _reasoning_events}


def add_routes(app: web.Application) -> None:
    app.router.add_post("/v1/responses", create_response)
