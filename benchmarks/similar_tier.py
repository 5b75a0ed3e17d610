"""What the similar-questions tier adds to a request: `SimilarIndex.lookup` at 10,000 recorded chat
requests, next to the exact-key lookup (canonical form, key, DiskStore.get) in the same run.

All recordings share one model, system prompt and seed (one group: the worst case, every question is
a candidate group-wise). Three kinds of lookups, interleaved with exact lookups of the same requests:
- reworded: a paraphrase of a recorded question (the tier answers it);
- near miss: a recorded question with one content word swapped (the guards refuse it);
- new: a question with words no recording has (no candidate at all).

    python benchmarks/similar_tier.py [--recordings 10000] [--lookups 2000]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pytest_seedreplay.core.entry import Entry
from pytest_seedreplay.core.key import canonical_request, key_of_canonical
from pytest_seedreplay.paraphrase import paraphrases
from pytest_seedreplay.similar import SimilarIndex
from pytest_seedreplay.store import DiskStore

CHAT = "/v1/chat/completions"
SYSTEM = "You are the support assistant of a chain of hardware shops. Answer briefly."
VERBS = ["reset", "return", "repair", "replace", "order", "cancel", "pause", "track", "install", "clean", "paint", "sharpen", "charge", "unlock", "insure"]
THINGS = ["password", "router", "kettle", "toaster", "drill", "ladder", "lawnmower", "heater", "fridge", "freezer", "blender", "printer", "doorbell", "thermostat", "dishwasher", "kayak", "tent", "bicycle", "scooter", "camera"]
PLACES = ["York", "Leeds", "Bristol", "Oxford", "Cambridge", "Bath", "Derby", "Exeter", "Chester", "Durham"]
FORMS = [
    "How do I {verb} my {thing} at the {place} shop?",
    "Can I {verb} the {thing} I bought in {place} after {n} days?",
    "What does it cost to {verb} a {thing} in {place}?",
    "Is it possible to {verb} a {thing} for {n} weeks at the {place} branch?",
]


def body(text: str) -> dict:
    return {"model": "gpt-4o-mini", "seed": 42, "temperature": 0.3,
            "messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": text}]}


def questions(count: int, rng: random.Random) -> list[str]:
    found: dict[str, None] = {}
    while len(found) < count:
        form = rng.choice(FORMS)
        found[form.format(verb=rng.choice(VERBS), thing=rng.choice(THINGS), place=rng.choice(PLACES), n=rng.randint(2, 90))] = None
    return list(found)


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[int(len(ordered) * 0.95)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recordings", type=int, default=10_000)
    parser.add_argument("--lookups", type=int, default=2_000)
    args = parser.parse_args()
    rng = random.Random(7)
    recorded = questions(args.recordings, rng)
    with tempfile.TemporaryDirectory() as tmp, DiskStore(Path(tmp) / "cache") as store:
        started = time.perf_counter()
        store.put_many(
            Entry(key=key_of_canonical(c), endpoint=CHAT, request=c, body={"answer": q})
            for q in recorded for c in [canonical_request(CHAT, body(q))]
        )
        filled = time.perf_counter() - started
        started = time.perf_counter()
        index = SimilarIndex.from_requests(store.iter_requests())
        built = time.perf_counter() - started
        print(f"{len(index):,} recorded chat requests in {index.groups} group(s); store filled in {filled:.1f} s, "
              f"index built from iter_requests() in {built:.2f} s")

        recorded_set = set(recorded)
        asked = rng.sample(recorded, min(args.lookups, len(recorded)))
        kinds = {
            "reworded": [(q, (paraphrases(q, 1, seed=i) or [q])[0]) for i, q in enumerate(asked)],
            "near miss": [(q, swapped) for q in asked for t in [next(x for x in THINGS if x in q)]
                          for swapped in [q.replace(t, rng.choice([x for x in THINGS if x != t]), 1)] if swapped not in recorded_set],
            "new": [(q, (f"Which {rng.choice(['wallpaper', 'varnish', 'grout'])} suits a {rng.choice(['damp', 'sunny'])} "
                         f"{rng.choice(['cellar', 'attic', 'porch'])}?")) for q in asked],
        }
        print(f"\n{'lookup':<32} {'p50 ms':>8} {'p95 ms':>8}   answered")
        for kind, pairs in kinds.items():
            exact_times, similar_times, answered = [], [], 0
            for original, text in pairs:
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
        # p95 on a shared machine is mostly time the process was not running: say how busy it was.
        print(f"\nload average (1, 5, 15 min): {', '.join(f'{v:.1f}' for v in os.getloadavg())} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
