"""`finetune verify` throughput next to a plain loop of SDK calls asking the same prompts, same run.

A simulator in its own process (with --latency-ms before every answer, as a provider has) fine-tunes
a model on --examples generated shop questions with a seed. Then, in alternating rounds, the same
asks (each prompt with the seed and without it) are made three ways: a plain loop of synchronous
`client.chat.completions.create` calls, judged verbatim like verify does; verify's asker at
concurrency 1 (its own overhead: judging, similarity, retry bookkeeping); and verify's asker at
--concurrency. Each prints asks per second and its ratio to the plain loop of the same round.

Run: python benchmarks/finetune_verify.py [--examples 40] [--latency-ms 50] [--concurrency 8] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import time

import _load
import openai
from _load import ServerProcess, median, table

from pytest_seedreplay.finetune import verify

BASE = "gpt-4o-mini-2024-07-18"
SEED = 4242


def dataset(examples: int) -> bytes:
    lines = []
    for n in range(examples):
        messages = [
            {"role": "system", "content": "You are the shop's helpful assistant."},
            {"role": "user", "content": f"When does shop number {n} open on Sundays?"},
            {"role": "assistant", "content": f"Shop {n} opens at {8 + n % 4} in the morning on Sundays, and closes at six."},
        ]
        lines.append(json.dumps({"messages": messages}))
    return ("\n".join(lines) + "\n").encode()


def fine_tune(url: str, content: bytes) -> str:
    client = openai.OpenAI(base_url=url, api_key="sk-bench", max_retries=0)
    upload = client.files.create(file=("train.jsonl", io.BytesIO(content)), purpose="fine-tune")
    job = client.fine_tuning.jobs.create(model=BASE, training_file=upload.id, seed=SEED)
    while job.status not in ("succeeded", "failed", "cancelled"):
        time.sleep(0.1)
        job = client.fine_tuning.jobs.retrieve(job.id)
    if job.status != "succeeded":
        raise SystemExit(f"the benchmark's fine-tune ended {job.status}: {job.error}")
    return job.fine_tuned_model


def plain_loop(url: str, model: str, trained: list[verify.Trained], asks: list[verify.Ask]) -> tuple[float, int]:
    """Seconds for the asks made one after another with the sync SDK, and how many came back verbatim."""
    client = openai.OpenAI(base_url=url, api_key="sk-bench", max_retries=0)
    by_index = {t.index: t for t in trained}
    started = time.perf_counter()
    verbatim = 0
    for ask in asks:
        params = {"model": model, "messages": ask.messages}
        if ask.condition != verify.NO_SEED:
            params["seed"] = SEED
        text = client.chat.completions.create(**params).choices[0].message.content
        verbatim += text == by_index[ask.example].answer.get("content")
    elapsed = time.perf_counter() - started
    client.close()
    return elapsed, verbatim


def verify_run(
    url: str, model: str, trained: list[verify.Trained], asks: list[verify.Ask], concurrency: int
) -> tuple[float, int]:
    async def main() -> verify.Report:
        async with openai.AsyncOpenAI(base_url=url, api_key="sk-bench", max_retries=0) as client:
            return await verify.run(client, model, SEED, trained, asks, concurrency, base_url=url, version=None, dataset="bench")

    started = time.perf_counter()
    report = asyncio.run(main())
    return time.perf_counter() - started, sum(a.verbatim for a in report.answers)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=40)
    parser.add_argument("--latency-ms", type=float, default=50)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    content = dataset(args.examples)
    trained = verify.trained_examples([json.loads(line) for line in content.decode().splitlines()])
    asks = verify.plan(trained, conditions=(verify.SEED, verify.NO_SEED))
    print(
        f"{_load.machine()}; {len(asks)} asks ({args.examples} prompts with and without the seed), "
        f"simulator latency {args.latency_ms:g} ms"
    )
    with ServerProcess(_load.sim_app, latency_ms=args.latency_ms) as root:
        url = f"{root}/v1"
        model = fine_tune(url, content)
        ways = {
            "plain SDK loop": lambda: plain_loop(url, model, trained, asks),
            "verify, concurrency 1": lambda: verify_run(url, model, trained, asks, 1),
            f"verify, concurrency {args.concurrency}": lambda: verify_run(url, model, trained, asks, args.concurrency),
        }
        seconds: dict[str, list[float]] = {name: [] for name in ways}
        hits: dict[str, int] = {}
        for round_number in range(args.rounds):
            order = list(ways) if round_number % 2 == 0 else list(reversed(ways))
            for name in order:
                elapsed, verbatim = ways[name]()
                seconds[name].append(elapsed)
                hits[name] = verbatim
    base = median(seconds["plain SDK loop"])
    rows = []
    for name, values in seconds.items():
        typical = median(values)
        rows.append([name, f"{len(asks) / typical:.1f}", f"{typical:.2f}", f"{base / typical:.2f}x", f"{hits[name]}/{len(asks)}"])
    print(table(["way", "asks/s", "median s", "vs plain loop", "verbatim"], rows))


if __name__ == "__main__":
    main()
