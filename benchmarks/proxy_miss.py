"""What a record-mode miss costs through the proxy, next to the same request sent straight to the simulator.

Part 1, plain answers: every request carries a fresh seed, so each one through the proxy is a miss
(forwarded, answered, stored). The same request goes straight to the simulator too, the two
alternating one at a time on keep-alive connections, so both see the same machine at the same moment.
Part 2, streams: the simulator paces tokens (--tokens-per-s), so a stream lasts long enough to tell
a relayed stream (first byte early) from a buffered one (first byte at the end).

The simulator and the proxy (record mode, fresh DiskStore) each run in their own process; this one
is the client.

Run: python benchmarks/proxy_miss.py [--requests 300] [--streams 20] [--tokens-per-s 100] [--stream-tokens 50] [--durable]
     [--before SCRIPT]
--before SCRIPT measures another installed `seedreplay` (an older version's) beside, both then started
as the CLI (`seedreplay proxy --upstream SIM --cache-dir DIR`), the three paths rotating per request.
Targets: p50 added by a miss <= 1 ms; to the first streamed byte <= 1.5 ms.
A bare aiohttp relay (`_load.relay_app`: forward, stream back, nothing else) runs beside in every
rotation: what it adds is the floor of the extra hop on this machine at this moment, so the proxy's
own share (proxy minus relay) can be compared across runs on machines of different speed.
Part 1 also prints each proxy's CPU time per miss (all its threads, from /proc): steadier than the
latency on a shared machine.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterator

import _load
import aiohttp
from _load import (
    AUTH,
    CHAT,
    CliProxy,
    ProxyProcess,
    ServerProcess,
    chat_body,
    percentile,
    proxy_server,
    relay_app,
    sim_app,
    table,
)

RELAY = "bare relay"  # the baseline beside the proxies (no X-Seedreplay-Cache: it caches nothing)


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


async def alternate(
    sim: str,
    proxies: dict[str, str],
    bodies: list[dict],
    cpu: Callable[[], dict[str, float | None]] | None = None,
    used: dict[str, float | None] | None = None,
) -> tuple[list[tuple], dict[str, list[tuple]]]:
    """Each body to the sim and through each proxy, rotating which goes first. With `cpu` (each
    proxy's CPU seconds so far), `used` gets what each spent on the measured requests (warm-up left out)."""
    direct: list[tuple] = []
    proxied: dict[str, list[tuple]] = {name: [] for name in proxies}
    targets = {"direct": sim, **proxies}
    sessions = {name: aiohttp.ClientSession() for name in targets}
    try:
        for warm in range(3):  # open the connections, import everything once (not measured)
            for name, root in targets.items():
                await timed_post(sessions[name], root + CHAT, chat_body(-1 - warm))
        names = list(targets)
        started = cpu() if cpu is not None else {}
        for n, body in enumerate(bodies):
            for name in names[n % len(names) :] + names[: n % len(names)]:
                timed = await timed_post(sessions[name], targets[name] + CHAT, body)
                (direct if name == "direct" else proxied[name]).append(timed)
        if cpu is not None and used is not None:
            ended = cpu()  # the last write behind may still run: one of `bodies`, left out
            for name in proxies:
                first, last = started.get(name), ended.get(name)
                used[name] = last - first if first is not None and last is not None else None
    finally:
        for session in sessions.values():
            await session.close()
    caches = {cache for name, runs in proxied.items() if name != RELAY for _, _, cache in runs}
    if caches != {"miss"}:
        raise SystemExit(f"expected every proxied request to miss, got X-Seedreplay-Cache {caches}")
    return direct, proxied


def rows_for(direct: list[float], proxied: dict[str, list[float]]) -> list[list]:
    rows = [["direct to sim", percentile(direct, 50), percentile(direct, 99)]]
    for name, values in proxied.items():
        rows.append([f"through {name} (miss)", percentile(values, 50), percentile(values, 99)])
        rows.append([f"added by {name}", rows[-1][1] - rows[0][1], rows[-1][2] - rows[0][2]])
    return rows


@contextlib.contextmanager
def proxies(
    sim: str, cache_root: str | None, profile: str | None, before: str | None, config: dict, pids: dict[str, list[int]]
) -> Iterator[dict[str, str]]:
    """The proxies to measure: "proxy", and "before" (another installed seedreplay) when asked. With
    `before`, both are the CLI as users start it (record mode, every other flag at its default), so
    the two are alike; else "proxy" is a `Proxy` in its own process (cProfile-able). `pids` gets each
    one's processes (for its CPU time)."""
    with contextlib.ExitStack() as stack:
        relay = ServerProcess(relay_app, upstream=sim)
        relay_root = stack.enter_context(relay)
        pids[RELAY] = [relay.pid] if relay.pid else []
        if before is None:
            cache_dir = os.path.join(_load.scratch_dir(cache_root), "cache")
            process = ProxyProcess(proxy_server, profile=profile, upstream=f"{sim}/v1", cache_dir=cache_dir, **config)
            root = stack.enter_context(process)
            pids["proxy"] = [process.pid] if process.pid else []
            yield {"proxy": root, RELAY: relay_root}
            return
        flags = ["--durable"] if config.get("durable") else []
        roots = {}
        for name, script in (("proxy", None), ("before", before)):
            cache_dir = os.path.join(_load.scratch_dir(cache_root), "cache")
            server = CliProxy("--upstream", f"{sim}/v1", "--cache-dir", cache_dir, *flags, script=script)
            roots[name] = stack.enter_context(server)
            pids[name] = server.pids()
        yield {**roots, RELAY: relay_root}


def plain_misses(
    requests: int, profile: str | None = None, cache_root: str | None = None, before: str | None = None, **config
) -> tuple[list[list], dict[str, float | None]]:
    """The latency rows, and each proxy's CPU time per miss in µs (all its threads: the store write
    too), which barely moves with the machine's load where wall-clock latency swings."""
    pids: dict[str, list[int]] = {}
    with ServerProcess(sim_app) as sim, proxies(sim, cache_root, profile, before, config, pids) as roots:
        bodies = [chat_body(seed) for seed in range(1, requests + 1)]
        used = {name: _load.cpu_seconds_of(ids) for name, ids in pids.items()}
        direct, proxied = asyncio.run(
            alternate(sim, roots, bodies, lambda: {name: _load.cpu_seconds_of(ids) for name, ids in pids.items()}, used)
        )
    rows = rows_for([total for _, total, _ in direct], {name: [t for _, t, _ in runs] for name, runs in proxied.items()})
    return rows, {name: (spent * 1e6 / requests if spent is not None else None) for name, spent in used.items()}


def streamed_misses(
    streams: int,
    tokens_per_s: float,
    tokens: int,
    profile: str | None = None,
    cache_root: str | None = None,
    before: str | None = None,
    **config,
) -> tuple[list[list], list[list]]:
    with ServerProcess(sim_app, tokens_per_s=tokens_per_s) as sim, proxies(sim, cache_root, profile, before, config, {}) as roots:
        # With the usage chunk asked for: the proxy always asks the upstream for it, and the simulator
        # paces it like a token, so without it the direct stream would be one token shorter.
        usage = {"include_usage": True}
        bodies = [chat_body(seed, stream=True, max_tokens=tokens, stream_options=usage) for seed in range(1, streams + 1)]
        direct, proxied = asyncio.run(alternate(sim, roots, bodies))
    first = rows_for([f for f, _, _ in direct], {name: [f for f, _, _ in runs] for name, runs in proxied.items()})
    whole = rows_for([t for _, t, _ in direct], {name: [t for _, t, _ in runs] for name, runs in proxied.items()})
    return first, whole


def over_relay(rows: list[list]) -> str:
    """The p50 each proxy adds over the bare relay: its own share, the extra hop left out."""
    added = {row[0].removeprefix("added by "): row[1] for row in rows if row[0].startswith("added by ")}
    relay = added.pop(RELAY)
    shares = ", ".join(f"{name} {value - relay:+.3f} ms" for name, value in added.items())
    return f"  of which the extra hop (a bare aiohttp relay adds {relay:+.3f} ms); the rest, each proxy's own: {shares}"


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
    parser.add_argument(
        "--before",
        metavar="SCRIPT",
        help="another installed `seedreplay` (an older version's) measured beside; both then run as the CLI",
    )
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
    plain, cpu = plain_misses(args.requests, profiles[0], args.cache_root, args.before, **config)
    print(f"\nplain answers, {args.requests} unique seeds each way, one request at a time")
    print(table(header, plain))
    spent = ", ".join(f"{name} {us:,.0f} µs" for name, us in cpu.items() if us is not None)
    print(f"proxy CPU per miss (all its threads, store write included): {spent or 'unknown (no /proc)'}")
    added = plain[2][1]
    print(f"p50 added by a miss: {added:+.3f} ms   (target <= 1 ms)  {'OK' if added <= 1 else 'MISSED'}")
    print(over_relay(plain))

    first, whole = streamed_misses(
        args.streams, args.tokens_per_s, args.stream_tokens, profiles[1], args.cache_root, args.before, **config
    )
    print(
        f"\nstreamed answers, {args.streams} unique seeds each way, sim paced at {args.tokens_per_s:.0f} tokens/s, "
        f"max_tokens {args.stream_tokens}, include_usage"
    )
    print("time to first streamed byte")
    print(table(header, first))
    print("time to the end of the stream")
    print(table(header, whole))
    added_first = first[2][1]
    print(
        f"p50 added to the first streamed byte: {added_first:+.3f} ms   (target <= 1.5 ms)  "
        f"{'OK' if added_first <= 1.5 else 'MISSED'}"
    )
    print(over_relay(first))
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
