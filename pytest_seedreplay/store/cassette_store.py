"""One cassette as a store: its recordings in memory, played in order, written back merged and locked.

The n-th request with a key plays the n-th recording of that key (vcrpy's way), then — with
`repeat_last` — the last one again; a client's retry of a request (`rewind`) takes its try's place.
An answer put for a request that found no recording fills that request's place; one put without a
read first (a refresh, a rewrite) takes the next place, replacing what was there. `save` merges
what was put into the file as it is now, under a lock shared by every process (pytest-xdist
workers), so tests sharing a cassette never lose each other's recordings. An answer recorded again
but unchanged (modulo ids, times: `volatile`) keeps its old recording, so re-recording leaves the
file byte-identical.
"""

from __future__ import annotations

import contextlib
import hashlib
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO

from ..core.entry import Entry
from .base import StoreStats, check_no_secret
from .cassette import CassetteError, read_cassette, write_cassette
from .volatile import keep_unchanged


class CassetteLockTimeout(CassetteError):
    """Another process held a cassette's lock for longer than the timeout."""


def _lock_file(path: Path) -> Path:
    # Locks live outside the cassette directory so no stray files land next to cassettes.
    digest = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:32]
    folder = Path(tempfile.gettempdir()) / "seedreplay-locks"
    folder.mkdir(exist_ok=True)
    return folder / f"{digest}.lock"


@contextlib.contextmanager
def cassette_lock(path: Path, timeout: float = 60.0) -> Iterator[None]:
    """Exclusive across processes (pytest-xdist workers) while a cassette is re-read, merged, written."""
    handle = open(_lock_file(path), "a+b")
    try:
        _acquire(handle, path, timeout)
        yield
    finally:
        handle.close()  # closing releases the lock


def _acquire(handle: IO[bytes], path: Path, timeout: float) -> None:
    if sys.platform == "win32":
        import msvcrt

        deadline = time.monotonic() + timeout
        while True:
            try:
                msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise CassetteLockTimeout(f"timed out after {timeout:.0f}s waiting to write {path}") from None
                time.sleep(0.01)
    else:
        import fcntl

        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)


def merge(current: list[Entry], ours: list[tuple[int, Entry]], replace: bool) -> list[Entry]:
    """`current` (the file as it is now) plus our (occurrence index, entry) recordings.

    The n-th recording of a key answers its n-th request. An occurrence the file already holds is
    replaced when `replace` (ours is newer: rewrite, or an overwrite), else kept (another test or
    worker recorded the same request first)."""
    merged = list(current)
    positions: dict[str, list[int]] = {}
    for at, entry in enumerate(merged):
        positions.setdefault(entry.key, []).append(at)
    for occurrence, entry in ours:
        held = positions.setdefault(entry.key, [])
        if occurrence < len(held):
            if replace:
                merged[held[occurrence]] = entry
        else:
            held.append(len(merged))
            merged.append(entry)
    return merged


class CassetteStore:
    """The recordings of one cassette as a store (see the module docstring). Thread-safe: the proxy
    reads and writes it from its own thread while the test's thread inspects it."""

    memoizable = False  # a read moves the cassette on: the proxy must ask it every time

    def __init__(self, path: Path | None, entries: list[Entry] | None = None, repeat_last: bool = True):
        self.path = path
        self.repeat_last = repeat_last
        self.location = str(path) if path else "(no cassette)"
        self._lock = threading.Lock()
        self._by_key: dict[str, list[Entry]] = {}
        for entry in entries or []:
            self._by_key.setdefault(entry.key, []).append(entry)
        self._asked: Counter[str] = Counter()  # requests per key so far
        self._unanswered: dict[str, int] = {}  # key -> the place of the last read that found nothing
        self.recorded: list[tuple[int, Entry]] = []  # (place, entry) put since loading, to write
        self.overwrote = False  # a put replaced a recording that was loaded

    @classmethod
    def load(cls, path: Path, repeat_last: bool = True, empty: bool = False) -> CassetteStore:
        """The store of the cassette at `path` (none yet: empty); `empty` starts from no recordings (rewrite)."""
        return cls(path, [] if empty else read_cassette(path), repeat_last)

    def get(self, key: str) -> Entry | None:
        with self._lock:
            place = self._asked[key]
            self._asked[key] += 1
            held = self._by_key.get(key, [])
            if place < len(held):
                return held[place]
            if self.repeat_last and held:
                return held[-1]
            self._unanswered[key] = place
            return None

    def rewind(self, key: str) -> None:
        """The next request of `key` takes the place of the last one: a client retrying a request is
        served what its earlier try was, and what it records replaces that try's answer."""
        with self._lock:
            if self._asked[key] > 0:
                self._asked[key] -= 1

    def count(self, key: str) -> int:
        """How many recordings of `key` the cassette holds."""
        with self._lock:
            return len(self._by_key.get(key, ()))

    def put(self, entry: Entry) -> None:
        check_no_secret(entry)
        with self._lock:
            place = self._unanswered.pop(entry.key, None)
            if place is None:  # put without a read first: the next place of this key
                place = self._asked[entry.key]
                self._asked[entry.key] += 1
            held = self._by_key.setdefault(entry.key, [])
            if place < len(held):
                held[place] = entry
                self.overwrote = True
            else:
                place = len(held)
                held.append(entry)
            self.recorded.append((place, entry))

    def put_many(self, entries: Iterable[Entry]) -> int:
        count = 0
        for entry in entries:
            self.put(entry)
            count += 1
        return count

    def delete(self, key: str) -> bool:
        with self._lock:
            return self._by_key.pop(key, None) is not None

    def iter_keys(self) -> Iterator[str]:
        with self._lock:
            return iter(list(self._by_key))

    def iter_entries(self) -> Iterator[Entry]:
        with self._lock:
            entries = [e for held in self._by_key.values() for e in held]
        return iter(entries)

    def iter_requests(self) -> Iterator[tuple[str, dict]]:
        return ((e.key, e.request) for e in self.iter_entries())

    def stats(self) -> StoreStats:
        return StoreStats(entries=sum(1 for _ in self.iter_entries()), bytes=0, location=self.location)

    def close(self) -> None:
        pass

    def __len__(self) -> int:
        return sum(1 for _ in self.iter_entries())

    def __contains__(self, key: object) -> bool:
        return key in self._by_key

    def save(self, replace: bool = False, start_fresh: Callable[[Path], bool] = lambda path: False) -> bool:
        """Write what was put, merged with the file as it is now; True when the cassette was saved
        (a file that already says the same is left untouched, and counts as saved).

        `replace`: our recordings win over those the file holds at the same places (a rewrite, an
        overwrite); else the file's win (another test or worker recorded the same request first).
        `start_fresh(path)`, asked under the lock, says to ignore the file's recordings."""
        assert self.path is not None, "a cassette store without a path cannot be saved"
        with cassette_lock(self.path):
            fresh = start_fresh(self.path)
            if not self.recorded and not fresh:
                return False
            before = _held_before(self.path, fresh)
            entries = merge([] if fresh else before, self.recorded, replace=replace or self.overwrote)
            if not entries:
                # Nothing recorded at all leaves no cassette behind.
                self.path.unlink(missing_ok=True)
                return False
            # An answer recorded anew but unchanged keeps its old recording: no churn in the file.
            write_cassette(self.path, keep_unchanged(entries, before))
        return True


def _held_before(path: Path, fresh: bool) -> list[Entry]:
    """The cassette's recordings as they are now. Starting fresh they only serve to keep unchanged
    answers as written, so a file that no longer reads counts as holding none (it is replaced)."""
    if not fresh:
        return read_cassette(path)
    try:
        return read_cassette(path)
    except CassetteError:
        return []


__all__ = ["CassetteLockTimeout", "CassetteStore", "cassette_lock", "merge"]
