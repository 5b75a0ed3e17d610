"""`seedreplay proxy --workers 2` as users run it: one port served by two processes sharing the store,
one upstream call per key across them, the stats and metrics summed, and a stop signal that drains
every worker."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from pytest_seedreplay.store import DiskStore

from proxy_support import API_KEY, MODEL, http, messages, upstream_calls

SEEDREPLAY = str(Path(sys.executable).parent / "seedreplay")
LISTENING = re.compile(r"^seedreplay proxy listening on (http://127\.0\.0\.1:\d+/v1) \(mode=(\w+), upstream=(\S+), cache=(.+)\)$")
HEADERS = {"Authorization": f"Bearer {API_KEY}"}

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="--workers forks")


class Workers:
    """`seedreplay proxy --workers 2 ...` in a subprocess; `url` once it said it listens."""

    def __init__(self, *args: str):
        env = {**{k: v for k, v in os.environ.items() if k != "SEEDREPLAY_UPSTREAM"}, "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen(
            [SEEDREPLAY, "proxy", "--port", "0", "--workers", "2", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.stderr: list[str] = []
        threading.Thread(target=self._pump, args=(self.process.stdout, self.lines.put), daemon=True).start()
        threading.Thread(target=self._pump, args=(self.process.stderr, self.stderr.append), daemon=True).start()
        first = self.lines.get(timeout=30)
        match = LISTENING.match(first)
        assert match, (first, self.log())
        assert self.lines.get(timeout=5) == "serving from 2 worker processes"
        self.url = match.group(1)
        self.root = self.url.removesuffix("/v1")

    @staticmethod
    def _pump(stream, sink) -> None:
        for line in stream:
            sink(line.rstrip("\n"))

    def workers(self) -> list[int]:
        found: list[int] = []
        for task in Path(f"/proc/{self.process.pid}/task").glob("*/children"):
            found += [int(pid) for pid in task.read_text().split()]
        return found

    def chat(self, seed: int, text: str = "hello") -> tuple[int, dict[str, str]]:
        """One request on a connection of its own (the kernel picks the worker per connection)."""
        reply = http(self.url + "/chat/completions", "POST", {"model": MODEL, "messages": messages(text), "seed": seed}, HEADERS)
        return reply.status, reply.headers

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.process.wait(timeout)

    def log(self) -> str:
        return "\n".join(self.stderr)


@pytest.fixture
def spawn():
    started: list[Workers] = []

    def factory(*args: str) -> Workers:
        running = Workers(*args)
        started.append(running)
        return running

    yield factory
    for running in started:
        if running.process.poll() is None:
            for pid in running.workers():
                os.kill(pid, signal.SIGKILL)
            running.process.kill()
            running.process.wait(10)


def _wait_for(condition, what: str, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def _worker_of(line: str) -> str | None:
    found = re.search(r"\[worker (\d)\]", line)
    return found.group(1) if found else None


def test_two_workers_serve_misses_and_hits_from_one_store_and_sum_their_stats(spawn, sim, tmp_path):
    cache = tmp_path / "cache"
    proxy = spawn("--upstream", sim.url, "--cache-dir", str(cache))
    assert len(proxy.workers()) == 2
    with ThreadPoolExecutor(8) as pool:
        first = list(pool.map(proxy.chat, range(1, 25)))
        # Answers are written behind them: the stats wait for every worker's writes to land.
        assert http(proxy.root + "/seedreplay/stats", "GET").json()["stored"] == 24
        again = list(pool.map(proxy.chat, range(1, 25)))
    assert [status for status, _ in first + again] == [200] * 48
    assert {headers["x-seedreplay-cache"] for _, headers in first} == {"miss"}
    assert {headers["x-seedreplay-cache"] for _, headers in again} == {"hit"}  # whichever worker recorded it
    assert upstream_calls(sim) == 24
    # Both workers answered requests (24 connections, each given to one of them by the kernel).
    assert {_worker_of(line) for line in proxy.log().splitlines() if "cache=miss" in line} == {"0", "1"}
    stats = http(proxy.root + "/seedreplay/stats", "GET").json()
    assert stats["workers"] == 2 and "workers_missing" not in stats
    assert (stats["requests"], stats["misses"], stats["hits"], stats["upstream_calls"]) == (48, 24, 24, 24)
    assert stats["stored"] == 24
    assert stats["entries"] == 24  # the one store, counted once
    metrics = http(proxy.root + "/metrics", "GET").body.decode()
    assert re.search(r"^seedreplay_requests_total 48\.0$", metrics, re.M)
    assert re.search(r'^seedreplay_hits_total\{tier="exact"\} 24\.0$', metrics, re.M)
    assert re.search(r"^seedreplay_store_up 1\.0$", metrics, re.M)
    own = http(proxy.root + "/seedreplay/stats", "GET", headers={"X-Seedreplay-Worker": "local"}).json()
    assert "workers" not in own and own["requests"] < 50
    assert proxy.stop() == 0
    with DiskStore(cache) as store:
        assert len(store) == 24


def test_one_upstream_call_for_identical_requests_across_the_workers(spawn, sim_factory, tmp_path):
    sim = sim_factory(latency_ms=800)
    proxy = spawn("--upstream", sim.url, "--cache-dir", str(tmp_path / "cache"))
    with ThreadPoolExecutor(10) as pool:
        replies = list(pool.map(lambda _: proxy.chat(7, "the same question"), range(10)))
    assert [status for status, _ in replies] == [200] * 10
    assert upstream_calls(sim) == 1
    assert len({headers["x-seedreplay-key"] for _, headers in replies}) == 1
    stats = http(proxy.root + "/seedreplay/stats", "GET").json()
    assert stats["upstream_calls"] == 1 and stats["misses"] == 10
    # Some requests reached the worker that did not call: it waited on the other's call.
    workers = {_worker_of(line) for line in proxy.log().splitlines() if "cache=miss" in line}
    if workers == {"0", "1"}:
        assert stats["shared_waits"] >= 1


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_stop_signal_drains_every_worker(spawn, sim_factory, tmp_path, stop_signal):
    sim = sim_factory(latency_ms=1000)
    cache = tmp_path / "cache"
    proxy = spawn("--upstream", sim.url, "--cache-dir", str(cache))
    workers = proxy.workers()
    with ThreadPoolExecutor(8) as pool:
        answers = [pool.submit(proxy.chat, seed) for seed in range(1, 9)]
        # Once the simulator holds every request, both workers have some under way.
        _wait_for(lambda: sim.stats()["total"] >= 8, "the upstream calls")
        assert proxy.stop(stop_signal) == 0
        replies = [answer.result(timeout=30) for answer in answers]
    assert [status for status, _ in replies] == [200] * 8
    assert len(workers) == 2 and not [pid for pid in workers if os.path.exists(f"/proc/{pid}")]
    assert "Traceback" not in proxy.log()
    with DiskStore(cache) as store:  # every answer sent was stored before the workers left
        assert len(store) == 8


def test_a_port_another_proxy_serves_is_refused_not_shared(spawn, sim, tmp_path):
    first = spawn("--upstream", sim.url, "--cache-dir", str(tmp_path / "cache"))
    port = first.root.rsplit(":", 1)[1]
    second = subprocess.run(
        [SEEDREPLAY, "proxy", "--port", port, "--workers", "2", "--upstream", sim.url, "--cache-dir", str(tmp_path / "other")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert second.returncode != 0 and second.stdout == ""
    assert f"cannot listen on 127.0.0.1:{port}" in second.stderr and "Traceback" not in second.stderr
    assert http(first.root + "/healthz", "GET").status == 200


def test_a_worker_that_dies_is_started_again(spawn, sim, tmp_path):
    proxy = spawn("--upstream", sim.url, "--cache-dir", str(tmp_path / "cache"))
    before = proxy.workers()
    os.kill(before[0], signal.SIGKILL)
    _wait_for(lambda: len(set(proxy.workers()) - set(before)) == 1 and len(proxy.workers()) == 2, "a new worker")
    _wait_for(lambda: _answers_stats(proxy), "the new worker to answer its siblings")
    assert "starting it again" in proxy.log() and f"(pid {before[0]}) exited with status -9" in proxy.log()
    # Both workers serve again: 16 connections, each handed to one of them by the kernel.
    with ThreadPoolExecutor(4) as pool:
        replies = list(pool.map(proxy.chat, range(1, 17)))
    assert [status for status, _ in replies] == [200] * 16
    stats = http(proxy.root + "/seedreplay/stats", "GET").json()
    assert stats["workers"] == 2 and "workers_missing" not in stats
    assert proxy.stop() == 0
    assert "Traceback" not in proxy.log()


def test_a_worker_that_keeps_dying_is_left_dead_and_the_other_serves(spawn, sim, tmp_path):
    from pytest_seedreplay.proxy.workers import RESTARTS

    proxy = spawn("--upstream", sim.url, "--cache-dir", str(tmp_path / "cache"))
    survivor, victim = proxy.workers()
    for death in range(1, RESTARTS + 2):
        os.kill(victim, signal.SIGKILL)
        if death <= RESTARTS:
            dead = victim
            _wait_for(lambda: len(proxy.workers()) == 2 and dead not in proxy.workers(), "the worker started again")  # noqa: B023
            victim = next(pid for pid in proxy.workers() if pid != survivor)
    _wait_for(lambda: "it is not started again" in proxy.log(), "the proxy to give the worker up")
    assert proxy.workers() == [survivor]
    assert [proxy.chat(seed)[0] for seed in range(1, 5)] == [200] * 4
    assert proxy.stop() == 1  # one worker was given up: the exit says so
    assert "Traceback" not in proxy.log()


def _answers_stats(proxy: Workers) -> bool:
    stats = http(proxy.root + "/seedreplay/stats", "GET").json()
    return stats.get("workers") == 2 and "workers_missing" not in stats
