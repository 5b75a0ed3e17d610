"""The hit lane (`proxy/hits.py`): a repeated request whose answer is in memory is answered before the
guard and the full reading of the request, and counts what the guard counts; every request it cannot
judge alone takes the full path, which answers as before (401 without the token, 400 for a body that
is not JSON, the mode and Cache-Control headers obeyed, a chunked body read); callers and Anthropic's
keyed headers stay apart. A spy around the full path's handler (the real one runs) tells which path
answered."""

from __future__ import annotations

import http.client as httplib
import json
import logging
import urllib.parse

import pytest

from pytest_seedreplay.core.constants import CHAT as CHAT_ENDPOINT
from pytest_seedreplay.proxy import app as proxy_app
from pytest_seedreplay.proxy.flight import Shape
from pytest_seedreplay.proxy.incoming import RAW_SLOT, Call, KeyMemo

from proxy_support import API_KEY, CHAT, MODEL, Reply, http, messages, upstream_calls

BODY = {"model": MODEL, "messages": messages("the lane"), "seed": 3}


@pytest.fixture
def full_path(monkeypatch):
    """How many requests reached the full path's handler (`cache.handle_cacheable`, which still runs)."""
    entered = {"n": 0}
    real = proxy_app.handle_cacheable

    async def spy(request, state, endpoint):
        entered["n"] += 1
        return await real(request, state, endpoint)

    monkeypatch.setattr(proxy_app, "handle_cacheable", spy)
    return entered


def remembered(proxy, path=CHAT, body=BODY, headers=None) -> Reply:
    """Record the answer, let it land, and serve it once from the store (now in memory)."""
    assert proxy.post(path, body, headers).headers["x-seedreplay-cache"] == "miss"
    proxy.settle()
    second = proxy.post(path, body, headers)
    assert second.headers["x-seedreplay-cache"] == "hit"
    return second


def test_a_memory_hit_takes_the_lane_and_counts_what_the_guard_counts(sim, proxy_factory, full_path, caplog):
    proxy = proxy_factory(sim.url)
    from_store = remembered(proxy)
    assert full_path["n"] == 2
    before = proxy.stats()
    hits_said = proxy.state.hit_log.count
    with caplog.at_level(logging.DEBUG, logger="seedreplay.proxy"):
        # http.client sends the head and the body in two writes, as the SDKs' clients do: the lane waits
        # for a small body still arriving, so none of them takes the full path, however late it comes.
        replies = [proxy.post(CHAT, BODY) for _ in range(3)]
    assert full_path["n"] == 2  # none of them entered the full path
    for reply in replies:
        assert reply.status == 200 and reply.body == from_store.body
        assert {k: v for k, v in reply.headers.items() if k != "date"} == {
            k: v for k, v in from_store.headers.items() if k != "date"
        }
    after = proxy.stats()
    for counter in ("requests", "hits", "memory_hits"):
        assert after[counter] == before[counter] + 3, counter
    assert after["by_endpoint"][CHAT_ENDPOINT] == {"requests": 5, "miss": 1, "hit": 4}
    assert after["tokens_saved"] == before["tokens_saved"] * 4 > 0  # each hit saves what the first did
    assert proxy.state.hit_log.count == hits_said + 3
    key = from_store.headers["x-seedreplay-key"][:11]
    lines = [r.getMessage() for r in caplog.records if f"key={key} cache=hit" in r.getMessage()]
    assert len(lines) == 3 and lines[0].startswith("POST /v1/chat/completions key=")
    metrics = http(f"{proxy.root}/metrics", "GET").body.decode()
    assert 'seedreplay_endpoint_requests_total{cache="hit",endpoint="/v1/chat/completions"} 4.0' in metrics
    assert upstream_calls(sim) == 1


def test_without_the_token_the_full_path_says_401_even_for_a_remembered_body(sim, proxy_factory, full_path):
    proxy = proxy_factory(sim.url, token="lane-token")
    remembered(proxy, headers={"X-Seedreplay-Token": "lane-token"})
    entered = full_path["n"]
    for headers in ({}, {"X-Seedreplay-Token": "wrong-token"}):
        refused = proxy.post(CHAT, BODY, headers)
        assert refused.status == 401 and refused.json()["error"]["code"] == "invalid_seedreplay_token"
    assert full_path["n"] == entered  # refused by the guard, before the handler
    served = proxy.post(CHAT, BODY, {"X-Seedreplay-Token": "lane-token"})
    assert served.status == 200 and served.headers["x-seedreplay-cache"] == "hit"
    assert full_path["n"] == entered


def test_requests_the_lane_cannot_judge_alone_take_the_full_path(sim, proxy_factory, full_path):
    proxy = proxy_factory(sim.url, mode="record")
    remembered(proxy)
    entered = full_path["n"]
    # Cache-Control max-age=0: no recording is young enough, so record mode asks the upstream again.
    fresh = proxy.post(CHAT, BODY, {"Cache-Control": "max-age=0"})
    assert fresh.status == 200 and fresh.headers["x-seedreplay-cache"] == "miss"
    refresh = proxy.post(CHAT, BODY, {"X-Seedreplay-Mode": "refresh"})
    assert refresh.headers["x-seedreplay-cache"] == "refresh"
    wrong_type = proxy.post(CHAT, json.dumps(BODY).encode(), {"Content-Type": "text/plain"})
    assert wrong_type.status == 400 and wrong_type.json()["error"]["code"] == "invalid_content_type"
    assert full_path["n"] == entered + 3
    assert upstream_calls(sim) == 3


def test_a_chunked_body_of_a_remembered_request_is_still_a_hit(sim, proxy_factory, full_path):
    proxy = proxy_factory(sim.url)
    remembered(proxy)
    entered = full_path["n"]
    parts = urllib.parse.urlsplit(proxy.url)
    connection = httplib.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        raw = json.dumps(BODY).encode()
        headers = {"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"}
        connection.request("POST", parts.path + CHAT, body=iter([raw[:10], raw[10:]]), headers=headers, encode_chunked=True)
        answer = connection.getresponse()
        status, cache = answer.status, answer.getheader("x-seedreplay-cache")
        answer.read()
    finally:
        connection.close()
    assert (status, cache) == (200, "hit")
    assert full_path["n"] == entered + 1  # no length given: the full path reads and bounds it


def test_callers_stay_apart_in_the_lane(sim, proxy_factory, full_path):
    proxy = proxy_factory(sim.url, isolate_by_auth=True)
    alice, bob = {"Authorization": "Bearer alice-token"}, {"Authorization": "Bearer bob-token"}
    alices = remembered(proxy, headers=alice)
    entered = full_path["n"]
    assert proxy.post(CHAT, BODY, alice).headers["x-seedreplay-cache"] == "hit"
    assert full_path["n"] == entered  # alice's repeat: the lane
    bobs = proxy.post(CHAT, BODY, bob)  # the same bytes from another caller: not alice's answer
    assert bobs.headers["x-seedreplay-cache"] == "miss"
    assert bobs.headers["x-seedreplay-key"] != alices.headers["x-seedreplay-key"]
    assert upstream_calls(sim) == 2


def test_anthropic_keyed_headers_stay_apart_in_the_lane(sim, proxy_factory, full_path):
    proxy = proxy_factory(sim.url, anthropic_upstream=sim.root)
    body = {"model": "claude-sonnet-4-5", "max_tokens": 32, "messages": messages("the lane")}
    version = {"x-api-key": API_KEY, "anthropic-version": "2023-06-01"}
    first = remembered(proxy, "/messages", body, version)
    entered = full_path["n"]
    again = proxy.post("/messages", body, version)
    assert again.headers["x-seedreplay-cache"] == "hit" and again.body == first.body
    assert full_path["n"] == entered
    beta = proxy.post("/messages", body, {**version, "anthropic-beta": "some-beta-2025-01-01"})
    assert beta.headers["x-seedreplay-cache"] == "miss"
    assert beta.headers["x-seedreplay-key"] != first.headers["x-seedreplay-key"]


def test_the_key_memo_holds_small_bodies_whole_within_its_byte_budget():
    memo = KeyMemo(size=100, budget=3 * 1000)

    def slot(raw: bytes) -> tuple:
        return KeyMemo.slot_of("/v1/chat/completions", raw, None, None, False, ())

    def call(key: str) -> Call:
        return Call(CHAT_ENDPOINT, {}, b"", {}, key, Shape(), Shape(), None, None)  # type: ignore[arg-type]

    bodies = [bytes([n]) * 1000 for n in range(4)]
    for n, raw in enumerate(bodies):
        memo.put(slot(raw), call(f"k{n}"))
    assert memo.bytes == 3000 and len(memo) == 3  # the oldest went to keep within the budget
    assert memo.get(slot(bodies[0])) is None and memo.get(slot(bodies[3])) == ("k3", Shape())
    big = b"x" * (RAW_SLOT + 1)
    memo.put(slot(big), call("big"))
    assert memo.get(slot(big)) == ("big", Shape()) and memo.bytes == 3000  # a digest, not the body
    assert memo.get(slot(b"x" * RAW_SLOT + b"y")) is None  # another body of that size: another slot
