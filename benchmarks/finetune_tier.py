"""What the proxy's fine-tune tier adds, next to asking the fine-tuned model directly, same run.

A simulator in its own process (--latency-ms before every answer, as a provider has) fine-tunes a
model on --examples shop questions with a seed. A proxy in another process serves an empty store with
the fine-tune tier (guard on). One request at a time, alternating which goes first, on keep-alive
connections:
- a trained question through the proxy (an exact miss the tier answers: the fine-tuned model asked
  with its seed, the answer checked against the trained answers, served) vs the same request sent
  straight to the fine-tuned model with its seed: the tier's added latency;
- the same, streamed: the proxy asks plain and serves the checked answer as a stream; the direct
  request streams from the model (first byte and end of stream);
- an untrained question through the proxy (the fine-tune asked, its answer not a trained one, the
  general model asked: a fall-through) vs the same request sent straight to the general model: what
  a fall-through costs (one more upstream call);
- the baseline of the same run: a request for another model through the same proxy (the tier passes
  it at once: an ordinary record-mode miss, forwarded and stored) vs the same request sent straight:
  what any proxied upstream call adds. The tier's own cost is its added latency above this one.

Run: python benchmarks/finetune_tier.py [--examples 40] [--requests 200] [--latency-ms 20] [--profile]
Target: p50 added by the tier <= 2 ms (asked with the fine-tune's seed; the guard's check included).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path

import _load
import aiohttp
from _load import AUTH, CHAT, ProxyProcess, ServerProcess, percentile, table
from finetune_verify import BASE, SEED, dataset, fine_tune

from pytest_seedreplay import Proxy

REQUEST_SEED = 1  # the application's own seed: the tier asks with the fine-tune's instead


def tier_proxy(upstream: str, cache_dir: str, model: str, dataset_path: str) -> Proxy:
    """The proxy with the fine-tune tier, built in its own process from the training file."""
    from pytest_seedreplay.finetune.serving import last_answer
    from pytest_seedreplay.proxy.tier_finetune import Finetune, FinetuneTier

    examples = [json.loads(line) for line in Path(dataset_path).read_text().splitlines() if line.strip()]
    trained = tuple(a for a in (last_answer(e) for e in examples) if a is not None)
    tier = FinetuneTier(Finetune(BASE, model, SEED, "v1", trained))
    return Proxy(upstream, store=cache_dir, memory_cache=0, tiers=[tier])


def body(question: str, model: str = BASE, seed: int = REQUEST_SEED, stream: bool = False) -> dict:
    messages = [{"role": "system", "content": "You are the shop's helpful assistant."}, {"role": "user", "content": question}]
    sent = {"model": model, "messages": messages, "seed": seed}
    if stream:
        sent.update(stream=True, stream_options={"include_usage": True})
    return sent


async def timed(session: aiohttp.ClientSession, url: str, sent: dict) -> tuple[float, float, str]:
    """(ms to the first body byte, ms to the end, X-Seedreplay-Cache)."""
    started = time.perf_counter()
    async with session.post(url + CHAT, data=json.dumps(sent), headers=AUTH) as response:
        first = None
        async for _ in response.content.iter_any():
            first = first or time.perf_counter()
        ended = time.perf_counter()
        if response.status != 200:
            raise SystemExit(f"HTTP {response.status} from {url}")
        cache = response.headers.get("X-Seedreplay-Cache", "-")
    return ((first or ended) - started) * 1000, (ended - started) * 1000, cache


async def alternate(pairs: list[tuple[str, dict, str, dict]], warm: int = 3) -> tuple[list[tuple], list[tuple]]:
    """Each (direct url, direct body, proxy url, proxy body), alternating which goes first; the first
    `warm` pairs open both connections and warm both paths, and are not measured."""
    direct, proxied = [], []
    async with aiohttp.ClientSession() as straight, aiohttp.ClientSession() as through:
        for d_url, d_body, p_url, p_body in pairs[:warm]:
            await timed(straight, d_url, d_body)
            await timed(through, p_url, p_body)
        for n, (d_url, d_body, p_url, p_body) in enumerate(pairs[warm:]):
            if n % 2:
                proxied.append(await timed(through, p_url, p_body))
                direct.append(await timed(straight, d_url, d_body))
            else:
                direct.append(await timed(straight, d_url, d_body))
                proxied.append(await timed(through, p_url, p_body))
    return direct, proxied


def rows(name: str, direct: list[tuple], proxied: list[tuple], part: int) -> list[list]:
    d, p = [t[part] for t in direct], [t[part] for t in proxied]
    return [
        [
            name,
            len(p),
            percentile(d, 50),
            percentile(p, 50),
            percentile(p, 50) - percentile(d, 50),
            percentile(d, 95),
            percentile(p, 95),
        ]
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=40)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--latency-ms", type=float, default=20)
    parser.add_argument("--profile", action="store_true", help="run the proxy under cProfile and print its busiest functions")
    args = parser.parse_args()
    content = dataset(args.examples)
    questions = [json.loads(line)["messages"][1]["content"] for line in content.decode().splitlines()]
    answers = [json.loads(line)["messages"][2]["content"] for line in content.decode().splitlines()]
    print(
        f"{_load.machine()}; {args.examples} trained questions, {args.requests} requests per case, "
        f"simulator latency {args.latency_ms:g} ms"
    )
    with tempfile.TemporaryDirectory() as tmp, ServerProcess(_load.sim_app, latency_ms=args.latency_ms) as sim_root:
        sim = f"{sim_root}/v1"
        model = fine_tune(sim, content)
        path = Path(tmp) / "train.jsonl"
        path.write_bytes(content)
        profile = f"{tmp}/proxy.prof" if args.profile else None
        with ProxyProcess(
            tier_proxy, profile=profile, upstream=sim, cache_dir=f"{tmp}/cache", model=model, dataset_path=str(path)
        ) as root:
            asked = [questions[i % len(questions)] for i in range(args.requests + 3)]
            learned = [(sim_root, body(q, model, SEED), root, body(q)) for q in asked]
            streamed = [(sim_root, body(q, model, SEED, stream=True), root, body(q, stream=True)) for q in asked]
            new = [f"Which planet is number {i} from the sun?" for i in range(args.requests + 3)]
            untrained = [(sim_root, body(q), root, body(q)) for q in new]
            other = [
                (sim_root, body(q, "gpt-4o-mini", seed=1000 + n), root, body(q, "gpt-4o-mini", seed=1000 + n))
                for n, q in enumerate(asked)
            ]
            other_d, other_p = asyncio.run(alternate(other))
            plain_d, plain_p = asyncio.run(alternate(learned))
            stream_d, stream_p = asyncio.run(alternate(streamed))
            fall_d, fall_p = asyncio.run(alternate(untrained))
            stats = _load.fetch_json(f"{root}/seedreplay/stats")
        profiled = _load.top_functions(profile) if profile else ""  # written when the proxy's process ended
    caches = {c for _, _, c in plain_p} | {c for _, _, c in stream_p}
    misses = {c for _, _, c in fall_p} | {c for _, _, c in other_p}
    if caches != {"finetune"} or misses != {"miss"}:
        raise SystemExit(f"the tier did not answer as expected: {caches}, {misses}")
    header = ["case (ms)", "n", "direct p50", "proxy p50", "added p50", "direct p95", "proxy p95"]
    print(
        table(
            header,
            [
                *rows("baseline: another model's miss", other_d, other_p, 1),
                *rows("learned, plain", plain_d, plain_p, 1),
                *rows("learned, streamed: first byte", stream_d, stream_p, 0),
                *rows("learned, streamed: end", stream_d, stream_p, 1),
                *rows("fall-through vs general model", fall_d, fall_p, 1),
            ],
        )
    )
    print(f"tier counters: {stats['tiers']['finetune']}; trained answers {len(set(answers))}")
    print(_load.load_average())
    if profiled:
        print(profiled)


if __name__ == "__main__":
    main()
