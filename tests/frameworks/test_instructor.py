"""instructor: plain chat, structured output (a named tool call), partial streaming, parallel tools,
and the Responses API's tool mode - recorded, replayed offline, a changed prompt missing, and
through the proxy."""

from __future__ import annotations

import pytest

from framework_support import SKIP_REASON, record_replay_and_miss, through_the_proxy

instructor = pytest.importorskip("instructor", reason=SKIP_REASON.format(name="instructor"))
import openai  # noqa: E402

# instructor registers its modes in modules it imports lazily, on the first client: load them here,
# once, or pytester (which forgets what an inner session imported) leaves the registry empty.
for _mode in (instructor.Mode.TOOLS, instructor.Mode.PARALLEL_TOOLS, instructor.Mode.RESPONSES_TOOLS):
    instructor.from_openai(openai.OpenAI(api_key="unused", base_url="http://127.0.0.1:9/v1"), mode=_mode).client.close()

APP = """
from typing import Iterable, Union

import instructor
import openai
from pydantic import BaseModel


class City(BaseModel):
    name: str
    country: str


class Weather(BaseModel):
    city: str


class Time(BaseModel):
    zone: str


def patched(mode=instructor.Mode.TOOLS):
    return instructor.from_openai(openai.OpenAI(max_retries=0), mode=mode)


def ask(text):
    return [{"role": "user", "content": text}]


def test_chat():
    answer = patched().chat.completions.create(model=MODEL, response_model=None, messages=ask("Say hello"))
    note("chat", answer.choices[0].message.content)


def test_structured_output():
    city = patched().chat.completions.create(model=MODEL, response_model=City, messages=ask("Where is Rome?"))
    note("structured", city.model_dump())


def test_partial_stream():
    partials = list(patched().chat.completions.create_partial(model=MODEL, response_model=City, messages=ask("Where is Paris?")))
    assert len(partials) > 3
    note("stream", partials[-1].model_dump())


def test_parallel_tools():
    client = patched(instructor.Mode.PARALLEL_TOOLS)
    calls = client.chat.completions.create(model=MODEL, response_model=Iterable[Union[Weather, Time]],
                                           messages=ask("What is the weather and the time in Lisbon?"))
    found = [(type(c).__name__, c.model_dump()) for c in calls]
    assert [name for name, _ in found] == ["Weather", "Time"]
    note("tools", found)


def test_responses_api_tools_mode():
    city = patched(instructor.Mode.RESPONSES_TOOLS).responses.create(model=MODEL, response_model=City, input="Where is Oslo?")
    note("responses", city.model_dump())


async def test_async():
    client = instructor.from_openai(openai.AsyncOpenAI(max_retries=0))
    city = await client.chat.completions.create(model=MODEL, response_model=City, messages=ask("Where is Madrid?"))
    note("async", city.model_dump())
"""


def test_instructor_records_on_the_simulator_replays_offline_and_names_a_changed_prompt(pytester, sim_factory, monkeypatch):
    recorded = record_replay_and_miss(
        pytester,
        sim_factory,
        monkeypatch,
        APP,
        ("Say hello", "Say goodbye"),
        "test_chat",
        "instructor.InstructorRetryException",
        swallowed="test_structured_output",
    )
    assert recorded["structured"].keys() == {"name", "country"}


def test_instructor_through_the_proxy_hits_on_the_second_pass(pytester, sim, proxy_factory, monkeypatch):
    through_the_proxy(pytester, sim, proxy_factory(sim.url), monkeypatch, APP)
