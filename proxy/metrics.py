"""`GET /metrics`: the proxy's counters in the Prometheus text format, through `prometheus_client`.

Counters are read from the proxy's own stats when scraped (one set of numbers, the same ones
/seedreplay/stats serves); latencies are histograms observed as requests go. Each proxy has its own
registry, so several proxies in one process (tests, notebooks) never mix their figures.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from .state import ProxyState

CONTENT_TYPE = CONTENT_TYPE_LATEST
_UPSTREAM_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
_STORE_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 3.0)

# (metric name without _total, help, ProxyStats field)
_COUNTERS = (
    ("seedreplay_requests", "Requests under /v1.", "requests"),
    ("seedreplay_memory_hits", "Hits served from the memory copy (also counted in hits).", "memory_hits"),
    ("seedreplay_misses", "Requests no recording answered (record-mode and replay misses).", "misses"),
    ("seedreplay_replay_misses", "Replay-mode requests with no recording (404).", "replay_misses"),
    ("seedreplay_coalesced", "Requests answered by another request's upstream call on this proxy.", "coalesced"),
    (
        "seedreplay_shared_waits",
        "Flights answered by another proxy's upstream call (single-flight across proxies).",
        "shared_waits",
    ),
    ("seedreplay_upstream_calls", "Calls made to the upstream.", "upstream_calls"),
    ("seedreplay_upstream_errors", "Upstream 4xx/5xx answers, passed through.", "upstream_errors"),
    ("seedreplay_upstream_failures", "Upstream calls that broke (unreachable, timed out, stream cut).", "upstream_failures"),
    ("seedreplay_stored", "Answers written to the store.", "stored"),
    ("seedreplay_store_errors", "Store reads and writes that failed.", "store_errors"),
    ("seedreplay_without_store", "Requests answered without the store while it was unavailable.", "without_store"),
)


class ProxyMetrics:
    """The registry one proxy serves at /metrics, and the histograms it observes."""

    def __init__(self, state: ProxyState):
        self.registry = CollectorRegistry(auto_describe=True)
        self.upstream_latency = Histogram(
            "seedreplay_upstream_latency_seconds",
            "Time from sending a cacheable request upstream to its whole answer.",
            ["endpoint"],
            buckets=_UPSTREAM_BUCKETS,
            registry=self.registry,
        )
        self.store_latency = Histogram(
            "seedreplay_store_latency_seconds",
            "Time of one store read (get) or write (put).",
            ["operation"],
            buckets=_STORE_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(_StateCollector(state))

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def timed_store(self, operation: str, function: Callable[..., Any]) -> Callable[..., Any]:
        """`function`, its duration observed as a store `operation` (runs in whatever thread calls it)."""
        histogram = self.store_latency.labels(operation)

        def timed(*args: Any) -> Any:
            with histogram.time():
                return function(*args)

        return timed


class _StateCollector(Collector):
    def __init__(self, state: ProxyState):
        self.state = state

    def describe(self) -> list[Metric]:
        return []  # names come with collect(); the registry need not know them up front

    def collect(self) -> Iterator[Metric]:
        state = self.state
        stats = state.stats
        hits = CounterMetricFamily("seedreplay_hits", "Answers served from recordings, by tier.", labels=["tier"])
        hits.add_metric(["exact"], stats.hits)
        for tier, count in sorted(stats.hits_by_tier.items()):
            hits.add_metric([tier], count)
        yield hits
        requests = CounterMetricFamily(
            "seedreplay_endpoint_requests",
            "Requests to the cacheable endpoints, by endpoint and what the cache did (hit, miss, bypass, ...).",
            labels=["endpoint", "cache"],
        )
        for endpoint, counts in sorted(stats.by_endpoint.items()):
            for cache, count in sorted(counts.items()):
                if cache != "requests":
                    requests.add_metric([endpoint, cache], count)
        yield requests
        for name, text, attribute in _COUNTERS:
            yield CounterMetricFamily(name, text, value=getattr(stats, attribute))
        saved = state.saved
        tokens = CounterMetricFamily(
            "seedreplay_tokens_saved", "Tokens served from recordings instead of the upstream.", labels=["kind"]
        )
        tokens.add_metric(["input"], saved.input_tokens)
        tokens.add_metric(["output"], saved.output_tokens)
        yield tokens
        yield CounterMetricFamily(
            "seedreplay_cost_saved_dollars",
            f"Dollars served from recordings ({state.config.prices.describe()}).",
            value=saved.cost,
        )
        bound = state.bound
        yield GaugeMetricFamily(
            "seedreplay_store_up", "1 while the store answers, 0 during an outage.", value=1 if bound.health.up else 0
        )
        yield GaugeMetricFamily(
            "seedreplay_write_queue_depth", "Store writes answered but not landed yet.", value=len(state.writer.pending)
        )
        yield GaugeMetricFamily(
            "seedreplay_in_flight", "Upstream calls under way that requests wait on.", value=len(bound.flights)
        )
        yield GaugeMetricFamily(
            "seedreplay_shared_waiting",
            "Flights waiting now on another proxy's upstream call (single-flight across proxies).",
            value=stats.shared_waiting,
        )


# Gauges whose sum over workers says nothing: the store is up only if it is for every worker.
_LEAST_OF = {"seedreplay_store_up"}


def merge_metrics(texts: list[bytes]) -> bytes:
    """Several workers' /metrics as one (--workers): each sample added up over the workers (counters,
    histogram buckets, the gauges of work under way), the store up only where it is for all, and a
    `_created` time the earliest. Parsed and written by prometheus_client, as a scraper reads it."""
    families: dict[str, tuple[str, str]] = {}  # name -> (help, type)
    values: dict[str, dict[tuple, float]] = {}
    for text in texts:
        for family in text_string_to_metric_families(text.decode()):
            families.setdefault(family.name, (family.documentation, family.type))
            sums = values.setdefault(family.name, {})
            for sample in family.samples:
                at = (sample.name, tuple(sorted(sample.labels.items())))
                least = family.name in _LEAST_OF or sample.name.endswith("_created")
                sums[at] = min(sums[at], sample.value) if at in sums and least else sums.get(at, 0.0) + sample.value
    registry = CollectorRegistry(auto_describe=True)
    registry.register(_Merged(families, values))
    return generate_latest(registry)


class _Merged(Collector):
    def __init__(self, families: dict[str, tuple[str, str]], values: dict[str, dict[tuple, float]]):
        self.families, self.values = families, values

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        for name, (text, kind) in self.families.items():
            family = Metric(name, text, kind)
            for (sample, labels), value in self.values[name].items():
                family.add_sample(sample, dict(labels), value)
            yield family
