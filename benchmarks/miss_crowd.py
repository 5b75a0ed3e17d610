"""A crowd of replay misses on a big store, and the hits asked meanwhile: misses must not starve hits.

A replay-mode proxy (its own process, no memory copy: every hit reads the store) over a Redis store
of --entries recordings (those of store_scale.py; a redis-server on a free loopback port). Each round:

1. alone: --hits hits one after another, their latency (the baseline, same run);
2. crowd: --misses replay misses sent at once (each looks for its closest recording), and the same
   hits one after another beside them: the hits' latency, and how long the misses took (first to last).

Run: python benchmarks/miss_crowd.py [--entries 5000] [--misses 100] [--hits 200] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import time

import aiohttp
from _load import AUTH, CHAT, DEAD_UPSTREAM, ProxyProcess, chat_body, median, percentile
from store_scale import make_entry
from team_cache import RedisServer

from pytest_seedreplay import Proxy
from pytest_seedreplay.store import open_store


def replay_proxy(upstream: str, location: str) -> Proxy:
    return Proxy(upstream, store=location, mode="replay", memory_cache=0)


def fill(location: str, count: int) -> list[dict]:
    """`count` recordings in the store; the request bodies that hit the first 50 of them."""
    with open_store(store_url=location) as store:
        for low in range(0, count, 1000):
            store.put_many(make_entry(seed) for seed in range(low, min(low + 1000, count)))
    hits = []
    for seed in range(50):
        params = make_entry(seed).request["params"]
        hits.append({name: params[name] for name in ("model", "messages", "seed", "temperature")})
    return hits


async def _post(session: aiohttp.ClientSession, url: str, body: dict, want: int) -> float:
    began = time.perf_counter()
    async with session.post(url, json=body, headers=AUTH) as answer:
        await answer.read()
        if answer.status != want:
            raise SystemExit(f"expected {want}, got {answer.status}: the benchmark's hits must hit, its misses miss")
    return time.perf_counter() - began


async def _hits(session: aiohttp.ClientSession, url: str, bodies: list[dict], count: int) -> list[float]:
    return [await _post(session, url, bodies[i % len(bodies)], 200) for i in range(count)]


async def one_round(url: str, bodies: list[dict], misses: int, hits: int, round_: int) -> tuple[list[float], list[float], float]:
    connector = aiohttp.TCPConnector(limit=misses + 10)
    async with aiohttp.ClientSession(connector=connector) as session:
        alone = await _hits(session, url, bodies, hits)
        began = time.perf_counter()
        crowd = [asyncio.create_task(_post(session, url, chat_body(10**6 + round_ * misses + n), 404)) for n in range(misses)]
        beside = await _hits(session, url, bodies, hits)
        await asyncio.gather(*crowd)
        return alone, beside, time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entries", type=int, default=5000)
    parser.add_argument("--misses", type=int, default=100)
    parser.add_argument("--hits", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    with RedisServer() as location:
        bodies = fill(location, args.entries)
        with ProxyProcess(replay_proxy, upstream=DEAD_UPSTREAM, location=location) as root:
            url = root + CHAT
            for round_ in range(args.rounds):
                alone, beside, crowd_s = asyncio.run(one_round(url, bodies, args.misses, args.hits, round_))
                print(
                    f"round {round_ + 1}: hits alone p50 {median(alone) * 1e3:.2f} ms p99 {percentile(alone, 99) * 1e3:.2f} ms | "
                    f"beside {args.misses} misses p50 {median(beside) * 1e3:.2f} ms p99 {percentile(beside, 99) * 1e3:.2f} ms "
                    f"max {max(beside) * 1e3:.0f} ms | the {args.misses} misses took {crowd_s:.2f} s"
                )


if __name__ == "__main__":
    main()
