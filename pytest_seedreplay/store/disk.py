"""The store in a directory: diskcache (SQLite rows, process-safe, atomic, never evicts)."""

from __future__ import annotations

import io
import logging
import os
import pickle
import re
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import diskcache

from ..core.constants import ENV_STORE
from ..core.entry import Entry
from .base import ACCEPTED_STORES, CheckedWrites, CorruptEntry, StoreBusy, StoreError, StoreStats, check_namespace
from .codec import _read_head, foreign_entry, pack_entry, unpack_entry, unpack_head
from .shared import (
    FAILED,
    FREE,
    HELD,
    LEFT_FOR,
    Waited,
    failure_bytes,
    failure_from,
    poll_until,
    savings_increments,
    savings_totals,
)

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
NAMESPACES = "namespaces"  # DIR/namespaces/NAME holds the recordings of --namespace NAME
SHARED = "shared"  # DIR/shared: the flight locks and the savings ledger of the proxies on DIR
# The side cache of locks and tallies: small rows that come and go; expired locks are culled as it writes.
SHARED_SETTINGS: dict[str, Any] = {
    "eviction_policy": "none",
    "size_limit": 2**62,
    "statistics": 0,
    "sqlite_journal_mode": "wal",
    # No fsync: a lock or tally lost to a power cut costs one extra upstream call or a few counts, and
    # creating the side cache then takes ~25 ms instead of ~90-150 ms (on the first miss of a new store).
    "sqlite_synchronous": 0,
}


log = logging.getLogger("seedreplay.store")
T = TypeVar("T")

# The only file names diskcache gives a file-backed value (`Disk.filename`): two levels of hex folders
# and a random hex name. Anything else in a row's `filename` was planted.
_VALUE_FILE = re.compile(r"[0-9a-f]{2}" + re.escape(os.sep) + r"[0-9a-f]{2}" + re.escape(os.sep) + r"[0-9a-f]{28}\.val")


# Live rows whose key is not text: a pickled key (a BLOB) or a number, none of which the store writes.
# SQLite orders numbers < text < BLOBs, so both are ranges of the (key, raw) index at its two ends:
# counting them reads those rows only, nothing is unpickled. (`+expire_time` keeps the planner on that
# index rather than scanning expire_time's.) A text key flagged as pickled, which diskcache never
# writes either, would cost a scan of every row to find, and is still counted.
_FOREIGN_KEYS = (
    "SELECT (SELECT COUNT(*) FROM Cache WHERE key < '' AND (+expire_time IS NULL OR +expire_time > :now))"
    " + (SELECT COUNT(*) FROM Cache WHERE key >= X'' AND (+expire_time IS NULL OR +expire_time > :now))"
)


# diskcache's own read of a live str key (`Cache.get`'s fast path), by which the store tells a missing
# row (a miss: this one query) from a row whose file vanished under it (read again).
_LIVE_ROW = "SELECT mode, filename, value FROM Cache WHERE key = ? AND raw = 1 AND (expire_time IS NULL OR expire_time > ?)"


# A claim that reads the store first, in one statement of the side cache with the store's own
# database attached as `store`: the row diskcache's `add(("lock", key), token, expire=...)` writes
# (or its update of an expired one: an expired row counts as none), put only where `store` holds no
# live entry for the key. diskcache's triggers keep the side cache's count and size as `add` does.
_CLAIM_UNLESS_STORED = """
INSERT INTO main.Cache (key, raw, store_time, expire_time, access_time, access_count, tag, size, mode, filename, value)
SELECT :lock, 0, :now, :until, :now, 0, NULL, 0, 1, NULL, :token
WHERE NOT EXISTS (SELECT 1 FROM store.Cache WHERE key = :key AND raw = 1 AND (expire_time IS NULL OR expire_time > :now))
ON CONFLICT (key, raw) DO UPDATE SET store_time = :now, expire_time = :until, access_time = :now, access_count = 0,
  tag = NULL, size = 0, mode = 1, filename = NULL, value = :token
WHERE expire_time IS NOT NULL AND expire_time <= :now
"""


class ForeignRow(Exception):
    """A row seedreplay never writes: a pickled key or value, a text file, a file outside the cache."""


class ForeignKey:
    """What iteration yields for a row whose key was pickled: it is skipped, never unpickled."""

    def __repr__(self) -> str:
        return "<foreign key>"


FOREIGN_KEY = ForeignKey()


class StrictDisk(diskcache.Disk):
    """diskcache's serializer, less pickle and less any file outside the cache directory.

    We only ever write str keys (the store) or keys we made (the shared rows: pickled tuples of our
    own strings, looked up by their bytes, never loaded), and values of bytes, str, int or float:
    raw in the row, or bytes in a file diskcache named. Plain diskcache unpickles a row flagged as
    pickled and deletes whatever path a row names, so anyone able to write `cache.db` (a shared
    team or CI directory) could run code or delete files as the reader. Here such a row is foreign:
    reading it raises ForeignRow, and its file is never opened nor deleted.
    """

    def __init__(self, directory: str, min_file_size: int = 0, pickle_protocol: int = 0) -> None:
        super().__init__(directory, min_file_size, pickle_protocol)
        self._real_directory = os.path.realpath(directory)
        self.foreign = 0  # foreign rows met (counted, skipped)

    def get(self, key: Any, raw: bool) -> Any:
        if not raw:
            self.foreign += 1
            return FOREIGN_KEY
        return super().get(key, raw)

    def store(self, value: Any, read: bool, key: Any = diskcache.core.UNKNOWN) -> Any:
        # Never a pickle, and text only short enough for the row: text files are refused on reading.
        if read or type(value) not in (bytes, str, int, float) or (type(value) is str and len(value) >= self.min_file_size):
            raise TypeError(f"the store writes bytes, short str, int or float only, not this {type(value).__name__}")
        return super().store(value, read, key=key)

    def fetch(self, mode: int, filename: str | None, value: Any, read: bool) -> Any:
        if mode == diskcache.core.MODE_RAW or (mode == diskcache.core.MODE_BINARY and self._ours(filename)):
            return super().fetch(mode, filename, value, read)
        self.foreign += 1
        raise ForeignRow(f"a diskcache row of mode {mode}, or naming a file outside the cache: never read")

    def remove(self, file_path: str) -> None:
        if self._ours(file_path):
            super().remove(file_path)
        else:
            self.foreign += 1
            log.warning("left %r alone: a row in %s named a file seedreplay never wrote", file_path, self._directory)

    def _ours(self, filename: str | None) -> bool:
        """A file diskcache named, inside the cache directory (no link leads it out)."""
        if not isinstance(filename, str) or not _VALUE_FILE.fullmatch(filename):
            return False
        real = os.path.realpath(os.path.join(self._directory, filename))
        return real.startswith(self._real_directory + os.sep)


def _open_cache(directory: str) -> diskcache.Cache:
    path = os.path.expanduser(directory)
    if os.path.exists(path) and not os.path.isdir(path):
        raise StoreError(f"cannot use {directory!r} as a store: it is a file, not a directory; accepted: {ACCEPTED_STORES}")
    try:
        return diskcache.Cache(path, timeout=DISK_TIMEOUT, disk=StrictDisk, **DISK_SETTINGS)
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

    def __init__(self, directory: str | os.PathLike[str], namespace: str | None = None):
        self.root = os.fspath(directory)
        self.namespace = check_namespace(namespace) if namespace else None
        self.location = os.path.join(self.root, NAMESPACES, self.namespace) if self.namespace else self.root
        self._cache = _open_cache(self.location)
        self._shared_cache: diskcache.Cache | None = None
        self._shared_at_once: diskcache.Cache | None = None  # the same, never waiting for a lock (claim_now)
        self._claims = _ClaimConnections(self.location)  # read_or_claim's own connections to it
        self._lock_keys_match: bool | None = None  # see _lock_key

    def _where(self, key: str) -> str:
        return f"entry {key} in {self.location}"

    def _blob(self, key: str, read: bool = False) -> Any:
        """The stored value of `key` (bytes, or an open file with `read`), or None: a miss is one SQLite
        query. A file-backed value can vanish between the row lookup and its file open when another
        process overwrites the key: then the row is looked up again. (diskcache's `get` answers None
        for both, and telling them apart cost every miss a second query.)"""
        try:
            for _ in range(5):
                rows = self._cache._sql(_LIVE_ROW, (key, time.time())).fetchall()
                if not rows:
                    return None
                ((mode, filename, value),) = rows
                try:
                    return self._cache.disk.fetch(mode, filename, value, read)
                except OSError:  # its file went: the key was overwritten a moment ago
                    continue
            return self._cache.get(key, read=read)
        except ForeignRow as exc:
            raise foreign_entry(self._where(key), str(exc)) from None

    @property
    def foreign(self) -> int:
        """Rows met that seedreplay never writes (pickled, or naming a file outside the cache)."""
        return int(self._cache.disk.foreign)

    def get(self, key: str) -> Entry | None:
        blob = self._blob(key)
        return None if blob is None else unpack_entry(blob, self._where(key))

    def _write_entries(self, entries: list[Entry]) -> None:
        blobs = [(entry.key, pack_entry(entry), _expire(entry)) for entry in entries]
        if len(blobs) == 1:  # one set is one SQLite transaction already
            key, blob, expire = blobs[0]
            self._write(lambda: self._cache.set(key, blob, expire=expire))
            return

        def write_all() -> None:
            with self._cache.transact():
                for key, blob, expire in blobs:
                    self._cache.set(key, blob, expire=expire)

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
        """Every readable entry; a damaged or planted one is skipped with one logged line."""
        for key in self.iter_keys():
            try:
                entry = self.get(key)
            except CorruptEntry as exc:
                _skipped(exc)
                continue
            if entry is not None:  # deleted since the key was listed
                yield entry

    def iter_requests(self) -> Iterator[tuple[str, dict]]:
        for key in self.iter_keys():
            try:
                value = self._blob(key, read=True)
                if value is not None:
                    yield key, unpack_head(_read_head(value, self._where(key)), self._where(key))["request"]
            except CorruptEntry as exc:
                _skipped(exc)

    def purge_expired(self) -> int:
        """Remove the entries past their `expires_at` (--ttl); how many went."""
        return int(self._write(self._cache.expire))

    def stats(self) -> StoreStats:
        return StoreStats(entries=len(self), bytes=self._cache.volume(), location=self.location)

    # --- shared flights and the savings ledger (see shared.py), in DIR/shared ---------------------

    def _shared(self) -> diskcache.Cache:
        if self._shared_cache is None:
            try:
                self._shared_cache = diskcache.Cache(
                    os.path.join(self.location, SHARED), timeout=DISK_TIMEOUT, disk=StrictDisk, **SHARED_SETTINGS
                )
            except (OSError, sqlite3.Error) as exc:
                raise StoreError(f"cannot open the shared state of the store at {self.location} ({exc})") from exc
        return self._shared_cache

    def claim(self, key: str, expiry: float) -> str | None:
        token = uuid.uuid4().hex
        # `add` inserts only where no live row is: atomic across processes, an expired lock counts as none.
        return token if self._write(lambda: self._shared().add(("lock", key), token, expire=expiry)) else None

    def claim_now(self, key: str, expiry: float) -> str | None:
        """`claim` without waiting on another process's write: StoreBusy at once while one is under
        way. A caller on an event loop claims so (one SQLite transaction, no fsync: ~0.1 ms), and
        from a thread only when busy: a thread hop costs a miss more than the claim itself."""
        token = uuid.uuid4().hex
        added = self._at_once(lambda shared: shared.add(("lock", key), token, expire=expiry, retry=False))
        return token if added else None

    def read_or_claim(self, key: str, expiry: float) -> tuple[Entry | None, str | None]:
        self._shared()
        try:
            return self._read_or_claim(self._claims.connection(DISK_TIMEOUT), key, expiry)
        except sqlite3.OperationalError as exc:
            raise StoreBusy(
                f"the shared state of the store at {self.location} stayed locked for {DISK_TIMEOUT:.0f} s ({exc}); "
                "retry, or look for a stuck seedreplay process"
            ) from None

    def read_or_claim_now(self, key: str, expiry: float) -> tuple[Entry | None, str | None]:
        """`read_or_claim` without waiting on another process's write (see `claim_now`)."""
        if self._shared_cache is None:  # creating the side cache may wait: from a thread first
            raise StoreBusy(f"the shared state of the store at {self.location} is not open yet")
        try:
            return self._read_or_claim(self._claims.connection(0), key, expiry)
        except sqlite3.OperationalError as exc:
            self._claims.drop(0)  # whatever failed, this thread's connection goes
            raise StoreBusy(f"the shared state of the store at {self.location} is busy ({exc})") from None

    def _read_or_claim(self, claims: sqlite3.Connection, key: str, expiry: float) -> tuple[Entry | None, str | None]:
        """One SQL statement, so one transaction of the side cache: its lock row goes in only where the
        store holds no live entry for the key, read with the side cache's write lock held. A holder
        writes its answer before it lets go of the key, so an answer this read misses lands under a
        claim (this one or another's), never unseen by both. A miss costs that statement alone (on
        a machine waking from idle, each statement and each call into diskcache costs ~0.1-0.2 ms);
        found nothing to claim, the entry is read (or the key is another's)."""
        assert self._shared_cache is not None
        token = uuid.uuid4().hex
        now = time.time()
        row = {"lock": self._lock_key(key), "key": key, "now": now, "until": now + expiry, "token": token}
        if claims.execute(_CLAIM_UNLESS_STORED, row).rowcount == 1:
            return None, token
        blob = self._blob(key)  # a damaged or planted row raises here, as `get` does; nothing was claimed
        return (unpack_entry(blob, self._where(key)) if blob is not None else None), None

    def _lock_key(self, key: str) -> bytes:
        """The bytes diskcache keys the row of `("lock", key)` by (`Disk.put`: a pickle, optimized by
        pickletools, ~11 µs). A pickle made without memo is the same bytes in ~1 µs: made so once
        checked against diskcache's own for this store (else diskcache's own, always)."""
        assert self._shared_cache is not None
        disk = self._shared_cache.disk
        if self._lock_keys_match is None:
            self._lock_keys_match = _pickled_lock(key, disk.pickle_protocol) == bytes(disk.put(("lock", key))[0])
        if self._lock_keys_match:
            return _pickled_lock(key, disk.pickle_protocol)
        return bytes(disk.put(("lock", key))[0])

    def _at_once(self, operation: Callable[[diskcache.Cache], T]) -> T:
        """`operation(side cache)` on a handle that never waits for a lock: StoreBusy at once while
        another connection writes, or while the side cache is not open yet (that may wait). Opening
        the handle itself writes settings, which may wait too: the proxy's warm-up opens it off its loop."""
        if self._shared_at_once is None:
            if self._shared_cache is None:  # opening the side cache may wait: from a thread (claim) first
                raise StoreBusy(f"the shared state of the store at {self.location} is not open yet")
            try:  # opening it writes its settings: busy too while another process writes
                # StrictDisk as everywhere: a claim culls expired rows, and plain diskcache would delete
                # whatever file a planted row names.
                self._shared_at_once = diskcache.Cache(os.path.join(self.location, SHARED), timeout=0, disk=StrictDisk)
            except (OSError, sqlite3.Error) as exc:
                raise StoreBusy(f"cannot open the shared state of the store at {self.location} at once ({exc})") from None
        try:
            return operation(self._shared_at_once)
        except diskcache.Timeout:
            raise StoreBusy(f"the shared state of the store at {self.location} is being written") from None
        except sqlite3.OperationalError as exc:
            # Whatever failed, this thread's connection (and any transaction it left open) goes.
            self._shared_at_once.close()
            raise StoreBusy(f"the shared state of the store at {self.location} is busy ({exc})") from None

    def renew(self, key: str, token: str, expiry: float) -> bool:
        shared = self._shared()

        def push_on() -> bool:
            with shared.transact():
                if _shared_value(shared, ("lock", key)) != token:
                    return False
                shared.set(("lock", key), token, expire=expiry)
                return True

        return bool(self._write(push_on))

    def release(self, key: str, token: str, failure: dict[str, Any] | None = None) -> None:
        shared = self._shared()

        def end() -> None:
            with shared.transact():
                if _shared_value(shared, ("lock", key)) != token:
                    return  # expired and taken by another proxy: its waiting proxies are its own
                shared.delete(("lock", key))
                if failure is not None:
                    shared.set(("failed", key), failure_bytes(failure), expire=LEFT_FOR)
                else:
                    shared.delete(("failed", key))
                # What expired goes here, off a miss's path: a claim by `read_or_claim` culls nothing.
                shared.expire()

        self._write(end)

    def wait_for(self, key: str, timeout: float) -> Waited:
        shared = self._shared()

        def check() -> Waited:
            if _shared_value(shared, ("lock", key)) is not None:
                return Waited(HELD)
            failure = failure_from(_shared_value(shared, ("failed", key)))
            return Waited(FAILED, failure) if failure is not None else Waited(FREE)

        return poll_until(check, timeout)

    def add_savings(self, tally: dict[str, Any]) -> None:
        shared = self._shared()
        increments = savings_increments(tally)

        def add() -> None:
            with shared.transact():
                if _tally(shared, ("savings", "since")) is None:
                    shared.set(("savings", "since"), time.time())
                for name, value in increments.items():
                    _tally(shared, ("savings", name))  # drops a planted non-number, so incr can add
                    shared.incr(("savings", name), value)

        if increments:
            self._write(add)

    def savings(self) -> dict[str, Any]:
        if self._shared_cache is None and not os.path.isdir(os.path.join(self.location, SHARED)):
            return savings_totals({})  # nothing was ever added: no need to create the side cache
        shared = self._shared()
        names = ("since", "cost_micro", "hits", "input_tokens", "output_tokens", "unpriced_hits")
        return savings_totals({name: _tally(shared, ("savings", name), drop=False) for name in names})

    def close(self) -> None:
        self._cache.close()
        self._claims.close()
        for cache in (self._shared_cache, self._shared_at_once):
            if cache is not None:
                cache.close()

    def __len__(self) -> int:
        """Live entries, as the listings show them: the rows less those past their TTL that no prune
        has swept yet, less the live rows whose key is not text (planted: `iter_keys` skips them)."""
        # diskcache counts expired rows until they are culled; its own index on expire_time counts them.
        now = time.time()
        (expired,) = self._cache._sql(
            "SELECT COUNT(*) FROM Cache WHERE expire_time IS NOT NULL AND expire_time <= ?", (now,)
        ).fetchone()
        (foreign,) = self._cache._sql(_FOREIGN_KEYS, {"now": now}).fetchone()
        return len(self._cache) - int(expired) - int(foreign)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key in self._cache

    def __enter__(self) -> DiskStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"DiskStore({self.location!r})"


def _pickled_lock(key: str, protocol: int) -> bytes:
    out = io.BytesIO()
    pickler = pickle.Pickler(out, protocol)
    pickler.fast = True  # no memo: what pickletools.optimize leaves of diskcache's pickle
    pickler.dump(("lock", key))
    return out.getvalue()


class _ClaimConnections:
    """`read_or_claim`'s SQLite connections to the side cache, the store's database attached: one per
    thread (as diskcache's own) and per busy timeout (0: StoreBusy at once; else wait so long)."""

    def __init__(self, location: str):
        self.location = location
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._guard = threading.Lock()

    def connection(self, timeout: float) -> sqlite3.Connection:
        mine: dict[float, sqlite3.Connection] = self._local.__dict__.setdefault("by_timeout", {})
        con = mine.get(timeout)
        if con is None:
            shared = os.path.join(self.location, SHARED, "cache.db")
            # check_same_thread off only so that `close` may close every thread's: each thread uses its own.
            con = sqlite3.connect(shared, timeout=timeout, isolation_level=None, check_same_thread=False)
            try:
                con.execute(f"PRAGMA synchronous = {SHARED_SETTINGS['sqlite_synchronous']}")  # as diskcache's
                con.execute("ATTACH DATABASE ? AS store", (os.path.join(self.location, "cache.db"),))
            except sqlite3.Error:
                con.close()
                raise
            mine[timeout] = con
            with self._guard:
                self._all.append(con)
        return con

    def drop(self, timeout: float) -> None:
        con = self._local.__dict__.get("by_timeout", {}).pop(timeout, None)
        if con is not None:
            with self._guard:
                self._all.remove(con)
            con.close()

    def close(self) -> None:
        with self._guard:
            connections, self._all = self._all, []
        for con in connections:
            con.close()
        self._local = threading.local()


def _shared_value(shared: diskcache.Cache, key: tuple[str, str]) -> Any:
    """A lock, failure or tally; a planted row in their place is dropped and reads as none."""
    try:
        return shared.get(key)
    except ForeignRow:
        log.warning("dropped a row seedreplay never wrote from %s", shared.directory)
        shared.delete(key)
        return None


def _tally(shared: diskcache.Cache, key: tuple[str, str], drop: bool = True) -> int | float | None:
    """A savings tally or its start time; anything else there was planted: read as none (and dropped)."""
    value = _shared_value(shared, key)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    if value is not None and drop:
        shared.delete(key)
    return None


def _skipped(exc: CorruptEntry) -> None:
    log.warning("skipped: %s", exc)


def _expire(entry: Entry) -> float | None:
    """Seconds the entry has left (diskcache's `expire`), or None when it never expires."""
    if entry.expires_at is None:
        return None
    return max(entry.expires_at - time.time(), 0.0)
