"""The store in a directory: diskcache (SQLite rows, process-safe, atomic, never evicts)."""

from __future__ import annotations

import os
import sqlite3
from typing import Any, Iterator

import diskcache

from ..core.constants import ENV_STORE
from ..core.entry import Entry
from .base import ACCEPTED_STORES, CheckedWrites, StoreBusy, StoreError, StoreStats
from .codec import _read_head, pack_entry, unpack_entry, unpack_head


# Settings are persisted in the cache's own Settings table, so they also hold for any other program
# that later opens the directory with plain `diskcache.Cache(dir)`.
DISK_SETTINGS: dict[str, Any] = {
    # A recording is never evicted to make room: no eviction policy, no culling, no size bound.
    "eviction_policy": "none",
    "cull_limit": 0,
    "size_limit": 2**62,
    # Hit/miss counting would turn every read into a write transaction (readers would queue on writers).
    "statistics": 0,
    # Entries up to 4 MiB live inside SQLite rows: one atomic write, snapshot-consistent reads.
    # Bigger answers (large embedding batches) go to files, written before the row commits.
    "disk_min_file_size": 2**22,
    # WAL lets readers run beside a writer; FULL makes a committed recording survive power loss too.
    "sqlite_journal_mode": "wal",
    "sqlite_synchronous": 2,
    "sqlite_mmap_size": 2**28,
}
DISK_TIMEOUT = 60.0  # seconds a writer waits for another process's write lock before StoreBusy


def _open_cache(directory: str) -> diskcache.Cache:
    path = os.path.expanduser(directory)
    if os.path.exists(path) and not os.path.isdir(path):
        raise StoreError(f"cannot use {directory!r} as a store: it is a file, not a directory; accepted: {ACCEPTED_STORES}")
    try:
        return diskcache.Cache(path, timeout=DISK_TIMEOUT, **DISK_SETTINGS)
    except (OSError, sqlite3.Error) as exc:
        raise StoreError(
            f"cannot open the store at {directory!r} ({exc}); give a writable directory "
            f"(--cache-dir or {ENV_STORE}); accepted: {ACCEPTED_STORES}"
        ) from exc


class DiskStore(CheckedWrites):
    """Entries in a diskcache directory, one SQLite row per key; its transactions make it process-safe."""

    # A plain map from key to entry: `get` has no side effects and answers everyone alike, so the
    # proxy may serve a recent memory copy instead of calling it, and answer before a `put` lands.
    # (The pytest plugin's cassette store counts its calls, and does not say this.)
    memoizable = True

    def __init__(self, directory: str | os.PathLike[str]):
        self.location = os.fspath(directory)
        self._cache = _open_cache(self.location)

    def _where(self, key: str) -> str:
        return f"entry {key} in {self.location}"

    def _blob(self, key: str, read: bool = False) -> Any:
        # A file-backed value can vanish between diskcache's row lookup and its file open when another
        # process overwrites the key; diskcache then answers "missing". Retry while the key exists.
        for _ in range(5):
            value = self._cache.get(key, read=read)
            if value is not None or key not in self._cache:
                return value
        return self._cache.get(key, read=read)

    def get(self, key: str) -> Entry | None:
        blob = self._blob(key)
        return None if blob is None else unpack_entry(blob, self._where(key))

    def _write_entries(self, entries: list[Entry]) -> None:
        blobs = [(entry.key, pack_entry(entry)) for entry in entries]
        if len(blobs) == 1:  # one set is one SQLite transaction already
            key, blob = blobs[0]
            self._write(lambda: self._cache.set(key, blob))
            return

        def write_all() -> None:
            with self._cache.transact():
                for key, blob in blobs:
                    self._cache.set(key, blob)

        self._write(write_all)

    def _write(self, operation: Any) -> Any:
        try:
            return operation()
        except diskcache.Timeout:
            raise StoreBusy(
                f"the store at {self.location} stayed locked by another writer for {DISK_TIMEOUT:.0f} s; "
                "retry, or look for a stuck seedreplay process"
            ) from None

    def delete(self, key: str) -> bool:
        return bool(self._write(lambda: self._cache.delete(key)))

    def iter_keys(self) -> Iterator[str]:
        """Every key, in sorted order, paged from the SQLite index (constant memory)."""
        for key in self._cache.iterkeys():
            if isinstance(key, str):
                yield key

    def iter_entries(self) -> Iterator[Entry]:
        for key in self.iter_keys():
            entry = self.get(key)
            if entry is not None:  # deleted since the key was listed
                yield entry

    def iter_requests(self) -> Iterator[tuple[str, dict]]:
        for key in self.iter_keys():
            value = self._blob(key, read=True)
            if value is not None:
                yield key, unpack_head(_read_head(value, self._where(key)), self._where(key))["request"]

    def stats(self) -> StoreStats:
        return StoreStats(entries=len(self._cache), bytes=self._cache.volume(), location=self.location)

    def close(self) -> None:
        self._cache.close()

    def __len__(self) -> int:
        return len(self._cache)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key in self._cache

    def __enter__(self) -> DiskStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"DiskStore({self.location!r})"


