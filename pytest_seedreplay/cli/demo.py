"""`seedreplay demo`: the whole story offline — simulator upstream, caching proxy, miss → hit → replay."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import click

from ..core.constants import HEADER_CACHE, HEADER_KEY, HEADER_MODE

QUESTION = [{"role": "user", "content": "Why do seeded answers make a good cache key?"}]


def _step(number: int, title: str) -> None:
    click.echo("")
    click.secho(f"[{number}] {title}", bold=True)


def _ask(client, seed: int, mode: str | None = None, stream: bool = False):
    """One chat request through the proxy; returns (text, cache status, key, ms)."""
    headers = {HEADER_MODE: mode} if mode else {}
    started = time.perf_counter()
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=QUESTION, seed=seed, max_tokens=40, stream=stream, extra_headers=headers
    )
    answer = raw.parse()
    if stream:
        text = "".join(chunk.choices[0].delta.content or "" for chunk in answer if chunk.choices)
    else:
        text = answer.choices[0].message.content
    ms = (time.perf_counter() - started) * 1000
    return text, raw.headers.get(HEADER_CACHE), raw.headers.get(HEADER_KEY), ms


@click.command("demo")
@click.option("--latency-ms", default=300, show_default=True, help="Simulated upstream time to first token.")
def command(latency_ms: int) -> None:
    """Run the record/replay story offline on the built-in simulator, in a temporary directory."""
    import openai

    from pytest_seedreplay.proxy.serve import BackgroundServer
    from pytest_seedreplay.proxy.sim import SimConfig, make_sim_app

    from ..proxy.running import Proxy

    with tempfile.TemporaryDirectory(prefix="seedreplay-demo-") as tmp:
        cache_dir = Path(tmp) / "cache"
        sim = BackgroundServer(lambda: make_sim_app(SimConfig(latency_ms=latency_ms)))
        sim_url = sim.start() + "/v1"
        try:
            with Proxy(sim_url, store=cache_dir, mode="record") as proxy:
                client = openai.OpenAI(base_url=proxy.url, api_key="demo-key-not-secret", max_retries=0)
                _story(client, sim, sim_url, proxy.url, cache_dir, latency_ms)
        finally:
            sim.stop()


def _story(client, sim, sim_url: str, proxy_url: str, cache_dir: Path, latency_ms: int) -> None:
    import openai

    click.echo(f"simulator (upstream): {sim_url}   (simulated latency {latency_ms} ms)")
    click.echo(f"proxy:                {proxy_url}   cache: {cache_dir}")
    click.echo(f"any client: OPENAI_BASE_URL={proxy_url}")

    _step(1, "A seeded request goes through the proxy: a miss, recorded from the upstream")
    text, status, key, ms = _ask(client, seed=42)
    click.echo(f"  {HEADER_CACHE}: {status}   key {key}   {ms:.0f} ms")
    click.echo(f"  answer: {text}")

    _step(2, "The same request again: a hit, served from the cache")
    again, status, _, ms = _ask(client, seed=42)
    click.echo(f"  {HEADER_CACHE}: {status}   {ms:.1f} ms   identical answer: {again == text}")

    _step(3, "The same request streamed: the recorded answer replayed as SSE")
    streamed, status, _, ms = _ask(client, seed=42, stream=True)
    click.echo(f"  {HEADER_CACHE}: {status}   {ms:.1f} ms   same text: {streamed == text}")

    _step(4, "The upstream goes away; replay mode still answers, with no network")
    sim.stop()
    offline, status, _, ms = _ask(client, seed=42, mode="replay")
    click.echo(f"  {HEADER_CACHE}: {status}   {ms:.1f} ms   same text: {offline == text}")

    _step(5, "A request that was never recorded: replay says exactly what is missing")
    try:
        _ask(client, seed=43, mode="replay")
    except openai.NotFoundError as exc:
        click.echo(f"  HTTP {exc.status_code}: {exc.body.get('message') if isinstance(exc.body, dict) else exc}")

    click.echo("")
    click.secho("Done: record once, replay forever. See README.md for the proxy, the cache tools and the pytest plugin.", bold=True)
