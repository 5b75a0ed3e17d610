"""Parallel tool calls under `tool_choice: auto`: one call per entity a message asks about, one per
tool it names, and a single call when `parallel_tool_calls` is false. Real openai SDK."""

from __future__ import annotations

import json

import openai
import pytest

from pytest_seedreplay.proxy.sim.structured import entities


def function(name, properties, required=()):
    schema = {"type": "object", "properties": properties, "required": list(required)}
    return {"type": "function", "function": {"name": name, "parameters": schema}}


WEATHER = function("get_weather", {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["c", "f"]}}, ["city"])
TIME = function("get_time", {"timezone": {"type": "string"}}, ["timezone"])
STOCK = function("get_stock_price", {"ticker": {"type": "string"}}, ["ticker"])


@pytest.fixture
def client(sim):
    return openai.OpenAI(base_url=sim.url, api_key="sk-test", max_retries=0)


def calls(client, text, tools, **params):
    answer = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": text}], tools=tools, seed=9, **params
    )
    return [(c.function.name, json.loads(c.function.arguments)) for c in answer.choices[0].message.tool_calls or []]


def test_several_entities_for_one_tool_make_one_call_each(client):
    made = calls(client, "What's the weather in Paris and in Rome?", [WEATHER, STOCK])
    assert [(name, args["city"]) for name, args in made] == [("get_weather", "Paris"), ("get_weather", "Rome")]
    assert all(args["unit"] in ("c", "f") for _, args in made)
    assert calls(client, "What's the weather in Paris and in Rome?", [WEATHER, STOCK]) == made


def test_several_tools_named_make_one_call_each(client):
    made = calls(client, "What is the weather and the time in Oslo?", [WEATHER, TIME, STOCK])
    assert [name for name, _ in made] == ["get_weather", "get_time"]
    assert made[0][1]["city"] == "Oslo" and made[1][1]["timezone"] == "Oslo"


def test_parallel_tool_calls_false_makes_one_call(client):
    made = calls(client, "What's the weather in Paris and in Rome?", [WEATHER], parallel_tool_calls=False)
    assert made == [("get_weather", {**made[0][1], "city": "Paris"})]


def test_parallel_calls_stream_with_their_own_indexes(client):
    plain = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "Weather in Lisbon, Porto and Faro?"}], tools=[WEATHER], seed=9
    )
    expected = plain.choices[0].message.tool_calls
    assert len(expected) == 3
    stream = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "Weather in Lisbon, Porto and Faro?"}],
        tools=[WEATHER],
        seed=9,
        stream=True,
    )
    arguments: dict[int, str] = {}
    for chunk in stream:
        for delta in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
            arguments[delta.index] = arguments.get(delta.index, "") + (delta.function.arguments or "")
    assert [arguments[i] for i in range(3)] == [c.function.arguments for c in expected]


def test_responses_api_makes_the_same_parallel_calls(client):
    tool = {"type": "function", "name": "get_weather", "parameters": WEATHER["function"]["parameters"]}
    answer = client.responses.create(model="gpt-4.1-mini", input="What's the weather in Paris and in Rome?", tools=[tool])
    assert [json.loads(item.arguments)["city"] for item in answer.output] == ["Paris", "Rome"]
    single = client.responses.create(
        model="gpt-4.1-mini", input="What's the weather in Paris and in Rome?", tools=[tool], parallel_tool_calls=False
    )
    assert len(single.output) == 1


def test_entities_are_the_proper_names_asked_about():
    assert entities("What's the weather in Paris and in Rome?") == ["Paris", "Rome"]
    assert entities("Compare New York and Los Angeles.") == ["New York", "Los Angeles"]
    assert entities("I wonder. How warm is it in lowercase paris?") == []
