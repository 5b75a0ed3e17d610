"""The network guard: while a test runs, a request the OpenAI SDK's transports (httpx and httpx2, over
httpcore/httpcore2) would send to another machine is stopped before it connects, so a client that
bypasses OPENAI_BASE_URL cannot reach the network unnoticed.

It hooks the connection pools, under the transports: mocks (httpx.MockTransport, respx, pytest-httpx)
answer above them and are never seen, and nothing is buffered, so streams still stream."""

from __future__ import annotations

import functools
import importlib
from dataclasses import dataclass
from typing import Any, Callable
from urllib.parse import urlsplit

from pytest_seedreplay.proxy.config import is_loopback

from .core.constants import CACHEABLE_ENDPOINTS, REPLAY
from .core.key import normalize_endpoint

# (module, class, method): the connection pools of httpx (httpcore) and httpx2 (httpcore2).
# HTTPProxy subclasses ConnectionPool, so requests sent through an HTTP(S) proxy are seen too.
POOLS = (
    ("httpcore", "ConnectionPool", "handle_request"),
    ("httpcore", "AsyncConnectionPool", "handle_async_request"),
    ("httpcore2", "ConnectionPool", "handle_request"),
    ("httpcore2", "AsyncConnectionPool", "handle_async_request"),
)


@dataclass
class Blocked:
    """A request the guard stopped before it reached the network."""

    method: str
    url: str


class NetworkBlocked(ConnectionError):
    """Raised inside httpx/httpx2 for a request the guard stopped."""


class NetworkGuard:
    """Around one test. replay: every request to a non-loopback host fails. record, rewrite, live: a
    request to an OpenAI endpoint on a non-loopback host fails (it bypasses the proxy, so it would be
    neither recorded nor compared); other traffic passes. Loopback requests always pass."""

    def __init__(self, proxy_url: str, mode: str, on_block: Callable[[Blocked], None]):
        self.proxy_url = proxy_url
        self.mode = mode
        self.on_block = on_block
        self._saved: list[tuple[type, str, Any]] = []

    def check(self, method: str, url: str) -> None:
        """Raise NetworkBlocked (after telling `on_block`) when this request may not leave."""
        parts = urlsplit(url)
        if is_loopback(parts.hostname or ""):
            return
        if self.mode != REPLAY and normalize_endpoint(parts.path) not in CACHEABLE_ENDPOINTS:
            return
        self.on_block(Blocked(method, url))
        why = "replay mode allows no network" if self.mode == REPLAY else f"it bypasses the seedreplay proxy, so {self.mode} mode would not see it"
        raise NetworkBlocked(
            f"seedreplay blocked {method} {url}: {why}. Leave base_url unset so OPENAI_BASE_URL "
            f"({self.proxy_url}) is used, or use the openai_client fixture"
        )

    def __enter__(self) -> NetworkGuard:
        for module_name, class_name, method_name in POOLS:
            try:
                pool = getattr(importlib.import_module(module_name), class_name)
            except (ImportError, AttributeError):
                continue  # that transport is not installed
            original = pool.__dict__[method_name]
            self._saved.append((pool, method_name, original))
            setattr(pool, method_name, self._wrap(original, asynchronous=method_name.endswith("async_request")))
        return self

    def __exit__(self, *exc: object) -> None:
        while self._saved:
            pool, method_name, original = self._saved.pop()
            setattr(pool, method_name, original)

    def _wrap(self, original: Callable, asynchronous: bool) -> Callable:
        check = self.check

        if asynchronous:

            @functools.wraps(original)
            async def guarded_async(pool: Any, request: Any) -> Any:
                check(_text(request.method), _text(bytes(request.url)))
                return await original(pool, request)

            return guarded_async

        @functools.wraps(original)
        def guarded(pool: Any, request: Any) -> Any:
            check(_text(request.method), _text(bytes(request.url)))
            return original(pool, request)

        return guarded


def _text(value: bytes | str) -> str:
    return value.decode("ascii", "replace") if isinstance(value, bytes) else str(value)
