"""The simulator's chat completions, driven by the real openai SDK (sync and async)."""

from __future__ import annotations

import datetime
import json
import random
import urllib.request
from typing import Literal

import openai
import pytest
from pydantic import BaseModel

from pytest_seedreplay.proxy.sim import SimConfig, running_sim
from pytest_seedreplay.proxy.sim.model import count_tokens, pieces
from pytest_seedreplay.proxy.sim.structured import value_for

MESSAGES = [{"role": "user", "content": "How do I bake good bread at home?"}]


@pytest.fixture
def client(sim):
    return openai.OpenAI(base_url=sim.url, api_key="sk-test", max_retries=0)


def ask(client, **params):
    params.setdefault("model", "gpt-4o-mini")
    params.setdefault("messages", MESSAGES)
    return client.chat.completions.create(**params)


def test_same_seed_gives_same_text_and_other_seed_differs(client):
    first = ask(client, seed=7)
    again = ask(client, seed=7)
    other = ask(client, seed=8)
    assert first.choices[0].message.content == again.choices[0].message.content
    assert first.choices[0].message.content != other.choices[0].message.content
    assert first.choices[0].finish_reason == "stop"
    assert first.object == "chat.completion" and first.id.startswith("chatcmpl-")


def test_no_seed_varies_between_calls(client):
    texts = {ask(client).choices[0].message.content for _ in range(4)}
    assert len(texts) > 1


def test_temperature_zero_is_deterministic_without_seed(client):
    texts = {ask(client, temperature=0).choices[0].message.content for _ in range(3)}
    assert len(texts) == 1


def test_other_parameters_change_the_seeded_text(client):
    base = ask(client, seed=1).choices[0].message.content
    assert ask(client, seed=1, temperature=0.5).choices[0].message.content != base
    assert ask(client, seed=1, model="gpt-4o").choices[0].message.content != base


def test_usage_counts_match_the_text(client):
    answer = ask(client, seed=3)
    usage = answer.usage
    assert usage.completion_tokens == count_tokens(answer.choices[0].message.content)
    assert usage.prompt_tokens == 3 + 3 + count_tokens(MESSAGES[0]["content"])
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


def test_max_tokens_cuts_with_finish_reason_length(client):
    full = ask(client, seed=5).choices[0].message.content
    for param in ("max_tokens", "max_completion_tokens"):
        short = ask(client, seed=5, **{param: 4})
        assert short.choices[0].finish_reason == "length"
        assert short.usage.completion_tokens == 4
        assert short.choices[0].message.content == "".join(pieces(full)[:4])


def test_stop_sequence_ends_the_text_before_it(client):
    full = ask(client, seed=5).choices[0].message.content
    word = pieces(full)[2].strip()
    answer = ask(client, seed=5, stop=[word])
    assert answer.choices[0].message.content == full[: full.find(word)]
    assert answer.choices[0].finish_reason == "stop"


def test_n_returns_distinct_choices(client):
    answer = ask(client, seed=9, n=3)
    assert [c.index for c in answer.choices] == [0, 1, 2]
    assert len({c.message.content for c in answer.choices}) == 3
    assert answer.choices[0].message.content == ask(client, seed=9).choices[0].message.content


def test_fingerprint_is_per_model_and_changed_by_drift(sim_factory):
    plain = openai.OpenAI(base_url=sim_factory().url, api_key="sk-test", max_retries=0)
    drifted = openai.OpenAI(base_url=sim_factory(drift="2026-11").url, api_key="sk-test", max_retries=0)
    a, b = ask(plain, seed=1), ask(plain, seed=1, model="gpt-4o")
    assert a.system_fingerprint.startswith("fp_") and a.system_fingerprint != b.system_fingerprint
    d = ask(drifted, seed=1)
    assert d.system_fingerprint != a.system_fingerprint
    assert d.choices[0].message.content != a.choices[0].message.content


def test_stream_carries_role_deltas_finish_usage_and_same_text(client):
    plain = ask(client, seed=11)
    chunks = list(ask(client, seed=11, stream=True, stream_options={"include_usage": True}))
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == plain.choices[0].message.content
    finish = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    assert len(finish) == 1 and finish[0].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens == plain.usage.total_tokens
    assert all(c.object == "chat.completion.chunk" and c.system_fingerprint == plain.system_fingerprint for c in chunks)


def test_raw_stream_ends_with_done(sim):
    request = urllib.request.Request(
        f"{sim.url}/chat/completions",
        data=json.dumps({"model": "gpt-4o-mini", "messages": MESSAGES, "stream": True, "seed": 1}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert answer.headers["Content-Type"].startswith("text/event-stream")
        frames = [f for f in answer.read().decode().split("\n\n") if f]
    assert frames[-1] == "data: [DONE]"
    assert all(f.startswith("data: ") for f in frames)


async def test_async_client_and_running_sim_agree_with_each_other():
    async with running_sim(SimConfig()) as url:
        assert url.endswith("/v1")
        client = openai.AsyncOpenAI(base_url=url, api_key="sk-test", max_retries=0)
        plain = await client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, seed=21)
        stream = await client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, seed=21, stream=True)
        text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
        await client.close()
    assert text == plain.choices[0].message.content


def test_models_list_and_retrieve(client, sim_factory):
    ids = {m.id for m in client.models.list()}
    assert {"gpt-4o-mini", "text-embedding-3-small"} <= ids
    assert client.models.retrieve("gpt-4o").id == "gpt-4o"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("ft:gpt-4o-mini-2024-07-18:org:none:abc")
    strict = openai.OpenAI(base_url=sim_factory(strict_models=True).url, api_key="sk-test", max_retries=0)
    with pytest.raises(openai.NotFoundError):
        strict.models.retrieve("no-such-model")


def test_stats_count_requests_per_route(sim, client):
    ask(client, seed=1)
    ask(client, seed=2)
    client.models.list()
    stats = sim.stats()
    assert stats["requests"] == {"POST /v1/chat/completions": 2, "GET /v1/models": 1}
    assert stats["total"] == 3
    reset = urllib.request.Request(f"{sim.root}/sim/stats", method="DELETE")
    with urllib.request.urlopen(reset, timeout=5) as answer:
        assert json.loads(answer.read()) == {"total": 0, "requests": {}}
    ask(client, seed=3)
    assert sim.stats() == {"total": 1, "requests": {"POST /v1/chat/completions": 1}}


def test_healthz(sim):
    with urllib.request.urlopen(f"{sim.root}/healthz", timeout=5) as answer:
        assert json.loads(answer.read()) == {"status": "ok"}


WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "unit": {"type": "string", "enum": ["c", "f"]},
                "days": {"type": "integer", "minimum": 1, "maximum": 7},
            },
            "required": ["city"],
        },
    },
}


def test_tool_call_when_the_user_asks_for_it(client):
    messages = [{"role": "user", "content": "What is the weather in Lisbon?"}]
    answer = ask(client, messages=messages, tools=[WEATHER_TOOL], seed=3)
    choice = answer.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    call = choice.message.tool_calls[0]
    assert call.function.name == "get_weather" and call.id.startswith("call_")
    arguments = json.loads(call.function.arguments)
    assert arguments["unit"] in ("c", "f") and 1 <= arguments["days"] <= 7 and isinstance(arguments["city"], str)
    assert ask(client, messages=messages, tools=[WEATHER_TOOL], seed=3).choices[0].message.tool_calls[0] == call

    streamed = list(ask(client, messages=messages, tools=[WEATHER_TOOL], seed=3, stream=True))
    deltas = [c.choices[0].delta.tool_calls[0] for c in streamed if c.choices and c.choices[0].delta.tool_calls]
    assert deltas[0].id == call.id and deltas[0].function.name == "get_weather"
    assert "".join(d.function.arguments or "" for d in deltas) == call.function.arguments
    assert streamed[-1].choices[0].finish_reason == "tool_calls"


def test_no_tool_call_for_unrelated_text_or_after_a_tool_result(client):
    plain = ask(client, tools=[WEATHER_TOOL], seed=3).choices[0]
    assert plain.finish_reason == "stop" and plain.message.tool_calls is None
    forced = ask(client, tools=[WEATHER_TOOL], tool_choice="required", seed=3).choices[0]
    assert forced.message.tool_calls[0].function.name == "get_weather"
    call = forced.message.tool_calls[0]
    followup = ask(
        client,
        tools=[WEATHER_TOOL],
        seed=3,
        messages=[
            {"role": "user", "content": "What is the weather in Lisbon?"},
            {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
            {"role": "tool", "tool_call_id": call.id, "content": '{"temp": 21}'},
        ],
    ).choices[0]
    assert followup.finish_reason == "stop" and followup.message.content


def test_response_format_json_object_and_json_schema(client):
    as_object = ask(client, seed=2, response_format={"type": "json_object"}).choices[0].message.content
    assert isinstance(json.loads(as_object)["answer"], str)
    schema = {
        "type": "object",
        "properties": {
            "title": {"type": "string"},
            "score": {"type": "number"},
            "tags": {"type": "array", "items": {"type": "string"}},
        },
    }
    document = json.loads(
        ask(client, seed=2, response_format={"type": "json_schema", "json_schema": {"name": "review", "schema": schema}})
        .choices[0]
        .message.content
    )
    assert set(document) == {"title", "score", "tags"} and isinstance(document["tags"], list)


class Step(BaseModel):
    explanation: str
    output: str


class Solution(BaseModel):
    steps: list[Step]
    final_answer: str
    confidence: Literal["low", "high"]
    note: str | None
    check: Step


def _strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def test_parse_fills_a_nested_pydantic_model_with_sentences_of_the_answer(client):
    """The SDK's own `parse` helper: $defs/$ref, enums, Optional and lists all validate."""
    messages = [{"role": "user", "content": "Solve 8x + 7 = -23 step by step."}]
    parsed = client.chat.completions.parse(model="gpt-4o-mini", messages=messages, response_format=Solution, seed=4)
    solution = parsed.choices[0].message.parsed
    assert isinstance(solution, Solution) and solution.steps and isinstance(solution.check, Step)
    assert (
        parsed.choices[0].message.parsed
        == client.chat.completions.parse(model="gpt-4o-mini", messages=messages, response_format=Solution, seed=4)
        .choices[0]
        .message.parsed
    )
    prose = ask(client, messages=messages, seed=4).choices[0].message.content
    assert solution.confidence in ("low", "high")
    for text in _strings(solution.model_dump(exclude={"confidence"})):
        assert text and text in prose, text  # each string is one sentence of what the model would have said
        assert sum(text.count(mark) for mark in ".!?") <= 1, text


class Node(BaseModel):
    name: str
    when: datetime.date
    contact: str | None
    children: list[Node]
    parent: Node | None


def test_schema_values_end_recursive_models_and_honour_string_formats():
    schema = Node.model_json_schema()  # $defs, a self-$ref, anyOf with null: as the SDK sends them
    document = value_for(schema, random.Random(1), "family tree", "Alice is the root. Bob follows.")
    node = Node.model_validate(document)
    assert node.children and node.name in ("Alice is the root.", "Bob follows.")
    assert value_for(
        {"type": "object", "properties": {"at": {"type": "string", "format": "date-time"}}}, random.Random(1), "x"
    ) == {"at": "2024-07-18T12:00:00Z"}
