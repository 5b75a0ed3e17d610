"""What a record-mode miss costs through the proxy, next to the same request sent straight to the simulator.

Part 1, plain answers: every request carries a fresh seed, so each one through the proxy is a miss
(forwarded, answered, stored). The same request goes straight to the simulator too, the two
alternating one at a time on keep-alive connections, so both see the same machine at the same moment.
Part 2, streams: the simulator paces tokens (--tokens-per-s), so a stream lasts long enough to tell
a relayed stream (first byte early) from a buffered one (first byte at the end).

The simulator and the proxy (record mode, fresh DiskStore) each run in their own process; this one
is the client.

Run: python benchmarks/proxy_miss.py [--requests 300] [--streams 20] [--tokens-per-s 100] [--stream-tokens 50] [--durable]
Target: p50 added by a miss <= 2 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time

import _load
import aiohttp
from _load import AUTH, CHAT, ProxyProcess, ServerProcess, chat_body, percentile, proxy_server, sim_app, table


async def timed_post(session: aiohttp.ClientSession, url: str, body: dict) -> tuple[float, float, str]:
    """(ms to the first body byte, ms to the end, X-Seedreplay-Cache)."""
    started = time.perf_counter()
    async with session.post(url, data=json.dumps(body), headers=AUTH) as response:
        first = None
        async for _ in response.content.iter_any():
            if first is None:
                first = time.perf_counter()
        ended = time.perf_counter()
        if response.status != 200:
            raise SystemExit(f"HTTP {response.status} from {url}")
        cache = response.headers.get("X-Seedreplay-Cache", "-")
    return ((first or ended) - started) * 1000, (ended - started) * 1000, cache


async def alternate(sim: str, proxy: str, bodies: list[dict]) -> tuple[list[tuple], list[tuple]]:
    """Each body to the sim and through the proxy, alternating which goes first."""
    direct, proxied = [], []
    async with aiohttp.ClientSession() as to_sim, aiohttp.ClientSession() as to_proxy:
        for warm in range(3):  # open both connections, import everything once (not measured)
            await timed_post(to_sim, sim + CHAT, chat_body(-1 - warm))
            await timed_post(to_proxy, proxy + CHAT, chat_body(-1 - warm))
        for n, body in enumerate(bodies):
            if n % 2:
                proxied.append(await timed_post(to_proxy, proxy + CHAT, body))
                direct.append(await timed_post(to_sim, sim + CHAT, body))
            else:
                direct.append(await timed_post(to_sim, sim + CHAT, body))
                proxied.append(await timed_post(to_proxy, proxy + CHAT, body))
    caches = {cache for _, _, cache in proxied}
    if caches != {"miss"}:
        raise SystemExit(f"expected every proxied request to miss, got X-Seedreplay-Cache {caches}")
    return direct, proxied


def rows_for(direct: list[float], proxied: list[float]) -> list[list]:
    rows = [
        ["direct to sim", percentile(direct, 50), percentile(direct, 99)],
        ["through proxy (miss)", percentile(proxied, 50), percentile(proxied, 99)],
    ]
    rows.append(["added", rows[1][1] - rows[0][1], rows[1][2] - rows[0][2]])
    return rows


def plain_misses(requests: int, profile: str | None = None, cache_root: str | None = None, **config) -> list[list]:
    cache_dir = os.path.join(_load.scratch_dir(cache_root), "cache")
    with (
        ServerProcess(sim_app) as sim,
        ProxyProcess(proxy_server, profile=profile, upstream=f"{sim}/v1", cache_dir=cache_dir, **config) as proxy,
    ):
        bodies = [chat_body(seed) for seed in range(1, requests + 1)]
        direct, proxied = asyncio.run(alternate(sim, proxy, bodies))
    return rows_for([total for _, total, _ in direct], [total for _, total, _ in proxied])


def streamed_misses(
    streams: int, tokens_per_s: float, tokens: int, profile: str | None = None, cache_root: str | None = None, **config
) -> tuple[list[list], list[list]]:
    cache_dir = os.path.join(_load.scratch_dir(cache_root), "cache")
    with (
        ServerProcess(sim_app, tokens_per_s=tokens_per_s) as sim,
        ProxyProcess(proxy_server, profile=profile, upstream=f"{sim}/v1", cache_dir=cache_dir, **config) as proxy,
    ):
        # With the usage chunk asked for: the proxy always asks the upstream for it, and the simulator
        # paces it like a token, so without it the direct stream would be one token shorter.
        usage = {"include_usage": True}
        bodies = [chat_body(seed, stream=True, max_tokens=tokens, stream_options=usage) for seed in range(1, streams + 1)]
        direct, proxied = asyncio.run(alternate(sim, proxy, bodies))
    first = rows_for([f for f, _, _ in direct], [f for f, _, _ in proxied])
    whole = rows_for([t for _, t, _ in direct], [t for _, t, _ in proxied])
    return first, whole


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=300, help="plain requests each way (default 300)")
    parser.add_argument("--streams", type=int, default=20, help="streamed requests each way (default 20)")
    parser.add_argument("--tokens-per-s", type=float, default=100, help="simulator stream pacing (default 100)")
    parser.add_argument("--stream-tokens", type=int, default=50, help="max_tokens of a streamed request (default 50)")
    parser.add_argument(
        "--cache-root", metavar="DIR", help="make the proxy's stores under DIR (e.g. /dev/shm to leave out the disk's fsync)"
    )
    parser.add_argument("--profile", action="store_true", help="run the proxy under cProfile and print where its time went")
    parser.add_argument("--durable", action="store_true", help="run the proxy with --durable (answer once stored)")
    args = parser.parse_args()
    config = {"durable": True} if args.durable else {}
    work = _load.scratch_dir()
    profiles = [os.path.join(work, "plain.prof"), os.path.join(work, "stream.prof")] if args.profile else [None, None]

    where = args.cache_root or tempfile.gettempdir()
    print(
        f"record-mode miss through the proxy{' (--durable)' if args.durable else ''} vs straight to the simulator "
        f"| {_load.machine()} | store under {where} "
        f"| {_load.load_average()}"
    )
    header = ["", "p50 ms", "p99 ms"]
    plain = plain_misses(args.requests, profiles[0], args.cache_root, **config)
    print(f"\nplain answers, {args.requests} unique seeds each way, one request at a time")
    print(table(header, plain))
    added = plain[2][1]
    print(f"p50 added by a miss: {added:+.3f} ms   (target <= 2 ms)  {'OK' if added <= 2 else 'MISSED'}")

    first, whole = streamed_misses(args.streams, args.tokens_per_s, args.stream_tokens, profiles[1], args.cache_root, **config)
    print(
        f"\nstreamed answers, {args.streams} unique seeds each way, sim paced at {args.tokens_per_s:.0f} tokens/s, "
        f"max_tokens {args.stream_tokens}, include_usage"
    )
    print("time to first streamed byte")
    print(table(header, first))
    print("time to the end of the stream")
    print(table(header, whole))
    relayed = first[1][1] < whole[1][1] / 2
    print(
        f"the proxy relays the stream as it comes (first byte at {first[1][1]:.1f} ms of {whole[1][1]:.0f} ms): "
        f"{'yes' if relayed else 'NO, it buffers'}"
    )
    print(f"\n{_load.load_average()}")
    if args.profile:
        for name, path in zip(("plain misses", "streamed misses"), profiles):
            print(f"\ncProfile of the proxy process during the {name} (cProfile slows it down; compare shares):")
            print(_load.top_functions(path))


if __name__ == "__main__":
    main()
