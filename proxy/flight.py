"""One upstream call shared by every request waiting for its answer (single-flight).

A `Flight` is filled by the task that talks to the upstream and read by any number of requests:
the head (status, headers) first, then — for a streamed answer — the body in event-aligned
chunks as they arrive, then the outcome (an `Entry` to serve, or a failure). Followers that join
late replay the chunks seen so far and then wait for more, so every one of them gets the stream.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass

from pytest_seedreplay.core.entry import Entry, SSEEvent


@dataclass(frozen=True)
class Shape:
    """What the client asked the answer to look like; the key ignores it, the bytes do not."""

    stream: bool = False
    include_usage: bool = False
    encoding_format: str | None = None  # embeddings only: "float" or "base64"


@dataclass
class Failure:
    """The upstream broke off (unreachable, timed out, stream cut): nothing to store."""

    message: str
    code: str
    # It stands for an upstream error answer to this flight's caller (see `shared_flight._failed`).
    callers_own: bool = False


class Flight:
    """The shared state of one upstream call; see the module docstring."""

    def __init__(self, key: str, endpoint: str, shape: Shape, caller: str = ""):
        self.key = key
        self.endpoint = endpoint
        self.shape = shape  # what was asked of the upstream: followers of this shape get the raw bytes
        # The credential the upstream is asked with (`incoming.credential_of`; in memory only): an
        # upstream error answer is that caller's, never given to a request sent with another.
        self.caller = caller
        self.status: int | None = None
        self.headers: Mapping[str, str] = {}  # the upstream's, repeated names kept (a CIMultiDict)
        self.streaming = False  # the upstream answered 2xx with text/event-stream
        # Event-aligned pieces of a stream: the bytes as the upstream sent them and their events.
        self.chunks: list[tuple[bytes, list[SSEEvent]]] = []
        self.body: bytes = b""  # the whole body of a non-streamed answer (success or error)
        self.entry: Entry | None = None
        # The answer is a stored entry another proxy's call made (see shared_flight): no bytes came here.
        self.recorded = False
        self.failure: Failure | None = None
        self.store_error: str | None = None
        self.oversize = False  # the answer passed `max_answer`: relayed as it comes, never recorded
        self._head = asyncio.Event()
        self._done = asyncio.Event()
        self._more = asyncio.Event()

    # --- written by the upstream task ---------------------------------------------------------

    def start_stream(self, status: int, headers: Mapping[str, str]) -> None:
        """The upstream began a stream: followers may send the head and relay chunks from now on."""
        self.status, self.headers, self.streaming = status, headers, True
        self._head.set()

    def feed(self, chunk: bytes, events: list[SSEEvent]) -> None:
        if chunk:
            self.chunks.append((chunk, events))
            self._wake()

    def finish(self) -> None:
        self._head.set()
        self._done.set()
        self._wake()

    def _wake(self) -> None:
        more, self._more = self._more, asyncio.Event()
        more.set()

    # --- read by the requests served from it --------------------------------------------------

    @property
    def finished(self) -> bool:
        return self._done.is_set()

    @property
    def is_2xx(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    async def answers_anyone(self) -> bool:
        """Whether this flight's answer may go to a request sent with another credential: a stream, a
        2xx or recorded answer, or a failure of the call itself do; an upstream error answer does not
        (a bad key, that account's rate limit, its organization named in the message). Waits for the
        head of a stream, else for the end."""
        await self.wait_head()
        if self.streaming:
            return True
        await self.wait_done()
        if self.failure is not None:
            return not self.failure.callers_own
        return self.entry is not None or self.is_2xx

    async def wait_head(self) -> None:
        await self._head.wait()

    async def wait_done(self) -> None:
        await self._done.wait()

    async def follow(self) -> AsyncIterator[tuple[bytes, list[SSEEvent]]]:
        """Every chunk of the stream, from the first, as they arrive; ends when the flight ends."""
        sent = 0
        while True:
            while sent < len(self.chunks):
                sent += 1
                yield self.chunks[sent - 1]
            if self.finished:
                return
            await self._more.wait()


class Flights:
    """The flights in the air, by key: a miss joins one before starting its own. And the answers
    landing: sent, and still being written to the store (see `landing`)."""

    def __init__(self) -> None:
        self._by_key: dict[str, Flight] = {}
        self._landing: dict[str, Entry] = {}

    def join(self, key: str) -> Flight | None:
        return self._by_key.get(key)

    def writing(self, entry: Entry) -> None:
        """`entry` was answered and is being written to the store, behind the answer."""
        self._landing[entry.key] = entry

    def written(self, entry: Entry) -> None:
        """The write of `entry` is over (done or failed)."""
        if self._landing.get(entry.key) is entry:
            del self._landing[entry.key]

    def landing(self, key: str) -> Entry | None:
        """The newest answer for `key` still being written: to a request for the same key it is
        already the recording (served as a hit, never a second upstream call)."""
        return self._landing.get(key)

    def add(self, flight: Flight) -> None:
        self._by_key[flight.key] = flight

    def remove(self, flight: Flight) -> None:
        if self._by_key.get(flight.key) is flight:
            del self._by_key[flight.key]

    def __len__(self) -> int:
        return len(self._by_key)
