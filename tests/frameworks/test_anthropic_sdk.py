"""Anthropic's own SDK (`anthropic`): sync and async, `messages.create` and the `messages.stream()`
helpers, a system prompt, tool use (plain and streamed, `input_json_delta`), `stop_sequences` and a
`max_tokens` stop - recorded on the simulator through `use_cassette`, replayed offline, a changed
prompt missing, and through the proxy."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from framework_support import CLAUDE as MODEL
from framework_support import SKIP_REASON, anthropic_through_the_proxy, cassette_record_replay_and_miss
from framework_support import record_replay_and_miss as plugin_record_replay_and_miss
from framework_support import through_the_proxy as plugin_off_through_the_proxy

anthropic = pytest.importorskip("anthropic", reason=SKIP_REASON.format(name="anthropic"))

WEATHER = {
    "name": "get_weather",
    "description": "The weather in a city.",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
LISBON = {"role": "user", "content": "What is the weather in Lisbon? Use get_weather."}


def ask(client: Any, text: str, **options: Any) -> Any:
    options.setdefault("max_tokens", 200)
    return client.messages.create(model=MODEL, messages=[{"role": "user", "content": text}], **options)


def blocks(message: Any) -> list[dict[str, Any]]:
    return [block.model_dump(exclude_none=True) for block in message.content]


def plain_and_system(client: Any) -> dict[str, Any]:
    hello = ask(client, "Say hello")
    brief = ask(client, "Describe bread", system=[{"type": "text", "text": "You are a baker. Be brief."}])
    return {"hello": hello.content[0].text, "system": [brief.content[0].text, brief.stop_reason]}


def stops(client: Any) -> dict[str, Any]:
    full = ask(client, "Tell me a story about a lighthouse")
    words = full.content[0].text.split()
    assert len(words) > 2, words
    stop = words[len(words) // 2]
    cut = ask(client, "Tell me a story about a lighthouse", stop_sequences=[stop])
    assert cut.stop_reason == "stop_sequence" and cut.stop_sequence == stop, cut
    assert full.content[0].text.startswith(cut.content[0].text) and stop not in cut.content[0].text
    short = ask(client, "Tell me a story about a lighthouse", max_tokens=3)
    assert short.stop_reason == "max_tokens" and short.usage.output_tokens == 3, short
    # Streamed, the stop arrives in the last message_delta: the same answers.
    story = [{"role": "user", "content": "Tell me a story about a lighthouse"}]
    with client.messages.stream(model=MODEL, max_tokens=200, messages=story, stop_sequences=[stop]) as stream:
        streamed_cut = stream.get_final_message()
    with client.messages.stream(model=MODEL, max_tokens=3, messages=story) as stream:
        streamed_short = stream.get_final_message()
    assert (streamed_cut.stop_reason, streamed_cut.stop_sequence, blocks(streamed_cut)) == ("stop_sequence", stop, blocks(cut))
    assert (streamed_short.stop_reason, blocks(streamed_short)) == ("max_tokens", blocks(short))
    return {"stop": [stop, cut.content[0].text], "max_tokens": short.content[0].text}


def tools(client: Any) -> dict[str, Any]:
    asked = client.messages.create(model=MODEL, max_tokens=200, messages=[LISBON], tools=[WEATHER])
    assert asked.stop_reason == "tool_use", asked
    (use,) = [b for b in asked.content if b.type == "tool_use"]
    assert use.name == "get_weather" and isinstance(use.input, dict) and use.input, use
    result = {"type": "tool_result", "tool_use_id": use.id, "content": "sunny"}
    turns = [LISBON, {"role": "assistant", "content": blocks(asked)}, {"role": "user", "content": [result]}]
    answer = client.messages.create(model=MODEL, max_tokens=200, messages=turns, tools=[WEATHER])
    assert answer.stop_reason == "end_turn" and answer.content[0].text, answer

    # Streamed: the tool's input arrives as input_json_delta pieces, whole again in the final message.
    with client.messages.stream(
        model=MODEL, max_tokens=200, messages=[LISBON], tools=[WEATHER], tool_choice={"type": "tool", "name": "get_weather"}
    ) as stream:
        pieces = [e.delta.partial_json for e in stream if e.type == "content_block_delta" and e.delta.type == "input_json_delta"]
        final = stream.get_final_message()
    (streamed,) = [b for b in final.content if b.type == "tool_use"]
    assert pieces and streamed.input == use.input, (pieces, streamed.input, use.input)
    return {"tool": [use.name, use.input, answer.content[0].text], "streamed tool": ["".join(pieces), final.stop_reason]}


def streams(client: Any) -> dict[str, Any]:
    with client.messages.stream(model=MODEL, max_tokens=200, messages=[{"role": "user", "content": "Stream a poem"}]) as stream:
        texts = list(stream.text_stream)
        final = stream.get_final_message()
    assert len(texts) > 3 and "".join(texts) == final.content[0].text
    return {"stream": [texts, final.stop_reason, final.usage.output_tokens]}


async def async_calls(root: str, key: str) -> dict[str, Any]:
    async with anthropic.AsyncAnthropic(base_url=root, api_key=key, max_retries=0) as client:
        answer = await client.messages.create(model=MODEL, max_tokens=100, messages=[{"role": "user", "content": "Async hello"}])
        async with client.messages.stream(
            model=MODEL, max_tokens=100, messages=[{"role": "user", "content": "Async stream"}]
        ) as stream:
            texts = [text async for text in stream.text_stream]
    return {"async": [answer.content[0].text, "".join(texts)]}


def calls(root: str, key: str) -> dict[str, Any]:
    with anthropic.Anthropic(base_url=root, api_key=key, max_retries=0) as client:
        found = plain_and_system(client) | stops(client) | tools(client) | streams(client)
    return found | asyncio.run(async_calls(root, key))


def changed(root: str, key: str) -> Any:
    with anthropic.Anthropic(base_url=root, api_key=key, max_retries=0) as client:
        return ask(client, "Say goodbye")


def test_anthropic_sdk_records_on_the_simulator_replays_offline_and_names_a_changed_prompt(tmp_path, sim, monkeypatch):
    recorded = cassette_record_replay_and_miss(tmp_path, sim, monkeypatch, calls, changed, '"Say hello" → "Say goodbye"')
    assert recorded["hello"] and recorded["tool"][1] and recorded["streamed tool"][1] == "tool_use"


def test_anthropic_sdk_miss_is_the_sdks_not_found_error(tmp_path, sim, monkeypatch):
    monkeypatch.setenv("SEEDREPLAY_ANTHROPIC_UPSTREAM", sim.root)
    from pytest_seedreplay import use_cassette

    with use_cassette(tmp_path / "empty.yaml", mode="replay") as use:
        with pytest.raises(anthropic.NotFoundError, match="seedreplay"):
            changed(use.proxy.root, "unused")
    assert [m.endpoint for m in use.misses] == ["/v1/messages"]


def test_anthropic_sdk_through_the_proxy_hits_on_the_second_pass(sim, proxy_factory):
    anthropic_through_the_proxy(sim, proxy_factory(sim.url, anthropic_upstream=sim.root), calls)


# The plugin's level: inner tests whose clients take ANTHROPIC_BASE_URL (the plugin's proxy) and the key
# from the environment.
APP = """
import anthropic

WEATHER = {
    "name": "get_weather",
    "description": "The weather in a city.",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
LISBON = {"role": "user", "content": "What is the weather in Lisbon? Use get_weather."}


def client():
    return anthropic.Anthropic(max_retries=0)


def test_chat():
    answer = client().messages.create(
        model=CLAUDE, max_tokens=100, system="Be brief.", messages=[{"role": "user", "content": "Say hello"}]
    )
    note("chat", answer.content[0].text)


def test_stream():
    with client().messages.stream(model=CLAUDE, max_tokens=100, messages=[{"role": "user", "content": "Stream a poem"}]) as stream:
        texts = list(stream.text_stream)
    assert len(texts) > 3
    note("stream", texts)


def test_tools_streamed():
    with client().messages.stream(model=CLAUDE, max_tokens=100, messages=[LISBON], tools=[WEATHER]) as stream:
        pieces = [e.delta.partial_json for e in stream if e.type == "content_block_delta" and e.delta.type == "input_json_delta"]
        final = stream.get_final_message()
    (use,) = [b for b in final.content if b.type == "tool_use"]
    assert pieces and final.stop_reason == "tool_use"
    note("tools", [use.name, use.input, "".join(pieces)])


def test_max_tokens():
    answer = client().messages.create(model=CLAUDE, max_tokens=3, messages=[{"role": "user", "content": "Tell me a story"}])
    assert answer.stop_reason == "max_tokens"
    note("max_tokens", answer.content[0].text)


async def test_async():
    async with anthropic.AsyncAnthropic(max_retries=0) as aclient:
        answer = await aclient.messages.create(model=CLAUDE, max_tokens=100, messages=[{"role": "user", "content": "Async hello"}])
    note("async", answer.content[0].text)
"""


def test_anthropic_sdk_through_the_plugin_records_replays_and_names_a_changed_prompt(pytester, sim_factory, monkeypatch):
    recorded = plugin_record_replay_and_miss(
        pytester,
        sim_factory,
        monkeypatch,
        APP,
        ("Say hello", "Say goodbye"),
        "test_chat",
        "anthropic.NotFoundError",
        anthropic=True,
    )
    assert recorded["tools"][0] == "get_weather" and recorded["max_tokens"]


def test_anthropic_sdk_through_the_proxy_with_the_plugin_off(pytester, sim, proxy_factory, monkeypatch):
    plugin_off_through_the_proxy(pytester, sim, proxy_factory(sim.url, anthropic_upstream=sim.root), monkeypatch, APP)
