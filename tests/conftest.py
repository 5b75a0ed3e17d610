"""Shared fixtures. `sim` / `sim_factory`: a real simulator on a loopback port, for sync and async tests."""

from __future__ import annotations

import json
import urllib.request
from dataclasses import dataclass, replace
from typing import Any, Callable, Iterator

import pytest

from pytest_seedreplay.proxy.serve import BackgroundServer
from pytest_seedreplay.proxy.sim import SimConfig, make_sim_app


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
