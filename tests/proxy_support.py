"""Helpers for the proxy tests: a real proxy on a loopback port (own thread and loop), plain HTTP."""

from __future__ import annotations

import http.client as httplib
import json
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import openai
import pytest
from aiohttp import web

from pytest_seedreplay import Proxy
from pytest_seedreplay.proxy.app import ProxyState
from pytest_seedreplay.proxy.serve import BackgroundServer
from pytest_seedreplay.store import DiskStore

# Shaped like a real key, so the secret checks and the "never on disk" greps recognise it.
API_KEY = "sk-proj-seedreplayTEST0123456789abcdefABCDEF"
CHAT = "/chat/completions"
MODEL = "gpt-4o-mini"


def messages(text: str = "hello") -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


@dataclass
class Reply:
    status: int
    headers: dict[str, str]  # lower-cased names
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def http(url: str, method: str = "POST", body: Any = None, headers: dict[str, str] | None = None, timeout: float = 30) -> Reply:
    """One plain HTTP request. `body`: bytes as they are, anything else sent as JSON."""
    parts = urllib.parse.urlsplit(url)
    sent = dict(headers or {})
    if body is not None and not isinstance(body, (bytes, bytearray)):
        body = json.dumps(body).encode()
        sent.setdefault("Content-Type", "application/json")
    connection = httplib.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        connection.request(method, parts.path + (f"?{parts.query}" if parts.query else ""), body=body, headers=sent)
        answer = connection.getresponse()
        return Reply(answer.status, {k.lower(): v for k, v in answer.getheaders()}, answer.read())
    finally:
        connection.close()


@dataclass
class RunningProxy:
    proxy: Proxy
    own_store: DiskStore
    cache_dir: Path
    clients: list[Any] = field(default_factory=list)

    @property
    def store(self) -> DiskStore:
        """The proxy's store, once the writes of answers already sent have landed (the proxy
        answers first and writes behind the answer)."""
        self.settle()
        return self.own_store

    def settle(self, timeout: float = 10) -> None:
        """Wait until every request and store write the proxy has started is over."""
        assert self.proxy.settle(timeout), "requests or store writes still running"

    @property
    def root(self) -> str:
        return self.proxy.root

    @property
    def url(self) -> str:
        return self.proxy.url

    @property
    def state(self) -> ProxyState:
        return self.proxy._state()

    def stats(self) -> dict[str, Any]:
        return http(f"{self.root}/seedreplay/stats", "GET").json()

    def client(self, **options: Any) -> openai.OpenAI:
        options.setdefault("api_key", API_KEY)
        options.setdefault("max_retries", 0)
        client = openai.OpenAI(base_url=self.url, **options)
        self.clients.append(client)
        return client

    def async_client(self, **options: Any) -> openai.AsyncOpenAI:
        options.setdefault("api_key", API_KEY)
        options.setdefault("max_retries", 0)
        return openai.AsyncOpenAI(base_url=self.url, **options)

    def post(self, path: str, body: Any, headers: dict[str, str] | None = None, **kw: Any) -> Reply:
        sent = {"Authorization": f"Bearer {API_KEY}", **(headers or {})}
        return http(self.url + path, "POST", body, sent, **kw)

    def stop(self) -> None:
        for client in self.clients:
            client.close()
        self.proxy.stop()


@pytest.fixture
def proxy_factory(tmp_path: Path) -> Iterator[Callable[..., RunningProxy]]:
    """proxy_factory(upstream, cache_dir=None, **ProxyConfig fields) -> RunningProxy (stopped at teardown)."""
    started: list[RunningProxy] = []

    def factory(upstream: str, cache_dir: Path | None = None, **config: Any) -> RunningProxy:
        directory = cache_dir or tmp_path / f"cache{len(started)}"
        store = DiskStore(directory)
        proxy = Proxy(upstream, store=store, **config)
        proxy.start()
        running = RunningProxy(proxy, store, Path(directory))
        started.append(running)
        return running

    yield factory
    for running in reversed(started):
        running.stop()
        running.own_store.close()


def upstream_calls(sim: Any, route: str = "POST /v1/chat/completions") -> int:
    return sim.stats()["requests"].get(route, 0)


@dataclass
class Arrived:
    method: str
    path: str  # raw, as it arrived
    headers: dict[str, str]
    body: bytes  # as it came off the wire (not decoded)


@dataclass
class Recorder:
    """An upstream on loopback that records every request reaching it, bytes and all; it answers
    chat completions with a fixed answer, anything else with an empty list (or `redirect_to`)."""

    seen: list[Arrived] = field(default_factory=list)
    redirect_to: str | None = None

    def app(self) -> web.Application:
        async def anything(request: web.Request) -> web.StreamResponse:
            body = await request.content.read()
            self.seen.append(Arrived(request.method, request.raw_path, dict(request.headers), body))
            if self.redirect_to:
                raise web.HTTPTemporaryRedirect(self.redirect_to)
            if request.path.endswith("/chat/completions"):
                return web.json_response(
                    {
                        "id": "c",
                        "object": "chat.completion",
                        "model": MODEL,
                        "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
                    }
                )
            return web.json_response({"object": "list", "data": []})

        app = web.Application(client_max_size=2**30)
        app.router.add_route("*", "/{tail:.*}", anything)
        return app


@pytest.fixture
def recorder() -> Iterator[tuple[Recorder, BackgroundServer]]:
    """(the recording, its server); the server is served raw (bodies not decoded by aiohttp)."""
    recorder = Recorder()
    server = BackgroundServer(recorder.app)
    server.start()
    yield recorder, server
    server.stop()


def raw_request(
    root: str, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None, auth: bool = True
) -> tuple[int, dict[str, str], bytes]:
    """One request with the path sent byte for byte as given (http.client does not normalise it)."""
    parts = urllib.parse.urlsplit(root)
    connection = httplib.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        connection.putrequest(method, path, skip_accept_encoding=True)
        sent = {"Authorization": f"Bearer {API_KEY}"} if auth else {}
        for name, value in {**sent, **(headers or {})}.items():
            connection.putheader(name, value)
        connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body)
        answer = connection.getresponse()
        return answer.status, {k.lower(): v for k, v in answer.getheaders()}, answer.read()
    finally:
        connection.close()
