"""The one store behind every feature: a few verbs over diskcache (process-safe, atomic), or Redis.

An entry is stored as one self-describing blob (see `pack_entry`):

    head length (u32 big-endian) | head | tail
    head = b"SRE" | entry format (u8) | JSON of everything but the answer (key, endpoint, request, ...)
    tail = codec (b"j" plain JSON, b"z" zlib JSON) | JSON of {"body": ...} or {"events": [...]}

The format byte sits at a fixed offset, so a store written by a newer seedreplay is recognised before
anything is parsed; and the request sits in the head, so `iter_requests` (the closest-recording scan)
never reads or decompresses an answer body. JSON rather than pickle: a store may be shared (a team
directory, a Redis server), and unpickling shared bytes would run whatever code they carry.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import os
import re
import sqlite3
import struct
import zlib
from dataclasses import dataclass
from typing import Any, BinaryIO, Iterable, Iterator, Protocol
from urllib.parse import urlsplit, urlunsplit

import diskcache

from . import __version__
from .constants import DEFAULT_CACHE_DIR, ENTRY_FORMAT, ENV_STORE
from .entry import Entry, SSEEvent
from .jsontext import compact_json_bytes
from .redact import SecretRefused, find_secret

UPGRADE_HINT = "upgrade seedreplay: pip install -U pytest-seedreplay"
REDIS_SCHEMES = ("redis", "rediss", "unix")
ACCEPTED_STORES = (
    "a directory path (diskcache), file:///path, or redis://[[user]:password@]host[:port][/db] "
    "(also rediss:// and unix:///path/to/redis.sock; add ?prefix=NAME: to share one Redis database)"
)


class StoreError(ValueError):
    """The store cannot be opened or read; the message says what to do next."""


class EntryFormatError(StoreError):
    """A stored entry was written in a format this seedreplay does not know."""


class StoreBusy(StoreError):
    """Another process held the store's write lock for longer than the timeout."""


@dataclass
class StoreStats:
    entries: int
    bytes: int
    location: str


class Store(Protocol):
    """What the proxy, the cache CLI, cassettes and the fine-tune exporter need from a store.

    Optional: a class attribute `memoizable = True` says the store is a plain key -> entry map (see
    `DiskStore.memoizable`); without it the proxy calls `get` once per request and answers only
    after `put` returned."""

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


def check_no_secret(entry: Entry) -> None:
    """Raise `SecretRefused` naming the field (e.g. `entry.request.messages[0].content`) of a credential."""
    where = find_secret(entry, "entry")  # walks the dataclass itself: no deep copy via to_dict()
    if where:
        raise SecretRefused(where)


# ---------------------------------------------------------------- entry <-> bytes (shared by backends)

_MAGIC = b"SRE"
_LENGTH = struct.Struct(">I")
_ANSWER_FIELDS = ("body", "events")
_COMPRESS_FROM = 512  # bytes of answer JSON; below this zlib's header costs more than it saves


def _json_bytes(value: Any, what: str) -> bytes:
    try:
        return compact_json_bytes(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"cannot store entry: its {what} is not JSON ({exc})") from exc


def pack_head(entry: Entry) -> bytes:
    """Magic, format byte and the JSON of everything except the answer (small; what scans read)."""
    if not isinstance(entry.key, str) or not entry.key:
        raise ValueError(f"cannot store entry: key must be a non-empty string, got {entry.key!r}")
    if entry.format != ENTRY_FORMAT:
        raise EntryFormatError(
            f"cannot store entry {entry.key}: it claims entry format {entry.format}, "
            f"this seedreplay {__version__} writes format {ENTRY_FORMAT}"
        )
    meta = {f.name: getattr(entry, f.name) for f in dataclasses.fields(entry) if f.name not in _ANSWER_FIELDS}
    return _MAGIC + bytes([ENTRY_FORMAT]) + _json_bytes(meta, "request or metadata")


def pack_tail(entry: Entry) -> bytes:
    """The answer: the body of a plain response or the SSE events of a streamed one."""
    if entry.events is not None:
        answer = {"events": [dataclasses.asdict(e) if isinstance(e, SSEEvent) else dict(e) for e in entry.events]}
    else:
        answer = {"body": entry.body}
    data = _json_bytes(answer, "response")
    if len(data) >= _COMPRESS_FROM:
        return b"z" + zlib.compress(data, 6)
    return b"j" + data


def pack_entry(entry: Entry) -> bytes:
    head = pack_head(entry)
    return _LENGTH.pack(len(head)) + head + pack_tail(entry)


def unpack_head(head: bytes, where: str) -> dict[str, Any]:
    """The head's fields; a clear error for a newer format or for bytes seedreplay never wrote."""
    if head[:3] != _MAGIC or len(head) < 4:
        raise _not_ours(where)
    version = head[3]
    if version > ENTRY_FORMAT:
        raise EntryFormatError(
            f"{where} uses entry format {version}, written by a newer seedreplay; this seedreplay "
            f"{__version__} reads entry format {ENTRY_FORMAT} only: {UPGRADE_HINT}"
        )
    with _damage_reported(where):
        return json.loads(head[4:])


def unpack_tail(tail: bytes, where: str) -> dict[str, Any]:
    codec, data = tail[:1], tail[1:]
    if codec not in (b"z", b"j"):
        raise EntryFormatError(f"{where} has an unknown answer encoding {codec!r}: {UPGRADE_HINT}")
    with _damage_reported(where):
        return json.loads(zlib.decompress(data) if codec == b"z" else data)


def entry_from_parts(head: bytes, tail: bytes, where: str) -> Entry:
    data = unpack_head(head, where)
    data.update(unpack_tail(tail, where))
    with _damage_reported(where):
        return Entry.from_dict(data)


@contextlib.contextmanager
def _damage_reported(where: str) -> Iterator[None]:
    # Bytes that carry our magic but do not decode were damaged outside seedreplay (disk, hand edits).
    try:
        yield
    except (ValueError, TypeError, zlib.error) as exc:
        raise EntryFormatError(f"{where} is damaged and cannot be read ({exc}); delete it and record it again") from exc


def unpack_entry(blob: bytes, where: str) -> Entry:
    if not isinstance(blob, (bytes, bytearray, memoryview)):
        raise _not_ours(where)
    head_end = _LENGTH.size + _blob_head_length(blob[: _LENGTH.size], where)
    return entry_from_parts(blob[_LENGTH.size : head_end], blob[head_end:], where)


def _blob_head_length(prefix: bytes, where: str) -> int:
    if len(prefix) < _LENGTH.size:
        raise _not_ours(where)
    return _LENGTH.unpack(prefix)[0]


def _not_ours(where: str) -> EntryFormatError:
    return EntryFormatError(
        f"{where} is not a seedreplay entry (unrecognised bytes); the store holds data written by "
        "another program or an older pre-release: point --cache-dir/--store at a seedreplay store"
    )


def _read_head(value: bytes | BinaryIO, where: str) -> bytes:
    """The head of a stored blob, reading only its first bytes when it is a file."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        stream: BinaryIO = io.BytesIO(value)
    elif hasattr(value, "read"):
        stream = value
    else:
        raise _not_ours(where)
    try:
        length = _blob_head_length(stream.read(_LENGTH.size), where)
        return stream.read(length)
    finally:
        stream.close()


# ---------------------------------------------------------------- diskcache backend

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


class DiskStore:
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

    def put(self, entry: Entry) -> None:
        check_no_secret(entry)
        blob = pack_entry(entry)
        self._write(lambda: self._cache.set(entry.key, blob))

    def put_many(self, entries: Iterable[Entry]) -> int:
        """Write entries in one transaction: all of them or, if any is refused, none."""
        blobs = []
        for entry in entries:
            check_no_secret(entry)
            blobs.append((entry.key, pack_entry(entry)))

        def write_all() -> None:
            with self._cache.transact():
                for key, blob in blobs:
                    self._cache.set(key, blob)

        self._write(write_all)
        return len(blobs)

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


# ---------------------------------------------------------------- choosing a store

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


def store_at(target: str | os.PathLike[str]) -> Store:
    """The store a `--cache-dir`/`--store`/`SEEDREPLAY_STORE` value names: a directory or a URL."""
    target = os.fspath(target)
    match = _SCHEME.match(target)
    if match is None:
        if not target.strip():
            raise StoreError(f"empty store location; accepted: {ACCEPTED_STORES}")
        return DiskStore(target)
    scheme = match.group(1).lower()
    if scheme in REDIS_SCHEMES:
        from .store_redis import RedisStore  # imported here: redis is an optional dependency

        return RedisStore(target)
    if scheme == "file":
        parts = urlsplit(target)
        if parts.netloc not in ("", "localhost"):
            raise StoreError(f"cannot use {target!r}: file:// stores must be local (file:///path)")
        return DiskStore(parts.path)
    raise StoreError(f"unknown store {display_location(target)!r} (scheme {scheme}://); accepted: {ACCEPTED_STORES}")


def store_target(cache_dir: str | None = None, store_url: str | None = None) -> str:
    """What `--store URL`, else `--cache-dir`, else $SEEDREPLAY_STORE, else the default dir names."""
    return store_url or cache_dir or os.environ.get(ENV_STORE) or DEFAULT_CACHE_DIR


def open_store(cache_dir: str | None = None, store_url: str | None = None) -> Store:
    """The store the flags (or $SEEDREPLAY_STORE, or the default dir) name."""
    return store_at(store_target(cache_dir, store_url))
