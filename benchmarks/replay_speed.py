"""Replaying a cassette of 1,000 interactions with the real openai SDK: seedreplay next to plain vcrpy.

Setup (not timed against each other): the simulator runs in its own process; the same 1,000 distinct
seeded chat requests are recorded twice — through a record-mode proxy into a DiskStore, then written
as one cassette with `write_cassette`; and with vcrpy (`record_mode="once"`) straight against the
simulator. The simulator is then stopped: neither replay can reach an upstream.

Measured per request over --rounds, all in this process the way a test suite runs them:
- seedreplay: the proxy in replay mode in a background thread (as the pytest plugin runs it) over the
  cassette's store, the SDK pointed at it;
- vcrpy: `vcr.VCR(record_mode="none").use_cassette(...)`, default matching, the SDK at the old URL;
- floor: the SDK against a bare aiohttp server (also in a background thread) answering fixed bytes —
  what an HTTP round trip plus the SDK cost with no replay logic at all. Floor and seedreplay take
  turns request by request (paired); vcrpy patches the whole process, so it runs in its own block.
Each answer's text is checked against what was recorded.

Run: python benchmarks/replay_speed.py [--interactions 1000] [--rounds 3]
Target: per-request replay overhead <= 1 ms (seedreplay minus the floor).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import _load
import aiohttp
import openai
import vcr
from _load import (
    AUTH,
    CHAT,
    DEAD_UPSTREAM,
    ProxyProcess,
    ServerProcess,
    bare_app,
    chat_body,
    median,
    percentile,
    proxy_server,
    sim_app,
    table,
)

from pytest_seedreplay import Proxy
from pytest_seedreplay.proxy.serve import BackgroundServer
from pytest_seedreplay.store import DiskStore
from pytest_seedreplay.store.cassette import read_cassette, write_cassette
from pytest_seedreplay.store.cassette_store import CassetteStore

API_KEY = "sk-bench-not-a-real-key"
RECORD_CONCURRENCY = 16


def bodies(n: int) -> list[dict]:
    return [chat_body(seed, content=f"Question {seed}: name a fact about the moon.") for seed in range(1, n + 1)]


# --- setup: the two cassettes ---------------------------------------------------------------------


async def _record_through(proxy: str, requests: list[dict]) -> list[str]:
    """Send every request through the proxy (a few at a time); the keys, in request order."""
    keys: list[str] = [""] * len(requests)
    gate = asyncio.Semaphore(RECORD_CONCURRENCY)

    async def one(i: int, session: aiohttp.ClientSession) -> None:
        async with gate, session.post(proxy + CHAT, data=json.dumps(requests[i]), headers=AUTH) as response:
            await response.read()
            if response.status != 200 or response.headers.get("X-Seedreplay-Cache") != "miss":
                raise SystemExit(f"recording request {i} failed: HTTP {response.status}")
            keys[i] = response.headers["X-Seedreplay-Key"]

    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(one(i, session) for i in range(len(requests))))
    return keys


def record_seedreplay(sim: str, requests: list[dict], path: Path, work: str) -> float:
    cache_dir = os.path.join(work, "record-cache")
    started = time.perf_counter()
    with ProxyProcess(proxy_server, upstream=f"{sim}/v1", cache_dir=cache_dir) as proxy:
        keys = asyncio.run(_record_through(proxy, requests))
    with DiskStore(cache_dir) as store:
        write_cassette(path, [store.get(key) for key in keys])
    return time.perf_counter() - started


def record_vcrpy(sim: str, requests: list[dict], path: Path) -> tuple[float, list[str]]:
    """Record with vcrpy against the simulator; (seconds, the answers' text in request order)."""
    client = openai.OpenAI(base_url=f"{sim}/v1", api_key=API_KEY, max_retries=0)
    started = time.perf_counter()
    with vcr.VCR(record_mode="once", filter_headers=["authorization"]).use_cassette(str(path)):
        texts = [client.chat.completions.create(**body).choices[0].message.content for body in requests]
    return time.perf_counter() - started, texts


# --- the three replays ----------------------------------------------------------------------------


def store_kind() -> str:
    return "the plugin's CassetteStore (a cassette in memory, played in order)"


def cassette_store(path: Path, work: str) -> object:
    """The store a test's replay reads: the cassette in memory, as the plugin serves it."""
    return CassetteStore(path, read_cassette(path))


def timed_call(client: openai.OpenAI, body: dict) -> tuple[float, str]:
    """(ms for one SDK call, the answer's text)."""
    started = time.perf_counter()
    text = client.chat.completions.create(**body).choices[0].message.content
    return (time.perf_counter() - started) * 1000, text


def check(i: int, text: str, expected: list[str], who: str) -> None:
    if text != expected[i]:
        raise SystemExit(f"{who}: request {i} was answered with another recording's text")


@dataclass
class Round:
    load_ms: float | None
    per_request_ms: list[float]


def replay_seedreplay_and_floor(
    path: Path, answer: bytes, requests: list[dict], expected: list[str], work: str
) -> tuple[Round, Round]:
    """seedreplay and the floor, request by request in turn, so both see the machine at the same moment."""
    started = time.perf_counter()
    store = cassette_store(path, work)
    loaded = (time.perf_counter() - started) * 1000
    headers = {"Content-Type": "application/json"}
    ours, floor = Round(loaded, []), Round(None, [])
    with (
        Proxy(DEAD_UPSTREAM, store=store, mode="replay") as proxy,  # its own thread, as the pytest plugin runs it
        BackgroundServer(lambda: bare_app(answer, headers)) as bare,
    ):
        to_proxy = openai.OpenAI(base_url=proxy.url, api_key=API_KEY, max_retries=0)
        to_bare = openai.OpenAI(base_url=f"{bare.url}/v1", api_key=API_KEY, max_retries=0)
        for i, body in enumerate(requests):
            if i % 2:
                floor.per_request_ms.append(timed_call(to_bare, body)[0])
            ms, text = timed_call(to_proxy, body)
            check(i, text, expected, "seedreplay")
            ours.per_request_ms.append(ms)
            if not i % 2:
                floor.per_request_ms.append(timed_call(to_bare, body)[0])
        if proxy.stats()["hits"] != len(requests):
            raise SystemExit(f"seedreplay: {proxy.stats()['hits']} hits for {len(requests)} requests")
    store.close()
    return ours, floor


def replay_vcrpy(path: Path, sim: str, requests: list[dict], expected: list[str]) -> Round:
    # vcrpy patches httpx2 for the whole process while a cassette is in use: it runs alone.
    started = time.perf_counter()
    context = vcr.VCR(record_mode="none").use_cassette(str(path))
    context.__enter__()  # vcrpy reads and parses the cassette here
    try:
        result = Round((time.perf_counter() - started) * 1000, [])
        client = openai.OpenAI(base_url=f"{sim}/v1", api_key=API_KEY, max_retries=0)
        for i, body in enumerate(requests):
            ms, text = timed_call(client, body)
            check(i, text, expected, "vcrpy")
            result.per_request_ms.append(ms)
    finally:
        context.__exit__(None, None, None)
    return result


def summary_row(name: str, rounds: list[Round], floor_mean: float) -> list:
    loads = [r.load_ms for r in rounds if r.load_ms is not None]
    every = [ms for r in rounds for ms in r.per_request_ms]
    mean = sum(every) / len(every)
    total_s = median(sum(r.per_request_ms) for r in rounds) / 1000
    return [name, median(loads) if loads else "-", total_s, mean, percentile(every, 50), percentile(every, 99), mean - floor_mean]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--interactions", type=int, default=1000, help="interactions in the cassette (default 1000)")
    parser.add_argument("--rounds", type=int, default=3, help="replays of each kind, alternating order (default 3)")
    args = parser.parse_args()
    n = args.interactions
    requests = bodies(n)
    work = _load.scratch_dir()
    ours, theirs = Path(work, "seedreplay.yaml"), Path(work, "vcrpy.yaml")

    print(f"replaying {n} interactions with openai {openai.__version__} | {_load.machine()} | {_load.load_average()}")
    with ServerProcess(sim_app) as sim:
        recorded_ours = record_seedreplay(sim, requests, ours, work)
        recorded_theirs, expected = record_vcrpy(sim, requests, theirs)
    # The simulator is gone from here on: a replay that tried the network would fail.
    floor_answer = json.dumps(read_cassette(ours)[0].body).encode()
    print(
        f"recorded: seedreplay cassette {ours.stat().st_size / 1e6:.1f} MB in {recorded_ours:.1f} s (through the proxy), "
        f"vcrpy cassette {theirs.stat().st_size / 1e6:.1f} MB in {recorded_theirs:.1f} s"
    )

    # The first SDK calls build its models and the first servers import aiohttp's parts: not measured.
    replay_seedreplay_and_floor(ours, floor_answer, requests[:50], expected, work)
    results: dict[str, list[Round]] = {"floor (bare aiohttp)": [], "seedreplay": [], "vcrpy": []}
    for r in range(args.rounds):
        steps = ["ours", "vcrpy"] if r % 2 == 0 else ["vcrpy", "ours"]
        for step in steps:
            if step == "vcrpy":
                results["vcrpy"].append(replay_vcrpy(theirs, sim, requests, expected))
            else:
                seedreplay, floor = replay_seedreplay_and_floor(ours, floor_answer, requests, expected, work)
                results["seedreplay"].append(seedreplay)
                results["floor (bare aiohttp)"].append(floor)

    floor_every = [ms for r in results["floor (bare aiohttp)"] for ms in r.per_request_ms]
    floor_mean = sum(floor_every) / len(floor_every)
    rows = [summary_row(name, rounds, floor_mean) for name, rounds in results.items()]
    paired = [
        a - b
        for ours_round, floor_round in zip(results["seedreplay"], results["floor (bare aiohttp)"])
        for a, b in zip(ours_round.per_request_ms, floor_round.per_request_ms)
    ]
    print(f"\nseedreplay store: {store_kind()}; {args.rounds} rounds of {n} requests, each answer's text checked")
    print(table(["replay", "load ms", f"{n} requests s", "mean ms/req", "p50 ms/req", "p99 ms/req", "mean over floor ms"], rows))
    overhead = rows[1][6]
    print(
        f"\nseedreplay per-request replay overhead: {overhead:.3f} ms mean, {median(paired):.3f} ms median of "
        f"paired differences   (target <= 1 ms)  {'OK' if overhead <= 1 else 'MISSED'}"
    )
    print(f"seedreplay / vcrpy mean time per request: {rows[1][3] / rows[2][3]:.2f}x   | {_load.load_average()}")


if __name__ == "__main__":
    main()
