"""The verdict on live answers (identical / reworded / changed), per endpoint, with answers the
simulator really gives: another seed, another tool, another schema, a length stop, a drifted model."""

from __future__ import annotations

from typing import Any

import aiohttp

from pytest_seedreplay.core.entry import Entry
from pytest_seedreplay.core.key import canonical_request, key_of_canonical
from pytest_seedreplay.drift import TEXT_MIN_SIMILARITY, VECTOR_MIN_COSINE, compare
from pytest_seedreplay.proxy.sim import SimConfig, running_sim

QUESTION = [{"role": "user", "content": "Tell me about the weather in Paris today."}]
HEADERS = {"Authorization": "Bearer sk-test", "anthropic-version": "2023-06-01"}


def city_tool(name: str) -> dict[str, Any]:
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    return {"type": "function", "function": {"name": name, "parameters": schema}}


def product(price_type: str, *, with_price: bool = True) -> dict[str, Any]:
    properties: dict[str, Any] = {"name": {"type": "string"}}
    if with_price:
        properties["price"] = {"type": price_type}
    schema = {"type": "object", "properties": properties, "required": list(properties), "additionalProperties": False}
    return {"type": "json_schema", "json_schema": {"name": "product", "schema": schema, "strict": True}}


async def answers(path: str, *requests: dict[str, Any], drift: str = "") -> list[Entry]:
    """Each request's answer from a simulator (`drift`: a salt that changes the model), as an entry."""
    found = []
    async with running_sim(SimConfig(drift=drift)) as url, aiohttp.ClientSession() as session:
        for request in requests:
            async with session.post(url + path, json=request, headers=HEADERS) as response:
                assert response.status == 200, await response.text()
                body = await response.json()
            canonical = canonical_request("/v1" + path, request)
            found.append(Entry(key=key_of_canonical(canonical), endpoint="/v1" + path, request=canonical, body=body))
    return found


async def recorded_and_live(path: str, recorded: dict[str, Any], live: dict[str, Any], drift: str = "") -> Any:
    """The verdict on `live`'s answer set against `recorded`'s, both asked of the simulator; the
    comparison is keyed on the recorded request (what the live test asked again)."""
    (then,) = await answers(path, recorded)
    (now,) = await answers(path, live, drift=drift)
    now = Entry(key=then.key, endpoint=then.endpoint, request=then.request, body=now.body)
    return compare(then, now)


# --- chat completions ----------------------------------------------------------------------------


async def test_chat_same_seed_is_identical_despite_new_ids():
    request = {"model": "gpt-4o-mini", "messages": QUESTION, "seed": 7}
    drift = await recorded_and_live("/chat/completions", request, request)
    assert (drift.verdict, drift.differences, drift.drifted) == ("identical", [], False)


async def test_chat_another_tool_is_changed_and_named():
    tools = [city_tool("get_weather"), city_tool("get_time")]

    def asking(name: str) -> dict[str, Any]:
        choice = {"type": "function", "function": {"name": name}}
        return {"model": "gpt-4o-mini", "messages": QUESTION, "seed": 1, "tools": tools, "tool_choice": choice}

    drift = await recorded_and_live("/chat/completions", asking("get_weather"), asking("get_time"))
    assert drift.verdict == "changed"
    assert drift.differences == ["tool: get_weather → get_time"]


async def test_chat_a_schema_change_names_the_key_and_its_type():
    request = {"model": "gpt-4o-mini", "messages": QUESTION, "seed": 1, "response_format": product("number")}
    as_text = await recorded_and_live("/chat/completions", request, {**request, "response_format": product("string")})
    assert as_text.verdict == "changed" and as_text.differences == ["key price: number → string"]
    gone = await recorded_and_live("/chat/completions", request, {**request, "response_format": product("x", with_price=False)})
    assert gone.differences == ["key price: missing"]


async def test_chat_json_of_the_same_shape_under_another_seed_is_reworded():
    request = {"model": "gpt-4o-mini", "messages": QUESTION, "seed": 1, "response_format": product("number")}
    drift = await recorded_and_live("/chat/completions", request, {**request, "seed": 2})
    assert not drift.verbatim
    assert (drift.verdict, drift.differences) == ("reworded", [])
    assert 0 <= drift.similarity < 1


async def test_chat_a_length_stop_is_changed():
    request = {"model": "gpt-4o-mini", "messages": QUESTION, "seed": 1}
    drift = await recorded_and_live("/chat/completions", request, {**request, "max_tokens": 3})
    assert drift.verdict == "changed"
    assert drift.differences[0] == "finish_reason: stop → length"


async def test_chat_a_drifted_model_without_seed_says_so_and_suggests_one():
    unseeded = {"model": "gpt-4o-mini", "messages": QUESTION}
    drift = await recorded_and_live("/chat/completions", unseeded, unseeded, drift="v2")
    assert drift.drifted and not drift.seeded
    assert drift.hint is not None and "no seed" in drift.hint and "seed=" in drift.hint
    assert drift.hint in drift.describe()
    seeded = {**unseeded, "seed": 3}
    with_seed = await recorded_and_live("/chat/completions", seeded, seeded, drift="v2")
    assert with_seed.drifted and with_seed.seeded and with_seed.hint is None


# --- Responses -----------------------------------------------------------------------------------


def responses_tool(name: str) -> dict[str, Any]:
    return {"type": "function", **city_tool(name)["function"]}


async def test_responses_function_call_to_another_tool_is_changed():
    def asking(name: str) -> dict[str, Any]:
        tools = [responses_tool("get_weather"), responses_tool("get_time")]
        return {
            "model": "gpt-4o-mini",
            "input": "weather in Paris",
            "tools": tools,
            "tool_choice": {"type": "function", "name": name},
            "temperature": 0,  # no seed in this API: a greedy model answers the same each time
        }

    same = await recorded_and_live("/responses", asking("get_weather"), asking("get_weather"))
    assert same.verdict == "identical"
    drift = await recorded_and_live("/responses", asking("get_weather"), asking("get_time"))
    assert (drift.verdict, drift.differences) == ("changed", ["tool: get_weather → get_time"])


async def test_responses_cut_by_max_output_tokens_is_changed_and_hints_no_seed():
    # temperature 0: the simulator answers the same without a seed, as a greedy model would
    request = {"model": "gpt-4o-mini", "input": "Tell me about the weather in Paris today.", "temperature": 0}
    drift = await recorded_and_live("/responses", request, {**request, "max_output_tokens": 16})
    assert drift.verdict == "changed"
    assert "finish_reason: completed → max_output_tokens" in drift.differences
    assert drift.hint is not None and "takes no seed" in drift.hint


# --- completions ---------------------------------------------------------------------------------


async def test_completions_identical_then_a_length_stop():
    request = {"model": "gpt-3.5-turbo-instruct", "prompt": "Tell me about Paris.", "seed": 4, "max_tokens": 60}
    assert (await recorded_and_live("/completions", request, request)).verdict == "identical"
    cut = await recorded_and_live("/completions", request, {**request, "max_tokens": 2})
    assert cut.verdict == "changed" and cut.differences[0].endswith("→ length")


# --- embeddings ----------------------------------------------------------------------------------


async def test_embeddings_of_a_drifted_model_point_elsewhere():
    request = {"model": "text-embedding-3-small", "input": ["alpha beta", "gamma"]}
    assert (await recorded_and_live("/embeddings", request, request)).verdict == "identical"
    drift = await recorded_and_live("/embeddings", request, request, drift="v2")
    assert drift.verdict == "changed"
    assert drift.differences[0].startswith("embedding[0]: cosine ")
    assert drift.differences[0].endswith(f"below {VECTOR_MIN_COSINE:.2f}")
    assert drift.seeded and drift.hint is None  # embeddings vary by model, not by seed


# --- Anthropic Messages --------------------------------------------------------------------------


def anthropic_tool(name: str) -> dict[str, Any]:
    return {"name": name, "input_schema": city_tool(name)["function"]["parameters"]}


async def test_messages_tool_use_and_stop_reason():
    tools = [anthropic_tool("get_weather"), anthropic_tool("get_time")]

    def asking(name: str) -> dict[str, Any]:
        choice = {"type": "tool", "name": name}
        return {
            "model": "claude-3-5-haiku-latest",
            "max_tokens": 200,
            "temperature": 0,
            "messages": QUESTION,
            "tools": tools,
            "tool_choice": choice,
        }

    assert (await recorded_and_live("/messages", asking("get_weather"), asking("get_weather"))).verdict == "identical"
    drift = await recorded_and_live("/messages", asking("get_weather"), asking("get_time"))
    assert (drift.verdict, drift.differences) == ("changed", ["tool: get_weather → get_time"])
    plain = {"model": "claude-3-5-haiku-latest", "max_tokens": 200, "temperature": 0, "messages": QUESTION}
    cut = await recorded_and_live("/messages", plain, {**plain, "max_tokens": 2})
    assert cut.verdict == "changed" and cut.differences[0] == "stop_reason: end_turn → max_tokens"


def test_the_text_threshold_is_a_named_small_share_of_words():
    assert 0 < TEXT_MIN_SIMILARITY < 0.5
