"""What the proxy's handlers share: `ProxyState` (the fixed config, the binding in force as `Bound`,
the counters, the writer, the upstream session) and `RequestNote`, what a request's log line says.

It sits below `cache`, `metrics` and `shared_flight`, which read the state: they import it, it never
imports them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from aiohttp import web

from pytest_seedreplay.core.constants import SIM_UPSTREAM
from pytest_seedreplay.policy import policy_for
from pytest_seedreplay.savings import SavingsTally

from .binding import Binding, Observer
from .config import ProxyConfig
from .flight import Flights
from .incoming import KeyMemo
from .memory import MemoryCache, Rendered
from .outage import StoreHealth
from .serve import typed_request_key
from .upstream import Upstream
from .writer import StoreThreads, StoreWriter

if TYPE_CHECKING:
    from .tiers import Tier

log = logging.getLogger("seedreplay.proxy")

T = TypeVar("T")
_HIT_SAMPLES = 100_000  # hit durations kept per summary for its percentiles (bounds the memory under any load)


class Metrics(Protocol):
    """What the request path observes for /metrics: `metrics.ProxyMetrics` is it."""

    upstream_latency: Any  # prometheus Histograms, by endpoint and by store operation
    store_latency: Any

    def timed_store(self, operation: str, function: Callable[..., Any]) -> Callable[..., Any]: ...

    def render(self) -> bytes: ...


@dataclass
class ProxyStats:
    """Counters served at /seedreplay/stats."""

    requests: int = 0
    hits: int = 0
    memory_hits: int = 0  # hits served from the memory copy (counted in hits too)
    hits_by_tier: dict[str, int] = field(default_factory=dict)  # answers of the learned tiers (similar, finetune)
    misses: int = 0  # record-mode misses and replay misses
    replay_misses: int = 0
    bypasses: int = 0  # passthrough requests and non-cacheable paths
    refreshes: int = 0
    stored: int = 0
    upstream_calls: int = 0
    coalesced: int = 0  # requests served by another request's upstream call
    shared_waits: int = 0  # flights answered by another proxy's upstream call (a shared store)
    shared_waiting: int = 0  # flights waiting now on another proxy's upstream call (a gauge)
    upstream_errors: int = 0  # upstream 4xx/5xx answers, passed through
    upstream_failures: int = 0  # unreachable, timed out, stream cut
    errors: int = 0  # the proxy's own failures: store errors, bugs
    store_errors: int = 0  # store reads and writes that failed (also in errors when a request saw them)
    without_store: int = 0  # requests answered while the store was unavailable (record: not cached; replay: 503)
    # The cacheable endpoints' requests by endpoint and by what the cache did (hit, miss, bypass, ...).
    by_endpoint: dict[str, dict[str, int]] = field(default_factory=dict)

    def count(self, endpoint: str, cache: str | None) -> None:
        counts = self.by_endpoint.get(endpoint)
        if counts is None:
            counts = self.by_endpoint[endpoint] = {"requests": 0}
        counts["requests"] += 1
        if cache:
            counts[cache] = counts.get(cache, 0) + 1


@dataclass(slots=True)
class RequestNote:
    """What the log line says about one request; filled in as the request is handled."""

    key: str | None = None
    cache: str | None = None
    upstream: int | None = None


NOTE = typed_request_key("seedreplay_note", RequestNote)


class HitLog:
    """The hits of the last few seconds, said in one info line (`1,234 hits in the last 5.0 s (p50
    0.012 ms, p99 0.094 ms)`) rather than one line each: writing a line per hit cost ~40 % of the hit
    throughput, and a user watching the log still sees the proxy working. Microseconds show: a hit
    from the memory copy takes a few (`hits.HitLane`), which two decimals said as 0.00 ms."""

    def __init__(self) -> None:
        self.count = 0
        self.ms: list[float] = []
        self.since = time.monotonic()

    def add(self, ms: float) -> None:
        self.count += 1
        if len(self.ms) < _HIT_SAMPLES:
            self.ms.append(ms)

    def say(self) -> None:
        """Log the hits since the last line (nothing when there were none) and start counting again."""
        now = time.monotonic()
        count, ms, since = self.count, self.ms, self.since
        self.count, self.ms, self.since = 0, [], now
        if not count:
            return
        ms.sort()
        log.info(
            "%s hit%s in the last %.1f s (p50 %.3f ms, p99 %.3f ms)",
            f"{count:,}",
            "" if count == 1 else "s",
            now - since,
            _rank(ms, 0.50),
            _rank(ms, 0.99),
        )


def _rank(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Bound:
    """A binding as the proxy serves it: with its own flights in the air, answers landing and memory
    copies, so nothing of one binding's store ever answers a request of another."""

    def __init__(self, binding: Binding, config: ProxyConfig):
        self.binding = binding
        self.store = binding.store
        self.observer = binding.observer
        self.hears_served = type(binding.observer).served is not Observer.served  # the default hears nothing
        # Only where a read has no side effects (`Store.memoizable`) may an answer still being written,
        # or a memory copy, answer in place of the store.
        self.pure = bool(getattr(binding.store, "memoizable", False))
        self.memoize = self.pure and config.memory_cache > 0
        # A request without mode or Cache-Control headers may be answered from the memory copy (`hits`).
        self.lane = self.memoize and policy_for(binding.mode).serve_recording
        self.remote = bool(getattr(binding.store, "remote", False))  # reads cross a network (`Store.remote`)
        self.flights = Flights()
        self.memory = MemoryCache()
        self.health = StoreHealth()
        self.unsaved = SavingsTally()  # what hits saved since the last addition to the store's ledger

    async def ask_store(self, read: Callable[..., T], *args: Any) -> T:
        """`read(*args)` of the store: in a thread when it crosses a network (a slow or hanging server
        must not hold every other request), else here (SQLite, a cassette in memory: quicker than a
        thread hop)."""
        if self.remote:
            return await asyncio.to_thread(read, *args)
        return read(*args)


class ProxyState:
    """Everything the proxy's handlers share. `config` is fixed; `bound` changes only through
    `rebind`, on the proxy's own loop: a request reads it once, when it arrives."""

    metrics: Metrics  # given by the app as it makes the state (`metrics.ProxyMetrics` reads the state: it sits above)

    def __init__(self, config: ProxyConfig, binding: Binding, tiers: Sequence[Tier] = ()):
        self.config = config
        self.bound = Bound(binding, config)
        self.tiers = tuple(tiers)  # learned tiers, asked in order on an exact miss
        self.stats = ProxyStats()
        self.keys = KeyMemo()
        self.writer = StoreWriter()
        self.upstream = Upstream()
        self.saved = SavingsTally()  # what answers served from recordings saved, since the proxy started
        self.hit_log = HitLog()
        self.siblings: tuple[str, ...] = ()  # --workers: the other workers' private sockets (see workers.py)
        self.store_threads = StoreThreads()
        self.tasks: set[asyncio.Task] = set()  # upstream calls, which outlive their clients
        self.warming: asyncio.Task | None = None  # the store's warm-up (`shared_flight.warm_up`), once the app runs
        self.active = 0  # requests being answered
        self.started = time.time()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._idle: asyncio.Event | None = None
        self._sim_url: str | None = None
        self._sim_lock: asyncio.Lock | None = None
        self._resources = AsyncExitStack()

    def attach(self) -> None:
        """Called once the app runs: from now on only this loop may change the state."""
        self._loop = asyncio.get_running_loop()
        self._idle = asyncio.Event()
        self._idle.set()

    def rebind(self, binding: Binding) -> None:
        """Serve `binding` from the next request on. Only on the proxy's loop (see `Proxy.bind`)."""
        try:
            here = asyncio.get_running_loop()
        except RuntimeError:
            here = None
        if self._loop is not None and here is not self._loop:
            raise RuntimeError("a running proxy is rebound on its own loop only: use Proxy.bind()")
        old, self.bound = self.bound, Bound(binding, self.config)
        old.health.stop()
        if self._loop is not None:
            self.writer.start(add_savings(self, old))

    def note(self, request: web.Request) -> RequestNote:
        return request[NOTE]

    def count_saving(self, rendered: Rendered) -> None:
        """What serving `rendered` (a recording) saved: since the proxy started, and since the ledger's last write."""
        if rendered.saving is not None:
            self.saved.add(rendered.saving)
            self.bound.unsaved.add(rendered.saving)

    def enter(self) -> None:
        self.active += 1
        if self._idle is not None:
            self._idle.clear()

    def leave(self) -> None:
        self.active -= 1
        if self.active == 0 and self._idle is not None:
            self._idle.set()

    async def settle(self, timeout: float) -> bool:
        """Wait until no request is being answered, every upstream call has ended and every store
        write has landed; False if that did not happen within `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            if self._idle is not None and not self._idle.is_set():
                try:
                    await asyncio.wait_for(self._idle.wait(), max(deadline - time.monotonic(), 0))
                except asyncio.TimeoutError:
                    return False
            pending = set(self.tasks)
            if pending:
                _, still = await asyncio.wait(pending, timeout=max(deadline - time.monotonic(), 0))
                if still:
                    return False
            if not await self.writer.settle(max(deadline - time.monotonic(), 0)):
                return False
            if self.active == 0 and not self.tasks and not self.writer.pending:
                return True

    async def upstream_base(self, configured: str) -> str:
        """The base URL (ends in /v1) of the configured upstream; `sim` starts the simulator in this
        loop on first use."""
        if configured != SIM_UPSTREAM:
            return configured.rstrip("/")
        if self._sim_url is None:
            self._sim_lock = self._sim_lock or asyncio.Lock()
            async with self._sim_lock:
                if self._sim_url is None:
                    from .sim import running_sim

                    self._sim_url = await self._resources.enter_async_context(running_sim(self.config.sim))
        return self._sim_url

    async def aclose(self) -> None:
        await self._resources.aclose()


PROXY_STATE = web.AppKey("seedreplay_proxy", ProxyState)


async def add_savings(state: ProxyState, bound: Bound) -> None:
    """Add what `bound`'s hits saved since last time to its store's ledger, if it keeps one."""
    ledger = getattr(bound.store, "add_savings", None)
    if ledger is None or not bound.unsaved.hits or not bound.health.up:
        return
    tally, bound.unsaved = bound.unsaved, SavingsTally()
    try:
        await state.writer.call(ledger, tally.to_dict())
    except Exception as exc:  # a ledger that misses a few counts is no reason to disturb anyone
        state.stats.store_errors += 1
        log.warning("adding what replays saved to the store's ledger failed: %s", exc)
