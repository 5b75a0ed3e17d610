"""Store get latency as the store grows (1k, 100k, 1M entries of ~2 KB), against raw diskcache.

    python benchmarks/store_scale.py [--sizes 1000,100000,1000000] [--samples 20000] [--dir DIR] [--proxy-rss]

One seedreplay DiskStore and one plain `diskcache.Cache()` (default settings but no eviction, the entry
as a pickled dict: what using diskcache directly would look like) grow side by side, written by two
builder processes in batches of 2,000 entries per transaction; "build s" is the wall time for both.
At each size both are measured with random hits, one at a time, in this process; the figures printed
are the median and p99 of single `get` calls in microseconds, and the disk bytes per entry.
Target: the DiskStore median at the largest size is at most 1.5x the one at the smallest.
With --proxy-rss, a real `seedreplay proxy --mode replay` is started on the store at each size and its
resident memory (VmRSS) is read after start and after 2,000 random hits over HTTP.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import diskcache

from pytest_seedreplay.core.entry import Entry
from pytest_seedreplay.core.key import canonical_request, key_of_canonical
from pytest_seedreplay.store import DiskStore

ENDPOINT = "/v1/chat/completions"
BATCH = 2000  # entries per write transaction while building
WORKERS = 2  # builder processes: one per core of the 2-core target machine
WORDS = (
    "the of and to a in is that for it as was with be by on not he this are or his from at which but have an "
    "they you were her she there been one all we their has would when if so no will more can who out said up "
    "into do them then about what some could other than its time these only two may first over new like people "
    "model answer request token stream cache record replay seed test suite function value result error"
).split()


_POOL = random.Random(0).choices(WORDS, k=20_000)  # a long word stream; each text is a random window


def _text(rng: random.Random, words: int) -> str:
    start = rng.randrange(len(_POOL) - words)
    return " ".join(_POOL[start : start + words])


def make_entry(seed: int) -> Entry:
    """A realistic chat completion entry: ~2.2 KB as JSON, different text for every seed."""
    rng = random.Random(seed)
    request = canonical_request(
        ENDPOINT,
        {
            "model": "gpt-4o-mini",
            "messages": [
                {"role": "system", "content": "You are a concise assistant for a test suite."},
                {"role": "user", "content": _text(rng, 60)},
            ],
            "seed": seed,
            "temperature": 0,
        },
    )
    body = {
        "id": f"chatcmpl-{seed:012d}",
        "object": "chat.completion",
        "created": 1_730_000_000 + seed,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": _text(rng, 190), "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 80, "completion_tokens": 190, "total_tokens": 270},
        "system_fingerprint": "fp_44709d6fcb",
    }
    return Entry(
        key=key_of_canonical(request),
        endpoint=ENDPOINT,
        request=request,
        headers={
            "content-type": "application/json",
            "openai-model": "gpt-4o-mini-2024-07-18",
            "openai-processing-ms": "412",
            "x-request-id": f"req_{seed:024x}",
        },
        body=body,
        upstream="https://api.openai.com/v1",
        model="gpt-4o-mini-2024-07-18",
        system_fingerprint="fp_44709d6fcb",
    )


# Plain diskcache, except that it must not evict: its default (least-recently-stored beyond a 1 GB
# size_limit) silently drops entries well before 1M of them, and a timed hit would then be a miss.
RAW_SETTINGS = {"eviction_policy": "none"}


def grow(kind: str, directory: str, start: int, stop: int) -> float:
    """Add entries start..stop-1 to one store (run in a worker process); seconds spent."""
    began = time.perf_counter()
    if kind == "seedreplay":
        with DiskStore(directory) as store:
            for low in range(start, stop, BATCH):
                store.put_many(make_entry(seed) for seed in range(low, min(low + BATCH, stop)))
    else:
        with diskcache.Cache(directory, **RAW_SETTINGS) as cache:
            for low in range(start, stop, BATCH):
                with cache.transact():
                    for seed in range(low, min(low + BATCH, stop)):
                        entry = make_entry(seed)
                        cache.set(entry.key, entry.to_dict())
    return time.perf_counter() - began


def _grow_task(args: tuple[str, str, int, int]) -> tuple[str, float]:
    return args[0], grow(*args)


def build_both(pool, dirs: dict[str, str], start: int, stop: int) -> float:
    """Grow both stores to `stop` entries; wall seconds. Several processes write each store at once
    (the stores are process-safe), so both cores stay busy preparing entries between commits."""
    step = max(BATCH, -(-(stop - start) // (2 * WORKERS)))
    tasks = [(kind, d, low, min(low + step, stop)) for kind, d in dirs.items() for low in range(start, stop, step)]
    began = time.perf_counter()
    for _ in pool.imap_unordered(_grow_task, tasks):
        pass
    return time.perf_counter() - began


def time_gets(get, keys: list[str]) -> tuple[float, float]:
    """(median, p99) in µs of one get per key, each timed on its own."""
    for key in keys[:1000]:  # warm the connection and the page cache path
        get(key)
    clock = time.perf_counter_ns
    samples = []
    for key in keys:
        t0 = clock()
        value = get(key)
        samples.append(clock() - t0)
        if value is None:
            raise SystemExit(f"{key} is missing from {get.__self__!r}: an entry was lost")
    samples.sort()
    return statistics.median(samples) / 1000, samples[int(len(samples) * 0.99)] / 1000


def disk_bytes(directory: str) -> int:
    """Bytes the directory really occupies (allocated blocks of every file, WAL included)."""
    return sum(p.stat().st_blocks * 512 for p in Path(directory).rglob("*") if p.is_file())


def _rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def proxy_rss(directory: str, size: int, hits: int = 2000) -> tuple[float, float, int]:
    """(RSS MiB after start, RSS MiB after `hits` random replayed hits, hits answered 200) of a real proxy."""
    command = [
        sys.executable,
        "-c",
        "from pytest_seedreplay.cli import main; main()",
        "proxy",
        "--mode",
        "replay",
        "--port",
        "0",
        "--cache-dir",
        directory,
        "--upstream",
        "http://127.0.0.1:9/v1",
        "--log-level",
        "warning",
    ]
    proxy = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        line = proxy.stdout.readline()  # the listening line
        base = line.split(" on ", 1)[1].split()[0]
        started = _rss_mib(proxy.pid)
        ok = 0
        for seed in random.Random(size + 1).choices(range(size), k=hits):
            body = json.dumps(make_entry(seed).request["params"]).encode()
            request = urllib.request.Request(f"{base}/chat/completions", data=body, headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(request, timeout=30) as answer:
                ok += answer.status == 200
        return started, _rss_mib(proxy.pid), ok
    finally:
        proxy.terminate()
        proxy.wait(30)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1000,100000,1000000", help="comma-separated entry counts")
    parser.add_argument("--samples", type=int, default=20000, help="random hits timed per size")
    parser.add_argument("--dir", default=None, help="where to build the stores (default: a temp dir, removed after)")
    parser.add_argument("--proxy-rss", action="store_true", help="also measure a real proxy's RSS on the store at each size")
    args = parser.parse_args(argv)
    sizes = sorted({int(s.replace("_", "")) for s in args.sizes.split(",")})

    root = args.dir or tempfile.mkdtemp(prefix="seedreplay-store-scale-")
    dirs = {"seedreplay": os.path.join(root, "seedreplay"), "diskcache": os.path.join(root, "raw-diskcache")}
    print(f"python {sys.version.split()[0]}, diskcache {diskcache.__version__}, stores under {root}")
    print(f"entry: {len(str(make_entry(0).to_dict()))} chars as a dict; {args.samples} random hits per size\n")
    header = f"{'entries':>9} {'build s':>9} {'seedreplay get µs':>19} {'raw diskcache get µs':>21} {'bytes/entry':>12}"
    print(header + "\n" + f"{'':>9} {'(both)':>9} {'median':>9} {'p99':>9} {'median':>10} {'p99':>10} {'ours':>6} {'raw':>5}")

    results = {}
    built = 0
    build_wall = 0.0
    try:
        with multiprocessing.get_context("spawn").Pool(WORKERS) as pool:
            for size in sizes:
                build_wall += build_both(pool, dirs, built, size)
                built = size
                keys = [make_entry(seed).key for seed in random.Random(size).choices(range(size), k=args.samples)]
                with DiskStore(dirs["seedreplay"]) as store, diskcache.Cache(dirs["diskcache"], **RAW_SETTINGS) as raw:
                    ours = time_gets(store.get, keys)
                    base = time_gets(raw.get, keys)
                    assert len(store) == len(raw) == size
                per_entry = {k: disk_bytes(d) / size for k, d in dirs.items()}
                results[size] = ours
                print(
                    f"{size:>9} {build_wall:>9.1f} {ours[0]:>9.1f} {ours[1]:>9.1f} {base[0]:>10.1f} {base[1]:>10.1f}"
                    f" {per_entry['seedreplay']:>6.0f} {per_entry['diskcache']:>5.0f}",
                    flush=True,
                )
                if args.proxy_rss:
                    started, after, ok = proxy_rss(dirs["seedreplay"], size)
                    print(f"{'':>9} proxy RSS: {started:.1f} MiB after start, {after:.1f} MiB after {ok} hits", flush=True)
    finally:
        if args.dir is None:
            shutil.rmtree(root, ignore_errors=True)

    small, large = sizes[0], sizes[-1]
    ratio = results[large][0] / results[small][0]
    verdict = "ok" if ratio <= 1.5 else "ABOVE TARGET"
    print(f"\nmedian get at {large} / at {small}: {ratio:.2f}x (target <= 1.5x: {verdict})")


if __name__ == "__main__":
    main()
