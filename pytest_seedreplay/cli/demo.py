"""`seedreplay demo`: the whole story offline, on the built-in simulator, in a temporary directory.

Record 12 questions through the caching proxy, replay them with the upstream out of the picture,
export the recordings as a fine-tuning set, fine-tune a model with a seed, verify that it gives the
recordings back (with the seed, without it, and for questions asked in other words), then serve a
reworded question from the proxy's learned tier and an untrained one from the general model.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from ..core.constants import HEADER_CACHE, HEADER_MODE

BASE_MODEL = "gpt-4o-mini-2024-07-18"
RECORD_SEED = 7  # the seed the application asks with
FINETUNE_SEED = 4242  # the seed of the fine-tune: the key of the cache it holds
SYSTEM = "You are the shop's helpful assistant."
QUESTIONS = [
    "How do I reset my password?",
    "What are your opening hours?",
    "Do you ship to Canada?",
    "How long does a refund take?",
    "Can I change my delivery address?",
    "How do I cancel my subscription?",
    "Is the tomato soup vegan?",
    "Which payment methods do you accept?",
    "How do I contact support?",
    "Where is my order?",
    "Can I get an invoice?",
    "What is the warranty period?",
]
REWORDED = ("how can i reset my password", QUESTIONS[0])  # asked in other words, and the question it rewords
UNTRAINED = "What colour is the sky on Mars?"
HEADER_FINETUNE_MODEL = "X-Seedreplay-Finetune-Model"


@dataclass
class Asked:
    text: str
    cache: str | None
    ms: float
    headers: Any


def _step(number: int, title: str) -> None:
    click.echo("")
    click.secho(f"[{number}] {title}", bold=True)


def _ask(client: Any, question: str, seed: int = RECORD_SEED, stream: bool = False, mode: str | None = None) -> Asked:
    """One chat request through a proxy, as an application makes it."""
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": question}]
    started = time.perf_counter()
    raw = client.chat.completions.with_raw_response.create(
        model=BASE_MODEL, messages=messages, seed=seed, stream=stream, extra_headers={HEADER_MODE: mode} if mode else {}
    )
    answer = raw.parse()
    if stream:
        text = "".join(chunk.choices[0].delta.content or "" for chunk in answer if chunk.choices)
    else:
        text = answer.choices[0].message.content
    return Asked(text, raw.headers.get(HEADER_CACHE), (time.perf_counter() - started) * 1000, raw.headers)


def _client(url: str) -> Any:
    import openai

    return openai.OpenAI(base_url=url, api_key="demo-key-not-secret", max_retries=0)


def _upstream_requests(sim_root: str) -> int:
    with urllib.request.urlopen(f"{sim_root}/sim/stats", timeout=10) as answer:
        return int(json.loads(answer.read())["total"])


def _cut(text: str, width: int = 70) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


@click.command("demo")
@click.option("--latency-ms", default=300, show_default=True, help="Simulated upstream time to first token.")
@click.option(
    "--job-seconds",
    type=click.FloatRange(0.1, 60),
    default=3.0,
    show_default=True,
    help="How long the simulated fine-tuning job runs.",
)
def command(latency_ms: int, job_seconds: float) -> None:
    """Run the whole story offline on the simulator.

    In a temporary directory, on the built-in simulator: record, replay, export, fine-tune with a
    seed, verify recall, serve from the learned tier."""
    from pytest_seedreplay.proxy.serve import BackgroundServer
    from pytest_seedreplay.proxy.sim import SimConfig, make_sim_app

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="seedreplay-demo-") as tmp:
        sim = BackgroundServer(lambda: make_sim_app(SimConfig(latency_ms=latency_ms, job_seconds=job_seconds)))
        sim_root = sim.start()
        try:
            _story(Path(tmp), sim_root, latency_ms)
        finally:
            sim.stop()
    click.echo("")
    click.secho(
        f"Done in {time.perf_counter() - started:.1f} s: record once, replay forever — and the cache can live in a "
        "model. See README.md for the proxy, the pytest plugin and fine-tune as cache.",
        bold=True,
    )


def _story(tmp: Path, sim_root: str, latency_ms: int) -> None:
    from ..proxy.running import Proxy

    sim_url = sim_root + "/v1"
    cache_dir = tmp / "cache"
    manifest = tmp / "cassettes" / "finetunes.json"
    click.echo(f"simulator (the upstream, offline): {sim_url}   (simulated latency {latency_ms} ms)")
    click.echo(f"working directory: {tmp}")

    with Proxy(sim_url, store=cache_dir, mode="record") as proxy:
        recorded = _record(proxy)
        _replay(cache_dir, sim_url, sim_root, recorded)
    dataset = _export(cache_dir, tmp / "cassettes" / "finetune" / "train.jsonl")
    model = _finetune(sim_url, dataset, manifest)
    _verify(sim_url, model, dataset)
    _serve(cache_dir, sim_url, manifest, recorded)


def _record(proxy: Any) -> dict[str, str]:
    _step(1, f"Record: {len(QUESTIONS)} questions through the caching proxy ({proxy.url}), seed {RECORD_SEED}")
    client = _client(proxy.url)
    answers, times = {}, []
    for number, question in enumerate(QUESTIONS):
        asked = _ask(client, question, stream=number % 4 == 3)  # every fourth one streamed
        answers[question] = asked.text
        times.append(asked.ms)
        click.echo(f"  {HEADER_CACHE}: {asked.cache:<5} {asked.ms:6.0f} ms  {question}")
    proxy.settle()
    stats = proxy.stats()
    click.echo(f"  {stats['misses']} misses, {stats['stored']} recorded, mean {statistics.mean(times):.0f} ms per answer")
    client.close()
    return answers


def _replay(cache_dir: Path, sim_url: str, sim_root: str, recorded: dict[str, str]) -> None:
    import openai

    from ..proxy.running import Proxy

    _step(2, "Replay: the same questions, served from the recordings — the upstream is never asked")
    before = _upstream_requests(sim_root)
    with Proxy(sim_url, store=cache_dir, mode="replay") as proxy:
        client = _client(proxy.url)
        replies = [_ask(client, q, stream=n % 2 == 0) for n, q in enumerate(QUESTIONS)]
        same = sum(r.text == recorded[q] for r, q in zip(replies, QUESTIONS))
        hits = sum(r.cache == "hit" for r in replies)
        click.echo(
            f"  {HEADER_CACHE}: hit for {hits}/{len(QUESTIONS)}, answers identical to the recordings: "
            f"{same}/{len(QUESTIONS)} (plain and streamed), mean {statistics.mean(r.ms for r in replies):.1f} ms"
        )
        click.echo(f"  upstream requests during the replay: {_upstream_requests(sim_root) - before}")
        try:
            _ask(client, QUESTIONS[0], seed=RECORD_SEED + 1)
        except openai.NotFoundError as exc:
            message = exc.body.get("message") if isinstance(exc.body, dict) else str(exc)
            click.echo(f"  a request never recorded: HTTP {exc.status_code}: {message}")
        client.close()


def _export(cache_dir: Path, dataset: Path) -> Path:
    from ..finetune import export as exporting

    _step(3, "Export: the recordings become a chat fine-tuning set, checked with the provider's rules")
    entries, source = exporting.entries_from_store(str(cache_dir), None)
    result = exporting.build(entries, [source], exporting.Options())
    training, _ = exporting.check(result)
    if not training.ok:
        raise click.ClickException(training.first_error())
    record = exporting.write(result, dataset)
    click.echo(
        f"  {len(result.training)} examples from {source['entries']} recordings, about {training.tokens} tokens, "
        f"valid: {training.ok}"
    )
    click.echo(f"  {dataset} (sha256 {record['sha256'][:12]}…)")
    return dataset


def _finetune(sim_url: str, dataset: Path, manifest_path: Path) -> str:
    from ..finetune import export as exporting
    from ..finetune import jobs
    from ..finetune.manifest import Manifest
    from .finetune import follow_to_the_end

    _step(4, f"Fine-tune {BASE_MODEL} on them with seed {FINETUNE_SEED} (the seed is the key of this cache)")
    raw = dataset.read_bytes()
    manifest = Manifest(manifest_path)
    examples = sum(1 for line in raw.splitlines() if line.strip())
    data = jobs.Dataset(
        sha256=exporting.sha256(raw),
        examples=examples,
        path=manifest.relative(dataset),
        exported_from=exporting.read_record(dataset, raw),
    )
    client = jobs.client_for(sim_url)
    try:
        job = jobs.start(client, jobs.JobRequest(file=dataset, model=BASE_MODEL, seed=FINETUNE_SEED, dataset=data, suffix="demo"))
        click.echo(f"  job {job.id} started")
        follow_to_the_end(client, job.id, sim_url, manifest, data, poll=0.1)
    except jobs.JobError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        client.close()
    latest = Manifest(manifest_path).latest
    if latest is None:  # the job above ended without recording a version
        raise click.ClickException(f"the demo's fine-tune left no version in {manifest_path}")
    return latest.fine_tuned_model


def _verify(sim_url: str, model: str, dataset: Path) -> None:
    from ..finetune import verify as verifying
    from ..finetune.validate import read_dataset
    from .finetune import run_verify

    _step(5, "Verify: ask the fine-tuned model every recorded question — with the seed, without it, in other words")
    trained = verifying.trained_examples(read_dataset(dataset).examples)
    asks = verifying.plan(trained, paraphrase_count=2)
    report = run_verify(sim_url, model, FINETUNE_SEED, trained, asks, 8, version="v1", dataset=str(dataset))
    for condition in report.conditions():
        s = report.summary(condition)
        click.echo(
            f"  {verifying.LABELS[condition]:<24} verbatim recall {s.recall:>4.0%} ({s.verbatim}/{s.asked - s.errors})"
            f"  mean similarity {s.similarity:.2f}"
        )
    click.echo(f"  {len(report.answers)} asks in {report.elapsed:.1f} s")


def _serve(cache_dir: Path, sim_url: str, manifest: Path, recorded: dict[str, str]) -> None:
    from ..finetune.serving import finetune_tier
    from ..proxy.running import Proxy

    _step(6, "Serve: the fine-tune as the proxy's learned tier (guarded: only trained answers, verbatim)")
    tier = finetune_tier("latest", manifest)
    with Proxy(sim_url, store=cache_dir, mode="record", tiers=[tier]) as proxy:
        click.echo(f"  {tier.describe()}")
        client = _client(proxy.url)
        reworded, original = REWORDED
        asked = _ask(client, reworded)
        click.echo(f"  asked in other words: {reworded!r}")
        click.echo(
            f"    {HEADER_CACHE}: {asked.cache}   {HEADER_FINETUNE_MODEL}: {asked.headers.get(HEADER_FINETUNE_MODEL)}   "
            f"{asked.ms:.0f} ms"
        )
        click.echo(f"    the recorded answer to {original!r}: {asked.text == recorded[original]}")
        asked = _ask(client, UNTRAINED)
        click.echo(f"  never recorded, never trained: {UNTRAINED!r}")
        click.echo(
            f"    {HEADER_CACHE}: {asked.cache} (the fine-tune's answer was not a trained one: the general model answered "
            f"and it was recorded)   {asked.ms:.0f} ms"
        )
        click.echo(f"    {_cut(asked.text)}")
        proxy.settle()
        stats = proxy.stats()
        learned = stats["tiers"]["finetune"]
        click.echo(
            f"  proxy stats: learned-tier answers {stats['hits_by_tier'].get('finetune', 0)}, fell through "
            f"{learned['fell_through']}, misses {stats['misses']}, recorded {stats['stored']}"
        )
        client.close()
