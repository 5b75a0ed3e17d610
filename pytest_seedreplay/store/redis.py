"""The store on a Redis server (`--store redis://host:port/db`): the same verbs as `DiskStore`.

Layout under a key prefix (default `seedreplay:`, or `?prefix=NAME:` in the URL):
  `<prefix>entry:<key>`  a hash with fields `head` (request + metadata) and `tail` (the answer),
                         the same bytes `pack_head`/`pack_tail` produce for the disk store;
  `<prefix>keys`         a sorted set of every key (score 0), the index that iteration pages through.
A write or delete touches both in one MULTI/EXEC transaction, so readers never see half an entry.
Iteration pages the index by key (ZRANGEBYLEX after the last key seen): bounded memory like SCAN, but
every key exactly once and in order, which SCAN does not promise while the keyspace changes.
"""

from __future__ import annotations

from typing import Any, Iterator
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ..core.entry import Entry
from .base import CheckedWrites, StoreError, StoreStats, display_location
from .codec import entry_from_parts, pack_head, pack_tail, unpack_head

DEFAULT_PREFIX = "seedreplay:"
PAGE = 500  # keys (or request heads) fetched per round trip while iterating
ENTRY_PAGE = 50  # whole entries fetched per round trip: bounds memory when answers are large
INSTALL_HINT = "pip install 'pytest-seedreplay[redis]'"


def _redis_module() -> Any:
    try:
        import redis
    except ImportError as exc:
        raise StoreError(f"--store redis://... needs the redis package: {INSTALL_HINT}") from exc
    return redis


def _split_prefix(url: str) -> tuple[str, str]:
    """(URL without our `prefix` query parameter, the prefix); redis-py rejects unknown parameters."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    prefix = next((v for k, v in query if k == "prefix"), DEFAULT_PREFIX)
    rest = urlencode([(k, v) for k, v in query if k != "prefix"])
    return urlunsplit((parts.scheme, parts.netloc, parts.path, rest, parts.fragment)), prefix


class RedisStore(CheckedWrites):
    """Entries in a Redis database; MULTI/EXEC transactions keep each entry and the index in step."""

    memoizable = True  # a plain key -> entry map, as DiskStore.memoizable says

    def __init__(self, url: str, prefix: str | None = None):
        redis = _redis_module()
        self.location = display_location(url)
        client_url, url_prefix = _split_prefix(url)
        self.prefix = prefix if prefix is not None else url_prefix
        self._index = f"{self.prefix}keys"
        try:
            self._redis = redis.Redis.from_url(client_url, socket_connect_timeout=5, socket_timeout=60)
            self._redis.ping()
        except (redis.RedisError, ValueError) as exc:
            raise StoreError(
                f"cannot open the store at {self.location} ({exc}); is redis-server running and the URL right? "
                "expected redis://[[user]:password@]host[:port][/db]"
            ) from exc
        self._refuse_evicting_server()

    def _refuse_evicting_server(self) -> None:
        # An allkeys-* policy lets Redis drop recordings silently when memory runs out.
        try:
            policy = self._redis.info("memory").get("maxmemory_policy", "")
        except Exception:  # INFO may be forbidden by ACLs; then we cannot tell, and do not guess
            return
        if str(policy).startswith("allkeys-"):
            raise StoreError(
                f"the Redis server at {self.location} has maxmemory-policy {policy}, which evicts keys "
                "silently when memory is full; recordings must not vanish: set maxmemory-policy to "
                "noeviction (or a volatile-* policy) or use a dedicated Redis"
            )

    def _entry_key(self, key: str) -> str:
        return f"{self.prefix}entry:{key}"

    def _where(self, key: str) -> str:
        return f"entry {key} in {self.location}"

    def get(self, key: str) -> Entry | None:
        head, tail = self._redis.hmget(self._entry_key(key), ["head", "tail"])
        if head is None or tail is None:
            return None
        return entry_from_parts(head, tail, self._where(key))

    def _write_entries(self, entries: list[Entry]) -> None:
        """One MULTI/EXEC: all of them or none."""
        parts = [(entry.key, pack_head(entry), pack_tail(entry)) for entry in entries]
        with self._redis.pipeline(transaction=True) as pipe:
            for key, head, tail in parts:
                pipe.hset(self._entry_key(key), mapping={"head": head, "tail": tail})
                pipe.zadd(self._index, {key: 0})
            pipe.execute()

    def delete(self, key: str) -> bool:
        with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(self._entry_key(key))
            pipe.zrem(self._index, key)
            deleted, _ = pipe.execute()
        return bool(deleted)

    def _pages(self, size: int = PAGE) -> Iterator[list[str]]:
        """Keys in sorted order, `size` at a time, resuming after the last key of the previous page."""
        start = "-"
        while True:
            page = [k.decode() for k in self._redis.zrangebylex(self._index, start, "+", start=0, num=size)]
            if not page:
                return
            yield page
            start = "(" + page[-1]

    def iter_keys(self) -> Iterator[str]:
        for page in self._pages():
            yield from page

    def iter_entries(self) -> Iterator[Entry]:
        for page in self._pages(ENTRY_PAGE):
            with self._redis.pipeline(transaction=False) as pipe:
                for key in page:
                    pipe.hmget(self._entry_key(key), ["head", "tail"])
                rows = pipe.execute()
            for key, (head, tail) in zip(page, rows):
                if head is not None and tail is not None:  # deleted since the key was listed
                    yield entry_from_parts(head, tail, self._where(key))

    def iter_requests(self) -> Iterator[tuple[str, dict]]:
        for page in self._pages():
            with self._redis.pipeline(transaction=False) as pipe:
                for key in page:
                    pipe.hget(self._entry_key(key), "head")
                heads = pipe.execute()
            for key, head in zip(page, heads):
                if head is not None:
                    yield key, unpack_head(head, self._where(key))["request"]

    def stats(self) -> StoreStats:
        """Entry count (O(1)) and the bytes of their stored heads and answers (one pass over the index)."""
        total = 0
        for page in self._pages():
            with self._redis.pipeline(transaction=False) as pipe:
                for key in page:
                    pipe.hstrlen(self._entry_key(key), "head")
                    pipe.hstrlen(self._entry_key(key), "tail")
                total += sum(pipe.execute())
        return StoreStats(entries=len(self), bytes=total, location=self.location)

    def close(self) -> None:
        self._redis.close()

    def __len__(self) -> int:
        return int(self._redis.zcard(self._index))

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and bool(self._redis.exists(self._entry_key(key)))

    def __enter__(self) -> RedisStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"RedisStore({self.location!r}, prefix={self.prefix!r})"

