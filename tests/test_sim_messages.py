"""The simulator's Messages API (Anthropic's), through the real `anthropic` SDK: system and multi-turn,
tools and every tool_choice, stop_sequences, max_tokens, streaming helpers, the same answer for the
same request, usage, Anthropic's errors and auth."""

from __future__ import annotations

import anthropic
import pytest

from proxy_support import http

MODEL = "claude-sonnet-4-5"
KEY = "sk-ant-api03-simulatedTEST0123456789abcdefABCDEF"
WEATHER = {
    "name": "get_weather",
    "description": "The weather in a city.",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
TIME = {
    "name": "get_time",
    "description": "The time in a city.",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
}


@pytest.fixture
def client(sim):
    made = anthropic.Anthropic(base_url=sim.root, api_key=KEY, max_retries=0)
    yield made
    made.close()


def ask(client, text="Tell me about bread.", **options):
    options.setdefault("max_tokens", 200)
    return client.messages.create(model=MODEL, messages=[{"role": "user", "content": text}], **options)


def test_a_plain_answer_has_anthropics_shape_and_usage(client):
    answer = ask(client, system="You are terse.")
    assert answer.type == "message" and answer.role == "assistant" and answer.model == MODEL
    assert answer.id.startswith("msg_")
    [block] = answer.content
    assert block.type == "text" and block.text
    assert answer.stop_reason == "end_turn" and answer.stop_sequence is None
    assert answer.usage.input_tokens > 0 and answer.usage.output_tokens > 0


def test_the_same_request_gets_the_same_answer_and_another_request_another(client):
    first, again = ask(client), ask(client)
    assert first.content[0].text == again.content[0].text and first.id != again.id
    assert ask(client, "Tell me about cheese.").content[0].text != first.content[0].text
    assert ask(client, system="Speak like a pirate.").content[0].text != first.content[0].text


def test_multi_turn_conversations_are_answered(client):
    turns = [
        {"role": "user", "content": "Tell me about bread."},
        {"role": "assistant", "content": [{"type": "text", "text": "Bread is baked."}]},
        {"role": "user", "content": [{"type": "text", "text": "And cheese?"}]},
    ]
    answer = client.messages.create(model=MODEL, max_tokens=200, messages=turns)
    assert answer.content[0].text and answer.stop_reason == "end_turn"


def test_max_tokens_cuts_the_answer(client):
    answer = ask(client, max_tokens=3)
    assert answer.stop_reason == "max_tokens"
    assert answer.usage.output_tokens == 3


def test_a_stop_sequence_ends_the_answer_before_it(client):
    whole = ask(client).content[0].text
    word = whole.split()[3]
    answer = ask(client, stop_sequences=[word])
    assert answer.stop_reason == "stop_sequence" and answer.stop_sequence == word
    assert answer.content[0].text == whole[: whole.find(word)]


def test_tools_under_each_tool_choice(client):
    asked = "What is the weather in Paris?"
    auto = ask(client, asked, tools=[WEATHER, TIME])
    assert auto.stop_reason == "tool_use"
    [call] = auto.content
    assert call.type == "tool_use" and call.name == "get_weather" and call.id.startswith("toolu_")
    assert isinstance(call.input["city"], str)
    assert ask(client, "Tell me about bread.", tools=[WEATHER]).stop_reason == "end_turn"  # not asked for: text
    anything = ask(client, "Tell me about bread.", tools=[WEATHER], tool_choice={"type": "any"})
    assert anything.stop_reason == "tool_use" and anything.content[0].name == "get_weather"
    named = ask(client, asked, tools=[WEATHER, TIME], tool_choice={"type": "tool", "name": "get_time"})
    assert [b.name for b in named.content] == ["get_time"]
    none = ask(client, asked, tools=[WEATHER], tool_choice={"type": "none"})
    assert none.stop_reason == "end_turn" and none.content[0].type == "text"
    both = ask(client, "What is the weather and the time in Rome?", tools=[WEATHER, TIME])
    assert sorted(b.name for b in both.content) == ["get_time", "get_weather"]
    one = ask(
        client,
        "What is the weather and the time in Rome?",
        tools=[WEATHER, TIME],
        tool_choice={"type": "auto", "disable_parallel_tool_use": True},
    )
    assert len(one.content) == 1


def test_a_tool_result_is_answered_with_text(client):
    call = ask(client, "What is the weather in Paris?", tools=[WEATHER]).content[0]
    turns = [
        {"role": "user", "content": "What is the weather in Paris?"},
        {"role": "assistant", "content": [call.model_dump(exclude_none=True)]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "Sunny, 21 C"}]},
    ]
    answer = client.messages.create(model=MODEL, max_tokens=200, tools=[WEATHER], messages=turns)
    assert answer.stop_reason == "end_turn" and answer.content[0].type == "text"


def test_streaming_helpers_give_the_plain_answer(client):
    plain = ask(client, "Tell me about tea.")
    with client.messages.stream(
        model=MODEL, max_tokens=200, messages=[{"role": "user", "content": "Tell me about tea."}]
    ) as stream:
        pieces = list(stream.text_stream)
        final = stream.get_final_message()
    assert len(pieces) > 1 and "".join(pieces) == plain.content[0].text
    assert final.content[0].text == plain.content[0].text
    assert final.usage.output_tokens == plain.usage.output_tokens and final.stop_reason == "end_turn"


def test_a_streamed_tool_call_and_thinking(client):
    with client.messages.stream(
        model=MODEL,
        max_tokens=2000,
        thinking={"type": "enabled", "budget_tokens": 1024},
        tools=[WEATHER],
        messages=[{"role": "user", "content": "What is the weather in Paris?"}],
    ) as stream:
        final = stream.get_final_message()
    thinking, call = final.content
    assert thinking.type == "thinking" and thinking.thinking and thinking.signature
    assert call.type == "tool_use" and call.name == "get_weather" and "city" in call.input


async def test_the_async_client(sim):
    async with anthropic.AsyncAnthropic(base_url=sim.root, api_key=KEY, max_retries=0) as client:
        answer = await client.messages.create(model=MODEL, max_tokens=50, messages=[{"role": "user", "content": "hi"}])
        async with client.messages.stream(model=MODEL, max_tokens=50, messages=[{"role": "user", "content": "hi"}]) as stream:
            text = await stream.get_final_text()
    assert text == answer.content[0].text


def test_count_tokens(client):
    counted = client.messages.count_tokens(model=MODEL, messages=[{"role": "user", "content": "Tell me about bread."}])
    assert counted.input_tokens == ask(client).usage.input_tokens


def test_errors_are_anthropics(client):
    with pytest.raises(anthropic.BadRequestError) as raised:
        client.messages.create(model=MODEL, max_tokens=0, messages=[{"role": "user", "content": "hi"}])
    assert raised.value.body == {
        "type": "error",
        "error": {"type": "invalid_request_error", "message": "max_tokens: Input should be an integer of at least 1"},
    }
    with pytest.raises(anthropic.BadRequestError, match="tool_choice"):
        ask(client, tool_choice={"type": "any"})
    with pytest.raises(anthropic.BadRequestError, match="role"):
        client.messages.create(model=MODEL, max_tokens=10, messages=[{"role": "system", "content": "hi"}])


def test_a_simulated_overload_is_anthropics_529_which_the_sdk_retries(sim):
    overloaded = getattr(anthropic, "OverloadedError", anthropic.InternalServerError)  # the SDK's name for 529
    with anthropic.Anthropic(base_url=sim.root, api_key=KEY, max_retries=0) as client:
        with pytest.raises(overloaded) as raised:
            ask(client, extra_headers={"X-Sim-Fault": "503"})
    assert raised.value.status_code == 529
    assert raised.value.body == {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded (simulated)"}}
    before = sim.stats()["requests"]["POST /v1/messages"]
    with anthropic.Anthropic(base_url=sim.root, api_key=KEY, max_retries=1) as client:
        with pytest.raises(overloaded):
            ask(client, extra_headers={"X-Sim-Fault": "503"})
    assert sim.stats()["requests"]["POST /v1/messages"] == before + 2  # asked again once, as for a real overload


def test_auth_wants_x_api_key_and_anthropic_version(sim):
    body = {"model": MODEL, "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}
    no_key = http(f"{sim.root}/v1/messages", body=body, headers={"anthropic-version": "2023-06-01"})
    assert no_key.status == 401
    assert no_key.json() == {
        "type": "error",
        "error": {"type": "authentication_error", "message": "x-api-key header is required"},
    }
    no_version = http(f"{sim.root}/v1/messages", body=body, headers={"x-api-key": KEY})
    assert no_version.status == 400 and "anthropic-version" in no_version.json()["error"]["message"]
    with anthropic.Anthropic(base_url=sim.root, api_key=KEY, max_retries=0) as client:
        with pytest.raises(anthropic.InternalServerError):
            ask(client, extra_headers={"X-Sim-Fault": "500"})
