"""Store writes off the event loop: one thread, in the order they were asked, each one tracked,
and a bounded backlog of them.

A write (secret check, packing, the fsync of a FULL-sync SQLite commit) takes from under a
millisecond to several when the disk is busy; on the loop it would hold up every other request.
One thread keeps the writes of this proxy in order (two refreshes of a key land as they were
answered) and SQLite serialises writers anyway. `settle` and `close` wait for the writes asked
so far: the stats endpoint and a graceful shutdown use them.

The backlog (writes started, not landed) is bounded by entries and by bytes (`room`): when misses
come faster than the store takes them, a new miss's answer waits for room before it is released,
so clients slow to the store's pace instead of the proxy's memory growing without end. A store that
takes no write for `write_wait` seconds (stuck, or locked by another process) does not hold clients
forever: the answer then goes out unrecorded, saying so in X-Seedreplay-Store-Error.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from .config import ProxyConfig

log = logging.getLogger("seedreplay.proxy")

SETTLE_SECONDS = 5.0  # how long a reader of the store (stats, a replay miss) waits for writes under way
_CLOSE_SECONDS = 120.0  # a store's own lock timeout (60 s) bounds a write; this bounds the wait for it
# A thread holding the GIL (the store thread packing an entry: secret check, JSON, zlib) keeps the
# loop from going on for up to the interpreter's switch interval each time the loop wants the GIL
# back: 5 ms by default, several times a whole miss, and worse on a loaded machine where the holder
# is descheduled mid-step. The proxy's threads run short steps, so switching sooner costs them little.
LOOP_SWITCH_INTERVAL = 0.0005


def switch_briskly() -> None:
    """Lower the interpreter's switch interval to `LOOP_SWITCH_INTERVAL` (never raise one set lower).
    Only `seedreplay proxy` calls it, in a process of its own: the setting is the whole interpreter's,
    and a proxy run in someone else's process (the pytest plugin, `Proxy`) leaves it as it found it."""
    if sys.getswitchinterval() > LOOP_SWITCH_INTERVAL:
        sys.setswitchinterval(LOOP_SWITCH_INTERVAL)


class StoreWriter:
    """The proxy's store thread, the write tasks not finished yet, and their backlog."""

    def __init__(self) -> None:
        self._executor: ThreadPoolExecutor | None = None
        self.pending: set[asyncio.Task] = set()
        self.backlog_bytes = 0  # bytes of the answers whose writes are pending
        self.waiting = 0  # answers held back until the backlog has room
        self._freed: asyncio.Event | None = None  # set (and replaced) each time a write ends

    @property
    def backlog_entries(self) -> int:
        return len(self.pending)

    async def call(self, function: Callable[..., Any], *args: Any) -> Any:
        """`function(*args)` in the store thread."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="seedreplay-store")
        return await asyncio.get_running_loop().run_in_executor(self._executor, function, *args)

    def fits(self, size: int, config: ProxyConfig) -> bool:
        """A write of `size` bytes fits in the backlog now. An empty backlog takes any one write, so an
        answer bigger than the byte bound is still recorded (alone)."""
        if not self.pending:
            return True
        return len(self.pending) < config.write_backlog_entries and self.backlog_bytes + size <= config.write_backlog_bytes

    async def room(self, size: int, config: ProxyConfig) -> bool:
        """Wait until a write of `size` bytes fits in the backlog; False if it did not within
        `config.write_wait` seconds. The caller starts its write (`start`) right after, with no
        await in between, so the room it waited for is still there."""
        if self.fits(size, config):
            return True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + config.write_wait
        self.waiting += 1
        try:
            while not self.fits(size, config):
                left = deadline - loop.time()
                if left <= 0:
                    return False
                freed = self._freed = self._freed or asyncio.Event()
                try:
                    await asyncio.wait_for(freed.wait(), left)
                except asyncio.TimeoutError:
                    return False
            return True
        finally:
            self.waiting -= 1

    def full_error(self, config: ProxyConfig) -> str:
        """What an answer sent unrecorded says (X-Seedreplay-Store-Error) when `room` gave up."""
        return (
            f"not stored: the store took no write for {config.write_wait:g} s while {len(self.pending)} writes "
            f"({self.backlog_bytes} bytes) were waiting for it; the store is stuck, locked by another process "
            "or slower than the misses coming in"
        )

    def start(self, write: Awaitable[None], size: int = 0) -> asyncio.Task:
        """Run `write` (a coroutine that calls `call`) as a tracked task counted in the backlog with
        `size` bytes, and return it."""
        task = asyncio.ensure_future(write)
        self.pending.add(task)
        self.backlog_bytes += size
        task.add_done_callback(lambda done: self._ended(done, size))
        return task

    def _ended(self, task: asyncio.Task, size: int) -> None:
        self.pending.discard(task)
        self.backlog_bytes -= size
        freed, self._freed = self._freed, None
        if freed is not None:
            freed.set()

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


class StoreThreads:
    """Threads for the store calls of shared flights: a wait blocks one for up to `shared_flight.WAIT_SLICE`."""

    def __init__(self) -> None:
        self._executor: ThreadPoolExecutor | None = None

    async def run(self, function: Callable[..., Any], *args: Any) -> Any:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=256, thread_name_prefix="seedreplay-flight")
        return await asyncio.get_running_loop().run_in_executor(self._executor, function, *args)

    def close(self) -> None:
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)
