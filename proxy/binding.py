"""What a running proxy serves, and whom it tells: a `Binding` (store, mode, seed, observer, wording).

The proxy owns its state: once it runs, nothing outside its loop assigns into it. A caller that wants
another store or mode for what comes next (the pytest plugin, one test after another; `use_cassette`)
hands the proxy a new `Binding` through `Proxy.bind`, which swaps it on the proxy's own loop. Requests
already under way finish with the binding they arrived under.

The proxy tells the binding's `Observer` what happened to each request — a replay miss with its
closest recording, a recording served, an answer stored or compared, an upstream error — so a caller
never has to re-read the proxy's answers to learn it. Importing this module costs no aiohttp.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pytest_seedreplay.core.aliases import same_model
from pytest_seedreplay.core.constants import CACHEABLE_ENDPOINTS, CHAT
from pytest_seedreplay.policy import Mode

if TYPE_CHECKING:
    from pytest_seedreplay.core.entry import Entry
    from pytest_seedreplay.core.key import Closest
    from pytest_seedreplay.shapes import Summary
    from pytest_seedreplay.store import Store

    from .config import ProxyConfig


@dataclass(frozen=True)
class ReplayMiss:
    """A request no recording answers, where the upstream may not be asked (replay)."""

    key: str
    endpoint: str
    canonical: dict[str, Any]
    closest: Closest | None  # the nearest recording in the caller's own namespace, if any
    message: str  # the proxy's own words: the key, the closest recording and what differs


class Observer:
    """Hears what the proxy did with each request of a binding. Called on the proxy's loop: return
    at once, never block. Override what you need; the default hears nothing."""

    def served(self, key: str, entry: Entry | None) -> None:
        """A recording answered the request (`entry` is None when it came from the memory copy)."""

    def learned(self, key: str, tier: str, entry: Entry) -> None:
        """A learned tier (`similar`, `finetune`) answered the request with `entry`."""

    def stored(self, entry: Entry) -> None:
        """A complete 2xx answer was written to the binding's store."""

    def compared(self, key: str, recorded: Entry | None, live: Entry, live_read: Summary | None = None) -> None:
        """Live mode: the upstream's answer, next to the recording it should match (None: there is none).
        `live_read` is the proxy's one read of the live answer (assembled if it was streamed)."""

    def replay_miss(self, miss: ReplayMiss) -> None:
        """No recording answers the request, and the upstream may not be asked."""

    def upstream_error(self, key: str | None, status: int, message: str) -> None:
        """The upstream answered with an error, or could not be reached (status 502/504); nothing stored."""

    def write_failed(self, key: str, message: str) -> None:
        """The store refused or failed to keep an answer the client got (a secret in it, a full disk)."""

    def not_replayable(self, method: str, path: str) -> None:
        """A request for a path recordings cannot hold arrived in replay mode."""


class Wording:
    """The texts of the proxy's own refusals. The binding's owner may phrase them for its users (the
    pytest plugin says what to do in a test); the facts stay the proxy's."""

    def replay_miss(self, miss: ReplayMiss) -> str:
        return miss.message

    def not_replayable(self, method: str, path: str) -> str:
        return (
            f"{method} {path} cannot be replayed: the proxy is in replay mode and records only "
            f"{', '.join('POST ' + e for e in CACHEABLE_ENDPOINTS)}; "
            "send it with X-Seedreplay-Mode: passthrough or run the proxy in record mode"
        )


@dataclass(frozen=True)
class Redirect:
    """Ask another model in live mode: chat requests for `base_model` (by any of its names: the dated
    snapshot a fine-tune names, or its alias, `core.aliases`) go to the upstream as requests for `model`
    with `seed` (a fine-tune and the seed it was trained with). The request keeps its own key, so the
    answer is compared with the recording of the request as the client made it."""

    base_model: str
    model: str
    seed: int

    def applies(self, endpoint: str, body: dict[str, Any]) -> bool:
        asked = body.get("model")
        return endpoint == CHAT and isinstance(asked, str) and same_model(asked, self.base_model)


@dataclass(frozen=True)
class Binding:
    """What the proxy serves from now on."""

    store: Store
    mode: Mode = Mode.RECORD
    default_seed: int | None = None  # injected into chat/completions requests that carry none; part of the key
    observer: Observer = field(default_factory=Observer)
    wording: Wording = field(default_factory=Wording)
    # Write each answer to the store before it is released (a cassette that counts its requests, --durable).
    durable: bool = False
    redirect: Redirect | None = None  # live mode: requests for a base model asked of its fine-tune instead


def first_binding(config: ProxyConfig, store: Store) -> Binding:
    """The binding a proxy starts with, unless one was bound before it started (the one way to make it,
    for `make_proxy_app` and `Proxy.start`): its store, `--mode`, default seed and durability."""
    return Binding(store, Mode(config.mode), config.default_seed, durable=config.durable)
