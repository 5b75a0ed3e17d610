"""LangChain's Anthropic model (langchain-anthropic): invoke, stream, structured output, tools and the
answer after them, async - recorded on the simulator through `use_cassette`, replayed offline, a
changed prompt missing, and through the proxy."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from framework_support import CLAUDE, SKIP_REASON, anthropic_through_the_proxy, cassette_record_replay_and_miss
from framework_support import record_replay_and_miss as plugin_record_replay_and_miss
from framework_support import through_the_proxy as plugin_off_through_the_proxy

pytest.importorskip("langchain_anthropic", reason=SKIP_REASON.format(name="langchain-anthropic"))
from langchain_anthropic import ChatAnthropic, _client_utils  # noqa: E402
from langchain_anthropic.chat_models import AnthropicModelNotFoundError  # noqa: E402
from langchain_core.messages import HumanMessage, SystemMessage, ToolMessage  # noqa: E402
from langchain_core.tools import tool  # noqa: E402
from pydantic import BaseModel  # noqa: E402


class City(BaseModel):
    name: str
    country: str


@tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"sunny in {city}"


def chat(root: str, key: str) -> ChatAnthropic:
    return ChatAnthropic(model_name=CLAUDE, base_url=root, api_key=key, max_retries=0, max_tokens=200, timeout=30)


def sync_calls(model: ChatAnthropic) -> dict[str, Any]:
    hello = model.invoke([SystemMessage("Be brief."), HumanMessage("Say hello")]).content
    chunks = list(model.stream("Tell me a story"))
    assert len(chunks) > 3
    streamed = "".join(c.text for c in chunks)
    city = model.with_structured_output(City).invoke("Where is the Eiffel tower?")
    assert isinstance(city, City)

    tooled = model.bind_tools([get_weather])
    question = HumanMessage("What is the weather in Lisbon?")
    asked = tooled.invoke([question])
    (call,) = asked.tool_calls
    assert call["name"] == "get_weather", call
    result = ToolMessage(get_weather.invoke(call["args"]), tool_call_id=call["id"])
    answer = tooled.invoke([question, asked, result])
    assert answer.content
    return {"hello": hello, "stream": streamed, "structured": city.model_dump(), "tools": [call["args"], answer.content]}


async def async_calls(model: ChatAnthropic) -> dict[str, Any]:
    answer = await model.ainvoke("Async hello")
    parts = [chunk.text async for chunk in model.astream("Async stream")]
    assert len(parts) > 3
    return {"async": [answer.content, "".join(parts)]}


def forget_cached_clients() -> None:
    """ChatAnthropic, like ChatOpenAI, keeps one default async HTTP client per process, bound to the
    event loop that first used it: each `asyncio.run` here is a new loop (as each async test is under
    pytest-asyncio's function-scoped loops), which would find it closed."""
    _client_utils._get_default_async_httpx_client.cache_clear()
    _client_utils._get_default_httpx_client.cache_clear()


def calls(root: str, key: str) -> dict[str, Any]:
    forget_cached_clients()
    return sync_calls(chat(root, key)) | asyncio.run(async_calls(chat(root, key)))


def changed(root: str, key: str) -> Any:
    forget_cached_clients()
    return chat(root, key).invoke([SystemMessage("Be brief."), HumanMessage("Say goodbye")])


def test_langchain_anthropic_records_on_the_simulator_replays_offline_and_names_a_changed_prompt(tmp_path, sim, monkeypatch):
    recorded = cassette_record_replay_and_miss(tmp_path, sim, monkeypatch, calls, changed, '"Say hello" → "Say goodbye"')
    assert recorded["structured"].keys() == {"name", "country"} and recorded["tools"][1]


def test_langchain_anthropic_miss_is_its_model_not_found_error(tmp_path, monkeypatch):
    from pytest_seedreplay import use_cassette

    monkeypatch.setenv("SEEDREPLAY_ANTHROPIC_UPSTREAM", "sim")
    with use_cassette(tmp_path / "empty.yaml", mode="replay") as use:
        with pytest.raises(AnthropicModelNotFoundError, match="seedreplay"):
            changed(use.proxy.root, "unused")
    assert [m.endpoint for m in use.misses] == ["/v1/messages"]


def test_langchain_anthropic_through_the_proxy_hits_on_the_second_pass(sim, proxy_factory):
    anthropic_through_the_proxy(sim, proxy_factory(sim.url, anthropic_upstream=sim.root), calls)


# The plugin's level: ChatAnthropic takes ANTHROPIC_BASE_URL (the plugin's proxy) and the key from the
# environment.
APP = '''
from langchain_anthropic import ChatAnthropic
from langchain_core.messages import HumanMessage, SystemMessage, ToolMessage
from langchain_core.tools import tool
from pydantic import BaseModel


class City(BaseModel):
    name: str
    country: str


@tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"sunny in {city}"


def chat():
    return ChatAnthropic(model_name=CLAUDE, max_retries=0, max_tokens=200)


def test_chat():
    note("chat", chat().invoke([SystemMessage("Be brief."), HumanMessage("Say hello")]).content)


def test_stream():
    chunks = list(chat().stream("Tell me a story"))
    assert len(chunks) > 3
    note("stream", "".join(c.text for c in chunks))


def test_structured_output():
    note("structured", chat().with_structured_output(City).invoke("Where is the Eiffel tower?").model_dump())


def test_tools_then_the_answer():
    model = chat().bind_tools([get_weather])
    question = HumanMessage("What is the weather in Lisbon?")
    asked = model.invoke([question])
    (call,) = asked.tool_calls
    result = ToolMessage(get_weather.invoke(call["args"]), tool_call_id=call["id"])
    note("tools", [call["args"], model.invoke([question, asked, result]).content])


async def test_async():
    note("async", (await chat().ainvoke("Async hello")).content)
'''


def test_langchain_anthropic_through_the_plugin_records_replays_and_names_a_changed_prompt(pytester, sim_factory, monkeypatch):
    recorded = plugin_record_replay_and_miss(
        pytester,
        sim_factory,
        monkeypatch,
        APP,
        ("Say hello", "Say goodbye"),
        "test_chat",
        "langchain_anthropic.AnthropicModelNotFoundError",
        reset=forget_cached_clients,
        anthropic=True,
    )
    assert recorded["structured"].keys() == {"name", "country"} and recorded["tools"][1]


def test_langchain_anthropic_through_the_proxy_with_the_plugin_off(pytester, sim, proxy_factory, monkeypatch):
    proxy = proxy_factory(sim.url, anthropic_upstream=sim.root)
    plugin_off_through_the_proxy(pytester, sim, proxy, monkeypatch, APP, forget_cached_clients)
