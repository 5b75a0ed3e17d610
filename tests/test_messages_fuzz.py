"""A bounded fuzz of /v1/messages with hostile bodies, on loopback: the simulator and a replaying proxy
answer every one with 2xx or an Anthropic-shaped 4xx, never a 500, and keep answering."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from proxy_support import http

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]
FUZZ = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    database=None,
)
HEADERS = {"x-api-key": "sk-ant-api03-fuzzTEST0123456789abcdefABCDEFgh", "anthropic-version": "2023-06-01"}

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 300), st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=12)
)
anything = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=12
)
blocks = st.fixed_dictionaries(
    {"type": st.sampled_from(["text", "tool_use", "tool_result", "thinking", "image", 5])},
    optional={
        "text": anything,
        "content": anything,
        "input": anything,
        "name": anything,
        "id": anything,
        "cache_control": anything,
    },
)
contents = st.one_of(st.text(max_size=20), st.lists(blocks, max_size=3), anything)
turns = st.lists(
    st.fixed_dictionaries({"role": st.sampled_from(["user", "assistant", "system", 3])}, optional={"content": contents}),
    max_size=3,
)
tools = st.lists(
    st.fixed_dictionaries(
        {"name": st.one_of(st.text(min_size=1, max_size=8), anything)}, optional={"input_schema": anything, "type": anything}
    ),
    max_size=2,
)
bodies = st.fixed_dictionaries(
    {},
    optional={
        "model": st.one_of(st.just("claude-sonnet-4-5"), anything),
        "max_tokens": st.one_of(st.integers(-1, 50), anything),
        "messages": st.one_of(turns, anything),
        "system": st.one_of(st.text(max_size=10), st.lists(blocks, max_size=2), anything),
        "tools": st.one_of(tools, anything),
        "tool_choice": st.one_of(
            st.fixed_dictionaries({"type": st.sampled_from(["auto", "any", "tool", "none", "x"])}, optional={"name": anything}),
            anything,
        ),
        "stop_sequences": anything,
        "temperature": anything,
        "thinking": anything,
        "stream": st.one_of(st.booleans(), anything),
    },
)


def check(reply) -> None:
    assert reply.status < 500, reply.body[:300]
    if reply.status >= 400:
        error = reply.json()
        assert error["type"] == "error" and isinstance(error["error"]["message"], str), error


@FUZZ
@given(body=bodies)
def test_the_simulator_never_fails_on_a_hostile_body(sim, body):
    check(
        http(f"{sim.root}/v1/messages", body=json.dumps(body).encode(), headers={**HEADERS, "Content-Type": "application/json"})
    )


@pytest.fixture(scope="module")
def replaying(tmp_path_factory):
    from pytest_seedreplay import Proxy

    with Proxy("sim", store=tmp_path_factory.mktemp("fuzz") / "cache", mode="replay") as proxy:
        yield proxy


@FUZZ
@given(body=bodies)
def test_a_replaying_proxy_never_fails_on_a_hostile_body(replaying, body):
    check(
        http(
            f"{replaying.root}/v1/messages",
            body=json.dumps(body).encode(),
            headers={**HEADERS, "Content-Type": "application/json"},
        )
    )
