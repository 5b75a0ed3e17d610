"""pydantic-ai: its default `openai:` model (the Responses API; structured output through a tool it
requires) and `openai-chat:` (chat completions): chat, streaming, structured output, tools,
embeddings - recorded, replayed offline, a changed prompt missing, and through the proxy."""

from __future__ import annotations

import pytest

from framework_support import SKIP_REASON, record_replay_and_miss, through_the_proxy

pytest.importorskip("pydantic_ai", reason=SKIP_REASON.format(name="pydantic-ai"))
# Imported once for every inner session (pytester forgets what an inner session imports).
import pydantic_ai.embeddings  # noqa: E402, F401
import pydantic_ai.models  # noqa: E402, F401
import pydantic_ai.models.openai  # noqa: E402, F401

APP = '''
from pydantic import BaseModel
from pydantic_ai import Agent
from pydantic_ai.embeddings import Embedder


class City(BaseModel):
    name: str
    country: str


def test_chat():
    note("chat", Agent("openai:" + MODEL).run_sync("Say hello").output)


async def test_stream():
    async with Agent("openai:" + MODEL).run_stream("Tell me a story") as result:
        parts = [text async for text in result.stream_text(delta=True, debounce_by=None)]
    assert len(parts) > 3
    note("stream", "".join(parts))


def test_structured_output():
    note("structured", Agent("openai:" + MODEL, output_type=City).run_sync("Where is the Eiffel tower?").output.model_dump())


def test_tools_then_the_answer():
    agent = Agent("openai:" + MODEL)

    @agent.tool_plain
    def get_weather(city: str) -> str:
        """The weather in a city."""
        return f"sunny in {city}"

    result = agent.run_sync("What is the weather in Lisbon?")
    kinds = [part.part_kind for message in result.all_messages() for part in message.parts]
    assert kinds == ["user-prompt", "tool-call", "tool-return", "text"], kinds
    note("tools", result.output)


def test_chat_completions_model_structured_and_streamed():
    city = Agent("openai-chat:" + MODEL, output_type=City).run_sync("Where is Rome?").output
    with Agent("openai-chat:" + MODEL).run_stream_sync("Tell me about bread") as result:
        text = "".join(result.stream_text(delta=True, debounce_by=None))
    note("chat completions", [city.model_dump(), text])


def test_embeddings():
    result = Embedder("openai:text-embedding-3-small").embed_documents_sync(["alpha", "beta"])
    note("embeddings", [v[:3] for v in result.embeddings])
'''


def test_pydantic_ai_records_on_the_simulator_replays_offline_and_names_a_changed_prompt(pytester, sim_factory, monkeypatch):
    recorded = record_replay_and_miss(
        pytester, sim_factory, monkeypatch, APP, ("Say hello", "Say goodbye"), "test_chat", "pydantic_ai.ModelHTTPError"
    )
    assert recorded["structured"].keys() == {"name", "country"} and recorded["tools"]


def test_pydantic_ai_through_the_proxy_hits_on_the_second_pass(pytester, sim, proxy_factory, monkeypatch):
    through_the_proxy(pytester, sim, proxy_factory(sim.url), monkeypatch, APP)
