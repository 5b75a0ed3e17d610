"""Single-flight: concurrent identical misses make one upstream call and all get its answer — or its
error, with nothing stored. Also the store contract the pytest plugin relies on (get once, put once)."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import Counter

import aiohttp
import openai

from pytest_seedreplay.proxy.app import PROXY_STATE, Binding, ProxyConfig, make_proxy_app, running_proxy
from pytest_seedreplay.proxy.serve import serving
from pytest_seedreplay.shapes import parse_sse
from pytest_seedreplay.store import DiskStore

from proxy_support import API_KEY, CHAT, MODEL, messages, upstream_calls
from test_proxy_team import REFUSED_KEY, gate  # noqa: F401

BODY = {"model": MODEL, "messages": messages("together"), "seed": 9}


class CountingStore(DiskStore):
    """A real DiskStore that counts the calls the proxy makes."""

    def __init__(self, directory):
        super().__init__(directory)
        self.calls: Counter[str] = Counter()

    def get(self, key):
        self.calls["get"] += 1
        return super().get(key)

    def put(self, entry):
        self.calls["put"] += 1
        return super().put(entry)

    def read_or_claim_now(self, key, expiry):
        self.calls["read_or_claim"] += 1
        return super().read_or_claim_now(key, expiry)

    def __contains__(self, key):
        self.calls["contains"] += 1
        return super().__contains__(key)


async def until(condition, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        await asyncio.sleep(0.005)


async def post_all(url: str, bodies: list[dict], headers: dict | None = None) -> list[tuple[int, dict, bytes]]:
    async with aiohttp.ClientSession() as session:

        async def one(body):
            async with session.post(f"{url}{CHAT}", json=body, headers=headers or {}) as answer:
                return answer.status, dict(answer.headers), await answer.read()

        return await asyncio.gather(*(one(body) for body in bodies))


async def test_fifty_identical_misses_make_one_upstream_call(sim, gate, tmp_path):
    upstream = gate()  # holds the one upstream call until every request has joined its flight
    store = CountingStore(tmp_path / "cache")
    app = make_proxy_app(ProxyConfig(upstream=upstream.url), store)
    async with serving(app) as root:
        # The warm-up's claim writes to the side cache: a first miss that meets that write reads, then
        # claims apart (as it must), which this test's count of store calls is not about.
        await app[PROXY_STATE].warming
        url = root + "/v1"
        client = openai.AsyncOpenAI(base_url=url, api_key=API_KEY, max_retries=0)
        asking = asyncio.gather(*(client.chat.completions.with_raw_response.create(**BODY) for _ in range(50)))
        await until(lambda: app[PROXY_STATE].stats.misses == 50, 30)  # counted as a request joins (or launches) the flight
        await asyncio.to_thread(upstream.open)
        answers = await asking
        await client.close()
        async with aiohttp.ClientSession() as session:
            async with session.get(root + "/seedreplay/stats") as reply:
                stats = await reply.json()
    assert upstream.calls == 1 and upstream_calls(sim) == 1
    assert {a.parse().choices[0].message.content for a in answers} == {answers[0].parse().choices[0].message.content}
    assert {a.headers["x-seedreplay-cache"] for a in answers} == {"miss"}
    assert stats["coalesced"] == 49 and stats["stored"] == 1 and stats["upstream_calls"] == 1
    # One read per request: the first one's also claims the key among the proxies sharing this
    # directory, in the same step (no second look for an answer landed from another one); the others
    # find its flight here and only read. A cassette store, which shares no flights, sees exactly one
    # get per request and one put: the plugin counts on it.
    assert store.calls == Counter(get=49, read_or_claim=1, put=1)
    store.close()


async def test_an_upstream_error_answer_goes_only_to_requests_sent_with_its_credential(sim, gate, tmp_path):
    # Identical requests share one call; its upstream error answer (that key's rate limit, a bad key,
    # its organization named in the message) is the caller's own: a request sent with another key asks again.
    refused = REFUSED_KEY
    upstream = gate(refuse=refused)
    store = DiskStore(tmp_path / "cache")
    app = make_proxy_app(ProxyConfig(upstream=upstream.url), store)
    state = app[PROXY_STATE]
    async with serving(app) as root, aiohttp.ClientSession() as session:

        async def ask(key: str) -> tuple[int, dict]:
            async with session.post(root + "/v1" + CHAT, json=BODY, headers={"Authorization": f"Bearer {key}"}) as answer:
                return answer.status, await answer.json()

        first = asyncio.ensure_future(ask(refused))
        await until(lambda: state.stats.misses == 1 or first.done(), 30)  # it leads the flight
        assert not first.done(), first.result()
        others = asyncio.gather(ask(refused), ask(API_KEY))
        await until(lambda: state.stats.misses == 3, 30)
        await asyncio.to_thread(upstream.open)
        answers = [await first, *await others]
    assert [status for status, _ in answers] == [429, 429, 200]
    assert answers[0][1] == answers[1][1] and answers[0][1]["error"]["code"] == "rate_limit_exceeded"
    assert answers[2][1]["choices"][0]["message"]["content"]
    assert upstream.calls == 2 and upstream_calls(sim) == 1  # the refused key's one call served both its requests
    assert state.stats.coalesced == 1
    store.close()


async def test_followers_of_a_streaming_leader_get_the_stream_too(sim_factory, tmp_path):
    sim = sim_factory(latency_ms=200, tokens_per_s=200)
    store = DiskStore(tmp_path / "cache")
    streamed = {**BODY, "stream": True}
    with_usage = {**streamed, "stream_options": {"include_usage": True}}
    app = make_proxy_app(ProxyConfig(upstream=sim.url), store)
    async with serving(app) as root:
        url = root + "/v1"
        leader = asyncio.ensure_future(post_all(url, [streamed]))
        await until(lambda: len(app[PROXY_STATE].bound.flights) == 1)  # the leader's upstream call is under way
        followers = await post_all(url, [streamed] * 10 + [BODY] * 5 + [with_usage] * 5)
        (lead,) = await leader
    assert upstream_calls(sim) == 1
    texts = set()
    for status, headers, body in [lead, *followers[:10]]:
        assert status == 200 and headers["Content-Type"].startswith("text/event-stream")
        events = parse_sse(body)
        assert events[-1].data == "[DONE]"
        texts.add("".join(_delta(e.data) for e in events[:-1]))
    for status, headers, body in followers[10:15]:
        assert status == 200 and headers["Content-Type"].startswith("application/json")
        texts.add(json.loads(body)["choices"][0]["message"]["content"])
    for status, _, body in followers[15:]:
        assert status == 200
        events = parse_sse(body)
        assert any('"usage":{' in e.data or '"usage": {' in e.data for e in events)
        texts.add("".join(_delta(e.data) for e in events[:-1]))
    assert len(texts) == 1 and texts.pop()
    assert len(store) == 1
    store.close()


def _delta(data: str) -> str:
    chunk = json.loads(data)
    return "".join((c.get("delta") or {}).get("content") or "" for c in chunk.get("choices", []))


async def test_followers_of_a_failed_leader_share_its_error_and_nothing_is_stored(sim_factory, tmp_path):
    sim = sim_factory()
    store = CountingStore(tmp_path / "cache")
    # The timeout is the window in which the 19 others must join the leader's flight: wide enough for a slow CI machine.
    config = ProxyConfig(upstream=sim.url, upstream_timeout=2.0)
    async with running_proxy(config, store) as url:
        answers = await post_all(url, [BODY] * 20, {"X-Sim-Fault": "timeout"})
    assert upstream_calls(sim) == 1
    assert {status for status, _, _ in answers} == {502}
    errors = [json.loads(body)["error"] for _, _, body in answers]
    assert {e["code"] for e in errors} == {"upstream_timeout"}
    assert store.calls["put"] == 0 and len(store) == 0
    store.close()


async def test_followers_of_a_cut_stream_see_an_error_frame_and_nothing_is_stored(sim_factory, tmp_path):
    sim = sim_factory(latency_ms=1000)  # the window in which the 9 others must join the leader's flight
    store = DiskStore(tmp_path / "cache")
    streamed = {**BODY, "stream": True}
    async with running_proxy(ProxyConfig(upstream=sim.url), store) as url:
        answers = await post_all(url, [streamed] * 5 + [BODY] * 5, {"X-Sim-Fault": "cut-stream"})
    assert upstream_calls(sim) == 1
    for status, _, body in answers[:5]:
        assert status == 200  # the stream had begun: the error can only come as a frame
        last = parse_sse(body)[-1]
        assert json.loads(last.data)["error"]["code"] == "upstream_stream_cut"
    for status, _, body in answers[5:]:
        assert status == 502 and json.loads(body)["error"]["code"] == "upstream_stream_cut"
    assert len(store) == 0
    store.close()


async def test_different_requests_are_not_coalesced(sim_factory, tmp_path):
    sim = sim_factory(latency_ms=100)
    store = DiskStore(tmp_path / "cache")
    async with running_proxy(ProxyConfig(upstream=sim.url), store) as url:
        answers = await post_all(url, [{**BODY, "seed": seed} for seed in range(10)])
    assert [status for status, _, _ in answers] == [200] * 10
    assert upstream_calls(sim) == 10 and len(store) == 10
    store.close()


async def test_swapped_store_mid_flight_keeps_the_answer_in_the_store_it_started_with(sim_factory, tmp_path):
    sim = sim_factory(latency_ms=200)
    first, second = DiskStore(tmp_path / "first"), DiskStore(tmp_path / "second")
    app = make_proxy_app(ProxyConfig(upstream=sim.url), first)
    async with serving(app) as root:
        pending = asyncio.ensure_future(post_all(root + "/v1", [BODY]))
        await until(lambda: len(app[PROXY_STATE].bound.flights) == 1)
        app[PROXY_STATE].rebind(Binding(second))  # the plugin moved on to the next test's cassette
        (answer,) = await pending
    assert answer[0] == 200
    assert (len(first), len(second)) == (1, 0)
    first.close()
    second.close()


class WatchedStore(DiskStore):
    """A real DiskStore that notes, for each release of a shared-flight lock, the thread it ran in and
    whether the key's answer was already stored then; `failing_puts` writes fail (a full disk)."""

    def __init__(self, directory, failing_puts: int = 0):
        super().__init__(directory)
        self.releases: list[tuple[str, bool]] = []
        self.failing_puts = failing_puts

    def put(self, entry):
        if self.failing_puts:
            self.failing_puts -= 1
            raise OSError("No space left on device")
        return super().put(entry)

    def release(self, key, token, failure=None):
        self.releases.append((threading.current_thread().name.rstrip("_0123456789"), key in self))
        return super().release(key, token, failure)


async def test_the_store_thread_lets_go_of_the_key_right_after_the_answer_landed(sim, tmp_path):
    # The leader's lock goes in the same store-thread job as the write, after it: a proxy waiting on
    # the key then finds the answer stored. A write that fails leaves the release to the flight's end.
    store = WatchedStore(tmp_path / "cache", failing_puts=1)
    async with running_proxy(ProxyConfig(upstream=sim.url), store) as url:
        answers = [(await post_all(url, [{**BODY, "seed": seed}]))[0] for seed in range(4)]  # one at a time
    assert [status for status, _, _ in answers] == [200] * 4
    assert store.releases == [("seedreplay-flight", False)] + [("seedreplay-store", True)] * 3
    other = DiskStore(tmp_path / "cache")  # every key is free again, for any proxy on the directory
    assert all(other.claim(key, 5) is not None for key in other.iter_keys()) and len(other) == 3
    other.close()
    store.close()


async def test_a_stream_longer_than_the_lock_expiry_keeps_its_key_until_it_is_stored(sim_factory, tmp_path, caplog):
    # Renewals start a third of the expiry in (a timer until then), and stop quietly once the store
    # thread let go: no other proxy may claim the key while the answer is still coming.
    # The expiry is 1.5 s, not less: a renewal every 0.5 s must survive the stalls of a loaded 2-core
    # machine running the suite under xdist (with 0.5 s, tox's py313 env once saw the lock lapse).
    sim = sim_factory(tokens_per_s=20)  # 90 tokens: ~4.5 s, three times the expiry
    store = WatchedStore(tmp_path / "cache")
    other = DiskStore(tmp_path / "cache")
    held: list[bool] = []
    async with running_proxy(ProxyConfig(upstream=sim.url, lock_expiry=1.5), store) as url:
        body = {**BODY, "stream": True, "max_tokens": 90}
        asking = asyncio.ensure_future(post_all(url, [body]))
        await until(lambda: len(store.releases) == 0 and upstream_calls(sim) == 1)
        while not asking.done():
            key = next(iter(other.iter_keys()), None)
            if key is None:  # not stored yet: the lock on its key must still be held
                held.append(await asyncio.to_thread(_claimable_request_key, other, tmp_path) is False)
            await asyncio.sleep(0.1)
        ((status, _, raw),) = await asking
    assert status == 200 and b"[DONE]" in raw
    assert len(held) >= 5 and all(held)
    assert store.releases == [("seedreplay-store", True)]
    assert "expired before its answer came" not in caplog.text
    other.close()
    store.close()


def _claimable_request_key(other: DiskStore, tmp_path) -> bool:
    """Whether another proxy could claim the key of the one request in the air (the lock row there)."""
    import diskcache

    shared = diskcache.Cache(str(tmp_path / "cache" / "shared"))
    try:
        # (Not the proxy's warm-up claim, "seedreplay:warm-up", whose expired row may still be there.)
        locks = [key for key in shared.iterkeys() if isinstance(key, tuple) and key[0] == "lock" and key[1].startswith("v1:")]
    finally:
        shared.close()
    return not locks or other.claim(locks[0][1], 5) is not None
