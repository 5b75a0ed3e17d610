"""LangChain (langchain-openai): chat, streaming, structured output, tools (chat completions and the
Responses API), embeddings, async - recorded, replayed offline, a changed prompt missing, and
through the proxy."""

from __future__ import annotations

import pytest

from framework_support import SKIP_REASON, record_replay_and_miss, through_the_proxy

pytest.importorskip("langchain_openai", reason=SKIP_REASON.format(name="langchain-openai"))
from langchain_openai.chat_models import _client_utils  # noqa: E402


def forget_cached_clients() -> None:
    """LangChain keeps one default async HTTP client per process, bound to the event loop that first
    used it: a later inner session (another loop) would find it closed. A real user's async tests on
    function-scoped loops hit the same (see the README); one inner session per process does not."""
    _client_utils._cached_async_httpx_client.cache_clear()
    _client_utils._cached_sync_httpx_client.cache_clear()


APP = '''
from langchain_core.messages import HumanMessage, ToolMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI, OpenAIEmbeddings
from pydantic import BaseModel


class City(BaseModel):
    name: str
    country: str


@tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"sunny in {city}"


def chat(**options):
    return ChatOpenAI(model=MODEL, max_retries=0, **options)


def test_chat():
    note("chat", chat().invoke("Say hello").content)


def test_stream():
    chunks = list(chat().stream("Tell me a story"))
    assert len(chunks) > 3
    note("stream", "".join(c.content for c in chunks))


def test_structured_output():
    city = chat().with_structured_output(City).invoke("Where is the Eiffel tower?")
    note("structured", city.model_dump())


def test_tools_then_the_answer():
    model = chat().bind_tools([get_weather])
    question = HumanMessage("What is the weather in Lisbon?")
    asked = model.invoke([question])
    (call,) = asked.tool_calls
    assert call["name"] == "get_weather"
    result = ToolMessage(get_weather.invoke(call["args"]), tool_call_id=call["id"])
    answer = model.invoke([question, asked, result])
    note("tools", [call["args"], answer.content])


def test_responses_api_tools():
    asked = chat(use_responses_api=True).bind_tools([get_weather]).invoke("What is the weather in Lisbon?")
    note("responses tools", [(c["name"], c["args"]) for c in asked.tool_calls])


def test_embeddings():
    # check_embedding_ctx_length=False: the default tokenizes with tiktoken, which downloads its
    # encoding on first use - impossible offline.
    embeddings = OpenAIEmbeddings(model="text-embedding-3-small", check_embedding_ctx_length=False)
    vectors = embeddings.embed_documents(["alpha", "beta"])
    note("embeddings", [v[:3] for v in vectors])


async def test_async():
    note("async", (await chat().ainvoke("Async hello")).content)
'''


def test_langchain_records_on_the_simulator_replays_offline_and_names_a_changed_prompt(pytester, sim_factory, monkeypatch):
    recorded = record_replay_and_miss(
        pytester,
        sim_factory,
        monkeypatch,
        APP,
        ("Say hello", "Say goodbye"),
        "test_chat",
        "langchain_openai.OpenAIModelNotFoundError",
        reset=forget_cached_clients,
    )
    assert recorded["structured"].keys() == {"name", "country"} and recorded["tools"][1]


def test_langchain_through_the_proxy_hits_on_the_second_pass(pytester, sim, proxy_factory, monkeypatch):
    through_the_proxy(pytester, sim, proxy_factory(sim.url), monkeypatch, APP, forget_cached_clients)
