"""A team cache on Redis next to one on disk: hit throughput, and what single-flight across proxies costs a miss.

Every server runs in its own process (the simulator, the proxies, a redis-server on a free loopback
port); the load comes from this one. Same run, alternating rounds:

1. Hits: the proxy over a DiskStore and over a RedisStore holding the same recording, with its
   memory copy of recent hits on (the default) and off (every hit reads the store); throughput at
   --connections and latency at one connection.
2. Misses (simulator answering after --latency-ms; with --cluster also on the cluster): the latency
   of one miss with single-flight across proxies off (--lock-expiry 0) and on (claim, second look,
   release: three more Redis round trips); and two identical misses sent at once, both to one proxy
   (the second waits on the first's flight in memory) or one to each of two proxies (the second is
   woken by Redis pub/sub when the first's answer is stored, then reads it): what the follower waits beyond the leader.

With --cluster, the hits and misses also run on a three-node Redis Cluster on loopback (three redis-servers with
--cluster-enabled yes, joined by `redis-cli --cluster create`), beside the single Redis in the same run.

Run: python benchmarks/team_cache.py [--rounds 3] [--seconds 4] [--connections 32] [--misses 30] [--latency-ms 100] [--cluster]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import sys
import time

import _load
import aiohttp
from _load import AUTH, CHAT, DEAD_UPSTREAM, ProxyProcess, ServerProcess, chat_body, median, percentile, post_once, sim_app, table

from pytest_seedreplay import Proxy

SIM_CHAT = "POST /v1/chat/completions"


def team_proxy(upstream: str, location: str, memory_cache: int = 64 * 1024 * 1024, lock_expiry: float = 10.0) -> Proxy:
    """A proxy of the team over the store at `location` (a directory or a redis:// URL)."""
    return Proxy(upstream, store=location, memory_cache=memory_cache, lock_expiry=lock_expiry)


class RedisServer:
    """redis-server on a free loopback port, no persistence, for the length of the script."""

    def __enter__(self) -> str:
        binary = shutil.which("redis-server")
        if binary is None:
            sys.exit("redis-server is not installed (apt-get install redis-server)")
        self.port = _free_port()
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        import redis

        deadline = time.monotonic() + 10
        with redis.Redis(port=self.port) as client:
            while True:
                try:
                    client.ping()
                    break
                except redis.ConnectionError:
                    if time.monotonic() > deadline:
                        sys.exit("redis-server did not start")
                    time.sleep(0.05)
        return f"redis://127.0.0.1:{self.port}/0"

    def __exit__(self, *exc: object) -> None:
        self.proc.terminate()
        self.proc.wait(10)


class RedisClusterServers:
    """Three cluster-enabled redis-servers on free loopback ports, joined with no replicas."""

    NODES = 3

    def __enter__(self) -> str:
        binary, cli = shutil.which("redis-server"), shutil.which("redis-cli")
        if binary is None or cli is None:
            sys.exit("--cluster needs redis-server and redis-cli (apt-get install redis-server)")
        self.work = _load.scratch_dir()
        ports = [_free_port() for _ in range(self.NODES)]
        self.procs = []
        for port in ports:
            node_dir = os.path.join(self.work, f"node-{port}")
            os.makedirs(node_dir)
            self.procs.append(
                subprocess.Popen(
                    [binary, "--port", str(port), "--bind", "127.0.0.1", "--cluster-enabled", "yes"]
                    + ["--cluster-port", str(_free_port()), "--save", "", "--appendonly", "no", "--dir", node_dir],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.STDOUT,
                )
            )
        for port in ports:
            _wait_for_ping(port)
        created = subprocess.run(
            [cli, "--cluster", "create", *(f"127.0.0.1:{p}" for p in ports), "--cluster-replicas", "0", "--cluster-yes"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        if created.returncode != 0:
            self.__exit__()
            sys.exit(f"redis-cli --cluster create failed: {created.stdout[-1000:]}")
        _wait_for_cluster(ports)
        return f"redis+cluster://127.0.0.1:{ports[0]}"

    def __exit__(self, *exc: object) -> None:
        for proc in self.procs:
            proc.terminate()
            proc.wait(10)


def _wait_for_ping(port: int) -> None:
    import redis

    deadline = time.monotonic() + 10
    with redis.Redis(port=port) as client:
        while True:
            try:
                client.ping()
                return
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    sys.exit(f"redis-server did not start on port {port}")
                time.sleep(0.05)


def _wait_for_cluster(ports: list[int]) -> None:
    import redis

    deadline = time.monotonic() + 30
    for port in ports:
        with redis.Redis(port=port) as client:
            while client.cluster("info").get("cluster_state") != "ok":
                if time.monotonic() > deadline:
                    sys.exit(f"the cluster did not settle (node {port})")
                time.sleep(0.05)


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- 1. hits ----------------------------------------------------------------------------------------


def record(sim: str, location: str, body: dict) -> None:
    with ProxyProcess(team_proxy, upstream=f"{sim}/v1", location=location) as proxy:
        status, headers, _ = post_once(proxy + CHAT, body)
        if status != 200 or headers.get("X-Seedreplay-Cache") != "miss":
            sys.exit(f"recording in {location} failed: HTTP {status}")


def hits(args: argparse.Namespace, tool: str, stores: dict[str, str], body: dict) -> None:
    request = json.dumps(body).encode()
    variants = [(name, memory) for name in stores for memory in (True, False)]
    results: dict[tuple[str, bool], list] = {v: [] for v in variants}
    rows = []
    for n in range(args.rounds):
        for name, memory in variants if n % 2 == 0 else reversed(variants):
            server = ProxyProcess(
                team_proxy, upstream=DEAD_UPSTREAM, location=stores[name], memory_cache=64 * 1024 * 1024 if memory else 0
            )
            with server as root:
                url = root + CHAT
                status, headers, _ = post_once(url, body)
                if status != 200 or headers.get("X-Seedreplay-Cache") != "hit":
                    sys.exit(f"{name}: the recording did not answer (HTTP {status})")
                _load.load(tool, url, request, AUTH, args.connections, 1)  # warm up
                loaded = _load.load(tool, url, request, AUTH, args.connections, args.seconds)
                single = _load.load(tool, url, request, AUTH, 1, args.seconds)
            if loaded.errors or single.errors:
                sys.exit(f"{name}: {loaded.errors + single.errors} failed requests")
            results[(name, memory)].append((loaded, single))
            rows.append([f"{n + 1} {name}", "on" if memory else "off", loaded.rps, loaded.p50_ms, loaded.p99_ms, single.p50_ms])
    print(table(["round store", "memory copy", "req/s", "p50 ms", "p99 ms", "1-conn p50 ms"], rows))
    print("\nmedians over rounds")
    summary = []
    for (name, memory), runs in results.items():
        summary.append(
            [
                name,
                "on" if memory else "off",
                median(r[0].rps for r in runs),
                median(r[0].p50_ms for r in runs),
                median(r[0].p99_ms for r in runs),
                median(r[1].p50_ms for r in runs),
            ]
        )
    print(table(["store", "memory copy", "req/s", "p50 ms", "p99 ms", "1-conn p50 ms"], summary))
    by = {(row[0], row[1]): row[2] for row in summary}
    for memory in ("on", "off"):
        print(f"hit throughput redis/disk, memory copy {memory}: {by[('redis', memory)] / by[('disk', memory)]:.2f}x")
        if ("redis-cluster", memory) in by:
            ratio = by[("redis-cluster", memory)] / by[("redis", memory)]
            print(f"hit throughput redis-cluster/redis, memory copy {memory}: {ratio:.2f}x")


# --- 2. misses ---------------------------------------------------------------------------------------


async def timed(session: aiohttp.ClientSession, url: str, body: dict) -> float:
    started = time.perf_counter()
    async with session.post(url, data=json.dumps(body), headers=AUTH) as response:
        await response.read()
        if response.status != 200:
            raise SystemExit(f"HTTP {response.status} from {url}")
    return (time.perf_counter() - started) * 1000


async def single_misses(url: str, seeds: range) -> list[float]:
    async with aiohttp.ClientSession() as session:
        return [await timed(session, url + CHAT, chat_body(seed)) for seed in seeds]


async def pairs(first: str, second: str, seeds: range) -> list[float]:
    """Two identical misses at once per seed; what the later answer waited beyond the earlier (ms)."""
    waited = []
    async with aiohttp.ClientSession() as session:
        for seed in seeds:
            body = chat_body(seed)
            a, b = await asyncio.gather(timed(session, first + CHAT, body), timed(session, second + CHAT, body))
            waited.append(abs(a - b))
    return waited


def misses(args: argparse.Namespace, sim: str, redis_url: str, cluster_url: str | None = None) -> None:
    seed = 10_000
    # (name, store URL, lock expiry): single misses; (name, store URL, two proxies?): identical pairs.
    single_variants = [("lock off", redis_url, 0.0), ("lock on", redis_url, 10.0)]
    pair_variants = [("same proxy", redis_url, False), ("other proxy", redis_url, True)]
    if cluster_url is not None:
        single_variants.append(("lock on, cluster", cluster_url, 10.0))
        pair_variants.append(("other proxy, cluster", cluster_url, True))
    singles: dict[str, list[float]] = {name: [] for name, _, _ in single_variants}
    followers: dict[str, list[float]] = {name: [] for name, _, _ in pair_variants}
    calls_before = _load.fetch_json(sim + "/sim/stats")["requests"].get(SIM_CHAT, 0)
    pair_count = 0
    for n in range(args.rounds):
        prefix = f"?prefix=bench{n}{int(time.time())}:"
        for name, url, expiry in single_variants if n % 2 == 0 else reversed(single_variants):
            with ProxyProcess(team_proxy, upstream=f"{sim}/v1", location=url + prefix, lock_expiry=expiry) as proxy:
                asyncio.run(single_misses(proxy, range(seed, seed + 3)))  # warm up
                seed += 3
                singles[name] += asyncio.run(single_misses(proxy, range(seed, seed + args.misses)))
                seed += args.misses
        for name, url, two in pair_variants:
            with (
                ProxyProcess(team_proxy, upstream=f"{sim}/v1", location=url + prefix) as a,
                ProxyProcess(team_proxy, upstream=f"{sim}/v1", location=url + prefix) as b,
            ):
                second = b if two else a
                asyncio.run(pairs(a, second, range(seed, seed + 3)))  # warm up
                seed += 3
                followers[name] += asyncio.run(pairs(a, second, range(seed, seed + args.misses)))
                seed += args.misses
                pair_count += 3 + args.misses
    calls = _load.fetch_json(sim + "/sim/stats")["requests"].get(SIM_CHAT, 0) - calls_before
    singles_count = sum(len(v) for v in singles.values()) + 3 * len(single_variants) * args.rounds
    print(
        table(
            ["one miss", "p50 ms", "p90 ms", "max ms"],
            [[name, percentile(v, 50), percentile(v, 90), max(v)] for name, v in singles.items()],
        )
    )
    for name in singles:
        if name != "lock off":
            added = percentile(singles[name], 50) - percentile(singles["lock off"], 50)
            upstream = f"upstream: {args.latency_ms:g} ms"
            print(f"single-flight across proxies ({name}) adds {added:+.2f} ms to a miss's p50 ({upstream})")
    print()
    print(
        table(
            ["two identical misses", "follower waits p50 ms", "p90 ms", "max ms"],
            [[name, percentile(v, 50), percentile(v, 90), max(v)] for name, v in followers.items()],
        )
    )
    for name in followers:
        if name != "same proxy":
            cross = percentile(followers[name], 50) - percentile(followers["same proxy"], 50)
            print(f"a follower ({name}) waits {cross:+.2f} ms more (p50) than one on the leader's proxy")
    print(f"check: {calls} upstream calls for {singles_count} single misses and {pair_count} pairs (one call each)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=4, help="seconds per hit load run (default 4)")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--misses", type=int, default=30, help="misses (or pairs) per variant and round (default 30)")
    parser.add_argument("--latency-ms", type=float, default=100, help="the simulator's answer latency (default 100)")
    parser.add_argument("--loadgen", choices=("auto", "wrk", "aiohttp"), default="auto")
    parser.add_argument("--cluster", action="store_true", help="also hits on a three-node Redis Cluster (same run)")
    args = parser.parse_args()
    tool = _load.pick_tool(args.loadgen)
    work = _load.scratch_dir()
    body = chat_body(7)
    cluster = RedisClusterServers() if args.cluster else contextlib.nullcontext(None)
    with RedisServer() as redis_url, cluster as cluster_url, ServerProcess(sim_app, latency_ms=args.latency_ms) as sim:
        stores = {"disk": os.path.join(work, "cache"), "redis": redis_url + "?prefix=benchhits:"}
        if cluster_url is not None:
            stores["redis-cluster"] = cluster_url + "?prefix=benchhits:"
        for location in stores.values():
            record(sim, location, body)
        print(
            f"team cache: Redis vs disk | {_load.machine()} | load: {tool}, {args.connections} connections | "
            f"{args.rounds} rounds | {_load.load_average()}\n"
        )
        print("1. hits (plain JSON answer)")
        hits(args, tool, stores, body)
        print("\n2. misses")
        misses(args, sim, redis_url, cluster_url)
    print(f"\n{_load.load_average()}")


if __name__ == "__main__":
    main()
