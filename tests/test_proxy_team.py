"""A team-wide cache: proxies sharing one store (a real redis-server on loopback, or one directory).

Single-flight across proxies, a leader killed mid-flight, Redis restarted under load, replay during an
outage, namespaces. Every wait is for a condition, bounded in time."""

from __future__ import annotations

import asyncio
import json
import signal
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from multidict import CIMultiDict

from pytest_seedreplay import Proxy
from pytest_seedreplay.core.key import request_key
from pytest_seedreplay.proxy.serve import BackgroundServer
from pytest_seedreplay.shapes import entry_summary, parse_sse
from pytest_seedreplay.store import open_store, store_at

from proxy_support import API_KEY, CHAT, MODEL, http, messages
from test_proxy_cli import ProxyProcess

AUTH = {"Authorization": f"Bearer {API_KEY}"}


def body(text: str = "together", **extra: Any) -> dict[str, Any]:
    return {"model": MODEL, "messages": messages(text), "seed": 7, **extra}


def until(condition: Callable[[], Any], seconds: float, what: str) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out after {seconds} s waiting for {what}"
        time.sleep(0.01)


def chat_calls(sim) -> int:
    return sim.stats()["requests"].get("POST /v1/chat/completions", 0)


async def post_many(targets: list[tuple[str, dict]], headers: dict | None = None) -> list[tuple[int, dict, bytes]]:
    """POST every (base url, body) at once; (status, headers, body) of each."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:

        async def one(url: str, sent: dict) -> tuple[int, dict, bytes]:
            async with session.post(url + CHAT, json=sent, headers={**AUTH, **(headers or {})}) as answer:
                return answer.status, CIMultiDict(answer.headers), await answer.read()

        return await asyncio.gather(*(one(url, sent) for url, sent in targets))


def content(raw: bytes, streamed: bool) -> str:
    if not streamed:
        return json.loads(raw)["choices"][0]["message"]["content"]
    parts = [json.loads(e.data) for e in parse_sse(raw) if e.data != "[DONE]"]
    return "".join(p["choices"][0]["delta"].get("content") or "" for p in parts if p["choices"])


class Gate:
    """An upstream in front of the simulator that holds every request until the test opens it, so
    "all of them arrived while the first call was still under way" is a fact, not a hope. `refuse`
    makes it answer a 429 instead of forwarding: every request, or (a key) only those sent with it."""

    def __init__(self, sim_url: str, refuse: bool | str = False, padding: int = 0):
        self.sim_url, self.refuse, self.padding = sim_url, refuse, padding
        self.calls = 0
        self._open: asyncio.Event | None = None
        self.server = BackgroundServer(self._app)
        self.server.start()
        self.url = self.server.url + "/v1"

    def _app(self) -> web.Application:
        self._open = asyncio.Event()
        app = web.Application()
        app.router.add_post("/v1/{tail:.*}", self._handle)
        return app

    async def _handle(self, request: web.Request) -> web.Response:
        self.calls += 1
        raw = await request.read()
        await self._open.wait()
        if self.refuse is True or (isinstance(self.refuse, str) and self.refuse in request.headers.get("Authorization", "")):
            error = {
                "error": {
                    "message": "Rate limit reached (gate)" + " " * self.padding,
                    "type": "requests",
                    "param": None,
                    "code": "rate_limit_exceeded",
                }
            }
            return web.json_response(error, status=429, headers={"retry-after": "7"})
        async with aiohttp.ClientSession() as session:
            async with session.post(
                self.sim_url + request.path[3:],
                data=raw,
                headers={"Authorization": request.headers["Authorization"], "Content-Type": "application/json"},
            ) as answer:
                return web.Response(
                    status=answer.status, body=await answer.read(), headers={"Content-Type": answer.headers["Content-Type"]}
                )

    def open(self) -> None:
        async def set_open() -> None:
            self._open.set()

        self.server.call(set_open)

    def stop(self) -> None:
        self.open()
        self.server.stop()


@pytest.fixture
def gate(sim):
    gates: list[Gate] = []

    def make(refuse: bool | str = False, padding: int = 0) -> Gate:
        gates.append(Gate(sim.url, refuse, padding))
        return gates[-1]

    yield make
    for made in gates:
        made.stop()


def send_while_held(gate: Gate, proxies: list[Proxy], sent: list[tuple[str, dict]]) -> list[tuple[int, dict, bytes]]:
    """Send everything at once; open the gate only when every request joined a flight on its proxy and
    every proxy has a flight waiting (one at the gate, the others on it)."""
    results: list[Any] = []
    sending = threading.Thread(target=lambda: results.extend(asyncio.run(post_many(sent))))
    sending.start()
    # A miss is counted once its request joined (or launched) its proxy's flight; a request merely
    # arrived may still be reading its body, and would be a hit if the gate opened before it joined.
    until(lambda: sum(p.stats()["misses"] for p in proxies) == len(sent), 30, "every request to join a flight")
    until(lambda: all(p.stats()["in_flight"] == 1 for p in proxies), 30, "a flight on every proxy")
    # and every proxy but the leader waiting on its call (not about to claim the key once it is free)
    until(lambda: sum(p.stats()["shared_waiting"] for p in proxies) == len(proxies) - 1, 30, "the others to wait")
    gate.open()
    sending.join(60)
    assert all(p.settle() for p in proxies), "the answers' writes to land"  # answers go before their write lands
    return results


@pytest.fixture
def location(request, tmp_path) -> str:
    """Where the proxies' shared store lives (param: redis, redis-cluster or disk)."""
    kind = getattr(request, "param", "redis")
    if kind == "disk":
        return str(tmp_path / "team-cache")
    server = request.getfixturevalue("shared_redis_cluster" if kind == "redis-cluster" else "shared_redis")
    return server.url + f"?prefix=team{uuid.uuid4().hex[:10]}:"


@pytest.fixture
def proxies():
    """proxies(upstream, location, n, **ProxyConfig) -> n running proxies, each with its own store object."""
    started: list[Proxy] = []

    def start(upstream: str, where: str, n: int = 2, **config: Any) -> list[Proxy]:
        for _ in range(n):
            proxy = Proxy(upstream, store=where, **config)
            proxy.start()
            started.append(proxy)
        return started[-n:]

    yield start
    for proxy in started:
        proxy.stop()


# --- single-flight across proxies ------------------------------------------------------------------


@pytest.mark.parametrize("location", ["redis", "redis-cluster", "disk"], indirect=True)
def test_fifty_identical_misses_over_two_proxies_make_one_upstream_call(gate, proxies, location):
    upstream = gate()
    first, second = pair = proxies(upstream.url, location)
    # Every third request streams: followers on the other proxy get the stream once it has landed.
    sent = [((first, second)[i % 2].url, body(stream=i % 3 == 0)) for i in range(50)]
    answers = send_while_held(upstream, pair, sent)
    assert upstream.calls == 1
    assert [status for status, _, _ in answers] == [200] * 50
    texts = {content(raw, sent[i][1]["stream"]) for i, (_, _, raw) in enumerate(answers)}
    assert len(texts) == 1 and texts != {""}
    assert {headers["X-Seedreplay-Cache"] for _, headers, _ in answers} == {"miss"}
    stats = [p.stats() for p in pair]
    assert sum(s["upstream_calls"] for s in stats) == 1 and sum(s["stored"] for s in stats) == 1
    assert sum(s["shared_waits"] for s in stats) == 1  # the other proxy's flight was answered by the leader's call
    assert sum(s["coalesced"] for s in stats) == 49


@pytest.mark.parametrize("location", ["redis", "redis-cluster"], indirect=True)
def test_an_upstream_error_reaches_the_waiting_proxy_as_it_came_and_nothing_is_stored(gate, proxies, location):
    upstream = gate(refuse=True)
    pair = proxies(upstream.url, location)
    answers = send_while_held(upstream, pair, [(p.url, body()) for p in pair] * 5)
    assert upstream.calls == 1
    assert {status for status, _, _ in answers} == {429}
    assert {json.loads(raw)["error"]["code"] for _, _, raw in answers} == {"rate_limit_exceeded"}
    assert {headers["retry-after"] for _, headers, _ in answers} == {"7"}
    with store_at(location) as store:
        assert len(store) == 0


REFUSED_KEY = "sk-refused-by-the-gate-0000"  # a key the gate answers with a 429 (`gate(refuse=REFUSED_KEY)`)


def send_as(results: dict[str, Any], name: str, url: str, key: str) -> threading.Thread:
    """POST the test's body to the proxy at `url` with `key`, in a thread; its answer goes in results[name]."""

    def asking() -> None:
        results[name] = asyncio.run(post_many([(url, body())], {"Authorization": f"Bearer {key}"}))[0]

    thread = threading.Thread(target=asking)
    thread.start()
    return thread


@pytest.mark.parametrize("location", ["disk", "redis"], indirect=True)
@pytest.mark.parametrize("padding", [0, 70_000], ids=["error", "large-error"])
def test_another_proxys_upstream_error_answer_is_not_given_to_a_request_sent_with_another_key(gate, proxies, location, padding):
    # The leader's key is refused (its own rate limit, say); a request for the same key on another proxy,
    # sent with another credential, asks the upstream itself once the leader lets go, and gets its answer.
    # (An error answer too large to leave in the store is left as its status alone: the same holds.)
    refused = REFUSED_KEY
    upstream = gate(refuse=refused, padding=padding)
    leader, waiter = proxies(upstream.url, location)
    results: dict[str, Any] = {}

    first = send_as(results, "refused", leader.url, refused)
    until(lambda: leader.stats()["in_flight"] == 1, 30, "the leader to claim the key")
    second = send_as(results, "other key", waiter.url, API_KEY)
    until(lambda: waiter.stats()["shared_waiting"] == 1, 30, "the other proxy to wait on the leader's call")
    upstream.open()
    first.join(60)
    second.join(60)
    assert results["refused"][0] == 429 and json.loads(results["refused"][2])["error"]["code"] == "rate_limit_exceeded"
    assert results["other key"][0] == 200 and content(results["other key"][2], False)
    assert upstream.calls == 2
    assert all(p.settle() for p in (leader, waiter))
    with store_at(location) as store:
        assert len(store) == 1  # the other key's answer, recorded


@pytest.mark.parametrize("padding", [0, 70_000], ids=["error", "large-error"])
def test_a_request_following_another_keys_wait_on_another_proxy_asks_again_after_that_keys_error(
    gate, proxies, padding, tmp_path
):
    # On the waiting proxy, a request sent with the refused key waits first, and one with another key
    # joins its flight: the refused key's error answer comes back to the first, the other asks again.
    refused = REFUSED_KEY
    upstream = gate(refuse=refused, padding=padding)
    leader, waiter = proxies(upstream.url, str(tmp_path / "team-cache"))
    results: dict[str, Any] = {}

    sent = [send_as(results, "leader", leader.url, refused)]
    until(lambda: leader.stats()["in_flight"] == 1, 30, "the leader to claim the key")
    sent.append(send_as(results, "waiting, refused key", waiter.url, refused))
    until(lambda: waiter.stats()["shared_waiting"] == 1, 30, "the other proxy to wait on the leader's call")
    sent.append(send_as(results, "waiting, other key", waiter.url, API_KEY))
    until(lambda: waiter.stats()["misses"] == 2, 30, "the other key's request to join the waiting flight")
    upstream.open()
    for thread in sent:
        thread.join(60)
    assert results["leader"][0] == 429
    assert results["waiting, refused key"][0] == (429 if not padding else 502)  # a large one is left as its status
    assert results["waiting, other key"][0] == 200 and content(results["waiting, other key"][2], False)
    assert upstream.calls == 2


def test_a_leader_killed_mid_stream_is_replaced_within_the_lock_expiry(sim_factory, proxies, location, tmp_path):
    sim = sim_factory(tokens_per_s=25)  # a ~2 s stream: long enough to kill its proxy in the middle
    sent = body("a long answer", max_tokens=50, stream=True)
    key = request_key(CHAT, sent)
    leader = ProxyProcess("--store", location, "--upstream", sim.url, "--lock-expiry", "1")
    (follower,) = proxies(sim.url, location, n=1)
    try:
        reader = _start_stream(leader.url, sent)
        until(lambda: reader.first_bytes.is_set(), 20, "the leader's stream to begin")
        results: list[Any] = []
        waiting = threading.Thread(
            target=lambda: results.extend(
                asyncio.run(post_many([(follower.url, sent), (follower.url, body("a long answer", max_tokens=50))]))
            )
        )
        waiting.start()
        until(lambda: follower.stats()["in_flight"] == 1, 20, "the follower to wait on the leader's call")
        assert chat_calls(sim) == 1
        leader.stop(signal.SIGKILL)
        killed = time.monotonic()
        # Read at once: the follower's own answer may land from about 3 s on (1 s expiry, then a 2 s stream).
        with store_at(location) as store:
            assert store.get(key) is None  # the cut stream left nothing behind
        until(lambda: chat_calls(sim) == 2, 20, "the follower to take over")
        took_over = time.monotonic() - killed
        waiting.join(60)
        assert follower.settle(), "the follower's write to land"  # answers go before their write lands
    finally:
        leader.stop(signal.SIGKILL)
    assert took_over < 1 + 9.0  # the lock's expiry (1 s) plus scheduling on a loaded machine: replaced, never a hang
    assert [status for status, _, _ in results] == [200, 200]
    assert content(results[0][2], True) == content(results[1][2], False) != ""
    with store_at(location) as store:
        entries = list(store.iter_entries())
        assert [e.key for e in entries] == [key]
        assert all(entry_summary(e).complete for e in entries)


class _start_stream:
    """Read a streamed answer in a thread; `first_bytes` is set once some of it arrived."""

    def __init__(self, url: str, sent: dict):
        self.first_bytes = threading.Event()
        threading.Thread(target=self._read, args=(url, sent), daemon=True).start()

    def _read(self, url: str, sent: dict) -> None:
        import http.client
        import urllib.parse

        parts = urllib.parse.urlsplit(url)
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
        try:
            connection.request("POST", parts.path + CHAT, json.dumps(sent), {**AUTH, "Content-Type": "application/json"})
            answer = connection.getresponse()
            while answer.read1(1024):
                self.first_bytes.set()
        except (OSError, http.client.HTTPException):
            pass  # its proxy was killed
        finally:
            connection.close()


# --- Redis outages ---------------------------------------------------------------------------------


def test_redis_restarted_under_load_answers_every_request_and_corrupts_nothing(sim, proxies, redis_server, caplog):
    caplog.set_level("INFO", logger="seedreplay.proxy")
    (proxy,) = proxies(sim.url, redis_server.url, n=1)
    seen: list[tuple[int, str, bool]] = []  # (status, X-Seedreplay-Cache, said the store was away)
    stop = threading.Event()

    def load(worker: int) -> None:
        n = 0
        while not stop.is_set():
            n += 1
            reply = http(proxy.url + CHAT, "POST", body(f"q{worker}-{n % 15}"), AUTH, timeout=30)
            seen.append((reply.status, reply.headers.get("x-seedreplay-cache", "-"), "x-seedreplay-store-error" in reply.headers))

    workers = [threading.Thread(target=load, args=(w,)) for w in range(4)]
    for worker in workers:
        worker.start()
    try:
        until(lambda: len(seen) >= 60, 30, "answers before the outage")
        redis_server.stop()
        down_at = len(seen)
        until(lambda: sum(said for _, _, said in seen[down_at:]) >= 30, 30, "answers during the outage")
        redis_server.start()
        until(lambda: "seedreplay_store_up 1.0" in http(proxy.root + "/metrics", "GET").body.decode(), 20, "the store to be back")
        back_at = len(seen)
        until(lambda: len(seen) >= back_at + 60, 30, "answers after the outage")
    finally:
        stop.set()
        for worker in workers:
            worker.join(60)
    assert Counter(status for status, _, _ in seen) == Counter({200: len(seen)})
    assert any(cache == "bypass" for _, cache, said in seen if said)  # forwarded, not cached, and said so
    assert not any(said for _, _, said in seen[back_at + 20 :])  # caching again once the probe found it back
    assert {cache for _, cache, _ in seen[back_at + 20 :]} <= {"hit", "miss"}
    log = caplog.text
    assert "cache store unavailable" in log and "record mode forwards requests to the upstream without caching" in log
    assert "cache store is back" in log
    proxy.settle()
    with open_store(store_url=redis_server.url) as store:
        entries = list(store.iter_entries())
    assert entries and all(entry_summary(e).complete for e in entries)
    assert proxy.stats()["store_up"] is True


def test_replay_answers_a_clear_503_while_redis_is_down_and_recovers_by_itself(sim, proxies, redis_server):
    (recorder,) = proxies(sim.url, redis_server.url, n=1)
    assert recorder.stats() and http(recorder.url + CHAT, "POST", body(), AUTH).status == 200
    assert recorder.settle(), "the recording to land"  # another proxy reads it: the answer goes before its write
    (replayer,) = proxies(sim.url, redis_server.url, n=1, mode="replay", memory_cache=0)
    assert http(replayer.url + CHAT, "POST", body(), AUTH).headers["x-seedreplay-cache"] == "hit"
    redis_server.stop()
    started = time.monotonic()
    down = http(replayer.url + CHAT, "POST", body(), AUTH)
    assert time.monotonic() - started < 5
    error = down.json()["error"]
    assert down.status == 503 and error["code"] == "store_unavailable" and down.headers["retry-after"] == "1"
    assert "replay mode answers only from recordings" in error["message"] and str(redis_server.port) in error["message"]
    assert http(replayer.url + CHAT, "POST", body("another"), AUTH).status == 503
    redis_server.start()  # an empty Redis (no persistence): once back, the answer is a plain replay miss
    answer = until(lambda: (r := http(replayer.url + CHAT, "POST", body(), AUTH)).status != 503 and r, 20, "replay to recover")
    assert answer.status == 404 and answer.json()["error"]["code"] == "cache_miss"
    assert chat_calls(sim) == 1


def test_one_cluster_node_down_fails_only_its_keys_and_they_come_back_without_a_restart(sim, proxies, redis_cluster):
    url = redis_cluster.url
    prompts = [f"spread {n}" for n in range(12)]
    (recorder,) = proxies(sim.url, url, n=1, memory_cache=0)
    keys = [http(recorder.url + CHAT, "POST", body(p), AUTH).headers["x-seedreplay-key"] for p in prompts]
    assert recorder.settle(), "the recordings to land"
    with store_at(url) as store:
        on_node = [redis_cluster.node_of(store._entry_key(key)) for key in keys]
    assert 1 in on_node and set(on_node) != {1}, "the prompts should land on the stopped node and on others"
    (replayer,) = proxies(sim.url, url, n=1, mode="replay", memory_cache=0)
    assert {http(replayer.url + CHAT, "POST", body(p), AUTH).headers["x-seedreplay-cache"] for p in prompts} == {"hit"}
    calls_before = chat_calls(sim)

    redis_cluster.stop_node(1)
    for prompt, node in zip(prompts, on_node):
        replayed = http(replayer.url + CHAT, "POST", body(prompt), AUTH)
        recorded = http(recorder.url + CHAT, "POST", body(prompt), AUTH)
        if node == 1:
            error = replayed.json()["error"]
            assert replayed.status == 503 and error["code"] == "store_unavailable" and replayed.headers["retry-after"] == "1"
            assert f"127.0.0.1:{redis_cluster.ports[1]}" in error["message"]  # names the node that is away
            assert recorded.status == 200 and "not cached" in recorded.headers["x-seedreplay-store-error"]
            assert recorded.headers["x-seedreplay-cache"] == "bypass"
        else:  # every other slot keeps hitting, in both modes
            assert (replayed.status, replayed.headers["x-seedreplay-cache"]) == (200, "hit")
            assert (recorded.status, recorded.headers["x-seedreplay-cache"]) == (200, "hit")
            assert "x-seedreplay-store-error" not in recorded.headers
    assert chat_calls(sim) == calls_before + on_node.count(1)  # only the away keys went upstream
    for proxy in (recorder, replayer):
        healthz = http(proxy.root + "/healthz", "GET")
        assert healthz.status == 200 and healthz.json()["status"] == "ok"
        assert proxy.stats()["store_up"] is True  # the store as a whole is up: no probe to wait for

    redis_cluster.start_node(1)  # back, and empty (no persistence): its keys are plain misses again
    redis_cluster.wait_ok()
    away = prompts[on_node.index(1)]
    answer = until(lambda: (r := http(replayer.url + CHAT, "POST", body(away), AUTH)).status != 503 and r, 20, "the node's keys")
    assert answer.status == 404 and answer.json()["error"]["code"] == "cache_miss"
    again = http(recorder.url + CHAT, "POST", body(away), AUTH)
    assert again.headers["x-seedreplay-cache"] == "miss" and "x-seedreplay-store-error" not in again.headers
    assert recorder.settle()
    assert http(replayer.url + CHAT, "POST", body(away), AUTH).headers["x-seedreplay-cache"] == "hit"


# --- namespaces ------------------------------------------------------------------------------------


def test_namespaces_keep_teams_apart_on_one_redis(sim, proxies, shared_redis, monkeypatch):
    url = shared_redis.url + f"?prefix=ns{uuid.uuid4().hex[:8]}:"
    (search,) = proxies(sim.url, url, n=1)
    (billing,) = proxies(sim.url, url + "&namespace=billing", n=1)
    first = http(search.url + CHAT, "POST", body(), AUTH)
    other = http(billing.url + CHAT, "POST", body(), AUTH)
    again = http(search.url + CHAT, "POST", body(), AUTH)
    assert [r.headers["x-seedreplay-cache"] for r in (first, other, again)] == ["miss", "miss", "hit"]
    assert chat_calls(sim) == 2
    for proxy in (search, billing):
        proxy.settle()
    from click.testing import CliRunner

    from pytest_seedreplay.cli import main

    def listed(*args: str) -> list[dict]:
        result = CliRunner().invoke(main, ["cache", "ls", "--json", *args])
        assert result.exit_code == 0, result.output
        return json.loads(result.output)

    assert len(listed("--store", url)) == 1
    assert len(listed("--store", url, "--namespace", "billing")) == 1
    assert listed("--store", url, "--namespace", "hr") == []
    monkeypatch.setenv("SEEDREPLAY_STORE", url + "&namespace=billing")
    assert [row["key"] for row in listed()] == [other.headers["x-seedreplay-key"]]


def test_a_hanging_redis_holds_only_the_requests_that_need_it(sim, proxies, redis_server):
    # SIGSTOP: the server keeps its connections and answers nothing, as a stuck Redis does. The
    # URL's long socket_timeout keeps the read waiting while the rest of the proxy is checked.
    (proxy,) = proxies(sim.url, redis_server.url + "?socket_timeout=60", n=1, memory_cache=0)
    [(status, _, _)] = asyncio.run(post_many([(proxy.url, body("kept"))]))
    assert status == 200 and proxy.settle()
    results: list[Any] = []
    redis_server.proc.send_signal(signal.SIGSTOP)
    try:
        waiting = threading.Thread(target=lambda: results.extend(asyncio.run(post_many([(proxy.url, body("kept"))]))))
        waiting.start()
        # /metrics and /healthz need no store: they answer while the loop is free.
        root = proxy.url.removesuffix("/v1")
        until(lambda: b"seedreplay_requests_total 2.0" in http(root + "/metrics", "GET", timeout=20).body, 20, "the hit to wait")
        healthz = http(root + "/healthz", "GET", timeout=20)
        assert healthz.status == 200 and healthz.json()["status"] == "ok"
        assert waiting.is_alive() and results == []  # the hit still waits for its read
    finally:
        redis_server.proc.send_signal(signal.SIGCONT)
    waiting.join(60)
    [(status, headers, _)] = results
    assert status == 200 and headers["X-Seedreplay-Cache"] == "hit"
