"""LiteLLM (its `openai/` provider): chat, streaming, structured output, tools, embeddings, async and
its Responses API - recorded, replayed offline, a changed prompt missing, and through the proxy.

LiteLLM fetches its model price map at import; the tox env points HTTP(S)_PROXY at a dead loopback
port (and sets LITELLM_LOCAL_MODEL_COST_MAP, so it does not retry), and it falls back to its bundled
copy: nothing leaves the machine."""

from __future__ import annotations

import pytest

from framework_support import SKIP_REASON, record_replay_and_miss, through_the_proxy

litellm = pytest.importorskip("litellm", reason=SKIP_REASON.format(name="litellm"))

APP = """
import json

import litellm
from pydantic import BaseModel

OPENAI_MODEL = "openai/" + MODEL
WEATHER = {"type": "function", "function": {"name": "get_weather", "description": "The weather in a city",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}


class City(BaseModel):
    name: str
    country: str


def ask(text):
    return [{"role": "user", "content": text}]


def test_chat():
    note("chat", litellm.completion(model=OPENAI_MODEL, messages=ask("Say hello")).choices[0].message.content)


def test_stream():
    chunks = list(litellm.completion(model=OPENAI_MODEL, messages=ask("Tell me a story"), stream=True))
    assert len(chunks) > 3
    note("stream", "".join(c.choices[0].delta.content or "" for c in chunks))


def test_structured_output():
    answer = litellm.completion(model=OPENAI_MODEL, messages=ask("Where is Rome?"), response_format=City)
    note("structured", City.model_validate_json(answer.choices[0].message.content).model_dump())


def test_tools_then_the_answer():
    question = ask("What is the weather in Lisbon?")
    asked = litellm.completion(model=OPENAI_MODEL, messages=question, tools=[WEATHER]).choices[0].message
    (call,) = asked.tool_calls
    assert call.function.name == "get_weather"
    result = {"role": "tool", "tool_call_id": call.id, "content": "sunny"}
    answer = litellm.completion(model=OPENAI_MODEL, messages=[*question, asked.model_dump(), result], tools=[WEATHER])
    note("tools", [json.loads(call.function.arguments), answer.choices[0].message.content])


def test_embeddings():
    result = litellm.embedding(model="openai/text-embedding-3-small", input=["alpha", "beta"])
    note("embeddings", [item["embedding"][:3] for item in result.data])


async def test_async():
    answer = await litellm.acompletion(model=OPENAI_MODEL, messages=ask("Async hello"))
    note("async", answer.choices[0].message.content)


def test_responses_api():
    note("responses", litellm.responses(model=OPENAI_MODEL, input="Describe the weather").output[0].content[0].text)
"""


def test_litellm_records_on_the_simulator_replays_offline_and_names_a_changed_prompt(pytester, sim_factory, monkeypatch):
    recorded = record_replay_and_miss(
        pytester, sim_factory, monkeypatch, APP, ("Say hello", "Say goodbye"), "test_chat", "litellm.NotFoundError"
    )
    assert recorded["structured"].keys() == {"name", "country"} and recorded["tools"][1]


def test_litellm_through_the_proxy_hits_on_the_second_pass(pytester, sim, proxy_factory, monkeypatch):
    through_the_proxy(pytester, sim, proxy_factory(sim.url), monkeypatch, APP)
