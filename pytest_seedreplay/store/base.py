"""The store's verbs and errors: what every backend offers and what every caller may rely on."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit, urlunsplit

from ..core.entry import Entry
from ..core.redact import refuse_secrets

UPGRADE_HINT = "upgrade seedreplay: pip install -U pytest-seedreplay"
REDIS_SCHEMES = ("redis", "rediss", "unix", "redis+cluster", "rediss+cluster")
ACCEPTED_STORES = (
    "a directory path (diskcache), file:///path, or redis://[[user]:password@]host[:port][/db] "
    "(also rediss:// and unix:///path/to/redis.sock; add ?prefix=NAME: to share one Redis database), "
    "redis+cluster://host[:port] for a Redis Cluster (rediss+cluster:// with TLS); "
    "?namespace=NAME on either URL keeps a team's or project's recordings apart"
)
_NAMESPACE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


class StoreError(ValueError):
    """The store cannot be opened or read; the message says what to do next."""


class EntryFormatError(StoreError):
    """A stored entry was written in a format this seedreplay does not know."""


class CorruptEntry(EntryFormatError):
    """A stored entry is damaged or was planted: bytes seedreplay never wrote, an answer that inflates
    past MAX_INFLATED_BYTES, fields of the wrong type. Readers skip it; a hit on it is a 5xx."""


class StoreBusy(StoreError):
    """Another process held the store's write lock for longer than the timeout."""


class StoreUnavailable(StoreError):
    """The store did not answer (a Redis server down, restarting or unreachable): nothing is known
    about the entry asked for. It may answer again later; the proxy keeps serving meanwhile."""

    # True when only part of the store is away (one node of a Redis Cluster): the keys of its slots
    # fail, every other key still answers, so the store as a whole is not down.
    partial: bool = False


@dataclass
class StoreStats:
    entries: int
    bytes: int
    location: str


class Store(Protocol):
    """What the proxy, the cache CLI, cassettes and the fine-tune exporter need from a store.

    Optional: a class attribute `memoizable = True` says the store is a plain key -> entry map (see
    `DiskStore.memoizable`); without it the proxy calls `get` once per request and answers only
    after `put` returned. `remote = True` says its reads cross a network (Redis): the proxy makes
    them in a thread, so a slow or hanging server never holds its other requests. A store shared by
    several proxies may also offer `shared.SharedFlights` (one upstream call per key across them)
    and `shared.SavingsLedger` (what replays saved).

    An entry whose `expires_at` has passed is gone: `get` answers None and iteration skips it;
    `purge_expired()` (optional) removes such entries for good and says how many."""

    location: str

    def get(self, key: str) -> Entry | None: ...
    def put(self, entry: Entry) -> None: ...
    def put_many(self, entries: Iterable[Entry]) -> int: ...
    def delete(self, key: str) -> bool: ...
    def iter_keys(self) -> Iterator[str]: ...
    def iter_entries(self) -> Iterator[Entry]: ...
    def iter_requests(self) -> Iterator[tuple[str, dict]]:
        """(key, canonical request) of every entry: what the closest-recording diff scans."""
        ...

    def stats(self) -> StoreStats: ...
    def close(self) -> None: ...
    def __len__(self) -> int: ...
    def __contains__(self, key: object) -> bool: ...


class CheckedWrites:
    """The write verbs every backend shares: each entry passes `refuse_secrets` exactly once, here,
    before the backend's `_write_entries` sees it. A backend subclasses this and never overrides
    `put`/`put_many`, so no write can skip the check."""

    def put(self, entry: Entry) -> None:
        self.put_many([entry])

    def put_many(self, entries: Iterable[Entry]) -> int:
        """Write entries in one transaction: all of them or, if any is refused, none."""
        batch = list(entries)
        for entry in batch:
            # Walks the dataclass itself (no deep copy via to_dict()); an entry the proxy checked before
            # answering remembers it and passes at once (see refuse_secrets).
            refuse_secrets(entry)
        if not batch:
            return 0
        self._write_entries(batch)
        return len(batch)

    def _write_entries(self, entries: list[Entry]) -> None:
        """Write checked entries atomically (all or none)."""
        raise NotImplementedError


# The name callers outside the store (the pytest plugin's cassette store) use for the same check.
check_no_secret = refuse_secrets


def check_namespace(name: str) -> str:
    """`name` if it can name a namespace (letters, digits, `.`, `_`, `-`; up to 64), else StoreError."""
    if not _NAMESPACE.fullmatch(name):
        raise StoreError(
            f"namespace {name[:80]!r} cannot name a namespace: use letters, digits, '.', '_' and '-' "
            "(up to 64, starting with a letter or digit), e.g. team-search or ci.main"
        )
    return name


_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*)://")


def display_location(target: str) -> str:
    """`target` safe to print or log: a URL's password is replaced by `***`."""
    if not _SCHEME.match(target):
        return target
    parts = urlsplit(target)
    if parts.password is None:
        return target
    user = parts.username or ""
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{user}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
