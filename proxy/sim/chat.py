"""`POST /v1/chat/completions` and the legacy `POST /v1/completions`, plain and streamed."""

from __future__ import annotations

import secrets
import time
from typing import Any

from aiohttp import web

from .errors import check_known, check_text_only, invalid_type, invalid_value, missing
from .inference import (
    Generated,
    Prompt,
    Sampling,
    chat_prompt,
    cite,
    completion_tokens,
    cut,
    generate,
    parse_sampling,
    prediction_counts,
    prediction_text,
    require_model,
    rng_for,
    text_prompt,
    usage,
)
from .logprobs import chat_enabled, material, parse_top, token_logprobs
from .model import pieces
from .models import check_family, reasoning_tokens, resolve_text_model
from .runtime import CONFIG, first_token_delay, include_usage, pause, read_json, stream_flag, token_interval
from .sse import open_stream
from .structured import ToolChoice, chosen_tools, json_answer, parallel_calls, parse_tool_choice, parse_tools, tool_calls

# Every parameter the Chat Completions API documents; any other is refused, as the API refuses it.
CHAT_PARAMS = frozenset(
    {
        "model", "messages", "audio", "frequency_penalty", "function_call", "functions", "logit_bias", "logprobs",
        "max_completion_tokens", "max_tokens", "metadata", "modalities", "n", "parallel_tool_calls", "prediction",
        "presence_penalty", "prompt_cache_key", "prompt_cache_retention", "reasoning_effort", "response_format",
        "safety_identifier", "seed", "service_tier", "stop", "store", "stream", "stream_options", "temperature",
        "tool_choice", "tools", "top_logprobs", "top_p", "user", "verbosity", "web_search_options",
    }
)  # fmt: skip
SERVICE_TIERS = ("auto", "default", "flex", "scale", "priority")
REASONING_EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh")


def _id(prefix: str) -> str:
    return f"{prefix}-{secrets.token_urlsafe(18).replace('-', 'x').replace('_', 'y')}"


async def chat_completions(request: web.Request) -> web.StreamResponse:
    body = await read_json(request)
    check_known(body, CHAT_PARAMS)
    name = require_model(body)
    prompt, messages = chat_prompt(body)
    tier = _service_tier(body)
    check_text_only(body)
    sampling = parse_sampling(body)
    streaming = stream_flag(body)
    functions = parse_tools(body)
    tool_choice = parse_tool_choice(body.get("tool_choice"), functions)
    parallel = parallel_calls(body)
    want_logprobs = chat_enabled(body)
    top_logprobs = parse_top(body, want_logprobs)
    model = resolve_text_model(request.app, name)
    check_family(model, body)
    reasoning = reasoning_tokens(model, _choice(body, "reasoning_effort", REASONING_EFFORTS))
    _choice(body, "verbosity", ("low", "medium", "high"))
    predicted = prediction_text(body)
    drift = request.app[CONFIG].drift
    choices = generate(model.brain, model.seed_model, prompt, sampling, drift)
    if functions or body.get("response_format") is not None:
        choices = [
            _structured(body, tool_choice, parallel, messages, c, model.seed_model, prompt, sampling, drift, i)
            for i, c in enumerate(choices)
        ]
    if want_logprobs:
        for i, c in enumerate(choices):
            c.logprobs = token_logprobs(c.text, material(model.seed_model, prompt.key, i), top_logprobs)
    counts = usage(prompt, choices, reasoning, prediction_counts(predicted, choices))
    head = {
        "id": _id("chatcmpl"),
        "created": int(time.time()),
        "model": name,
        "system_fingerprint": model.fingerprint,
    }
    if model.family.search:
        for c in choices:
            c.annotations = cite(c.text, prompt.key)
    await first_token_delay(request)
    if streaming:
        return await _stream_chat(request, head, choices, counts if include_usage(body) else None)
    await _pace_whole(request, choices)
    return web.json_response(
        {
            **head,
            "object": "chat.completion",
            "choices": [
                {
                    "index": i,
                    "message": _message(c),
                    "logprobs": None if c.logprobs is None else {"content": c.logprobs, "refusal": None},
                    "finish_reason": c.finish_reason,
                }
                for i, c in enumerate(choices)
            ],
            "usage": counts,
            "service_tier": tier,
        }
    )


def _structured(
    body: dict[str, Any],
    tool_choice: ToolChoice,
    parallel: bool,
    messages: list[dict[str, Any]],
    choice: Generated,
    seed_model: str,
    prompt: Prompt,
    sampling: Sampling,
    drift: str,
    index: int,
) -> Generated:
    """Turn a prose choice into tool calls or a JSON document when the request asks for one."""
    rng = rng_for(seed_model, prompt, sampling, drift, 1000 + index)
    functions = chosen_tools(tool_choice, prompt.last_user, messages, rng, parallel)
    if functions:
        calls = tool_calls(functions, rng, prompt.last_user, parallel)
        return Generated(text="", finish_reason="tool_calls", tool_calls=calls)
    document = json_answer(body.get("response_format"), choice.text, rng, prompt.last_user, messages)
    if document is None:
        return choice
    return cut(document, sampling)


def _choice(body: dict[str, Any], param: str, allowed: tuple[str, ...]) -> str | None:
    """An enum parameter's value, or None when absent; a 400 naming the allowed values otherwise."""
    value = body.get(param)
    if value is not None and value not in allowed:
        raise invalid_value(param, f"'{value}'. Supported values are: {', '.join(repr(a) for a in allowed)}.")
    return value


def _service_tier(body: dict[str, Any]) -> str:
    """The tier the answer says it ran on: the one asked for ("auto" runs on "default")."""
    tier = body.get("service_tier")
    if tier is None or tier == "auto":
        return "default"
    if tier not in SERVICE_TIERS:
        raise invalid_value("service_tier", f"'{tier}'. Supported values are: {', '.join(repr(t) for t in SERVICE_TIERS)}.")
    return tier


def _message(choice: Generated) -> dict[str, Any]:
    message: dict[str, Any] = {
        "role": "assistant",
        "content": choice.text,
        "refusal": None,
        "annotations": choice.annotations or [],
    }
    if choice.tool_calls:
        message["content"] = None
        message["tool_calls"] = choice.tool_calls
    return message


async def _stream_chat(
    request: web.Request, head: dict[str, Any], choices: list[Generated], final_usage: dict[str, Any] | None
) -> web.StreamResponse:
    frames: list[dict[str, Any]] = []

    def chunk(
        index: int, delta: dict[str, Any], finish: str | None = None, logprobs: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        frame = {
            **head,
            "object": "chat.completion.chunk",
            "choices": [{"index": index, "delta": delta, "logprobs": logprobs, "finish_reason": finish}],
        }
        if final_usage is not None:
            frame["usage"] = None
        return frame

    split = [pieces(c.text) for c in choices]
    for i, c in enumerate(choices):
        frames.append(chunk(i, {"role": "assistant", "content": None if c.tool_calls else "", "refusal": None}))
    # Choices are interleaved token by token, as upstream does for n > 1.
    for step in range(max((len(p) for p in split), default=0)):
        for i, parts in enumerate(split):
            if step < len(parts):
                entries = choices[i].logprobs
                logprobs = None if entries is None else {"content": entries[step : step + 1], "refusal": None}
                frames.append(chunk(i, {"content": parts[step]}, logprobs=logprobs))
    for i, c in enumerate(choices):
        for n, call in enumerate(c.tool_calls or []):
            opening = {
                "index": n,
                "id": call["id"],
                "type": "function",
                "function": {"name": call["function"]["name"], "arguments": ""},
            }
            frames.append(chunk(i, {"tool_calls": [opening]}))
            for part in pieces(call["function"]["arguments"]):
                frames.append(chunk(i, {"tool_calls": [{"index": n, "function": {"arguments": part}}]}))
    for i, c in enumerate(choices):
        frames.append(chunk(i, {}, c.finish_reason))
    if final_usage is not None:
        frames.append({**head, "object": "chat.completion.chunk", "choices": [], "usage": final_usage})
    return await _send_frames(request, frames)


async def _send_frames(request: web.Request, frames: list[Any]) -> web.StreamResponse:
    stream = await open_stream(request, len(frames) + 1)
    interval = token_interval(request.app)
    for frame in frames:
        await stream.send(frame)
        await pause(request.app, interval)
    await stream.send("[DONE]")
    await stream.response.write_eof()
    return stream.response


async def _pace_whole(request: web.Request, choices: list[Generated]) -> None:
    """A non-streamed answer takes as long as streaming it would have."""
    tokens = sum(completion_tokens(c) for c in choices)
    await pause(request.app, tokens * token_interval(request.app))


async def completions(request: web.Request) -> web.StreamResponse:
    body = await read_json(request)
    name = require_model(body)
    prompts = _prompts(body)
    sampling = parse_sampling(body, ("max_tokens",))
    if "max_tokens" not in body:
        sampling.max_tokens = 16  # the legacy endpoint's documented default
    streaming = stream_flag(body)
    model = resolve_text_model(request.app, name, ("completion",))
    drift = request.app[CONFIG].drift
    results: list[Generated] = []
    total_prompt = 0
    for text in prompts:
        prompt = text_prompt(text)
        total_prompt += prompt.tokens
        results.extend(generate(model.brain, model.seed_model, prompt, sampling, drift))
    head = {"id": _id("cmpl"), "created": int(time.time()), "model": name, "system_fingerprint": model.fingerprint}
    completion_tokens = sum(len(pieces(r.text)) for r in results)
    counts = {
        "prompt_tokens": total_prompt,
        "completion_tokens": completion_tokens,
        "total_tokens": total_prompt + completion_tokens,
    }
    await first_token_delay(request)
    if streaming:
        frames: list[Any] = []
        for i, r in enumerate(results):
            for part in pieces(r.text):
                frames.append(
                    {
                        **head,
                        "object": "text_completion",
                        "choices": [{"index": i, "text": part, "logprobs": None, "finish_reason": None}],
                    }
                )
            frames.append(
                {
                    **head,
                    "object": "text_completion",
                    "choices": [{"index": i, "text": "", "logprobs": None, "finish_reason": r.finish_reason}],
                }
            )
        if include_usage(body):
            frames.append({**head, "object": "text_completion", "choices": [], "usage": counts})
        return await _send_frames(request, frames)
    await _pace_whole(request, results)
    return web.json_response(
        {
            **head,
            "object": "text_completion",
            "choices": [
                {"index": i, "text": r.text, "logprobs": None, "finish_reason": r.finish_reason} for i, r in enumerate(results)
            ],
            "usage": counts,
        }
    )


def _prompts(body: dict[str, Any]) -> list[str]:
    prompt = body.get("prompt")
    if prompt is None:
        raise missing("prompt")
    if isinstance(prompt, str):
        return [prompt]
    if isinstance(prompt, list) and prompt and all(isinstance(p, str) for p in prompt):
        return prompt
    if isinstance(prompt, list) and prompt and all(isinstance(p, int) for p in prompt):
        return [" ".join(f"t{p}" for p in prompt)]  # token ids: any stable text stands in for them
    raise invalid_type("prompt", "a string or an array of strings", prompt)


def add_routes(app: web.Application) -> None:
    app.router.add_post("/v1/chat/completions", chat_completions)
    app.router.add_post("/v1/completions", completions)
