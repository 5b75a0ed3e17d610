"""The OpenAI Agents SDK (openai-agents, on the Responses API by default, and on chat completions):
chat, streaming, structured output, tools - recorded, replayed offline, a changed prompt missing,
and through the proxy. Its tracing stays on, as a user leaves it: the upload of traces to OpenAI
must not fail a replayed test."""

from __future__ import annotations

import pytest

from framework_support import SKIP_REASON, record_replay_and_miss, through_the_proxy

pytest.importorskip("agents", reason=SKIP_REASON.format(name="openai-agents"))

APP = '''
import pytest
from agents import Agent, OpenAIChatCompletionsModel, Runner, function_tool, set_default_openai_client
from agents.tracing import get_trace_provider
from openai import AsyncOpenAI
from pydantic import BaseModel


@pytest.fixture(autouse=True)
def own_client():
    # The SDK shares one AsyncOpenAI client between event loops (run_sync's, each async test's): a
    # request on a connection of another loop fails in the client after the server has answered, and
    # is retried - so the recording would hold an answer nobody used. One client per test, as the
    # README advises.
    set_default_openai_client(AsyncOpenAI(max_retries=0))


class City(BaseModel):
    name: str
    country: str


@function_tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"sunny in {city}"


def test_chat():
    result = Runner.run_sync(Agent(name="helper", instructions="Be brief.", model=MODEL), "Say hello")
    get_trace_provider().force_flush()  # the trace goes to OpenAI now, while the guard watches
    note("chat", result.final_output)


async def test_stream():
    result = Runner.run_streamed(Agent(name="teller", model=MODEL), "Tell me a story")
    deltas = [e.data.delta async for e in result.stream_events()
              if e.type == "raw_response_event" and e.data.type == "response.output_text.delta"]
    assert len(deltas) > 3 and "".join(deltas) == result.final_output
    note("stream", result.final_output)


def test_structured_output():
    result = Runner.run_sync(Agent(name="geographer", model=MODEL, output_type=City), "Where is Rome?")
    note("structured", result.final_output.model_dump())


def test_tools_then_the_answer():
    result = Runner.run_sync(Agent(name="forecaster", model=MODEL, tools=[get_weather]), "What is the weather in Lisbon?")
    kinds = [item.type for item in result.new_items]
    assert kinds == ["tool_call_item", "tool_call_output_item", "message_output_item"], kinds
    note("tools", result.final_output)


def test_chat_completions_model():
    model = OpenAIChatCompletionsModel(model=MODEL, openai_client=AsyncOpenAI(max_retries=0))
    result = Runner.run_sync(Agent(name="forecaster", model=model, tools=[get_weather]), "What is the weather in Lisbon?")
    note("chat completions", result.final_output)
'''


def test_openai_agents_records_on_the_simulator_replays_offline_and_names_a_changed_prompt(pytester, sim_factory, monkeypatch):
    recorded = record_replay_and_miss(
        pytester, sim_factory, monkeypatch, APP, ("Say hello", "Say goodbye"), "test_chat", "openai.NotFoundError"
    )
    assert recorded["structured"].keys() == {"name", "country"} and recorded["tools"]


def test_openai_agents_through_the_proxy_hits_on_the_second_pass(pytester, sim, proxy_factory, monkeypatch):
    through_the_proxy(pytester, sim, proxy_factory(sim.url), monkeypatch, APP)
