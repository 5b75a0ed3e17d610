"""Riding out a store that stops answering (a Redis server down or restarting).

The first request that finds the store unavailable says so in the log and marks it down. From then
on requests do not wait for it: record mode forwards to the upstream without caching (the answer
says so in X-Seedreplay-Store-Error), replay mode answers 503 at once. A probe, off the event loop,
asks the store every `STORE_PROBE_SECONDS`; when it answers again the log says so and requests use it
as before. No request ever waits longer than the store's own timeout (see store/redis.py).

One node of a Redis Cluster down is not an outage of the store: its error is `partial`, and only the
request that met it goes without the store (the same 503 or uncached answer); every other key keeps
being served, and the node's keys answer again once it is back, with no probe to wait for.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from pytest_seedreplay.core.constants import STORE_PROBE_SECONDS

log = logging.getLogger("seedreplay.proxy")

_PROBE_KEY = "seedreplay:probe"  # asked with `in`: one cheap read that answers or fails


class StoreHealth:
    """Whether the store answers, and the probe that finds out when it answers again."""

    def __init__(self, probe_every: float = STORE_PROBE_SECONDS):
        self.probe_every = probe_every
        self._down: str | None = None  # why the store is down; None while it answers
        self._partly: str | None = None  # the latest failure of part of it (one cluster node's keys)
        self._partly_logged = 0.0  # when a part's failure was last logged (monotonic)
        self.down_since: float | None = None
        self.outages = 0
        self._probe: asyncio.Task | None = None

    @property
    def up(self) -> bool:
        return self._down is None

    @property
    def reason(self) -> str | None:
        """Why the store is down, or (while it is up) why part of it last failed."""
        return self._down or self._partly

    def failed(self, store: Any, exc: BaseException) -> None:
        """The store did not answer: mark it down (once) and start probing it. A failure of part of
        it (`partial`) fails only the request that met it: said, logged now and then, no probe."""
        if getattr(exc, "partial", False):
            self._partly = str(exc) or type(exc).__name__
            if time.monotonic() - self._partly_logged >= self.probe_every:
                self._partly_logged = time.monotonic()
                log.error(
                    "part of the cache store is unavailable: %s; its keys go without the store (record mode "
                    "forwards them uncached, replay mode answers 503), the others are served as usual",
                    self._partly,
                )
            return
        if self._down is not None:
            return
        self._down = str(exc) or type(exc).__name__
        self.down_since = time.monotonic()
        self.outages += 1
        log.error(
            "cache store unavailable: %s; until it answers again, record mode forwards requests to the upstream "
            "without caching and replay mode answers 503 (probing it every %g s)",
            self.reason,
            self.probe_every,
        )
        self._probe = asyncio.create_task(self._until_back(store))

    def said(self) -> str:
        """What an answer given without the store says (X-Seedreplay-Store-Error)."""
        return f"not cached: the cache store is unavailable ({self.reason}); answered by the upstream"

    async def _until_back(self, store: Any) -> None:
        while True:
            await asyncio.sleep(self.probe_every)
            try:
                await asyncio.to_thread(store.__contains__, _PROBE_KEY)
            except Exception as exc:  # still down: keep the first reason, say the latest at debug level
                log.debug("cache store still unavailable: %s", exc)
                continue
            lasted = time.monotonic() - (self.down_since or time.monotonic())
            log.warning("cache store is back after %.1f s; caching again", lasted)
            self._down = None
            self.down_since = None
            return

    def stop(self) -> None:
        """Stop probing (the binding it watched is no longer served)."""
        if self._probe is not None:
            self._probe.cancel()

    async def close(self) -> None:
        if self._probe is not None:
            self._probe.cancel()
            await asyncio.gather(self._probe, return_exceptions=True)
