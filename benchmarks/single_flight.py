"""Single-flight: how many upstream calls 100 concurrent identical misses cost, and how long they take.

The simulator (first token after --latency-ms) and the proxy (record mode, empty DiskStore) run in
their own processes; this one fires the requests at once and reads the simulator's `GET /sim/stats`
before and after. Contrasts, in the same run: the same count with distinct seeds (every request its
own miss), and both sets sent straight to the simulator.

Run: python benchmarks/single_flight.py [--requests 100] [--latency-ms 200] [--rounds 3]
Target: identical concurrent misses -> 1 upstream call.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from collections import Counter

import _load
import aiohttp
from _load import AUTH, CHAT, ProxyProcess, ServerProcess, chat_body, median, proxy_server, sim_app, table

SIM_CHAT = "POST /v1/chat/completions"
STALL_SECONDS = 30.0  # far beyond any healthy run: the answers are 200 ms away


async def upstream_calls(session: aiohttp.ClientSession, sim: str) -> int:
    stats = await _load.get_json(session, sim + "/sim/stats")
    return stats["requests"].get(SIM_CHAT, 0)


async def fire(session: aiohttp.ClientSession, url: str, bodies: list[dict]) -> tuple[float, Counter, int]:
    """Send every body at once; (wall seconds, X-Seedreplay-Cache counts, distinct answers)."""

    async def one(body: dict) -> tuple[str, bytes]:
        async with session.post(url, data=json.dumps(body), headers=AUTH) as response:
            raw = await response.read()
            if response.status != 200:
                raise SystemExit(f"HTTP {response.status} from {url}: {raw[:300]!r}")
            return response.headers.get("X-Seedreplay-Cache", "-"), raw

    started = time.perf_counter()
    tasks = [asyncio.ensure_future(one(body)) for body in bodies]
    done, pending = await asyncio.wait(tasks, timeout=STALL_SECONDS)
    if pending:
        for task in pending:
            task.cancel()
        raise SystemExit(f"{len(pending)} of {len(bodies)} requests to {url} got no complete answer within {STALL_SECONDS:.0f} s")
    answers = [task.result() for task in tasks]
    wall = time.perf_counter() - started
    # Streamed answers carry no per-request ids; plain ones differ only in... nothing: the sim is seeded.
    return wall, Counter(cache for cache, _ in answers), len({raw for _, raw in answers})


def scenarios(n: int, base: int) -> list[tuple[str, str, list[dict]]]:
    """(name, target, bodies); seeds offset by `base` so every round starts with misses."""
    return [
        (f"{n} identical misses", "proxy", [chat_body(base)] * n),
        (f"{n} identical streamed misses", "proxy", [chat_body(base + 1, stream=True)] * n),
        (f"{n} distinct seeds", "proxy", [chat_body(base + 2 + i) for i in range(n)]),
        (f"{n} identical, straight to sim", "sim", [chat_body(base)] * n),
        (f"{n} distinct seeds, straight to sim", "sim", [chat_body(base + 2 + i) for i in range(n)]),
    ]


async def run(sim: str, proxy: str, n: int, rounds: int) -> dict[str, list[tuple[int, float, Counter, int]]]:
    results: dict[str, list[tuple[int, float, Counter, int]]] = {}
    connector = aiohttp.TCPConnector(limit=0)  # every request on its own connection, truly concurrent
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=120)) as session:
        for r in range(rounds):
            for name, target, bodies in scenarios(n, base=1_000_000 * (r + 1)):
                before = await upstream_calls(session, sim)
                url = (proxy if target == "proxy" else sim) + CHAT
                wall, caches, distinct = await fire(session, url, bodies)
                calls = await upstream_calls(session, sim) - before
                results.setdefault(name, []).append((calls, wall, caches, distinct))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=100, help="concurrent requests per scenario (default 100)")
    parser.add_argument("--latency-ms", type=float, default=200, help="simulator latency before the first token (default 200)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds, fresh seeds each (default 3)")
    args = parser.parse_args()

    cache_dir = os.path.join(_load.scratch_dir(), "cache")
    print(
        f"single-flight | {_load.machine()} | sim latency {args.latency_ms:.0f} ms | {args.requests} concurrent "
        f"requests | {args.rounds} rounds | {_load.load_average()}"
    )
    with (
        ServerProcess(sim_app, latency_ms=args.latency_ms) as sim,
        ProxyProcess(proxy_server, upstream=f"{sim}/v1", cache_dir=cache_dir) as proxy,
    ):
        results = asyncio.run(run(sim, proxy, args.requests, args.rounds))
        stats = _load.fetch_json(proxy + "/seedreplay/stats")

    rows = []
    for name, runs in results.items():
        calls = [c for c, _, _, _ in runs]
        caches = sum((c for _, _, c, _ in runs), Counter())
        shown = ", ".join(f"{k} {v}" for k, v in sorted(caches.items())) if "sim" not in name else "-"
        rows.append(
            [
                name,
                "/".join(map(str, calls)),
                median(w * 1000 for _, w, _, _ in runs),
                max(w * 1000 for _, w, _, _ in runs),
                max(d for _, _, _, d in runs),
                shown,
            ]
        )
    print()
    print(
        table(
            [
                "scenario",
                "upstream calls per round",
                "wall p50 ms",
                "wall max ms",
                "distinct bodies",
                "X-Seedreplay-Cache (all rounds)",
            ],
            rows,
        )
    )
    print(
        f"\nproxy counters: upstream_calls {stats['upstream_calls']}, coalesced {stats['coalesced']}, "
        f"misses {stats['misses']}, stored {stats['stored']}"
    )
    identical = [c for c, _, _, _ in results[f"{args.requests} identical misses"]]
    print(
        f"identical concurrent misses -> {max(identical)} upstream call(s) per round   (target 1)  "
        f"{'OK' if max(identical) == 1 else 'MISSED'}"
    )


if __name__ == "__main__":
    main()
