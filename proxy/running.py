"""`Proxy`: a seedreplay proxy started from Python — a script, a notebook, a unittest suite, the pytest
plugin, the demo — served from its own thread, so sync and async callers use it alike.

    with Proxy(upstream="sim", cache_dir=".seedreplay/cache") as proxy:
        client = openai.OpenAI(base_url=proxy.url, api_key="...")
        ...
        print(proxy.stats()["hits"])
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from pytest_seedreplay.core.constants import DEFAULT_UPSTREAM, ENV_UPSTREAM
from pytest_seedreplay.core.environ import choose_anthropic_upstream
from pytest_seedreplay.core.urls import check_upstream
from pytest_seedreplay.policy import Mode
from pytest_seedreplay.store import Store, open_store

from .binding import Binding, Observer, Redirect, Wording, first_binding
from .config import ProxyConfig

if TYPE_CHECKING:
    from .tiers import Tier


class Proxy:
    """A caching proxy on a loopback port. Use it as a context manager (`with` or `async with`), or
    call `start()` and `stop()`. `.url` is the base URL to give any OpenAI client (ends in `/v1`).

    `store`: a `Store`, or a directory / `redis://` URL for `open_store` (default `$SEEDREPLAY_STORE`
    or `.seedreplay/cache`); a store it opened, it closes. `upstream`: a base URL or `"sim"` (default
    `$SEEDREPLAY_UPSTREAM`, else the OpenAI API); `anthropic_upstream`: the same for Anthropic's API
    (default `$SEEDREPLAY_ANTHROPIC_UPSTREAM`, else `sim` when `upstream` is, else Anthropic's API; give
    Anthropic clients `.root` as their base URL). Other keyword arguments are `ProxyConfig` fields
    (`require_seed`, `default_seed`, `isolate_by_auth`, `memory_cache`, `durable`, ...). `tiers`: learned
    tiers asked in order on an exact miss (see `pytest_seedreplay.proxy.tiers`). `sock`: a listening
    socket to serve on instead of binding `host:port` (a port reserved before the proxy was made, as
    the pytest plugin does); once started, the proxy closes it when it stops."""

    def __init__(
        self,
        upstream: str | None = None,
        *,
        store: Store | str | os.PathLike[str] | None = None,
        mode: str | Mode = Mode.RECORD,
        host: str = "127.0.0.1",
        port: int = 0,
        tiers: Sequence[Tier] = (),
        sock: socket.socket | None = None,
        **options: Any,
    ):
        upstream = upstream or os.environ.get(ENV_UPSTREAM) or DEFAULT_UPSTREAM
        options["anthropic_upstream"] = check_upstream(choose_anthropic_upstream(options.get("anthropic_upstream"), upstream))
        self.config = replace(ProxyConfig(), upstream=check_upstream(upstream), mode=str(Mode(mode)), **options)
        self._store_arg = store
        self.tiers = tuple(tiers)
        self._host, self._port, self._sock = host, port, sock
        self._store: Store | None = None
        self._owns_store = False
        self._server: Any = None  # BackgroundServer, imported when started (it brings aiohttp)
        self._binding: Binding | None = None  # what the server serves (or will, once built)
        self._built = False  # the app exists: a new binding must be swapped in on its loop
        self._lock = threading.Lock()
        self.root = ""

    # --- running -------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The base URL clients take (`http://127.0.0.1:PORT/v1`)."""
        if not self.root:
            raise RuntimeError("the proxy is not running: start it first (with Proxy(...) as proxy: ...)")
        return self.root + "/v1"

    @property
    def store(self) -> Store:
        if self._store is None:
            raise RuntimeError("the proxy is not running: start it first")
        return self._store

    def start(self, lazily: bool = False) -> str:
        """Start serving and return `.url`. `lazily`: bind the port now, build the server on the first
        connection or call that needs it (a caller that may never send a request pays a socket)."""
        from .serve import BackgroundServer

        self._store, self._owns_store = self._open_store()
        if self._binding is None:  # a binding made before start() stays: the first request is served under it
            self._binding = first_binding(self.config, self._store)
        self._built = False

        def build() -> Any:
            from .app import make_proxy_app  # aiohttp and the rest: when the server is built

            with self._lock:  # a bind() racing the first connection lands before or after, never lost
                self._built = True
                return make_proxy_app(self.config, self._binding or Binding(self.store), self.tiers)

        self._server = BackgroundServer(build, self._host, self._port, self._sock)
        self._sock = None  # the server owns (and closes) a socket it was given
        try:
            self.root = self._server.start_lazily() if lazily else self._server.start()
        except BaseException:
            self._close_store()
            raise
        return self.url

    def stop(self) -> None:
        """Stop serving: requests under way are answered and every answer sent is in the store first."""
        if self._server is not None:
            self._server.stop()
            self._server = None
        self._close_store()
        self._binding = None
        self.root = ""

    def __enter__(self) -> Proxy:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def __aenter__(self) -> Proxy:
        import asyncio

        await asyncio.to_thread(self.start)
        return self

    async def __aexit__(self, *exc: object) -> None:
        import asyncio

        await asyncio.to_thread(self.stop)

    # --- using it --------------------------------------------------------------------------------

    def bind(
        self,
        store: Store | None = None,
        mode: str | Mode | None = None,
        default_seed: int | None = None,
        observer: Observer | None = None,
        wording: Wording | None = None,
        durable: bool | None = None,
        redirect: Redirect | None = None,
    ) -> Binding:
        """Serve `store` in `mode` from the next request on (requests under way finish with what they
        arrived under). The swap runs on the proxy's own loop. Left out: the proxy's first store and
        mode, no default seed, a silent observer. `redirect`: in live mode, ask a fine-tune in place of
        its base model (see `Redirect`). Before `start()` (`store` given), the proxy serves it from its
        first request on. Returns the binding now in force."""
        binding = Binding(
            store if store is not None else self.store,
            Mode(mode) if mode is not None else Mode(self.config.mode),
            default_seed,
            observer or Observer(),
            wording or Wording(),
            self.config.durable if durable is None else durable,
            redirect,
        )
        with self._lock:
            self._binding = binding
            if self._server is None or not self._built:
                return binding  # not started, or a lazy server not built yet: it takes this one when it is
        state = self._state()

        async def rebind() -> None:
            state.rebind(binding)

        self._server.call(rebind)
        return binding

    def settle(self, timeout: float = 10.0) -> bool:
        """Wait until no request is being answered and every answer sent has been stored (or
        compared); False if that took longer than `timeout` seconds."""
        if self._server is None or not self._server.started:
            return True
        state = self._state()
        return bool(self._server.call(lambda: state.settle(timeout), timeout=timeout + 5))

    def stats(self) -> dict[str, Any]:
        """The counters `/seedreplay/stats` serves: hits, misses, stored, upstream calls, coalesced ..."""
        from .app import counters

        state = self._state()

        async def read() -> dict[str, Any]:
            return await counters(state)

        return dict(self._server.call(read))

    def _state(self) -> Any:
        from .app import PROXY_STATE

        if self._server is None:
            raise RuntimeError("the proxy is not running: start it first")
        self._server.start()  # a lazy server starts here (no-op once running)
        return self._server.app[PROXY_STATE]

    # --- the store ---------------------------------------------------------------------------------

    def _open_store(self) -> tuple[Store, bool]:
        given = self._store_arg
        if given is None or isinstance(given, (str, os.PathLike)):
            target = os.fspath(given) if given is not None else None
            return open_store(target), True
        return given, False

    def _close_store(self) -> None:
        if self._store is not None and self._owns_store:
            self._store.close()
        self._store, self._owns_store = None, False

    def __repr__(self) -> str:
        state = self.url if self.root else "stopped"
        return f"Proxy({state}, mode={self.config.mode}, upstream={self.config.upstream!r})"


__all__ = ["Proxy"]
