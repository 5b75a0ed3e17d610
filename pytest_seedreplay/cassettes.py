"""`use_cassette`: record and replay a block of code — a script, a notebook cell, a unittest test — the
way the pytest plugin does a test, with the same cassettes.

    with use_cassette("cassettes/summary.yaml", mode="record"):
        summarize("...")            # any OpenAI client built inside reaches the cassette's proxy

    @use_cassette("cassettes/test_chat.yaml", mode="replay")
    def test_chat(self): ...
"""

from __future__ import annotations

import functools
import inspect
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from .core.constants import CHAT
from .core.entry import Entry
from .core.environ import ClientEnvironment, choose_upstream, recording_anthropic_upstream
from .drift import Drift, compare
from .policy import PYTEST_MODES, Mode
from .proxy.binding import Observer, Redirect, ReplayMiss
from .savings import SavingsTally, prices_from, saving_of
from .shapes import Summary
from .store.cassette_store import CassetteStore

if TYPE_CHECKING:
    from .finetune.live import TestFinetune

__all__ = ["CassetteSession", "CassetteUse", "Heard", "Interaction", "choose_upstream", "use_cassette"]

CASSETTE_MODES = tuple(m for m in PYTEST_MODES if m is not Mode.OFF)  # off: no cassette at all

Function = TypeVar("Function", bound=Callable[..., Any])


class CassetteSession:
    """One cassette under one mode: the one place that says what a mode means for a cassette. It is
    loaded as the mode needs (replay and live repeat the last recording of a request asked again;
    rewrite starts from none), bound to a proxy with its observer (`heard`, what became of each
    request), and saved (record: what is new; rewrite: exactly what was used). A live `finetune` is
    asked every request for its base model, and its answers compared with the recordings.
    `use_cassette` and the pytest plugin (one per test) both use it; they only choose which cassette,
    which mode, and where what was heard is shown. CassetteError: the file cannot be read."""

    def __init__(self, path: Path, mode: Mode, seed: int | None = None, finetune: TestFinetune | None = None):
        self.path, self.mode, self.seed, self.finetune = path, Mode(mode), seed, finetune
        self.store = CassetteStore.load(path, repeat_last=self.mode in (Mode.REPLAY, Mode.LIVE), empty=self.mode is Mode.REWRITE)
        self.heard = Heard(self.mode, self.store, finetune)

    def bind(self, proxy: Any, wording: Any = None) -> None:
        """Serve this cassette from `proxy`'s next request on; `heard` is told what becomes of each."""
        tuned = self.finetune
        redirect = Redirect(tuned.base_model, tuned.model, tuned.seed) if tuned is not None else None
        proxy.bind(self.store, self.mode, self.seed, self.heard, wording, durable=True, redirect=redirect)

    def save(self, start_fresh: Callable[[Path], bool] = lambda path: True) -> bool:
        """Write what was recorded, merged with the file as it is now; True when written. In rewrite,
        `start_fresh(path)` says whether the file's other recordings go (False: another test of this
        run sharing the cassette rewrote it first, and its recordings stay)."""
        if self.mode is Mode.RECORD:
            return bool(self.store.recorded) and self.store.save()
        if self.mode is Mode.REWRITE:
            return self.store.save(replace=True, start_fresh=start_fresh)
        return False


@dataclass
class Interaction:
    """One request of a test, as its cassette answered it."""

    key: str
    occurrence: int  # the n-th request with this key in the test (0-based)
    source: str  # replayed | recorded | live
    entry: Entry

    @property
    def endpoint(self) -> str:
        return self.entry.endpoint


class Heard(Observer):
    """What the proxy did with a cassette's requests: the one observer, for a test's report and for
    `use_cassette`'s `.misses` / `.drift`. The proxy calls it from its own thread; the caller reads it
    from its own."""

    def __init__(self, mode: str, store: CassetteStore | None, finetune: TestFinetune | None = None):
        self.mode = mode
        self.store = store
        self.finetune = finetune  # live answers to its base model's requests came from this fine-tune
        self._lock = threading.Lock()
        self._asked: dict[str, int] = {}
        self.interactions: list[Interaction] = []
        self.drift: list[Drift] = []
        self.misses: list[ReplayMiss] = []
        self.upstream_errors: list[tuple[int, str]] = []  # (status, message) of error answers, never recorded
        self.errors: list[str] = []  # answers the cassette refused to keep

    def _note(self, key: str, source: str, entry: Entry) -> None:
        with self._lock:
            n = self._asked.get(key, 0)
            self._asked[key] = n + 1
            if source == "replayed" and self.store is not None:
                n = min(n, max(self.store.count(key) - 1, 0))  # replay repeats the last recording
            self.interactions.append(Interaction(key, n, source, entry))

    def served(self, key: str, entry: Entry | None) -> None:
        if entry is not None:
            self._note(key, "replayed", entry)

    def stored(self, entry: Entry) -> None:
        self._note(entry.key, "recorded", entry)

    def compared(self, key: str, recorded: Entry | None, live: Entry, live_read: Summary | None = None) -> None:
        drift = compare(recorded, live, live_read)
        tuned = self.finetune
        if tuned is not None and live.endpoint == CHAT and tuned.asks_for(live.request.get("params", {}).get("model")):
            drift.finetune = tuned.model
        with self._lock:
            self.drift.append(drift)
        self._note(key, "live", live)

    def replay_miss(self, miss: ReplayMiss) -> None:
        with self._lock:
            self.misses.append(miss)

    def upstream_error(self, key: str | None, status: int, message: str) -> None:
        if self.mode != Mode.REPLAY:  # replay has no upstream: its other errors are the request's own
            with self._lock:
                self.upstream_errors.append((status, message))

    def write_failed(self, key: str, message: str) -> None:
        with self._lock:
            self.errors.append(message)

    def count(self, source: str) -> int:
        return sum(1 for i in self.interactions if i.source == source)

    def saved(self) -> SavingsTally:
        """What this test's replayed answers saved (their recorded usage; $SEEDREPLAY_PRICES or the built-in prices)."""
        tally, prices = SavingsTally(), prices_from()
        for interaction in self.interactions:
            if interaction.source == "replayed":
                tally.add(saving_of(interaction.entry, prices))
        return tally

    def used(self) -> list[tuple[str, int]]:
        return [(i.key, i.occurrence) for i in self.interactions]


class CassetteUse:
    """A cassette in use: `.url` (give it to a client built with its own base_url), `.misses` (replay
    misses, with the closest recording and what differs), `.drift` (live mode), `.recorded`.
    CassetteError: the file cannot be read."""

    def __init__(self, path: Path, mode: Mode, upstream: str, seed: int | None, anthropic_upstream: str | None = None):
        self.path, self.mode, self.upstream, self.seed = path, mode, upstream, seed
        self.anthropic_upstream = anthropic_upstream
        self.proxy: Any = None
        self.cassette = CassetteSession(path, mode, seed)
        self._env = ClientEnvironment()

    store = property(lambda self: self.cassette.store)

    @property
    def url(self) -> str:
        return self.proxy.url

    @property
    def misses(self) -> list[ReplayMiss]:
        return list(self.cassette.heard.misses)

    @property
    def drift(self) -> list[Drift]:
        return list(self.cassette.heard.drift)

    @property
    def recorded(self) -> int:
        return len(self.store.recorded)

    def start(self) -> CassetteUse:
        from .proxy.running import Proxy

        # The cassette's mode is bound, as the plugin binds each test's: rewrite and live are no proxy
        # start-up mode. Bound before start, the first request is served under it.
        self.proxy = Proxy(self.upstream, store=self.store, durable=True, anthropic_upstream=self.anthropic_upstream)
        self.cassette.bind(self.proxy)
        self.proxy.start()
        self._point_clients_here()
        return self

    def stop(self) -> None:
        """Stop the proxy, put the environment back, and write what was recorded (record, rewrite)."""
        try:
            if self.proxy is not None:
                self.proxy.settle()
                self.proxy.stop()
        finally:
            self._env.restore()
        if self.cassette.heard.errors:
            raise ValueError(f"seedreplay did not write {self.path}: {'; '.join(self.cassette.heard.errors)}")
        self.cassette.save()

    def _point_clients_here(self) -> None:
        # Clients built inside the block (and subprocesses it starts) read these.
        self._env.point_at(self.proxy.url)
        self._env.lend_keys_for(self.mode is Mode.REPLAY, self.upstream, self.proxy.config.anthropic_upstream)


class use_cassette:  # noqa: N801 - used like a function, as vcrpy's `use_cassette` is
    """Serve the cassette at `path` to every OpenAI client of a block: a context manager and a
    decorator (sync and async functions).

    mode: `record` (default: replay what exists, record what is missing), `replay` (recordings only,
    no network, no key needed), `rewrite` (record everything anew), `live` (call the upstream, compare
    with the recordings, write nothing). upstream: a base URL or `"sim"` (default
    `$SEEDREPLAY_UPSTREAM`, else the `OPENAI_BASE_URL` in effect, else the OpenAI API).
    anthropic_upstream: the same for Anthropic's API (default `"sim"` when upstream is, else
    `$SEEDREPLAY_ANTHROPIC_UPSTREAM`, else the `ANTHROPIC_BASE_URL` in effect, else Anthropic's API).
    seed: injected into chat/completions requests that carry none.

    Inside the block `OPENAI_BASE_URL` (and `ANTHROPIC_BASE_URL`) point at a proxy over the cassette,
    so `openai.OpenAI()` or `anthropic.Anthropic()` built there (or in a subprocess) is covered; a
    client built earlier with its own base URL can take `.url` of the value the `with` statement
    gives (an Anthropic client: `.proxy.root`)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        mode: str | Mode = Mode.RECORD,
        *,
        upstream: str | None = None,
        seed: int | None = None,
        anthropic_upstream: str | None = None,
    ):
        self.path = Path(path)
        if self.path.suffix not in (".yaml", ".yml"):
            self.path = self.path.with_name(self.path.name + ".yaml")
        try:
            self.mode = Mode(mode)
        except ValueError:
            self.mode = None  # type: ignore[assignment]
        if self.mode not in CASSETTE_MODES:
            raise ValueError(f"use_cassette(mode={str(mode)!r}): use one of {', '.join(m.value for m in CASSETTE_MODES)}")
        self.upstream = upstream
        self.anthropic_upstream = anthropic_upstream
        self.seed = seed
        self._uses: list[CassetteUse] = []

    def __enter__(self) -> CassetteUse:
        upstream = choose_upstream(self.upstream)
        anthropic = recording_anthropic_upstream(self.anthropic_upstream, upstream)
        use = CassetteUse(self.path, self.mode, upstream, self.seed, anthropic)
        self._uses.append(use.start())
        return use

    def __exit__(self, *exc: object) -> None:
        self._uses.pop().stop()

    async def __aenter__(self) -> CassetteUse:
        import asyncio

        return await asyncio.to_thread(self.__enter__)

    async def __aexit__(self, *exc: object) -> None:
        import asyncio

        await asyncio.to_thread(self.__exit__, *exc)

    def __call__(self, function: Function) -> Function:
        if inspect.iscoroutinefunction(function):

            @functools.wraps(function)
            async def run_async(*args: Any, **kwargs: Any) -> Any:
                async with self:
                    return await function(*args, **kwargs)

            return run_async  # type: ignore[return-value]

        @functools.wraps(function)
        def run(*args: Any, **kwargs: Any) -> Any:
            with self:
                return function(*args, **kwargs)

        return run  # type: ignore[return-value]
