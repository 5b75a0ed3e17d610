"""Shared fixtures. `sim` / `sim_factory`: a real simulator on a loopback port, for sync and async tests.
`canned`: a loopback server answering with the bytes a test sets, and a real openai client for it."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

import openai
import pytest
from aiohttp import web

from pytest_seedreplay.proxy.serve import BackgroundServer
from pytest_seedreplay.proxy.sim import SimConfig, make_sim_app

# Fixtures the test modules share, defined beside their helpers: found here, no module imports them.
from proxy_support import proxy_factory, recorder  # noqa: F401
from redis_support import redis_cluster, redis_server, shared_redis, shared_redis_cluster  # noqa: F401


@dataclass
class RunningSim:
    """A simulator served from a background thread. `url` is the base URL clients use (ends in /v1)."""

    server: BackgroundServer
    config: SimConfig

    @property
    def root(self) -> str:
        return self.server.url

    @property
    def url(self) -> str:
        return f"{self.server.url}/v1"

    def stats(self) -> dict[str, Any]:
        """The simulator's request counters: {"total": N, "requests": {"POST /v1/chat/completions": n}}."""
        with urllib.request.urlopen(f"{self.root}/sim/stats", timeout=10) as answer:
            return json.loads(answer.read())

    def stop(self) -> None:
        self.server.stop()


def start_sim(config: SimConfig) -> RunningSim:
    server = BackgroundServer(lambda: make_sim_app(config))
    server.start()
    return RunningSim(server, config)


@pytest.fixture
def sim_factory() -> Iterator[Callable[..., RunningSim]]:
    """sim_factory(**SimConfig fields) -> RunningSim; every one started is stopped at teardown."""
    started: list[RunningSim] = []

    def factory(**overrides: Any) -> RunningSim:
        running = start_sim(replace(SimConfig(), **overrides))
        started.append(running)
        return running

    yield factory
    for running in reversed(started):
        running.stop()


@pytest.fixture
def sim(sim_factory: Callable[..., RunningSim]) -> RunningSim:
    """A fresh simulator with default settings."""
    return sim_factory()


@pytest.fixture(scope="module")
def canned():
    """A loopback server answering every POST with the bytes the test set."""
    answer = {}

    async def handler(request):
        await request.read()
        answer["request"] = await request.json()
        content_type, payload = answer["reply"]
        return web.Response(body=payload, content_type=content_type)

    def factory():
        app = web.Application()
        app.router.add_post("/v1/{tail:.*}", handler)
        return app

    with BackgroundServer(factory) as server:
        client = openai.OpenAI(base_url=server.url + "/v1", api_key="test-key", max_retries=0)
        yield client, answer
