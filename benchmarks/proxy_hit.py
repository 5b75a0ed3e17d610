"""Cache-hit throughput and latency of the proxy, next to a bare aiohttp server answering the same bytes.

The proxy is started as a user starts one from a shell, `seedreplay proxy --mode replay --cache-dir
DIR` with every other flag at its default (--log-level info among them), over a DiskStore holding the
one pre-recorded answer; "quiet" is the same with --log-level warning. They and the bare server each
run in their own process; the load generator (wrk when installed, else an aiohttp client loop) runs
from this one. The three are measured in rotating rounds (A B C, B C A, ...) with the same generator:
throughput at --connections, and latency at a single connection (one request at a time, the added
cost of a hit without queueing).

Each loaded run also reads the server process's CPU time (all threads, from /proc) and divides it by
the requests served: CPU per hit. On a small shared machine the wall-clock throughput of the same
server swings 10-20 % from run to run (the load generator shares the cores, and so do neighbours);
the CPU a hit costs barely moves, and its ratio is the capacity ratio the throughput target is about.

Run: python benchmarks/proxy_hit.py [--rounds 5] [--seconds 5] [--connections 32] [--loadgen auto]
     [--stream] [--endpoint chat|messages] [--profile]
(`--endpoint messages`: Anthropic's Messages API, its answer recorded from the simulator.)
Targets: the default proxy >= 0.9x bare throughput (wall clock, and in CPU per hit); p50 added <= 0.3 ms.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time

import _load
from _load import (
    ANTHROPIC_AUTH,
    CHAT,
    DEAD_UPSTREAM,
    MESSAGES,
    CliProxy,
    ProxyProcess,
    ServerProcess,
    bare_app,
    chat_body,
    median,
    messages_body,
    post_once,
    proxy_server,
    sim_app,
    table,
)

SERVED = ("--mode", "replay", "--cache-dir")  # then the directory: how a user serves recordings
QUIET = ("--log-level", "warning")
TARGET = 0.9

# What the bare server must not copy: aiohttp writes these itself.
_OWN_HEADERS = {"date", "server", "content-length", "connection", "keep-alive"}

# What each endpoint's clients send: (path, headers, body).
ENDPOINTS = {
    "chat": (CHAT, _load.AUTH, lambda stream: chat_body(7, stream=True) if stream else chat_body(7)),
    "messages": (MESSAGES, ANTHROPIC_AUTH, lambda stream: messages_body(stream=True) if stream else messages_body()),
}
PATH, HEADERS = CHAT, _load.AUTH  # the endpoint measured (main() sets them from --endpoint)


def record_answer(cache_dir: str, body: dict) -> None:
    """Put the answer to `body` in the store, through a proxy in front of the simulator."""
    with (
        ServerProcess(sim_app) as sim,
        ProxyProcess(proxy_server, upstream=f"{sim}/v1", anthropic_upstream=sim, cache_dir=cache_dir) as proxy,
    ):
        status, headers, _ = post_once(proxy + PATH, body, HEADERS)
        if status != 200 or headers.get("X-Seedreplay-Cache") != "miss":
            sys.exit(f"recording the answer failed: HTTP {status}, cache={headers.get('X-Seedreplay-Cache')}")


def hit_answer(root: str, body: dict) -> tuple[bytes, dict[str, str]]:
    status, headers, raw = post_once(root + PATH, body, HEADERS)
    if status != 200 or headers.get("X-Seedreplay-Cache") != "hit":
        sys.exit(f"the proxy did not answer from the cache: HTTP {status}, cache={headers.get('X-Seedreplay-Cache')}")
    return raw, {k: v for k, v in headers.items() if k.lower() not in _OWN_HEADERS}


def proxy_hits(root: str) -> int:
    return _load.fetch_json(root + "/seedreplay/stats")["hits"]


def measure(
    tool: str, url: str, pids: list[int], request: bytes, connections: int, seconds: float
) -> tuple[_load.LoadResult, _load.LoadResult, float | None]:
    """The loaded run, the one-connection run, and the server's CPU µs per request in the loaded run."""
    before = _load.cpu_seconds_of(pids)
    loaded = _load.load(tool, url, request, HEADERS, connections, seconds)
    after = _load.cpu_seconds_of(pids)
    single = _load.load(tool, url, request, HEADERS, 1, seconds)
    for result in (loaded, single):
        if result.errors:
            sys.exit(f"{url}: {result.errors} failed requests during the run")
    cpu_us = (after - before) / loaded.requests * 1e6 if before is not None and after is not None and loaded.requests else None
    return loaded, single, cpu_us


def profile(tool: str, cache_dir: str, request: bytes, connections: int, seconds: float, bare: tuple[bytes, dict]) -> None:
    """Where the time goes under load: py-spy samples of both servers when installed, else cProfile of the proxy."""
    work = os.path.dirname(cache_dir)
    if _load.py_spy():
        for name, server in (
            ("proxy", ProxyProcess(proxy_server, upstream=DEAD_UPSTREAM, cache_dir=cache_dir)),
            ("bare", ServerProcess(bare_app, body=bare[0], headers=bare[1], path=PATH)),
        ):
            out = os.path.join(work, f"{name}.collapsed")
            with server as root:
                _load.load(tool, root + PATH, request, HEADERS, connections, 1)  # warm
                sampler = _load.start_sampling(server.pid, seconds, out)
                result = _load.load(tool, root + PATH, request, HEADERS, connections, seconds)
                _, errors = sampler.communicate(timeout=seconds + 60)
            if sampler.returncode != 0 or not os.path.exists(out):
                print(f"\npy-spy failed ({errors.strip()[-300:]}); falling back to cProfile")
                break
            print(
                f"\npy-spy samples of the {name} server process, {seconds:.0f} s at {connections} connections "
                f"({result.rps:,.0f} req/s while sampled):"
            )
            print(_load.sampled_functions(out, result.requests))
        else:
            return
    path = os.path.join(work, "pytest_seedreplay.proxy.prof")
    with ProxyProcess(proxy_server, profile=path, upstream=DEAD_UPSTREAM, cache_dir=cache_dir) as proxy:
        _load.load(tool, proxy + PATH, request, HEADERS, connections, seconds)
    print(f"\ncProfile of the proxy process under {seconds:.0f} s of load (cProfile slows it down; compare shares):")
    print(_load.top_functions(path))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="A/B rounds (default 5)")
    parser.add_argument("--seconds", type=float, default=5, help="seconds per run (default 5)")
    parser.add_argument("--connections", type=int, default=32, help="concurrent connections for throughput (default 32)")
    parser.add_argument("--loadgen", choices=("auto", "wrk", "aiohttp"), default="auto")
    parser.add_argument("--stream", action="store_true", help="ask for a streamed answer (SSE hit)")
    parser.add_argument("--endpoint", choices=tuple(ENDPOINTS), default="chat", help="chat completions or Anthropic's Messages")
    parser.add_argument("--profile", action="store_true", help="profile the proxy afterwards, even when on target")
    parser.add_argument(
        "--before",
        metavar="SCRIPT",
        help="another installed `seedreplay` script (an older version's) measured beside, as 'before', at its defaults",
    )
    args = parser.parse_args()
    tool = _load.pick_tool(args.loadgen)

    global PATH, HEADERS
    PATH, HEADERS, make_body = ENDPOINTS[args.endpoint]
    body = make_body(args.stream)
    request = json.dumps(body).encode()
    work = _load.scratch_dir()
    cache_dir = os.path.join(work, "cache")
    record_answer(cache_dir, body)

    print(
        f"proxy cache hit vs bare aiohttp | {_load.machine()} | load: {tool}, {args.connections} connections "
        f"for throughput, 1 for latency | {args.rounds} rounds x {args.seconds:.0f} s | "
        f"{'streamed' if args.stream else 'plain JSON'} answer | {_load.load_average()}"
    )
    print(
        f"proxy: `seedreplay proxy --mode replay --cache-dir DIR` as a user starts it (--log-level info, its "
        f"default; the log to a file); quiet: the same with {' '.join(QUIET)}"
    )
    proxies = {"proxy": CliProxy(*SERVED, cache_dir, log_dir=work), "quiet": CliProxy(*SERVED, cache_dir, *QUIET, log_dir=work)}
    if args.before:
        proxies["before"] = CliProxy(*SERVED, cache_dir, log_dir=work, script=args.before)
    with contextlib.ExitStack() as running:
        roots = {name: running.enter_context(server) for name, server in proxies.items()}
        proxy, quiet = roots["proxy"], roots["quiet"]
        answer, headers = hit_answer(proxy, body)
        bare_process = ServerProcess(bare_app, body=answer, headers=headers, path=PATH)
        with bare_process as bare:
            targets = {name: root + PATH for name, root in roots.items()}
            targets["bare"] = bare + PATH
            pids = {name: server.pids() for name, server in proxies.items()}
            pids["bare"] = [bare_process.pid]
            print(f"answer: {len(answer)} bytes, {len(headers)} headers, same on every server")
            for url in targets.values():  # warm them up (imports, first connections)
                _load.load(tool, url, request, HEADERS, args.connections, 1)
            hits_before = proxy_hits(proxy) + proxy_hits(quiet)
            rows, results = [], {name: [] for name in targets}
            started = time.perf_counter()
            names = list(targets)
            for n in range(args.rounds):
                order = names[n % len(names) :] + names[: n % len(names)]  # each server takes each place in turn
                for name in order:
                    loaded, single, cpu_us = measure(tool, targets[name], pids[name], request, args.connections, args.seconds)
                    results[name].append((loaded, single, cpu_us))
                    rows.append(
                        [
                            f"{n + 1} {name}",
                            loaded.rps,
                            loaded.p50_ms,
                            loaded.p99_ms,
                            "-" if cpu_us is None else cpu_us,
                            single.rps,
                            single.p50_ms,
                            single.p99_ms,
                        ]
                    )
            served = proxy_hits(proxy) + proxy_hits(quiet) - hits_before
            proxy_requests = sum(a.requests + b.requests for name in ("proxy", "quiet") for a, b, _ in results[name])
        said = [line for line in proxies["proxy"].log().splitlines() if " hits in the last " in line]
    elapsed = time.perf_counter() - started

    print()
    print(table(["round", "req/s", "p50 ms", "p99 ms", "CPU µs/req", "1-conn req/s", "1-conn p50 ms", "1-conn p99 ms"], rows))
    summary = {}
    for name, runs in results.items():
        summary[name] = [
            median(r[0].rps for r in runs),
            median(r[0].p50_ms for r in runs),
            median(r[0].p99_ms for r in runs),
            median(r[1].p50_ms for r in runs),
            median(r[1].p99_ms for r in runs),
        ]
    print("\nmedians over rounds")
    print(
        table(
            ["server", "req/s", "p50 ms", "p99 ms", "1-conn p50 ms", "1-conn p99 ms"],
            [[name, *values] for name, values in summary.items()],
        )
    )
    cpu = {name: [r[2] for r in runs if r[2] is not None] for name, runs in results.items()}
    ratios = {}
    for name in proxies:
        ratios[name] = compare(name, results[name], results["bare"], cpu)
    added_p50 = summary["proxy"][3] - summary["bare"][3]
    added_p99 = summary["proxy"][4] - summary["bare"][4]
    print(
        f"\np50 added by a hit (default config, 1 connection): {added_p50:+.3f} ms   (target <= 0.3 ms)  "
        f"{'OK' if added_p50 <= 0.3 else 'MISSED'}"
    )
    print(f"p99 added by a hit (1 connection): {added_p99:+.3f} ms")
    print(f"the default proxy's log said, e.g.: {said[-1].split(': ', 1)[-1] if said else '(no hit summary line)'}")
    print(
        f"check: the proxies counted {served} hits for the {proxy_requests} requests the load generator completed "
        f"(more means requests still in flight when a run stopped); {elapsed:.0f} s measuring, {_load.load_average()}"
    )
    if args.profile or min(ratios["proxy"]) < TARGET or added_p50 > 0.3:
        profile(tool, cache_dir, request, args.connections, args.seconds, (answer, headers))


def compare(name: str, runs: list, bare: list, cpu: dict[str, list[float]]) -> tuple[float, float]:
    """Print and return `name`'s throughput and CPU-per-hit ratios to the bare server, medians of
    each round's pair: the two runs of a round are close in time, which cancels the slow drifts of a
    shared machine that a ratio of medians over all rounds keeps."""
    pairs = list(zip(runs, bare))
    ratio = median(p[0].rps / b[0].rps for p, b in pairs)
    cpu_pairs = [b[2] / p[2] for p, b in pairs if p[2] and b[2]]
    cpu_ratio = median(cpu_pairs) if cpu_pairs else float("nan")
    print(
        f"\n{name}/bare throughput: {ratio:.2f}x   (target >= {TARGET}x)  {'OK' if ratio >= TARGET else 'MISSED'}"
        f"   (rounds: {', '.join(f'{p[0].rps / b[0].rps:.2f}' for p, b in pairs)})"
    )
    if cpu_pairs:
        print(
            f"{name}/bare capacity, by CPU per hit: {cpu_ratio:.2f}x   (target >= {TARGET}x)  "
            f"{'OK' if cpu_ratio >= TARGET else 'MISSED'}   (rounds: {', '.join(f'{r:.2f}' for r in cpu_pairs)}; "
            f"{name} {median(cpu[name]):.1f} µs, bare {median(cpu['bare']):.1f} µs of CPU per request, medians)"
        )
    return ratio, cpu_ratio


if __name__ == "__main__":
    main()
