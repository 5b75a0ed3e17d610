"""Cache-hit throughput of `seedreplay proxy --workers N`, N = 1 and 2, on this machine.

Each proxy is started as a user starts it, `seedreplay proxy --mode replay --cache-dir DIR [--workers N]`
(every other flag at its default), over a DiskStore holding one recorded answer; wrk loads it with one
thread. Where `taskset` is installed the load generator and the proxy are pinned apart as far as the
cores allow: on 2 cores, 1 worker gets core 0 and wrk core 1, while 2 workers take both cores and wrk
shares core 1 with one of them (there is no core left for it alone). The runs alternate (1 2, 2 1, ...)
and each reads the CPU time of the proxy's processes (all workers) per request.

Run: python benchmarks/proxy_workers.py [--rounds 4] [--seconds 5] [--connections 64] [--workers 1,2] [--no-pin]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sys

import _load
from _load import CHAT, CliProxy, chat_body, median, table
from proxy_hit import hit_answer, record_answer


def pins(cores: int, workers: int) -> tuple[list[str], list[str]]:
    """(the proxy's taskset prefix, wrk's): wrk on the last core, the proxy on as many of the others as
    it has workers, and on the last core too only when there are no others left."""
    if not shutil.which("taskset") or cores < 2:
        return [], []
    others = list(range(cores - 1))
    proxy_cores = others[:workers] if workers <= len(others) else list(range(cores))
    return ["taskset", "-c", ",".join(map(str, proxy_cores))], ["taskset", "-c", str(cores - 1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=4, help="rounds (default 4)")
    parser.add_argument("--seconds", type=float, default=5, help="seconds per run (default 5)")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections (default 64)")
    parser.add_argument("--workers", default="1,2", help="worker counts to compare (default 1,2)")
    parser.add_argument("--no-pin", action="store_true", help="leave every process unpinned (the scheduler places them)")
    args = parser.parse_args()
    if not _load.have_wrk():
        sys.exit("this benchmark needs wrk (apt-get install wrk)")
    counts = [int(n) for n in args.workers.split(",")]
    cores = os.cpu_count() or 1
    body = chat_body(7)
    request = json.dumps(body).encode()
    work = _load.scratch_dir()
    cache_dir = os.path.join(work, "cache")
    record_answer(cache_dir, body)

    setups = {n: ([], []) if args.no_pin else pins(cores, n) for n in counts}
    print(
        f"seedreplay proxy --workers N, cache hits | {_load.machine()} | wrk 1 thread, {args.connections} connections, "
        f"{args.rounds} rounds x {args.seconds:.0f} s | {_load.load_average()}"
    )
    for n, (proxy_pin, wrk_pin) in setups.items():
        print(f"  {n} worker(s): proxy {' '.join(proxy_pin) or 'unpinned'}, wrk {' '.join(wrk_pin) or 'unpinned'}")
    servers = {
        n: CliProxy("--mode", "replay", "--cache-dir", cache_dir, "--workers", str(n), log_dir=work, prefix=setups[n][0])
        for n in counts
    }
    results: dict[int, list[tuple[_load.LoadResult, float | None]]] = {n: [] for n in counts}
    rows = []

    with contextlib.ExitStack() as running:
        roots = {n: running.enter_context(server) for n, server in servers.items()}
        for n, root in roots.items():
            hit_answer(root, body)
            _load.run_wrk(root + CHAT, request, _load.AUTH, args.connections, 1, setups[n][1])  # warm up
        for r in range(args.rounds):
            order = counts if r % 2 == 0 else list(reversed(counts))
            for n in order:
                pids = servers[n].pids()
                before = _load.cpu_seconds_of(pids)
                result = _load.run_wrk(roots[n] + CHAT, request, _load.AUTH, args.connections, args.seconds, setups[n][1])
                after = _load.cpu_seconds_of(pids)
                if result.errors:
                    sys.exit(f"--workers {n}: {result.errors} failed requests")
                cpu_us = (after - before) / result.requests * 1e6 if before is not None and after is not None else None
                results[n].append((result, cpu_us))
                rows.append([f"{r + 1} workers={n}", result.rps, result.p50_ms, result.p99_ms, "-" if cpu_us is None else cpu_us])
        stats = {n: _load.fetch_json(root + "/seedreplay/stats") for n, root in roots.items()}
    print()
    print(table(["round", "req/s", "p50 ms", "p99 ms", "CPU µs/req"], rows))
    print("\nmedians over rounds")
    base = median(r.rps for r, _ in results[counts[0]])
    summary = []
    for n in counts:
        rps = median(r.rps for r, _ in results[n])
        cpu = [c for _, c in results[n] if c is not None]
        summary.append([f"workers={n}", rps, median(r.p50_ms for r, _ in results[n]), median(cpu) if cpu else "-", rps / base])
    print(table(["", "req/s", "p50 ms", "CPU µs/req", f"x workers={counts[0]}"], summary))
    for n in counts:
        print(f"check: workers={n} /seedreplay/stats says {stats[n]['hits']} hits from {stats[n].get('workers', 1)} worker(s)")
    print(f"\n{_load.load_average()}")


if __name__ == "__main__":
    main()
