"""A large plain recording asked for as a stream: cut into deltas a few KB long (a bounded number of
events, not a word each), off the loop, and the stream the SDK assembles is the recording."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import anthropic
import pytest
from aiohttp import web

from pytest_seedreplay.proxy.serve import BackgroundServer
from pytest_seedreplay.shapes import split

from proxy_support import API_KEY, MODEL, messages

CLAUDE = "claude-sonnet-4-5"
TEXT = "".join(f"w{i:06d} " for i in range(200_000))  # 1.6 MB: 200,000 words
MOST_EVENTS = 1_100  # a word an event would be 200,000


def chat_body(text: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-big",
        "object": "chat.completion",
        "created": 1700000000,
        "model": MODEL,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }


def completion_body(text: str) -> dict[str, Any]:
    return {
        "id": "cmpl-big",
        "object": "text_completion",
        "created": 1700000000,
        "model": "gpt-3.5-turbo-instruct",
        "choices": [{"index": 0, "text": text, "logprobs": None, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }


def response_body(text: str) -> dict[str, Any]:
    return {
        "id": "resp_big",
        "object": "response",
        "created_at": 1700000000,
        "status": "completed",
        "model": MODEL,
        "output": [
            {
                "type": "message",
                "id": "msg_big",
                "status": "completed",
                "role": "assistant",
                "content": [{"type": "output_text", "text": text, "annotations": []}],
            }
        ],
        "usage": {
            "input_tokens": 1,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": 1,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": 2,
        },
    }


def message_body(text: str) -> dict[str, Any]:
    return {
        "id": "msg_big",
        "type": "message",
        "role": "assistant",
        "model": CLAUDE,
        "content": [
            {"type": "text", "text": text},
            {"type": "tool_use", "id": "toolu_1", "name": "save", "input": {"text": text}},
        ],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 1, "output_tokens": 1},
    }


BODIES: dict[str, Callable[[str], dict[str, Any]]] = {
    "/v1/chat/completions": chat_body,
    "/v1/completions": completion_body,
    "/v1/responses": response_body,
    "/v1/messages": message_body,
}


def plain_upstream() -> web.Application:
    """Every endpoint answers any request with its plain answer of TEXT (never a stream)."""
    app = web.Application(client_max_size=2**20)
    for path, body in BODIES.items():

        async def answer(request: web.Request, body: Callable[[str], dict[str, Any]] = body) -> web.Response:
            return web.Response(body=json.dumps(body(TEXT)), content_type="application/json")

        app.router.add_post(path, answer)
    return app


@pytest.fixture
def big(proxy_factory):
    with BackgroundServer(plain_upstream) as upstream:
        yield proxy_factory(upstream.url + "/v1", anthropic_upstream=upstream.url, memory_cache=0)


def test_chat(big):
    client = big.client()
    ask = {"model": MODEL, "messages": messages("the long one"), "seed": 1}
    assert client.chat.completions.create(**ask).choices[0].message.content == TEXT  # recorded, plain
    big.settle()
    raw = client.chat.completions.with_raw_response.create(**ask, stream=True)
    assert raw.headers["x-seedreplay-cache"] == "hit"
    chunks = list(raw.parse())
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == TEXT
    assert len(chunks) < MOST_EVENTS


def test_completions(big):
    client = big.client()
    ask = {"model": "gpt-3.5-turbo-instruct", "prompt": "the long one", "seed": 1}
    assert client.completions.create(**ask).choices[0].text == TEXT
    big.settle()
    raw = client.completions.with_raw_response.create(**ask, stream=True)
    assert raw.headers["x-seedreplay-cache"] == "hit"
    chunks = list(raw.parse())
    assert "".join(c.choices[0].text for c in chunks if c.choices) == TEXT
    assert len(chunks) < MOST_EVENTS


def test_responses(big):
    client = big.client()
    ask = {"model": MODEL, "input": "the long one"}
    assert client.responses.create(**ask).output_text == TEXT
    big.settle()
    raw = client.responses.with_raw_response.create(**ask, stream=True)
    assert raw.headers["x-seedreplay-cache"] == "hit"
    events = list(raw.parse())
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == TEXT
    assert events[-1].type == "response.completed" and events[-1].response.output_text == TEXT
    assert len(events) < MOST_EVENTS


def test_messages(big):
    with anthropic.Anthropic(base_url=big.root, api_key=API_KEY, max_retries=0) as claude:
        ask = {"model": CLAUDE, "max_tokens": 1024, "messages": messages("the long one")}
        assert claude.messages.create(**ask).content[0].text == TEXT
        big.settle()
        with claude.messages.stream(**ask) as stream:
            final = stream.get_final_message()
        events = list(claude.messages.create(**ask, stream=True))
    assert final.content[0].text == TEXT and final.content[1].input == {"text": TEXT}
    deltas = [e.delta for e in events if e.type == "content_block_delta"]
    assert "".join(d.text for d in deltas if d.type == "text_delta") == TEXT
    assert json.loads("".join(d.partial_json for d in deltas if d.type == "input_json_delta")) == {"text": TEXT}
    assert len(events) < 2 * MOST_EVENTS  # the text and the tool's input JSON, each bounded


@pytest.mark.parametrize("endpoint", BODIES)
def test_every_endpoints_split_has_a_bounded_count_of_events_that_join_back(endpoint):
    long = TEXT * 8  # 12.8 MB: pieces grow, their count does not
    events = split(endpoint, BODIES[endpoint](long), True)
    assert len(events) < 2 * MOST_EVENTS
    short = split(endpoint, BODIES[endpoint]("a few words here"), True)
    assert len(short) >= 4  # a short answer still streams a word at a time, as the API does
