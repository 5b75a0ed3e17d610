"""A replay miss looks for its closest recording within a budget, in one searcher thread of its own:
a big store or a crowd of misses cannot hold the thread pool that serves store reads (hits)."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from pytest_seedreplay import Proxy
from pytest_seedreplay.core.key import CLOSEST_SECONDS, canonical_request, describe_miss, key_of_canonical, search_closest
from pytest_seedreplay.store import DiskStore

from proxy_support import CHAT, MODEL, http, messages

pytestmark = pytest.mark.timeout(60)
ENDPOINT = "/v1/chat/completions"


def recording(n: int) -> tuple[str, dict]:
    canonical = canonical_request(ENDPOINT, {"model": MODEL, "messages": messages(f"q{n}"), "seed": n})
    return key_of_canonical(canonical), canonical


def test_a_search_stops_at_its_deadline_with_the_nearest_so_far():
    pulled = itertools.count()
    endless = (recording(next(pulled)) for _ in itertools.count())  # a store that never ends
    wanted = recording(10**9)[1]
    best, complete = search_closest(wanted, endless, deadline=time.monotonic() + 0.05)
    assert not complete and best is not None
    assert best.key.startswith("v1:")


def test_a_search_past_its_deadline_reads_at_most_one_recording():
    pulled = []

    def recordings() -> Iterator[tuple[str, dict]]:
        for n in range(1000):
            pulled.append(n)
            yield recording(n)

    best, complete = search_closest(recording(5)[1], recordings(), deadline=time.monotonic() - 1)
    assert (best, complete) == (None, False)
    assert len(pulled) <= 1


def test_without_a_deadline_every_recording_is_compared():
    best, complete = search_closest(recording(7)[1], (recording(n) for n in range(50)))
    assert complete and best is not None and best.key == recording(7)[0] and best.differences == []


def test_a_cut_search_says_so_in_the_miss_message():
    wanted = recording(3)[1]
    assert "nothing is recorded yet" in describe_miss("v1:x", wanted, None)
    cut = describe_miss("v1:x", wanted, None, complete=False)
    assert f"searched for {CLOSEST_SECONDS:g} s only" in cut and "nothing is recorded yet" not in cut


class EndlessStore(DiskStore):
    """A real disk store whose scan of recorded requests never ends (as a huge store would seem)
    and notes the thread each scan runs in."""

    def __init__(self, directory: Path):
        super().__init__(directory)
        self.scanned_in: list[str] = []

    def iter_requests(self) -> Iterator[tuple[str, dict]]:
        self.scanned_in.append(threading.current_thread().name)
        for n in itertools.count():
            yield recording(n)


@pytest.fixture
def endless_proxy(tmp_path: Path) -> Iterator[tuple[Proxy, EndlessStore]]:
    store = EndlessStore(tmp_path / "cache")
    proxy = Proxy("http://127.0.0.1:9/v1", store=store, mode="replay")
    proxy.start()
    yield proxy, store
    proxy.stop()
    store.close()


def _miss(proxy: Proxy, n: int):
    return http(
        proxy.url + CHAT, "POST", {"model": MODEL, "messages": messages(f"miss {n}"), "seed": 1}, {"Authorization": "Bearer x"}
    )


def test_a_miss_on_an_endless_store_is_answered_within_its_budget(endless_proxy):
    proxy, store = endless_proxy
    answer = _miss(proxy, 0)
    assert answer.status == 404
    message = answer.json()["error"]["message"]
    assert f"searched for {CLOSEST_SECONDS:g} s only" in message and "closest recording v1:" in message


def test_concurrent_misses_search_in_one_thread_of_their_own(endless_proxy):
    proxy, store = endless_proxy
    with ThreadPoolExecutor(8) as clients:
        answers = list(clients.map(lambda n: _miss(proxy, n), range(8)))
    assert [a.status for a in answers] == [404] * 8
    # Every scan ran in the searcher thread, none in the pool that serves Redis reads.
    assert store.scanned_in and set(store.scanned_in) == {"seedreplay-closest_0"}
