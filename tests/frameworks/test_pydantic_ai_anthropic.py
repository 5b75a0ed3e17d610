"""pydantic-ai's Anthropic model (`AnthropicModel`, pydantic-ai-slim[anthropic]): chat with
instructions, streaming, structured output (its `final_result` tool), tools and the answer after them -
recorded on the simulator through `use_cassette`, replayed offline, a changed prompt missing, and
through the proxy."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from framework_support import CLAUDE, SKIP_REASON, anthropic_through_the_proxy, cassette_record_replay_and_miss
from framework_support import record_replay_and_miss as plugin_record_replay_and_miss
from framework_support import through_the_proxy as plugin_off_through_the_proxy

pytest.importorskip("pydantic_ai.models.anthropic", reason=SKIP_REASON.format(name="pydantic-ai-slim[anthropic]"))
from pydantic import BaseModel  # noqa: E402
from pydantic_ai import Agent  # noqa: E402
from pydantic_ai.exceptions import ModelHTTPError  # noqa: E402
from pydantic_ai.models.anthropic import AnthropicModel  # noqa: E402
from pydantic_ai.providers.anthropic import AnthropicProvider  # noqa: E402


class City(BaseModel):
    name: str
    country: str


def model(root: str, key: str) -> AnthropicModel:
    return AnthropicModel(CLAUDE, provider=AnthropicProvider(base_url=root, api_key=key))


def sync_calls(root: str, key: str) -> dict[str, Any]:
    hello = Agent(model(root, key), instructions="Be brief.").run_sync("Say hello").output
    city = Agent(model(root, key), output_type=City).run_sync("Where is the Eiffel tower?").output

    agent = Agent(model(root, key))

    @agent.tool_plain
    def get_weather(city: str) -> str:
        """The weather in a city."""
        return f"sunny in {city}"

    result = agent.run_sync("What is the weather in Lisbon?")
    kinds = [part.part_kind for message in result.all_messages() for part in message.parts]
    assert kinds == ["user-prompt", "tool-call", "tool-return", "text"], kinds
    return {"hello": hello, "structured": city.model_dump(), "tools": result.output}


async def streamed(root: str, key: str) -> dict[str, Any]:
    async with Agent(model(root, key)).run_stream("Tell me a story") as result:
        parts = [text async for text in result.stream_text(delta=True, debounce_by=None)]
    assert len(parts) > 3
    return {"stream": "".join(parts)}


def calls(root: str, key: str) -> dict[str, Any]:
    return sync_calls(root, key) | asyncio.run(streamed(root, key))


def changed(root: str, key: str) -> Any:
    return Agent(model(root, key), instructions="Be brief.").run_sync("Say goodbye")


def test_pydantic_ai_anthropic_records_on_the_simulator_replays_offline_and_names_a_changed_prompt(tmp_path, sim, monkeypatch):
    recorded = cassette_record_replay_and_miss(tmp_path, sim, monkeypatch, calls, changed, '"Say hello" → "Say goodbye"')
    assert recorded["structured"].keys() == {"name", "country"} and recorded["tools"]


def test_pydantic_ai_anthropic_miss_is_its_model_http_error(tmp_path, monkeypatch):
    from pytest_seedreplay import use_cassette

    monkeypatch.setenv("SEEDREPLAY_ANTHROPIC_UPSTREAM", "sim")
    with use_cassette(tmp_path / "empty.yaml", mode="replay") as use:
        with pytest.raises(ModelHTTPError, match="seedreplay") as raised:
            changed(use.proxy.root, "unused")
    assert raised.value.status_code == 404
    assert [m.endpoint for m in use.misses] == ["/v1/messages"]


def test_pydantic_ai_anthropic_through_the_proxy_hits_on_the_second_pass(sim, proxy_factory):
    anthropic_through_the_proxy(sim, proxy_factory(sim.url, anthropic_upstream=sim.root), calls)


# The plugin's level: the `anthropic:` model takes ANTHROPIC_BASE_URL (the plugin's proxy) and the key
# from the environment.
APP = '''
from pydantic import BaseModel
from pydantic_ai import Agent


class City(BaseModel):
    name: str
    country: str


def test_chat():
    note("chat", Agent("anthropic:" + CLAUDE, instructions="Be brief.").run_sync("Say hello").output)


async def test_stream():
    async with Agent("anthropic:" + CLAUDE).run_stream("Tell me a story") as result:
        parts = [text async for text in result.stream_text(delta=True, debounce_by=None)]
    assert len(parts) > 3
    note("stream", "".join(parts))


def test_structured_output():
    note("structured", Agent("anthropic:" + CLAUDE, output_type=City).run_sync("Where is the Eiffel tower?").output.model_dump())


def test_tools_then_the_answer():
    agent = Agent("anthropic:" + CLAUDE)

    @agent.tool_plain
    def get_weather(city: str) -> str:
        """The weather in a city."""
        return f"sunny in {city}"

    result = agent.run_sync("What is the weather in Lisbon?")
    kinds = [part.part_kind for message in result.all_messages() for part in message.parts]
    assert kinds == ["user-prompt", "tool-call", "tool-return", "text"], kinds
    note("tools", result.output)
'''


def test_pydantic_ai_anthropic_through_the_plugin_records_replays_and_names_a_changed_prompt(pytester, sim_factory, monkeypatch):
    recorded = plugin_record_replay_and_miss(
        pytester,
        sim_factory,
        monkeypatch,
        APP,
        ("Say hello", "Say goodbye"),
        "test_chat",
        "pydantic_ai.ModelHTTPError",
        anthropic=True,
    )
    assert recorded["structured"].keys() == {"name", "country"} and recorded["tools"]


def test_pydantic_ai_anthropic_through_the_proxy_with_the_plugin_off(pytester, sim, proxy_factory, monkeypatch):
    plugin_off_through_the_proxy(pytester, sim, proxy_factory(sim.url, anthropic_upstream=sim.root), monkeypatch, APP)
