"""Store writes off the event loop: one thread, in the order they were asked, each one tracked.

A write (secret check, packing, the fsync of a FULL-sync SQLite commit) takes from under a
millisecond to several when the disk is busy; on the loop it would hold up every other request.
One thread keeps the writes of this proxy in order (two refreshes of a key land as they were
answered) and SQLite serialises writers anyway. `settle` and `close` wait for the writes asked
so far: the stats endpoint and a graceful shutdown use them.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Awaitable, Callable

log = logging.getLogger("seedreplay.proxy")

SETTLE_SECONDS = 5.0  # how long a reader of the store (stats, a replay miss) waits for writes under way
_CLOSE_SECONDS = 120.0  # a store's own lock timeout (60 s) bounds a write; this bounds the wait for it


class StoreWriter:
    """The proxy's store thread, and the write tasks not finished yet."""

    def __init__(self) -> None:
        self._executor: ThreadPoolExecutor | None = None
        self.pending: set[asyncio.Task] = set()

    async def call(self, function: Callable[..., Any], *args: Any) -> Any:
        """`function(*args)` in the store thread."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="seedreplay-store")
        return await asyncio.get_running_loop().run_in_executor(self._executor, function, *args)

    def start(self, write: Awaitable[None]) -> asyncio.Task:
        """Run `write` (a coroutine that calls `call`) as a tracked task, and return it."""
        task = asyncio.ensure_future(write)
        self.pending.add(task)
        task.add_done_callback(self.pending.discard)
        return task

    async def settle(self, timeout: float) -> bool:
        """Wait until the writes asked so far have finished; False if some are still running."""
        pending = set(self.pending)
        if not pending:
            return True
        _, still = await asyncio.wait(pending, timeout=timeout)
        return not still

    async def close(self) -> None:
        """Wait for every write (a write cannot be stopped half-way), then end the thread."""
        if not await self.settle(_CLOSE_SECONDS):
            log.error("store writes still running after %.0f s at shutdown", _CLOSE_SECONDS)
            return
        executor, self._executor = self._executor, None
        if executor is not None:  # a write whose task was cancelled may still be in the thread
            await asyncio.get_running_loop().run_in_executor(None, executor.shutdown)
