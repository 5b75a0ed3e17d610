"""`GET /metrics` read by prometheus_client's own parser, and what hits saved: the per-hit headers, the
stats, the store's ledger behind `seedreplay cache stats`, and `--prices FILE`."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner
from prometheus_client.parser import text_string_to_metric_families

from pytest_seedreplay.cli import main
from pytest_seedreplay.savings import DEFAULT_TABLE, load_prices

from proxy_support import API_KEY, CHAT, MODEL, http, messages
from test_proxy_cli import SEEDREPLAY, ProxyProcess
from test_proxy_team import proxies  # noqa: F401

AUTH = {"Authorization": f"Bearer {API_KEY}"}


def body(text: str, **extra) -> dict:
    return {"model": MODEL, "messages": messages(text), "seed": 5, **extra}


def scrape(root: str) -> dict[tuple[str, tuple], float]:
    """Every sample of /metrics: (name, sorted labels) -> value, parsed by prometheus_client."""
    reply = http(root + "/metrics", "GET")
    assert reply.status == 200 and reply.headers["content-type"].startswith("text/plain; version=")
    samples = {}
    for family in text_string_to_metric_families(reply.body.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def usage_tokens(reply) -> int:
    usage = reply.json()["usage"]
    return usage["prompt_tokens"] + usage["completion_tokens"]


def test_metrics_count_hits_by_tier_misses_upstream_calls_store_and_tokens(sim, proxies, tmp_path):
    (proxy,) = proxies(sim.url, str(tmp_path / "cache"), n=1, memory_cache=0)
    miss = http(proxy.url + CHAT, "POST", body("measured"), AUTH)
    proxy.settle()  # the recording is in the store: the hits read it there (one get each)
    hit = http(proxy.url + CHAT, "POST", body("measured"), AUTH)
    http(proxy.url + CHAT, "POST", body("measured"), {**AUTH, "X-Seedreplay-Mode": "replay"})
    http(proxy.url + CHAT, "POST", body("never recorded"), {**AUTH, "X-Seedreplay-Mode": "replay"})
    proxy.settle()
    samples = scrape(proxy.root)
    assert samples[("seedreplay_hits_total", (("tier", "exact"),))] == 2
    assert samples[("seedreplay_misses_total", ())] == 2
    assert samples[("seedreplay_replay_misses_total", ())] == 1
    assert samples[("seedreplay_upstream_calls_total", ())] == 1
    assert samples[("seedreplay_stored_total", ())] == 1
    assert samples[("seedreplay_coalesced_total", ())] == 0
    assert samples[("seedreplay_upstream_latency_seconds_count", (("endpoint", "/v1/chat/completions"),))] == 1
    assert samples[("seedreplay_store_latency_seconds_count", (("operation", "get"),))] == 4
    assert samples[("seedreplay_store_latency_seconds_count", (("operation", "put"),))] == 1
    assert samples[("seedreplay_store_errors_total", ())] == 0
    assert samples[("seedreplay_write_queue_depth", ())] == 0
    assert samples[("seedreplay_store_up", ())] == 1
    usage = miss.json()["usage"]
    assert samples[("seedreplay_tokens_saved_total", (("kind", "input"),))] == 2 * usage["prompt_tokens"]
    assert samples[("seedreplay_tokens_saved_total", (("kind", "output"),))] == 2 * usage["completion_tokens"]
    assert samples[("seedreplay_cost_saved_dollars_total", ())] == pytest.approx(
        2 * float(hit.headers["x-seedreplay-cost-saved"])
    )


def test_every_hit_says_what_it_saved_and_the_stats_total_it(sim, proxies, tmp_path):
    (proxy,) = proxies(sim.url, str(tmp_path / "cache"), n=1)
    miss = http(proxy.url + CHAT, "POST", body("saved"), AUTH)
    assert "x-seedreplay-tokens-saved" not in miss.headers
    tokens = usage_tokens(miss)
    streamed = http(proxy.url + CHAT, "POST", body("saved", stream=True), AUTH)
    plain = http(proxy.url + CHAT, "POST", body("saved"), AUTH)
    for hit in (streamed, plain):  # memory copy or store, stream or not: the same saving
        assert hit.headers["x-seedreplay-cache"] == "hit"
        assert int(hit.headers["x-seedreplay-tokens-saved"]) == tokens
    usage = miss.json()["usage"]
    input_price, output_price = DEFAULT_TABLE.price(MODEL)
    cost = (usage["prompt_tokens"] * input_price + usage["completion_tokens"] * output_price) / 1e6
    assert float(plain.headers["x-seedreplay-cost-saved"]) == pytest.approx(cost, abs=1e-8)
    stats = proxy.stats()
    assert stats["tokens_saved"] == 2 * tokens and stats["cost_saved"] == pytest.approx(2 * cost, abs=1e-6)
    assert stats["saved"]["hits"] == 2 and stats["saved"]["prices"] == DEFAULT_TABLE.describe()


def test_cache_stats_shows_what_every_proxy_on_the_store_saved(sim, proxies, tmp_path):
    cache = str(tmp_path / "cache")
    first, second = proxies(sim.url, cache, n=2)
    tokens = usage_tokens(http(first.url + CHAT, "POST", body("ledger"), AUTH))
    first.settle()
    for proxy in (first, second, second):
        assert http(proxy.url + CHAT, "POST", body("ledger"), AUTH).headers["x-seedreplay-cache"] == "hit"
    first.stop()
    second.stop()  # a proxy adds its savings to the store's ledger every few seconds and when it stops
    report = CliRunner().invoke(main, ["cache", "stats", "--json", "--cache-dir", cache])
    saved = json.loads(report.output)["saved"]
    assert (saved["hits"], saved["tokens"]) == (3, 3 * tokens) and saved["cost"] > 0
    text = CliRunner().invoke(main, ["cache", "stats", "--cache-dir", cache]).output
    assert f"saved:    {3 * tokens:,} tokens (~$" in text and "in 3 answers from recordings since" in text


def test_prices_file_changes_the_dollars_and_a_bad_one_is_refused(sim, tmp_path):
    prices = tmp_path / "prices.json"
    prices.write_text(json.dumps({"as_of": "2031-01-01", "models": {MODEL: {"input": 1000, "output": 0}}}))
    proxy = ProxyProcess("--upstream", sim.url, "--cache-dir", str(tmp_path / "cache"), "--prices", str(prices))
    try:
        miss = http(proxy.url + CHAT, "POST", body("priced"), AUTH)
        hit = http(proxy.url + CHAT, "POST", body("priced"), AUTH)
        assert float(hit.headers["x-seedreplay-cost-saved"]) == pytest.approx(miss.json()["usage"]["prompt_tokens"] * 1000 / 1e6)
        own = f"prices of 2031-01-01 from {prices}"  # genai-prices prices the rest where it installs (3.11+)
        assert http(proxy.root + "/seedreplay/stats", "GET").json()["saved"]["prices"] == (
            f"{own}, else {DEFAULT_TABLE.library}" if DEFAULT_TABLE.library else own
        )
    finally:
        proxy.stop()
    prices.write_text('{"models": {"gpt-4o": {"input": "cheap"}}}')
    refused = subprocess.run([SEEDREPLAY, "proxy", "--prices", str(prices)], capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert f"the prices file {prices}: model 'gpt-4o' needs" in refused.stderr


def test_a_prices_file_is_merged_over_the_dated_default(tmp_path: Path):
    prices = tmp_path / "p.json"
    prices.write_text(json.dumps({"models": {"my-model": {"input": 1, "output": 2}}}))
    table = load_prices(prices)
    assert table.price("my-model-2031-01-01") == (1.0, 2.0) and table.price("gpt-4o-mini") == DEFAULT_TABLE.price("gpt-4o-mini")
    assert table.as_of == "unknown date"
