"""Answers, streams and strategies the shapes tests share, and a loopback server the real SDK reads them from."""

from __future__ import annotations

import array
import json

import pydantic
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from openai.lib.streaming.chat import ChatCompletionStreamState
from openai.types.chat import ChatCompletionChunk
from openai.types.responses import ResponseStreamEvent

from pytest_seedreplay.core.entry import SSEEvent
from pytest_seedreplay.shapes import (
    format_sse,
)

CHAT = "/v1/chat/completions"
COMPLETIONS = "/v1/completions"
RESPONSES = "/v1/responses"
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Text as models write it: any character JSON can carry, emoji, newlines, odd spaces.
TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)
WORDS = st.lists(st.sampled_from(["Hello", " world", "!", "\n", " 🌍", "é", "  ", "👩‍👩‍👧", "日本", "\t"]), max_size=8).map(
    "".join
)
ANSWER_TEXT = st.one_of(TEXT, WORDS)


def token_logprobs(tokens):
    return [{"token": t, "logprob": -0.25 * i, "bytes": list(t.encode()), "top_logprobs": []} for i, t in enumerate(tokens)]


@st.composite
def chat_messages(draw):
    kind = draw(st.sampled_from(["text", "refusal", "tools", "text+tools"]))
    message = {"role": "assistant", "content": None, "refusal": None}
    logprobs = None
    if kind in ("text", "text+tools"):
        shape = draw(st.sampled_from(["tokens", "other tokens", "plain"]))
        if shape == "tokens":  # logprob tokens spell the content: one token per chunk
            tokens = draw(st.lists(TEXT.filter(bool), min_size=1, max_size=5))
            message["content"] = "".join(tokens)
            logprobs = {"content": token_logprobs(tokens), "refusal": None}
        elif shape == "other tokens":  # they do not: the logprobs ride on the last chunk
            message["content"] = draw(ANSWER_TEXT)
            logprobs = {"content": token_logprobs(draw(st.lists(TEXT, max_size=3))), "refusal": None}
        else:
            message["content"] = draw(ANSWER_TEXT)
    if kind == "refusal":
        message["refusal"] = draw(ANSWER_TEXT)
    if "tools" in kind:
        message["tool_calls"] = [
            {
                "id": f"call_{i}",
                "type": "function",
                "function": {"name": draw(st.sampled_from(["get_weather", "lookup"])), "arguments": json.dumps(args)},
            }
            for i, args in enumerate(
                draw(st.lists(st.dictionaries(st.sampled_from(["city", "n", "q"]), TEXT | st.integers()), min_size=1, max_size=3))
            )
        ]
    if draw(st.booleans()):
        message["annotations"] = []
    finish = "tool_calls" if "tools" in kind else draw(st.sampled_from(["stop", "length", "content_filter"]))
    return message, logprobs, finish


@st.composite
def chat_bodies(draw):
    choices = []
    for index in range(draw(st.integers(1, 3))):
        message, logprobs, finish = draw(chat_messages())
        choices.append({"index": index, "message": message, "logprobs": logprobs, "finish_reason": finish})
    body = {
        "id": "chatcmpl-" + draw(st.text("abcXYZ019", min_size=1, max_size=8)),
        "object": "chat.completion",
        "created": draw(st.integers(0, 2**31)),
        "model": draw(st.sampled_from(["gpt-4o-mini", "gpt-4.1"])),
        "choices": choices,
    }
    if draw(st.booleans()):
        body["usage"] = {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12}
    if draw(st.booleans()):
        body["system_fingerprint"] = "fp_" + draw(st.text("abc123", min_size=1, max_size=6))
    if draw(st.booleans()):
        body["service_tier"] = "default"
    return body


def without_usage(body):
    return {k: v for k, v in body.items() if k != "usage"}


def sdk_accumulate(events):
    """What the SDK's own accumulator makes of a stream."""
    state = ChatCompletionStreamState()
    for event in events:
        if event.data == "[DONE]":
            break
        state.handle_chunk(ChatCompletionChunk.model_validate(json.loads(event.data)))
    # (get_final_completion() refuses finish_reason length / content_filter; the snapshot is the same data)
    return state.current_completion_snapshot


def sdk_view(completion):
    """The parts of a ChatCompletion a caller reads."""
    return {
        "id": completion.id,
        "model": completion.model,
        "created": completion.created,
        "system_fingerprint": completion.system_fingerprint,
        "usage": completion.usage.model_dump() if completion.usage else None,
        "choices": [
            {
                "index": c.index,
                "content": c.message.content,
                "refusal": c.message.refusal,
                "role": c.message.role,
                "tool_calls": [(t.id, t.type, t.function.name, t.function.arguments) for t in c.message.tool_calls or []],
                "finish_reason": c.finish_reason,
                "logprobs": c.logprobs.model_dump() if c.logprobs else None,
            }
            for c in completion.choices
        ],
    }


# A stream as the API sends it: obfuscation, n=2 interleaved, a tool call opening in the role delta,
# logprobs per token, usage chunk.
REAL_STREAM = [
    {
        "choices": [
            {"index": 0, "delta": {"role": "assistant", "content": "", "refusal": None}, "logprobs": None, "finish_reason": None}
        ],
        "obfuscation": "aa",
    },
    {
        "choices": [
            {
                "index": 1,
                "delta": {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [{"index": 0, "id": "call_a", "type": "function", "function": {"name": "f", "arguments": ""}}],
                    "refusal": None,
                },
                "logprobs": None,
                "finish_reason": None,
            }
        ]
    },
    {
        "choices": [
            {
                "index": 0,
                "delta": {"content": "Hel"},
                "logprobs": {
                    "content": [{"token": "Hel", "logprob": -0.1, "bytes": [72, 101, 108], "top_logprobs": []}],
                    "refusal": None,
                },
                "finish_reason": None,
            }
        ]
    },
    {
        "choices": [
            {
                "index": 1,
                "delta": {"tool_calls": [{"index": 0, "function": {"arguments": '{"x":'}}]},
                "logprobs": None,
                "finish_reason": None,
            }
        ]
    },
    {
        "choices": [
            {
                "index": 0,
                "delta": {"content": "lo"},
                "logprobs": {
                    "content": [{"token": "lo", "logprob": -0.2, "bytes": [108, 111], "top_logprobs": []}],
                    "refusal": None,
                },
                "finish_reason": None,
            }
        ]
    },
    {
        "choices": [
            {
                "index": 1,
                "delta": {
                    "tool_calls": [
                        {"index": 0, "function": {"arguments": " 1}"}},
                        {"index": 1, "id": "call_b", "type": "function", "function": {"name": "g", "arguments": "{}"}},
                    ]
                },
                "logprobs": None,
                "finish_reason": None,
            }
        ]
    },
    {"choices": [{"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}]},
    {"choices": [{"index": 1, "delta": {}, "logprobs": None, "finish_reason": "tool_calls"}]},
    {"choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 13}},
]
REAL_HEAD = {
    "id": "chatcmpl-real",
    "object": "chat.completion.chunk",
    "created": 1700000000,
    "model": "gpt-4o-2024-08-06",
    "service_tier": "default",
    "system_fingerprint": "fp_abc",
}


def real_events(include_usage=True):
    frames = []
    for chunk in REAL_STREAM:
        frame = {**REAL_HEAD, **chunk}
        if include_usage:
            frame.setdefault("usage", None)
        elif frame["choices"] == []:
            continue
        frames.append(SSEEvent(json.dumps(frame)))
    return frames + [SSEEvent("[DONE]")]


RESPONSE = {
    "id": "resp_1",
    "object": "response",
    "created_at": 1700000000,
    "status": "completed",
    "completed_at": 1700000001,
    "error": None,
    "incomplete_details": None,
    "instructions": None,
    "model": "gpt-4.1-2025-04-14",
    "output": [
        {
            "id": "rs_1",
            "type": "reasoning",
            "summary": [{"type": "summary_text", "text": "Thinking about it."}],
        },
        {
            "id": "msg_1",
            "type": "message",
            "status": "completed",
            "role": "assistant",
            "content": [
                {
                    "type": "output_text",
                    "text": "Paris is sunny 🌞.\nSee the source.",
                    "annotations": [
                        {"type": "url_citation", "start_index": 0, "end_index": 5, "title": "Paris", "url": "https://example.com"}
                    ],
                    "logprobs": [],
                },
                {"type": "refusal", "refusal": "I can't share more."},
            ],
        },
        {
            "id": "fc_1",
            "type": "function_call",
            "status": "completed",
            "call_id": "call_1",
            "name": "get_weather",
            "arguments": '{"city": "Paris", "unit": "c"}',
        },
    ],
    "parallel_tool_calls": True,
    "temperature": 1.0,
    "tool_choice": "auto",
    "tools": [],
    "top_p": 1.0,
    "usage": {
        "input_tokens": 10,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": 20,
        "output_tokens_details": {"reasoning_tokens": 4},
        "total_tokens": 30,
    },
}

EVENT_ADAPTER = pydantic.TypeAdapter(ResponseStreamEvent)


def sse_reply(events):
    return ("text/event-stream", format_sse(events))


EMBEDDING_BODY = {
    "object": "list",
    "data": [
        {"object": "embedding", "index": 0, "embedding": [0.1, -0.25, 3.0e-5, 1.5, -0.0069292835]},
        {"object": "embedding", "index": 1, "embedding": [0.0, 1.0, -1.0, 0.33333334, 1.5e-30]},
    ],
    "model": "text-embedding-3-small",
    "usage": {"prompt_tokens": 4, "total_tokens": 4},
}


def f32(values):
    return array.array("f", values).tolist()
