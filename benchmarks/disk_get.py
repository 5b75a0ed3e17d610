"""What the checks on a stored entry cost a hit: `DiskStore.get` with seedreplay's StrictDisk against
the same store read through plain `diskcache.Disk` (what it used before), and building an Entry with
its field checks (`Entry.from_dict`) against constructing the dataclass directly (no checks).

    python benchmarks/disk_get.py [--entries 2000] [--reads 2000] [--rounds 41]

One store of --entries realistic chat entries (~2.2 KB, those of store_scale.py) is built once. Each
round reads the same --reads random keys through both, in alternating order (A B, B A, ...); the
figures are medians over the rounds of µs per `get`, and the median (and quartiles) of each round's
own ratio: short rounds, paired close in time, so a neighbour's load falls on both sides alike.
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import statistics
import tempfile
import time

import diskcache
from store_scale import make_entry

from pytest_seedreplay.core.entry import Entry, SSEEvent
from pytest_seedreplay.store import DiskStore
from pytest_seedreplay.store.disk import DISK_SETTINGS, DISK_TIMEOUT


def _plain_cache(directory: str) -> diskcache.Cache:
    return diskcache.Cache(directory, timeout=DISK_TIMEOUT, disk=diskcache.Disk, **DISK_SETTINGS)


def _time_gets(store: DiskStore, keys: list[str]) -> float:
    began = time.perf_counter()
    for key in keys:
        if store.get(key) is None:
            raise SystemExit(f"missed {key}: the benchmark must only hit")
    return (time.perf_counter() - began) / len(keys) * 1e6


def _unchecked(data: dict) -> Entry:
    """`Entry.from_dict` as it was before the field checks (its code, verbatim)."""
    data = dict(data)
    if data.get("events") is not None:
        data["events"] = [SSEEvent(**e) for e in data["events"]]
    known = {f.name for f in dataclasses.fields(Entry)}
    return Entry(**{k: v for k, v in data.items() if k in known})


def _time_builds(build, dicts: list[dict]) -> float:
    began = time.perf_counter()
    for data in dicts:
        build(data)
    return (time.perf_counter() - began) / len(dicts) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entries", type=int, default=2000)
    parser.add_argument("--reads", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=41)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="seedreplay-diskget-") as directory:
        entries = [make_entry(seed) for seed in range(args.entries)]
        with DiskStore(directory) as writer:
            writer.put_many(entries)
        strict = DiskStore(directory)
        plain = DiskStore(directory)
        plain._cache.close()
        plain._cache = _plain_cache(directory)  # the same rows, read as before StrictDisk
        rng = random.Random(0)
        keys = [rng.choice(entries).key for _ in range(args.reads)]
        dicts = [e.to_dict() for e in entries]

        figures: dict[str, list[float]] = {"plain Disk": [], "StrictDisk": [], "unchecked": [], "checked": []}
        for round_ in range(args.rounds):
            gets = [("plain Disk", plain), ("StrictDisk", strict)]
            builds = [("unchecked", _unchecked), ("checked", Entry.from_dict)]
            if round_ % 2:
                gets.reverse()
                builds.reverse()
            for name, store in gets:
                figures[name].append(_time_gets(store, keys))
            for name, build in builds:
                figures[name].append(_time_builds(build, dicts * 5))
        strict.close()
        plain.close()

    def line(label: str, before: str, after: str) -> None:
        ratios = [a / b for a, b in zip(figures[after], figures[before])]
        print(
            f"{label:<22} before {statistics.median(figures[before]):7.2f} µs   after {statistics.median(figures[after]):7.2f} µs"
            f"   after/before {statistics.median(ratios):.3f}x (quartiles of the rounds' ratios "
            f"{', '.join(f'{q:.2f}' for q in statistics.quantiles(ratios, n=4))})"
        )

    print(f"{args.entries} entries, {args.reads} random hits per round, {args.rounds} rounds")
    line("DiskStore.get", "plain Disk", "StrictDisk")
    line("Entry.from_dict", "unchecked", "checked")


if __name__ == "__main__":
    main()
