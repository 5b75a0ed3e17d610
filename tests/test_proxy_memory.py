"""The proxy's memory of recently served hits, and its store writes behind the answer.

Memory: a hit served from memory is the same answer, headers and shape as one read from the store;
a write by this proxy replaces it at once; a change made through another store handle shows once
the copy is older than MEMORY_CACHE_MAX_AGE (a controllable clock here, no sleeping); 0 turns it
off; stores that do not say `memoizable` (the plugin's cassette store) are asked on every request.

Writes: the answer (plain or streamed) leaves before its write lands, the loop stays free while the
write runs in the store thread, a request in between is a hit with no second upstream call, failed
writes are counted, and a graceful shutdown waits for the writes still running.
"""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
from typing import Any

import pytest
from aiohttp import web
from multidict import CIMultiDict

from pytest_seedreplay import Proxy
from pytest_seedreplay.core.constants import MEMORY_CACHE_MAX_AGE
from pytest_seedreplay.core.entry import Entry
from pytest_seedreplay.core.key import canonical_request, request_key
from pytest_seedreplay.policy import Mode
from pytest_seedreplay.proxy.app import ProxyConfig, make_proxy_app
from pytest_seedreplay.proxy.binding import Binding, Observer
from pytest_seedreplay.proxy.flight import Shape
from pytest_seedreplay.proxy.memory import MemoryCache, Rendered
from pytest_seedreplay.proxy.serve import BackgroundServer
from pytest_seedreplay.shapes import parse_sse
from pytest_seedreplay.store import DiskStore
from pytest_seedreplay.store.cassette_store import CassetteStore

from proxy_support import API_KEY, CHAT, MODEL, Reply, http, messages, upstream_calls

ENDPOINT = "/v1/chat/completions"
BODY = {"model": MODEL, "messages": messages("remember me"), "seed": 5}
LEAKED_KEY = "sk-proj-answerLEAK0123456789abcdefABCDEF"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def counting_upstream() -> web.Application:
    """An upstream whose answer changes on every call ("answer 1", "answer 2", ...), so a test can
    tell which recording was served. Asked for "leak", it answers with a key-shaped string."""
    calls = {"n": 0}

    async def chat(request: web.Request) -> web.Response:
        body = await request.json()
        calls["n"] += 1
        n = calls["n"]
        text = f"here is {LEAKED_KEY}" if body["messages"][-1]["content"] == "leak" else f"answer {n}"
        return web.json_response(
            {
                "id": f"chatcmpl-{n}",
                "object": "chat.completion",
                "created": 1700000000 + n,
                "model": body["model"],
                "choices": [
                    {"index": 0, "message": {"role": "assistant", "content": text}, "logprobs": None, "finish_reason": "stop"}
                ],
                "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
            },
            headers={"x-request-id": f"req_{n}"},
        )

    async def stats(request: web.Request) -> web.Response:
        return web.json_response({"requests": {"POST /v1/chat/completions": calls["n"]}})

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    app.router.add_get("/sim/stats", stats)
    return app


def counted(server: BackgroundServer) -> int:
    return http(f"{server.url}/sim/stats", "GET").json()["requests"]["POST /v1/chat/completions"]


@pytest.fixture
def counting():
    with BackgroundServer(counting_upstream) as server:
        yield server


def content(reply: Reply) -> str:
    assert reply.status == 200, reply.body
    return reply.json()["choices"][0]["message"]["content"]


def same_answer(a: Reply, b: Reply) -> bool:
    ignore = {"date"}
    return a.body == b.body and {k: v for k, v in a.headers.items() if k not in ignore} == {
        k: v for k, v in b.headers.items() if k not in ignore
    }


# --- memory -------------------------------------------------------------------------------------


def test_a_hit_from_memory_is_the_answer_the_store_gave_in_every_shape(sim, proxy_factory):
    proxy = proxy_factory(sim.url)
    streamed = {**BODY, "stream": True}
    with_usage = {**streamed, "stream_options": {"include_usage": True}}
    embed = {"model": "text-embedding-3-small", "input": "moon"}
    shapes = [
        (CHAT, BODY),
        (CHAT, streamed),
        (CHAT, with_usage),
        ("/embeddings", {**embed, "encoding_format": "float"}),
        ("/embeddings", {**embed, "encoding_format": "base64"}),
    ]
    assert proxy.post(CHAT, streamed).headers["x-seedreplay-cache"] == "miss"  # recorded as a stream
    assert proxy.post("/embeddings", embed).headers["x-seedreplay-cache"] == "miss"
    proxy.settle()  # in the store now, so the next hits read it there
    served = {}
    for path, body in shapes:
        from_store, from_memory = proxy.post(path, body), proxy.post(path, body)
        assert from_store.status == from_memory.status == 200
        assert from_memory.headers["x-seedreplay-cache"] == "hit"
        assert from_memory.headers["x-seedreplay-key"] == from_store.headers["x-seedreplay-key"]
        assert same_answer(from_store, from_memory), (path, body)
        served[json.dumps(body, sort_keys=True)] = from_memory
    stats = proxy.stats()
    assert stats["memory_hits"] == len(shapes) and stats["hits"] == 2 * len(shapes)
    assert 0 < stats["memory_bytes"] <= stats["memory_limit"]
    # Each shape is its own copy: the right framing for each request.
    plain = served[json.dumps(BODY, sort_keys=True)]
    assert plain.headers["content-type"] == "application/json" and plain.json()["choices"][0]["message"]["content"]
    without = parse_sse(served[json.dumps(streamed, sort_keys=True)].body)
    assert without[-1].data == "[DONE]" and not any("usage" in e.data for e in without)
    usage = parse_sse(served[json.dumps(with_usage, sort_keys=True)].body)
    assert json.loads(usage[-2].data)["usage"]["total_tokens"] > 0
    floats = served[json.dumps({**embed, "encoding_format": "float"}, sort_keys=True)].json()["data"][0]["embedding"]
    packed = served[json.dumps({**embed, "encoding_format": "base64"}, sort_keys=True)].json()["data"][0]["embedding"]
    assert isinstance(floats, list) and len(base64.b64decode(packed)) == 4 * len(floats)
    assert upstream_calls(sim) == 1 and upstream_calls(sim, "POST /v1/embeddings") == 1


def test_a_write_by_this_proxy_replaces_the_memory_copy_at_once(counting, proxy_factory):
    proxy = proxy_factory(counting.url + "/v1")
    assert content(proxy.post(CHAT, BODY)) == "answer 1"
    proxy.settle()
    assert content(proxy.post(CHAT, BODY)) == "answer 1"
    assert content(proxy.post(CHAT, BODY)) == "answer 1"
    assert proxy.stats()["memory_hits"] == 1
    refreshed = proxy.post(CHAT, BODY, {"X-Seedreplay-Mode": "refresh"})
    assert content(refreshed) == "answer 2" and refreshed.headers["x-seedreplay-cache"] == "refresh"
    # At once: before or after the write lands, never the old copy.
    after = proxy.post(CHAT, BODY)
    assert content(after) == "answer 2" and after.headers["x-seedreplay-cache"] == "hit"
    assert content(proxy.post(CHAT, BODY, {"Cache-Control": "no-cache"})) == "answer 3"
    assert content(proxy.post(CHAT, BODY)) == "answer 3"
    proxy.settle()
    assert content(proxy.post(CHAT, BODY)) == "answer 3"
    assert proxy.store.get(after.headers["x-seedreplay-key"]).body["choices"][0]["message"]["content"] == "answer 3"


def test_a_change_through_another_store_handle_shows_after_the_bounded_age(counting, proxy_factory):
    proxy = proxy_factory(counting.url + "/v1")
    clock = FakeClock()
    proxy.state.bound.memory.clock = clock
    key = proxy.post(CHAT, BODY).headers["x-seedreplay-key"]
    proxy.settle()
    assert content(proxy.post(CHAT, BODY)) == "answer 1"  # read from the store, kept in memory
    other = DiskStore(proxy.cache_dir)  # as another proxy or `seedreplay cache import` would
    try:
        changed = other.get(key)
        changed.body["choices"][0]["message"]["content"] = "changed elsewhere"
        other.put(changed)
        clock.now += MEMORY_CACHE_MAX_AGE * 0.9
        assert content(proxy.post(CHAT, BODY)) == "answer 1"  # within the bound: the memory copy
        clock.now += MEMORY_CACHE_MAX_AGE * 0.2
        assert content(proxy.post(CHAT, BODY)) == "changed elsewhere"
        other.delete(key)  # as `seedreplay cache clear` would
        clock.now += MEMORY_CACHE_MAX_AGE
        gone = proxy.post(CHAT, BODY, {"X-Seedreplay-Mode": "replay"})
        assert gone.status == 404 and gone.json()["error"]["type"] == "seedreplay_miss"
    finally:
        other.close()
    assert counted(counting) == 1


def test_memory_cache_zero_reads_the_store_on_every_hit(counting, proxy_factory):
    proxy = proxy_factory(counting.url + "/v1", memory_cache=0)
    key = proxy.post(CHAT, BODY).headers["x-seedreplay-key"]
    assert content(proxy.post(CHAT, BODY)) == "answer 1"
    proxy.settle()
    with DiskStore(proxy.cache_dir) as other:
        changed = other.get(key)
        changed.body["choices"][0]["message"]["content"] = "changed elsewhere"
        other.put(changed)
    assert content(proxy.post(CHAT, BODY)) == "changed elsewhere"  # no clock moved: nothing kept
    stats = proxy.stats()
    assert (stats["hits"], stats["memory_hits"], stats["memory_bytes"], stats["memory_limit"]) == (2, 0, 0, 0)


def test_the_cassette_store_is_asked_on_every_request(sim, proxy_factory):
    recorder = proxy_factory(sim.url)
    key = recorder.post(CHAT, BODY).headers["x-seedreplay-key"]
    recorded = recorder.store.get(key)
    cassette = CassetteStore(None, [recorded])
    heard = Heard()
    with Proxy(sim.url, store=cassette, mode="replay") as proxy:
        proxy.bind(cassette, "replay", observer=heard)
        replies = [http(f"{proxy.url}{CHAT}", body=BODY) for _ in range(3)]
        stats = proxy.stats()
    assert [r.headers["x-seedreplay-cache"] for r in replies] == ["hit"] * 3
    assert heard.served_keys == [key] * 3  # each one read from the cassette, none from memory
    assert stats["memory_hits"] == 0 and stats["memory_bytes"] == 0


def test_a_remembered_request_body_still_follows_the_caller_and_the_seed_settings(counting, proxy_factory):
    proxy = proxy_factory(counting.url + "/v1", isolate_by_auth=True, default_seed=7)
    unseeded = {"model": MODEL, "messages": messages("no seed given")}
    alice, bob = {"Authorization": "Bearer alice-token"}, {"Authorization": "Bearer bob-token"}
    assert content(proxy.post(CHAT, unseeded, alice)) == "answer 1"
    proxy.settle()
    for _ in range(3):  # the same bytes again: from the store, then from memory without parsing
        assert content(proxy.post(CHAT, unseeded, alice)) == "answer 1"
    assert proxy.stats()["memory_hits"] == 2
    assert content(proxy.post(CHAT, unseeded, bob)) == "answer 2"  # same bytes, another caller
    proxy.proxy.bind(proxy.own_store, default_seed=8)
    eight = proxy.post(CHAT, unseeded, alice)
    assert content(eight) == "answer 3" and eight.headers["x-seedreplay-cache"] == "miss"


def test_memory_is_bounded_by_bytes_least_recently_used_first():
    clock = FakeClock()
    memory = MemoryCache(clock=clock)
    plain, streamed = Shape(), Shape(stream=True)

    def rendered(size: int) -> Rendered:
        return Rendered(200, CIMultiDict({"Content-Type": "application/json"}), b"x" * size)

    one = rendered(1000)
    limit = 3 * one.size
    for key in ("a", "b", "c"):
        memory.put(key, plain, one, limit)
    assert memory.get("a", plain) is one  # "a" is now the most recently used
    memory.put("d", plain, one, limit)
    assert memory.get("b", plain) is None and memory.get("a", plain) is one
    assert memory.bytes == limit and len(memory) == 3
    memory.put("a", streamed, one, 10 * one.size)
    memory.invalidate("a")  # every shape of the key goes
    assert memory.get("a", plain) is None and memory.get("a", streamed) is None
    memory.put("huge", plain, rendered(limit), limit)  # bigger than the whole bound: not kept
    assert memory.get("huge", plain) is None and memory.bytes == 2 * one.size
    clock.now += MEMORY_CACHE_MAX_AGE
    assert memory.get("c", plain) is None and memory.get("d", plain) is None and memory.bytes == 0


class Heard(Observer):
    """An observer that keeps what it was told."""

    def __init__(self) -> None:
        self.served_keys: list[str] = []
        self.stored_keys: list[str] = []

    def served(self, key, entry) -> None:
        self.served_keys.append(key)

    def stored(self, entry) -> None:
        self.stored_keys.append(entry.key)


# --- writes behind the answer -------------------------------------------------------------------


class GatedStore(DiskStore):
    """A real DiskStore whose writes wait for the test to open the gate."""

    def __init__(self, directory):
        super().__init__(directory)
        self.gate = threading.Event()
        self.writing = threading.Event()
        self.written = threading.Event()

    def put(self, entry: Entry) -> None:
        self.writing.set()
        assert self.gate.wait(20), "the test never opened the gate"
        super().put(entry)
        self.written.set()


class BrokenStore(DiskStore):
    def put(self, entry: Entry) -> None:
        raise OSError("No space left on device")


def served(store: Any, upstream: str, **config: Any) -> BackgroundServer:
    server = BackgroundServer(lambda: make_proxy_app(ProxyConfig(upstream=upstream, **config), store))
    server.start()
    return server


def post(server: BackgroundServer, body: dict, headers: dict | None = None) -> Reply:
    return http(f"{server.url}/v1{CHAT}", body=body, headers={"Authorization": f"Bearer {API_KEY}", **(headers or {})})


def test_answers_leave_before_their_write_lands_and_a_request_in_between_is_a_hit(sim, tmp_path):
    store = GatedStore(tmp_path / "cache")
    server = served(store, sim.url)
    try:
        first = post(server, BODY)
        assert first.status == 200 and first.headers["x-seedreplay-cache"] == "miss"
        assert store.writing.wait(10) and not store.written.is_set()  # answered; its write is held
        streamed = post(server, {**BODY, "seed": 6, "stream": True})  # the store thread is busy
        assert streamed.status == 200 and parse_sse(streamed.body)[-1].data == "[DONE]"
        again = post(server, BODY)
        assert again.headers["x-seedreplay-cache"] == "hit" and again.json() == first.json()
        assert upstream_calls(sim) == 2 and len(store) == 0
        assert http(f"{server.url}/healthz", "GET").status == 200  # the loop is free meanwhile
        store.gate.set()
        stats = http(f"{server.url}/seedreplay/stats", "GET").json()  # waits for the writes
        assert (stats["stored"], stats["entries"], stats["hits"], stats["coalesced"]) == (2, 2, 1, 0)
    finally:
        store.gate.set()
        server.stop()
        store.close()


def test_a_failed_write_is_counted_and_a_plain_answer_says_what_it_can(counting, tmp_path):
    upstream = counting.url + "/v1"
    broken = BrokenStore(tmp_path / "broken")
    server = served(broken, upstream)
    try:
        reply = post(server, BODY)
        assert content(reply) == "answer 1"  # the answer left before the write failed
        leaked = post(server, {**BODY, "messages": messages("leak")})
        assert LEAKED_KEY in content(leaked)
        # A refusal the proxy can foresee is still said on the plain answer that caused it.
        assert "refused to store" in leaked.headers["x-seedreplay-store-error"]
        assert "entry.body.choices[0].message.content" in leaked.headers["x-seedreplay-store-error"]
        stats = http(f"{server.url}/seedreplay/stats", "GET").json()
        assert (stats["errors"], stats["stored"]) == (2, 0)
        assert content(post(server, BODY)) == "answer 3"  # nothing stored: a miss again
    finally:
        server.stop()
        broken.close()
    waiting = BrokenStore(tmp_path / "waiting")
    server = served(waiting, upstream, durable=True)  # answers wait for their write
    try:
        reply = post(server, BODY)
        assert "No space left on device" in reply.headers["x-seedreplay-store-error"]
        assert http(f"{server.url}/seedreplay/stats", "GET").json()["errors"] == 1
    finally:
        server.stop()
        waiting.close()


def test_a_graceful_shutdown_waits_for_the_writes_still_running(sim, tmp_path, monkeypatch):
    from pytest_seedreplay.proxy import app as proxy_app

    # Upstream calls get a short grace at shutdown; a store write must be waited for regardless.
    monkeypatch.setattr(proxy_app, "_DRAIN_SECONDS", 0.05)
    store = GatedStore(tmp_path / "cache")
    server = served(store, sim.url)
    port = int(server.url.rsplit(":", 1)[1])
    try:
        assert post(server, BODY).status == 200
        assert store.writing.wait(10)
        stopping = threading.Thread(target=server.stop)
        stopping.start()
        deadline = time.monotonic() + 10
        while _accepts(port):  # the listener closes first, then the app's cleanup runs
            assert time.monotonic() < deadline, "the proxy kept listening"
            time.sleep(0.01)
        stopping.join(1.0)
        assert stopping.is_alive(), "the shutdown did not wait for the store write"
        store.gate.set()
        stopping.join(20)
        assert not stopping.is_alive() and store.written.is_set()
    finally:
        store.gate.set()
        server.stop()
        store.close()
    with DiskStore(tmp_path / "cache") as reopened:
        assert len(reopened) == 1


def _accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def test_a_durable_binding_gets_its_put_before_the_answer(sim, tmp_path):
    cassette = CassetteStore(tmp_path / "c.yaml", repeat_last=False)
    heard = Heard()
    server = served(Binding(cassette, Mode.RECORD, observer=heard, durable=True), sim.url)
    try:
        first = post(server, BODY)
        recorded_when_answered = [(n, entry.key) for n, entry in cassette.recorded]
        second = post(server, BODY)
    finally:
        server.stop()
    key = request_key(ENDPOINT, BODY)
    assert first.headers["x-seedreplay-cache"] == "miss" and recorded_when_answered == [(0, key)]
    # In record mode a repeated request is the cassette's next occurrence: recorded in order.
    assert second.headers["x-seedreplay-cache"] == "miss" and upstream_calls(sim) == 2
    assert heard.stored_keys == [key, key] and [n for n, _ in cassette.recorded] == [0, 1]
    assert cassette.recorded[0][1].request == canonical_request(ENDPOINT, BODY)
