"""The proxy's write backlog: bounded by entries and bytes with backpressure on new misses, drained on a
graceful shutdown, and --durable answers only once the answer is stored. The store is held up for
real: another connection holds the SQLite write lock of its directory, as a second process would."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest

from pytest_seedreplay.store import DiskStore

from proxy_support import CHAT, MODEL, messages


class WriteLock:
    """The store directory's SQLite write lock, held by another connection until `release`."""

    def __init__(self, cache_dir: Path):
        self.connection = sqlite3.connect(cache_dir / "cache.db", isolation_level=None, timeout=30, check_same_thread=False)
        self.connection.execute("BEGIN IMMEDIATE")

    def release(self) -> None:
        if self.connection.in_transaction:
            self.connection.rollback()


@pytest.fixture
def pool() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(max_workers=8) as workers:
        yield workers


def ask(proxy, seed: int, **extra) -> Callable[[], object]:
    return lambda: proxy.post(CHAT, {"model": MODEL, "messages": messages(f"question {seed}"), "seed": seed, **extra})


def wait_until(condition: Callable[[], bool], what: str, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.01)


def answered(futures: list[Future]) -> list:
    return [f.result(timeout=30) for f in futures]


def test_past_the_entry_bound_a_new_miss_waits_for_the_store(sim, proxy_factory, pool):
    proxy = proxy_factory(sim.url, write_backlog_entries=2)
    writer = proxy.state.writer
    lock = WriteLock(proxy.cache_dir)
    try:
        first = answered([pool.submit(ask(proxy, 1)), pool.submit(ask(proxy, 2))])
        assert [r.status for r in first] == [200, 200]  # within the bound: answered, writes pending
        assert writer.backlog_entries == 2
        third = pool.submit(ask(proxy, 3))
        wait_until(lambda: writer.waiting == 1, "the third answer waits for room")
        assert not third.done()
    finally:
        lock.release()
    reply = third.result(timeout=30)
    assert reply.status == 200 and "x-seedreplay-store-error" not in reply.headers
    assert len(proxy.store) == 3 and writer.backlog_entries == 0 and writer.backlog_bytes == 0


def test_past_the_byte_bound_a_new_miss_waits_for_the_store(sim, proxy_factory, pool):
    proxy = proxy_factory(sim.url, write_backlog_bytes=1)  # any answer fills it; the first still passes
    writer = proxy.state.writer
    lock = WriteLock(proxy.cache_dir)
    try:
        assert answered([pool.submit(ask(proxy, 1, stream=True))])[0].status == 200
        assert writer.backlog_entries == 1 and writer.backlog_bytes > 1
        second = pool.submit(ask(proxy, 2))
        wait_until(lambda: writer.waiting == 1, "the second answer waits for room")
        assert not second.done()
    finally:
        lock.release()
    assert second.result(timeout=30).status == 200
    assert len(proxy.store) == 2


def test_a_store_that_takes_nothing_for_write_wait_gets_the_answer_unrecorded(sim, proxy_factory, pool):
    proxy = proxy_factory(sim.url, write_backlog_entries=1, write_wait=0.3)
    lock = WriteLock(proxy.cache_dir)
    try:
        assert answered([pool.submit(ask(proxy, 1))])[0].status == 200
        late = answered([pool.submit(ask(proxy, 2))])[0]
        assert late.status == 200 and late.json()["choices"]  # the client is not held forever...
        assert late.headers["x-seedreplay-store-error"].startswith("not stored: the store took no write for 0.3 s")
    finally:
        lock.release()
    assert len(proxy.store) == 1  # ...and says that its answer was not recorded
    assert proxy.stats()["errors"] == 1


@pytest.mark.parametrize("stream", [False, True])
def test_durable_answers_only_once_the_answer_is_stored(sim, proxy_factory, pool, stream):
    proxy = proxy_factory(sim.url, durable=True)
    writer = proxy.state.writer
    lock = WriteLock(proxy.cache_dir)
    try:
        reply = pool.submit(ask(proxy, 1, stream=stream))
        wait_until(lambda: writer.backlog_entries == 1, "the write has started")
        assert not reply.done()
    finally:
        lock.release()
    assert reply.result(timeout=30).status == 200
    assert len(proxy.own_store) == 1  # in the store the moment the answer arrived (no settle)


def test_a_graceful_shutdown_stores_every_answer_already_sent(sim, proxy_factory, pool, tmp_path):
    proxy = proxy_factory(sim.url)
    lock = WriteLock(proxy.cache_dir)
    try:
        replies = answered([pool.submit(ask(proxy, seed)) for seed in range(1, 6)])
        assert {r.status for r in replies} == {200}
        assert proxy.state.writer.backlog_entries == 5
        stopping = threading.Thread(target=proxy.proxy.stop)
        stopping.start()
        stopping.join(0.5)
        assert stopping.is_alive()  # shutdown waits for the writes
    finally:
        lock.release()
    stopping.join(60)
    assert not stopping.is_alive()
    proxy.own_store.close()
    reopened = DiskStore(proxy.cache_dir)
    assert sorted(e.request["params"]["seed"] for e in reopened.iter_entries()) == [1, 2, 3, 4, 5]
    reopened.close()
