"""What the similar-questions tier adds to a request, at 10,000 recorded chat requests.

Part 1, in one process: `SimilarIndex.lookup` next to the exact-key lookup (canonical form, key,
DiskStore.get) of the same requests, interleaved.
Part 2, through the proxy: the simulator and two proxies (record mode, each over its own copy of the
same store), each in its own process; one has the similar tier, the other none. One client sends
each request to both in turn, one at a time over keep-alive connections, and times it end to end.

All recordings share one model, system prompt and seed (one group: the worst case, every question is
a candidate group-wise). The kinds of requests:
- exact: a recorded question, asked as recorded (an exact hit; the tier is never asked);
- reworded: a paraphrase of a recorded question (the tier answers it; without it, the upstream does);
- near miss: a recorded question with one content word swapped (the guards refuse it: the upstream);
- new: a question with words no recording has (no candidate at all).

    python benchmarks/similar_tier.py [--recordings 10000] [--lookups 2000] [--proxy-requests 1000] [--no-proxy]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiohttp
from _load import AUTH, ProxyProcess, ServerProcess, load_average, sim_app, table

from pytest_seedreplay import Proxy
from pytest_seedreplay.core.entry import Entry
from pytest_seedreplay.core.key import canonical_request, key_of_canonical
from pytest_seedreplay.paraphrase import paraphrases
from pytest_seedreplay.similar import SimilarIndex
from pytest_seedreplay.store import DiskStore

CHAT = "/v1/chat/completions"
SYSTEM = "You are the support assistant of a chain of hardware shops. Answer briefly."
VERBS = [
    "reset",
    "return",
    "repair",
    "replace",
    "order",
    "cancel",
    "pause",
    "track",
    "install",
    "clean",
    "paint",
    "sharpen",
    "charge",
    "unlock",
    "insure",
]
THINGS = [
    "password",
    "router",
    "kettle",
    "toaster",
    "drill",
    "ladder",
    "lawnmower",
    "heater",
    "fridge",
    "freezer",
    "blender",
    "printer",
    "doorbell",
    "thermostat",
    "dishwasher",
    "kayak",
    "tent",
    "bicycle",
    "scooter",
    "camera",
]
PLACES = ["York", "Leeds", "Bristol", "Oxford", "Cambridge", "Bath", "Derby", "Exeter", "Chester", "Durham"]
FORMS = [
    "How do I {verb} my {thing} at the {place} shop?",
    "Can I {verb} the {thing} I bought in {place} after {n} days?",
    "What does it cost to {verb} a {thing} in {place}?",
    "Is it possible to {verb} a {thing} for {n} weeks at the {place} branch?",
]


def body(text: str) -> dict:
    return {
        "model": "gpt-4o-mini",
        "seed": 42,
        "temperature": 0.3,
        "messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": text}],
    }


def answer(key: str, text: str) -> dict:
    """A chat completion as the API sends it (the proxy serves it to the SDK as recorded)."""
    return {
        "id": f"chatcmpl-{key[3:27]}",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": f"About: {text}", "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 31, "completion_tokens": 12, "total_tokens": 43},
        "system_fingerprint": "fp_bench",
    }


def recording(text: str) -> Entry:
    canonical = canonical_request(CHAT, body(text))
    key = key_of_canonical(canonical)
    return Entry(key=key, endpoint=CHAT, request=canonical, body=answer(key, text), model="gpt-4o-mini-2024-07-18")


def questions(count: int, rng: random.Random) -> list[str]:
    found: dict[str, None] = {}
    while len(found) < count:
        form = rng.choice(FORMS)
        found[form.format(verb=rng.choice(VERBS), thing=rng.choice(THINGS), place=rng.choice(PLACES), n=rng.randint(2, 90))] = (
            None
        )
    return list(found)


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[int(len(ordered) * 0.95)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recordings", type=int, default=10_000)
    parser.add_argument("--lookups", type=int, default=2_000)
    parser.add_argument("--proxy-requests", type=int, default=1_000, help="requests of each kind to each proxy in part 2")
    parser.add_argument("--no-proxy", action="store_true", help="part 1 only (the lookups in one process)")
    args = parser.parse_args()
    rng = random.Random(7)
    recorded = questions(args.recordings, rng)
    with tempfile.TemporaryDirectory() as tmp:
        with DiskStore(Path(tmp) / "cache") as store:
            started = time.perf_counter()
            store.put_many(recording(q) for q in recorded)
            filled = time.perf_counter() - started
            started = time.perf_counter()
            index = SimilarIndex.from_requests(store.iter_requests())
            built = time.perf_counter() - started
            print(
                f"{len(index):,} recorded chat requests in {index.groups} group(s); store filled in {filled:.1f} s, "
                f"index built from iter_requests() in {built:.2f} s"
            )

            recorded_set = set(recorded)
            asked = rng.sample(recorded, min(args.lookups, len(recorded)))
            kinds = {
                "reworded": [(q, (paraphrases(q, 1, seed=i) or [q])[0]) for i, q in enumerate(asked)],
                "near miss": [
                    (q, swapped)
                    for q in asked
                    for t in [next(x for x in THINGS if x in q)]
                    for swapped in [q.replace(t, rng.choice([x for x in THINGS if x != t]), 1)]
                    if swapped not in recorded_set
                ],
                "new": [
                    (
                        q,
                        (
                            f"Which {rng.choice(['wallpaper', 'varnish', 'grout'])} suits a {rng.choice(['damp', 'sunny'])} "
                            f"{rng.choice(['cellar', 'attic', 'porch'])}?"
                        ),
                    )
                    for q in asked
                ],
            }
            print(f"\n{'lookup':<32} {'p50 ms':>8} {'p95 ms':>8}   answered")
            for kind, pairs in kinds.items():
                exact_times, similar_times, answered = [], [], 0
                for _original, text in pairs:
                    request = body(text)
                    started = time.perf_counter()
                    store.get(key_of_canonical(canonical_request(CHAT, request)))  # the exact tier: a miss
                    exact_times.append(time.perf_counter() - started)
                    started = time.perf_counter()
                    match = index.lookup(canonical_request(CHAT, request))
                    similar_times.append(time.perf_counter() - started)
                    answered += match is not None and match.question != text  # an identical text is the exact tier's hit
                for name, samples in ((f"exact key ({kind})", exact_times), (f"similar tier ({kind})", similar_times)):
                    p50, p95 = percentiles(samples)
                    shown = f"{answered}/{len(pairs)}" if name.startswith("similar") else ""
                    print(f"{name:<32} {p50 * 1000:>8.3f} {p95 * 1000:>8.3f}   {shown}")
        if not args.no_proxy:
            through_the_proxy(Path(tmp) / "cache", asked[: args.proxy_requests], kinds, rng)
    # p95 on a shared machine is mostly time the process was not running: say how busy it was.
    print(f"\n{load_average()} on {os.cpu_count()} cores")


# --- part 2: through the proxy -------------------------------------------------------------------


WARM_UP = 20  # requests to each proxy before the timed ones


def tier_proxy(upstream: str, cache_dir: str, similar: bool) -> Proxy:
    """Built in the proxy's own process: the proxy over `cache_dir`, with the similar tier or without.
    The index is built before the proxy serves, so every request meets a built index."""
    from pytest_seedreplay.proxy.tier_similar import SimilarTier

    store = DiskStore(cache_dir)
    tiers = []
    if similar:
        tier = SimilarTier(store)
        started = time.perf_counter()
        tier.wait_ready()
        print(
            f"proxy with the tier: {len(tier.index):,} questions indexed in {time.perf_counter() - started:.1f} s "
            "(in its own thread; the proxy would listen meanwhile)",
            flush=True,
        )
        tiers.append(tier)
    return Proxy(upstream, store=store, mode="record", tiers=tiers)


async def _timed(session: aiohttp.ClientSession, url: str, text: str) -> tuple[float, str]:
    started = time.perf_counter()
    async with session.post(url, data=json.dumps(body(text)), headers=AUTH) as response:
        await response.read()
        if response.status != 200:
            raise SystemExit(f"{url} answered {response.status} to {text!r}")
        cache = response.headers.get("X-Seedreplay-Cache", "?")
    return (time.perf_counter() - started) * 1000, cache


async def _alternate(
    urls: dict[str, str], kinds: dict[str, list[str]]
) -> dict[tuple[str, str], tuple[list[float], dict[str, int]]]:
    """Every request to each proxy in turn (which one first alternates), the kinds interleaved, so a
    busy moment of the machine falls on all of them alike."""
    found: dict[tuple[str, str], tuple[list[float], dict[str, int]]] = {}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=len(urls))) as session:
        for number in range(WARM_UP):  # connections open, code paths warm
            for url in urls.values():
                await _timed(session, url + CHAT.removeprefix("/v1"), f"Which varnish suits a damp cellar, question {number}?")
        for position in range(max(len(texts) for texts in kinds.values())):
            order = list(urls.items()) if position % 2 == 0 else list(urls.items())[::-1]
            for kind, texts in kinds.items():
                if position >= len(texts):
                    continue
                for proxy, url in order:
                    took, cache = await _timed(session, url + CHAT.removeprefix("/v1"), texts[position])
                    samples, caches = found.setdefault((kind, proxy), ([], {}))
                    samples.append(took)
                    caches[cache] = caches.get(cache, 0) + 1
    return found


def through_the_proxy(cache_dir: Path, asked: list[str], kinds: dict[str, list[tuple[str, str]]], rng: random.Random) -> None:
    """Exact hits, reworded questions, near misses and new questions through a proxy with the tier and
    one without, both in record mode over the same recordings and the same simulator."""
    with_copy, without_copy = cache_dir.with_name("with-tier"), cache_dir.with_name("without-tier")
    shutil.copytree(cache_dir, with_copy)
    shutil.copytree(cache_dir, without_copy)
    texts = {
        "exact": asked,
        # Each text once: asked again, it would be an exact hit of its own recording.
        "reworded": list(dict.fromkeys(text for _, text in kinds["reworded"][: len(asked)])),
        "near miss": list(dict.fromkeys(text for _, text in kinds["near miss"][: len(asked)])),
        "new": [
            f"Which {rng.choice(['wallpaper', 'varnish', 'grout'])} suits a {rng.choice(['damp', 'sunny'])} "
            f"{rng.choice(['cellar', 'attic', 'porch'])} no. {i}?"
            for i in range(len(asked))
        ],
    }
    print(f"\nthrough the proxy: {len(asked)} requests of each kind to each proxy, one at a time, in turn")
    with ServerProcess(sim_app) as sim_root:
        upstream = sim_root + "/v1"
        with (
            ProxyProcess(tier_proxy, upstream=upstream, cache_dir=str(with_copy), similar=True) as with_root,
            ProxyProcess(tier_proxy, upstream=upstream, cache_dir=str(without_copy), similar=False) as without_root,
        ):
            found = asyncio.run(_alternate({"with tier": with_root + "/v1", "without": without_root + "/v1"}, texts))
    rows = []
    exact_with = percentiles(found[("exact", "with tier")][0])[0]
    for kind in texts:
        (with_samples, with_caches), (without_samples, without_caches) = found[(kind, "with tier")], found[(kind, "without")]
        with_p50, with_p95 = percentiles(with_samples)
        without_p50, without_p95 = percentiles(without_samples)
        rows.append(
            (
                kind,
                _caches(with_caches),
                f"{with_p50:.2f}",
                f"{with_p95:.2f}",
                _caches(without_caches),
                f"{without_p50:.2f}",
                f"{without_p95:.2f}",
                f"{with_p50 - without_p50:+.2f}",
                f"{with_p50 - exact_with:+.2f}",
            )
        )
    print(
        table(
            (
                "request",
                "with tier: answered",
                "p50 ms",
                "p95 ms",
                "without: answered",
                "p50 ms",
                "p95 ms",
                "p50 added by the tier",
                "p50 vs an exact hit",
            ),
            rows,
        )
    )


def _caches(counted: dict[str, int]) -> str:
    return ", ".join(f"{count} {cache}" for cache, count in sorted(counted.items(), key=lambda item: -item[1]))


if __name__ == "__main__":
    main()
