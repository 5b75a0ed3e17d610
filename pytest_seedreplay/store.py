"""The one store behind every feature: a few verbs over diskcache (process-safe, atomic)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Iterator, Protocol

import diskcache

from .constants import DEFAULT_CACHE_DIR, ENV_STORE
from .entry import Entry
from .redact import SecretRefused, find_secret


@dataclass
class StoreStats:
    entries: int
    bytes: int
    location: str


class Store(Protocol):
    """What the proxy, the cache CLI, cassettes and the fine-tune exporter need from a store."""

    location: str

    def get(self, key: str) -> Entry | None: ...
    def put(self, entry: Entry) -> None: ...
    def delete(self, key: str) -> bool: ...
    def iter_entries(self) -> Iterator[Entry]: ...
    def iter_requests(self) -> Iterator[tuple[str, dict]]:
        """(key, canonical request) of every entry: what the closest-recording diff scans."""
        ...
    def stats(self) -> StoreStats: ...
    def close(self) -> None: ...


def check_no_secret(entry: Entry) -> None:
    where = find_secret(entry.to_dict(), "entry")
    if where:
        raise SecretRefused(where)


class DiskStore:
    """Entries in a diskcache directory, one per key; SQLite transactions make it process-safe."""

    def __init__(self, directory: str | os.PathLike[str]):
        self.location = os.fspath(directory)
        self._cache = diskcache.Cache(self.location)

    def get(self, key: str) -> Entry | None:
        data = self._cache.get(key)
        return None if data is None else Entry.from_dict(data)

    def put(self, entry: Entry) -> None:
        check_no_secret(entry)
        self._cache.set(entry.key, entry.to_dict())

    def delete(self, key: str) -> bool:
        return self._cache.delete(key)

    def iter_entries(self) -> Iterator[Entry]:
        for key in self._cache.iterkeys():
            entry = self.get(key)
            if entry is not None:
                yield entry

    def iter_requests(self) -> Iterator[tuple[str, dict]]:
        for entry in self.iter_entries():
            yield entry.key, entry.request

    def stats(self) -> StoreStats:
        return StoreStats(entries=len(self._cache), bytes=self._cache.volume(), location=self.location)

    def close(self) -> None:
        self._cache.close()

    def __len__(self) -> int:
        return len(self._cache)


def open_store(cache_dir: str | None = None, store_url: str | None = None) -> Store:
    """The store named by `--store URL`, else `--cache-dir`, else $SEEDREPLAY_STORE, else the default dir."""
    target = store_url or cache_dir or os.environ.get(ENV_STORE) or DEFAULT_CACHE_DIR
    return DiskStore(target)
