"""The network guard: while a test runs, a request meant for the OpenAI API (or Anthropic's: "OpenAI"
below means either) that does not go through
the plugin's proxy is stopped before it connects, so it cannot reach the network unnoticed (replay)
or go unrecorded (record, rewrite, live). Other traffic passes, unless `--seedreplay-block-network`
asks to stop every non-loopback connection, as pytest-recording's `--block-network` does.

It hooks the connection pools of the OpenAI SDK's transports (httpx and httpx2, over httpcore and
httpcore2): mocks (httpx.MockTransport, respx, pytest-httpx) answer above them and are never seen,
and nothing is buffered, so streams still stream. With `--seedreplay-block-network` it also hooks
`socket.connect`, for every other client (requests, urllib, aiohttp, ...).

What it raises is the transport's own connect error (`httpx.ConnectError`, `httpx2.ConnectError`, or
a `ConnectionRefusedError` at the socket), so a library that copes with being offline (LiteLLM's price
map fetched at import) behaves as offline instead of crashing."""

from __future__ import annotations

import contextlib
import functools
import importlib
import importlib.abc
import importlib.machinery
import re
import socket
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from .core.constants import CACHEABLE_ENDPOINTS, SERVER_THREAD
from .core.key import normalize_endpoint
from .core.urls import is_loopback
from .policy import Mode

# (module, class, method, transport): the connection pools of httpx (httpcore) and httpx2 (httpcore2),
# and the transport whose ConnectError the caller expects. HTTPProxy subclasses ConnectionPool, so
# requests sent through an HTTP(S) proxy are seen too, with the URL they are meant for.
POOLS = (
    ("httpcore", "ConnectionPool", "handle_request", "httpx"),
    ("httpcore", "AsyncConnectionPool", "handle_async_request", "httpx"),
    ("httpcore2", "ConnectionPool", "handle_request", "httpx2"),
    ("httpcore2", "AsyncConnectionPool", "handle_async_request", "httpx2"),
)
# Hosts that serve only a model API: api.openai.com, Anthropic's, and Azure OpenAI's resource endpoints.
OPENAI_HOSTS = frozenset({"api.openai.com", "api.anthropic.com"})
OPENAI_HOST_SUFFIXES = (".openai.azure.com", ".cognitiveservices.azure.com")
# Azure OpenAI's deployment paths (the `/openai/v1/...` ones normalize like OpenAI's own).
AZURE_CALL = re.compile(r"/openai/(?:deployments/[^/]+/(?:chat/completions|completions|embeddings)|responses)/?$")
# Uploads of telemetry to OpenAI (the Agents SDK's traces, on by default): blocked in replay like any
# request to OpenAI, but never a test failure - no test's outcome depends on them.
TELEMETRY = re.compile(r"/v1/traces/ingest/?$")
BLOCK_NETWORK_FLAG = "--seedreplay-block-network"


@dataclass
class Blocked:
    """A request meant for the OpenAI API that the guard stopped before it reached the network."""

    method: str
    url: str


class NetworkBlocked(Exception):
    """What the guard raises. Each one is also its transport's own connect error (an httpx or httpx2
    ConnectError, or a ConnectionRefusedError from a socket): catch either."""


@functools.cache
def blocked_error(transport: str) -> type[Any]:
    """NetworkBlocked as `transport`'s ConnectError (`httpx`, `httpx2`), or as a refused socket ("socket")."""
    base = ConnectionRefusedError if transport == "socket" else importlib.import_module(transport).ConnectError
    return type("NetworkBlocked", (NetworkBlocked, base), {"__module__": __name__})


def openai_host(host: str, upstream_hosts: frozenset[str] = frozenset()) -> bool:
    """Does this host serve a model API (OpenAI's, Anthropic's, Azure OpenAI's, or a configured upstream's)?"""
    host = host.lower().rstrip(".")
    return host in OPENAI_HOSTS or host.endswith(OPENAI_HOST_SUFFIXES) or host in upstream_hosts


def openai_call(method: str, path: str) -> bool:
    """Is this an OpenAI API call, whatever the host: a POST to chat completions, completions,
    embeddings, responses or Anthropic's messages (`.../v1/chat/completions`, Azure's `/openai/deployments/{name}/...`)?"""
    return method.upper() == "POST" and (normalize_endpoint(path) in CACHEABLE_ENDPOINTS or bool(AZURE_CALL.search(path)))


class NetworkGuard:
    """Around one test. Loopback always passes. A request meant for the OpenAI API is stopped and
    told to `on_block` (the test fails even if the code under test swallows the error; a telemetry
    upload excepted): in replay,
    any request to an OpenAI host or any OpenAI API call (it would not come from the cassette); in
    record, rewrite and live, an OpenAI API call (it would be neither recorded nor compared). With
    `block_network`, every other non-loopback connection fails too, as if offline (not told to
    `on_block`: a library that falls back when offline keeps working)."""

    def __init__(
        self,
        proxy_url: str,
        mode: str,
        on_block: Callable[[Blocked], None],
        upstream: str = "",
        block_network: bool = False,
        anthropic_upstream: str = "",
    ):
        self.proxy_url = proxy_url
        self.mode = mode
        self.on_block = on_block
        self.block_network = block_network
        self.upstream_hosts = frozenset(_remote_host(url) for url in (upstream, anthropic_upstream)) - {""}
        self._saved: list[tuple[type, str, Any]] = []
        self._hook: _GuardOnImport | None = None

    def meant_for_openai(self, method: str, url: str) -> bool:
        parts = urlsplit(url)
        if openai_call(method, parts.path):
            return True
        return self.mode == Mode.REPLAY and openai_host(parts.hostname or "", self.upstream_hosts)

    def check(self, method: str, url: str, transport: str = "httpx2") -> None:
        """Raise NetworkBlocked (as `transport`'s ConnectError) when this request may not leave."""
        if is_loopback(urlsplit(url).hostname or ""):
            return
        if self.meant_for_openai(method, url):
            if not TELEMETRY.search(urlsplit(url).path):
                self.on_block(Blocked(method, url))
            raise self._error(transport, method, url, self._openai_advice())
        if self.block_network:
            raise self._error(transport, method, url, self._offline_advice())

    def check_socket(self, address: Any) -> None:
        """`--seedreplay-block-network` at the socket: an IP connection to a non-loopback address fails
        (the plugin's own proxy, reaching the upstream for record, excepted)."""
        if not (isinstance(address, tuple) and address and isinstance(address[0], str)):
            return  # not an (host, port) address: nothing we can judge
        if is_loopback(address[0]) or threading.current_thread().name == SERVER_THREAD:
            return
        where = f"[{address[0]}]:{address[1]}" if ":" in address[0] else f"{address[0]}:{address[1]}"
        raise blocked_error("socket")(f"seedreplay blocked a connection to {where}: {self._offline_advice()}")

    def _error(self, transport: str, method: str, url: str, advice: str) -> Exception:
        message = f"seedreplay blocked {method} {url}: {advice}"
        request = importlib.import_module(transport).Request(method, url)
        return blocked_error(transport)(message, request=request)

    def _openai_advice(self) -> str:
        why = {Mode.REPLAY: "replay mode answers OpenAI calls from cassettes only"}.get(
            Mode(self.mode), f"it bypasses the seedreplay proxy, so {self.mode} mode would not see it"
        )
        return (
            f"{why}. Leave base_url unset so OPENAI_BASE_URL ({self.proxy_url}) is used, or use the "
            "openai_client fixture (an Azure client: leave azure_endpoint unset, AZURE_OPENAI_ENDPOINT points there too; "
            "an Anthropic client: leave base_url unset, ANTHROPIC_BASE_URL points there too)"
        )

    def _offline_advice(self) -> str:
        return (
            f"{BLOCK_NETWORK_FLAG} (ini seedreplay_block_network) lets tests reach loopback only. Mock this "
            f"call or serve it on 127.0.0.1, or run without {BLOCK_NETWORK_FLAG}"
        )

    def __enter__(self) -> NetworkGuard:
        # A transport already imported is guarded now; one imported while the guard holds (a test that
        # imports httpx itself) as soon as it is: the guard never imports one that is not used.
        waiting = []
        for entry in POOLS:
            if entry[0] in sys.modules:
                self._guard_pool(*entry)
            else:
                waiting.append(entry)
        if waiting:
            self._hook = _GuardOnImport(self, waiting)
            sys.meta_path.insert(0, self._hook)
        if self.block_network:
            own = socket.socket.__dict__.get("connect")  # None: inherited from _socket.socket
            self._saved.append((socket.socket, "connect", own))
            socket.socket.connect = self._wrap_socket(own or socket.socket.connect)  # type: ignore[method-assign]
        return self

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        """The guard's answer to an import, as its own import hook gives it (for a finder that stood in
        for the guard until a transport was imported): a transport's module, guarded once loaded."""
        return self._hook.find_spec(fullname, path, target) if self._hook is not None else None

    def _guard_pool(self, module_name: str, class_name: str, method_name: str, transport: str) -> None:
        try:
            pool = getattr(sys.modules[module_name], class_name)
        except (KeyError, AttributeError):
            return  # that transport is not installed, or not this version of it
        original = pool.__dict__[method_name]
        self._saved.append((pool, method_name, original))
        setattr(pool, method_name, self._wrap(original, transport, asynchronous=method_name.endswith("async_request")))

    def __exit__(self, *exc: object) -> None:
        if self._hook is not None:
            with contextlib.suppress(ValueError):
                sys.meta_path.remove(self._hook)
            self._hook = None
        while self._saved:
            owner, method_name, original = self._saved.pop()
            if original is None:
                delattr(owner, method_name)  # it was inherited: inherit it again
            else:
                setattr(owner, method_name, original)

    def _wrap(self, original: Callable, transport: str, asynchronous: bool) -> Callable:
        check = self.check

        if asynchronous:

            @functools.wraps(original)
            async def guarded_async(pool: Any, request: Any) -> Any:
                check(_text(request.method), _text(bytes(request.url)), transport)
                return await original(pool, request)

            return guarded_async

        @functools.wraps(original)
        def guarded(pool: Any, request: Any) -> Any:
            check(_text(request.method), _text(bytes(request.url)), transport)
            return original(pool, request)

        return guarded

    def _wrap_socket(self, original: Callable) -> Callable:
        check_socket = self.check_socket

        @functools.wraps(original)
        def guarded_connect(sock: socket.socket, address: Any) -> Any:
            if sock.family in (socket.AF_INET, socket.AF_INET6):
                check_socket(address)
            return original(sock, address)

        return guarded_connect


class _GuardOnImport(importlib.abc.MetaPathFinder):
    """Guards a transport's pools the moment its module is imported (while the guard holds)."""

    def __init__(self, guard: NetworkGuard, pools: list[tuple[str, str, str, str]]):
        self.guard = guard
        self.pools = pools
        self.names = {entry[0] for entry in pools}

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        if fullname not in self.names:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        loader = getattr(spec, "loader", None)
        if spec is None or loader is None or not hasattr(loader, "exec_module"):
            return spec
        run = loader.exec_module
        pools = [entry for entry in self.pools if entry[0] == fullname]

        def exec_module(module: Any) -> None:
            run(module)
            for entry in pools:
                self.guard._guard_pool(*entry)

        loader.exec_module = exec_module
        return spec


def _remote_host(url: str) -> str:
    """The host of an upstream URL, "" for the simulator or loopback (never a host to stop)."""
    host = urlsplit(url).hostname if "://" in url else None
    return "" if not host or is_loopback(host) else host.lower()


def _text(value: bytes | str) -> str:
    return value.decode("ascii", "replace") if isinstance(value, bytes) else str(value)
