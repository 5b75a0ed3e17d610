"""Nothing bad is ever stored: every simulator fault comes back to the client as it was (or as an
error it can see) and leaves the store empty; an unreachable upstream is a 502."""

from __future__ import annotations

import socket
import time

import openai
import pytest

from pytest_seedreplay.shapes import parse_sse

from proxy_support import CHAT, MODEL, http, messages, upstream_calls

BODY = {"model": MODEL, "messages": messages("faulty"), "seed": 1}


@pytest.mark.parametrize("fault", ["500", "429", "503"])
def test_upstream_errors_pass_through_unchanged_and_are_not_stored(sim, proxy_factory, fault):
    proxy = proxy_factory(sim.url)
    direct = http(sim.url + CHAT, body=BODY, headers={"X-Sim-Fault": fault})
    via = proxy.post(CHAT, BODY, {"X-Sim-Fault": fault})
    assert via.status == direct.status == int(fault)
    assert via.json() == direct.json()
    for name in ("retry-after", "x-should-retry"):
        assert via.headers.get(name) == direct.headers.get(name)
    if fault == "429":
        assert via.headers["retry-after"] == "1"
    assert via.headers["x-seedreplay-cache"] == "miss" and via.headers["x-seedreplay-key"].startswith("v1:")
    assert len(proxy.store) == 0
    # Not cached: the next identical request asks the upstream again (and now succeeds).
    assert proxy.post(CHAT, BODY).status == 200
    assert upstream_calls(sim) == 3
    stats = proxy.stats()
    assert stats["upstream_errors"] == 1 and stats["stored"] == 1


def test_a_request_made_after_an_error_reached_its_client_makes_its_own_call(sim, proxy_factory):
    """The proxy lets go of the key before the error goes out: a retry the moment the client has the
    error is a new upstream call, never the old error shared, however slowly the store lets go."""
    proxy = proxy_factory(sim.url)
    store = proxy.own_store
    release = store.release

    def slow_release(*args, **kwargs):
        time.sleep(0.5)  # widens the window in which a retry could find the key still held
        release(*args, **kwargs)

    store.release = slow_release  # type: ignore[method-assign]
    for fault in ("429", "cut-stream"):
        body = {"model": MODEL, "messages": messages(f"retry after {fault}"), "seed": 1, "stream": True}
        failed = proxy.post(CHAT, body, {"X-Sim-Fault": fault})
        assert failed.status == 429 or '"upstream_stream_cut"' in parse_sse(failed.body)[-1].data
        retried = proxy.post(CHAT, body)
        assert retried.status == 200 and parse_sse(retried.body)[-1].data == "[DONE]"
    assert upstream_calls(sim) == 4 and proxy.stats()["shared_waits"] == 0


def test_sdk_sees_the_upstream_rate_limit(sim, proxy_factory):
    proxy = proxy_factory(sim.url)
    with pytest.raises(openai.RateLimitError) as caught:
        proxy.client().chat.completions.create(**BODY, extra_headers={"X-Sim-Fault": "429"})
    assert caught.value.code == "rate_limit_exceeded"
    assert len(proxy.store) == 0


def test_upstream_timeout_is_a_502_and_nothing_is_stored(sim, proxy_factory):
    proxy = proxy_factory(sim.url, upstream_timeout=0.3)
    reply = proxy.post(CHAT, BODY, {"X-Sim-Fault": "timeout"})
    assert reply.status == 502
    assert reply.headers["x-seedreplay-cache"] == "miss" and reply.headers["x-seedreplay-key"].startswith("v1:")
    error = reply.json()["error"]
    assert error["code"] == "upstream_timeout" and "0.3s" in error["message"]
    assert set(error) == {"message", "type", "param", "code"}
    assert len(proxy.store) == 0


def test_cut_stream_ends_with_an_error_frame_the_sdk_raises_and_nothing_is_stored(sim, proxy_factory):
    proxy = proxy_factory(sim.url)
    stream = proxy.client().chat.completions.create(**BODY, stream=True, extra_headers={"X-Sim-Fault": "cut-stream"})
    with pytest.raises(openai.APIError, match="cut the stream"):
        for _ in stream:
            pass
    raw = proxy.post(CHAT, {**BODY, "stream": True}, {"X-Sim-Fault": "cut-stream"})
    last = parse_sse(raw.body)[-1]
    assert '"upstream_stream_cut"' in last.data
    assert len(proxy.store) == 0 and proxy.stats()["upstream_failures"] == 2


def test_cut_plain_answer_is_a_502_and_nothing_is_stored(sim, proxy_factory):
    proxy = proxy_factory(sim.url)
    reply = proxy.post(CHAT, BODY, {"X-Sim-Fault": "cut-stream"})
    assert reply.status == 502 and reply.json()["error"]["code"] == "upstream_disconnected"
    assert len(proxy.store) == 0


def test_cut_responses_stream_ends_with_an_error_event(sim, proxy_factory):
    proxy = proxy_factory(sim.url)
    stream = proxy.client().responses.create(
        model=MODEL, input="cut me", stream=True, extra_headers={"X-Sim-Fault": "cut-stream"}
    )
    with pytest.raises(openai.APIError, match="cut the stream"):
        for _ in stream:
            pass
    assert len(proxy.store) == 0


def test_slow_upstream_answers_correctly_and_is_stored(sim, proxy_factory):
    # `slow` is not a failure: a late but whole answer is a good recording.
    proxy = proxy_factory(sim.url)
    reply = proxy.post(CHAT, BODY, {"X-Sim-Fault": "slow"})
    assert reply.status == 200 and len(proxy.store) == 1


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_unreachable_upstream_is_a_502_shaped_like_openai(proxy_factory):
    port = _closed_port()
    proxy = proxy_factory(f"http://user:hunter2@127.0.0.1:{port}/v1")
    reply = proxy.post(CHAT, BODY)
    assert reply.status == 502
    error = reply.json()["error"]
    assert error["code"] == "upstream_unreachable" and error["type"] == "seedreplay_error"
    assert f"127.0.0.1:{port}" in error["message"] and "hunter2" not in error["message"]
    models = http(f"{proxy.url}/models", "GET")
    assert models.status == 502 and models.json()["error"]["code"] == "upstream_unreachable"
    with pytest.raises(openai.InternalServerError):
        proxy.client().chat.completions.create(**BODY)
    assert len(proxy.store) == 0
    assert http(f"{proxy.root}/healthz", "GET").status == 200  # and the proxy keeps serving
