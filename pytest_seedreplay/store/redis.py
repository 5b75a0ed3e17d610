"""The store on a Redis server (`--store redis://host:port/db`): the same verbs as `DiskStore`.

Layout under a key prefix (default `seedreplay:`, or `?prefix=NAME:` in the URL; `?namespace=NAME`
or `--namespace NAME` appends `ns:NAME:`):
  `<prefix>entry:<key>`  a hash with fields `head` (request + metadata) and `tail` (the answer),
                         the same bytes `pack_head`/`pack_tail` produce for the disk store;
  `<prefix>keys`         a sorted set of every key (score 0), the index that iteration pages through;
  `<prefix>expiry`       a sorted set of the keys recorded with a TTL, scored by when they expire
                         (the entry hash itself carries a Redis expiry; the index is swept lazily);
  `<prefix>flight:<key>` the lock of a key whose upstream call a proxy is making (SET NX PX), and a
                         pub/sub channel of the same name that says when it ends;
  `<prefix>failed:<key>` what that call's failure was, for the proxies that waited on it;
  `<prefix>savings`      a hash of what replays saved, added up by every proxy.
A write or delete touches entry and index in one MULTI/EXEC transaction, so readers never see half an
entry. Iteration pages the index by key (ZRANGEBYLEX after the last key seen): bounded memory like
SCAN, but every key exactly once and in order, which SCAN does not promise while the keyspace changes.

Every Redis call is bounded (connect 2 s, read 3 s unless the URL says `socket_timeout=`...); a server
that does not answer is a `StoreUnavailable`, which the proxy rides out (see proxy/outage.py).
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ..core.entry import Entry
from .base import CheckedWrites, StoreError, StoreStats, StoreUnavailable, check_namespace, display_location
from .codec import entry_from_parts, pack_head, pack_tail, unpack_head
from .shared import FAILED, FREE, HELD, LEFT_FOR, Waited, failure_bytes, failure_from, savings_increments, savings_totals

DEFAULT_PREFIX = "seedreplay:"
PAGE = 500  # keys (or request heads) fetched per round trip while iterating
ENTRY_PAGE = 50  # whole entries fetched per round trip: bounds memory when answers are large
INSTALL_HINT = "pip install 'pytest-seedreplay[redis]'"
CONNECT_TIMEOUT = 2.0  # seconds; the URL's socket_connect_timeout= wins
READ_TIMEOUT = 3.0  # seconds a command may wait for its answer; the URL's socket_timeout= wins

# Drop the lock only if it is still ours, leave the failure (or clear an old one), wake the waiting.
_RELEASE = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
if ARGV[2] ~= '' then redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3]) else redis.call('DEL', KEYS[2]) end
redis.call('PUBLISH', KEYS[1], ARGV[2] ~= '' and ARGV[2] or 'free')
return 1
"""
_RENEW = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
return redis.call('PEXPIRE', KEYS[1], ARGV[2])
"""
# Take the keys whose TTL has passed out of the index (their hashes are gone already, or go now).
_PURGE = """
local dead = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
for _, key in ipairs(dead) do
  redis.call('ZREM', KEYS[1], key)
  redis.call('ZREM', KEYS[2], key)
  redis.call('DEL', ARGV[2] .. key)
end
return #dead
"""


def _redis_module() -> Any:
    try:
        import redis
    except ImportError as exc:
        raise StoreError(f"--store redis://... needs the redis package: {INSTALL_HINT}") from exc
    return redis


def _split_prefix(url: str) -> tuple[str, str]:
    """(URL without our query parameters, the prefix); redis-py rejects unknown parameters."""
    client_url, prefix, _ = _split_url(url)
    return client_url, prefix


def _split_url(url: str) -> tuple[str, str, str | None]:
    """(URL without our `prefix` and `namespace` query parameters, the prefix, the namespace)."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    prefix = next((v for k, v in query if k == "prefix"), DEFAULT_PREFIX)
    namespace = next((v for k, v in query if k == "namespace"), None) or None
    rest = urlencode([(k, v) for k, v in query if k not in ("prefix", "namespace")])
    return urlunsplit((parts.scheme, parts.netloc, parts.path, rest, parts.fragment)), prefix, namespace


def _with_namespace(location: str, namespace: str) -> str:
    parts = urlsplit(location)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "namespace"]
    query.append(("namespace", namespace))
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query, safe=":"), parts.fragment))


class RedisStore(CheckedWrites):
    """Entries in a Redis database; MULTI/EXEC transactions keep each entry and the index in step."""

    memoizable = True  # a plain key -> entry map, as DiskStore.memoizable says
    remote = True  # reads cross a network: the proxy makes them off its event loop

    def __init__(self, url: str, prefix: str | None = None, namespace: str | None = None):
        redis = _redis_module()
        self._errors = redis
        client_url, url_prefix, url_namespace = _split_url(url)
        self.namespace = namespace or url_namespace
        self.location = display_location(url)
        self.prefix = prefix if prefix is not None else url_prefix
        if self.namespace:
            self.location = _with_namespace(self.location, check_namespace(self.namespace))
            self.prefix += f"ns:{self.namespace}:"
        self._index = f"{self.prefix}keys"
        self._expiry = f"{self.prefix}expiry"
        self._ledger = f"{self.prefix}savings"
        try:
            # One immediate retry on a broken connection: the first command after a server restart
            # reconnects instead of failing. Never a retry on a timeout: that would double the wait.
            from redis.backoff import NoBackoff
            from redis.retry import Retry

            retry = Retry(NoBackoff(), 1, supported_errors=(redis.ConnectionError,))
            self._redis = redis.Redis.from_url(
                client_url, socket_connect_timeout=CONNECT_TIMEOUT, socket_timeout=READ_TIMEOUT, retry=retry
            )
            self._redis.ping()
        except (redis.RedisError, ValueError) as exc:
            raise StoreError(
                f"cannot open the store at {self.location} ({exc}); is redis-server running and the URL right? "
                "expected redis://[[user]:password@]host[:port][/db]"
            ) from exc
        self._refuse_evicting_server()
        self._release = self._redis.register_script(_RELEASE)
        self._renew = self._redis.register_script(_RENEW)
        self._purge = self._redis.register_script(_PURGE)

    @contextlib.contextmanager
    def _talking(self) -> Iterator[None]:
        """A server that does not answer becomes StoreUnavailable, saying which server and why."""
        try:
            yield
        except (self._errors.ConnectionError, self._errors.TimeoutError) as exc:
            raise StoreUnavailable(f"the Redis server at {self.location} does not answer ({exc})") from None

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
        with self._talking():
            head, tail = self._redis.hmget(self._entry_key(key), ["head", "tail"])
        if head is None or tail is None:
            return None
        return entry_from_parts(head, tail, self._where(key))

    def _write_entries(self, entries: list[Entry]) -> None:
        """One MULTI/EXEC: all of them or none."""
        parts = [(entry.key, pack_head(entry), pack_tail(entry), entry.expires_at) for entry in entries]
        with self._talking(), self._redis.pipeline(transaction=True) as pipe:
            for key, head, tail, expires_at in parts:
                pipe.hset(self._entry_key(key), mapping={"head": head, "tail": tail})
                pipe.zadd(self._index, {key: 0})
                if expires_at is None:
                    pipe.persist(self._entry_key(key))
                    pipe.zrem(self._expiry, key)
                else:
                    pipe.pexpireat(self._entry_key(key), int(expires_at * 1000))
                    pipe.zadd(self._expiry, {key: expires_at})
            pipe.execute()

    def delete(self, key: str) -> bool:
        with self._talking(), self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(self._entry_key(key))
            pipe.zrem(self._index, key)
            pipe.zrem(self._expiry, key)
            deleted, _, _ = pipe.execute()
        return bool(deleted)

    def purge_expired(self) -> int:
        """Take the entries past their `expires_at` (--ttl) out of the index; how many went."""
        with self._talking():
            return int(self._purge(keys=[self._index, self._expiry], args=[time.time(), f"{self.prefix}entry:"]))

    def _pages(self, size: int = PAGE) -> Iterator[list[str]]:
        """Keys in sorted order, `size` at a time, resuming after the last key of the previous page."""
        start = "-"
        while True:
            with self._talking():
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
            with self._talking(), self._redis.pipeline(transaction=False) as pipe:
                for key in page:
                    pipe.hmget(self._entry_key(key), ["head", "tail"])
                rows = pipe.execute()
            for key, (head, tail) in zip(page, rows):
                if head is not None and tail is not None:  # deleted since the key was listed
                    yield entry_from_parts(head, tail, self._where(key))

    def iter_requests(self) -> Iterator[tuple[str, dict]]:
        for page in self._pages():
            with self._talking(), self._redis.pipeline(transaction=False) as pipe:
                for key in page:
                    pipe.hget(self._entry_key(key), "head")
                heads = pipe.execute()
            for key, head in zip(page, heads):
                if head is not None:
                    yield key, unpack_head(head, self._where(key))["request"]

    def stats(self) -> StoreStats:
        """Entry count (O(log n)) and the bytes of their stored heads and answers (one pass over the index)."""
        total = 0
        for page in self._pages():
            with self._talking(), self._redis.pipeline(transaction=False) as pipe:
                for key in page:
                    pipe.hstrlen(self._entry_key(key), "head")
                    pipe.hstrlen(self._entry_key(key), "tail")
                total += sum(pipe.execute())
        return StoreStats(entries=len(self), bytes=total, location=self.location)

    # --- shared flights and the savings ledger (see shared.py) ------------------------------------

    def _flight(self, key: str) -> str:
        return f"{self.prefix}flight:{key}"

    def _failed(self, key: str) -> str:
        return f"{self.prefix}failed:{key}"

    def claim(self, key: str, expiry: float) -> str | None:
        token = uuid.uuid4().hex
        with self._talking():
            return token if self._redis.set(self._flight(key), token, nx=True, px=_ms(expiry)) else None

    def renew(self, key: str, token: str, expiry: float) -> bool:
        with self._talking():
            return bool(self._renew(keys=[self._flight(key)], args=[token, _ms(expiry)]))

    def release(self, key: str, token: str, failure: dict[str, Any] | None = None) -> None:
        left = failure_bytes(failure) if failure is not None else b""
        with self._talking():
            self._release(keys=[self._flight(key), self._failed(key)], args=[token, left, _ms(LEFT_FOR)])

    def wait_for(self, key: str, timeout: float) -> Waited:
        """Subscribe first, then look: a release before the look is seen by it, one after by the
        message. A holder that dies sends none: the wait looks again when its lock expires."""
        deadline = time.monotonic() + timeout
        with self._talking():
            pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
            try:
                pubsub.subscribe(self._flight(key))
                waited, expires_in = self._flight_state(key)
                while waited.state == HELD:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return waited
                    message = pubsub.get_message(timeout=min(left, expires_in + 0.005))
                    if message is not None and message.get("type") == "message":
                        data = message["data"]
                        return Waited(FREE) if data == b"free" else Waited(FAILED, failure_from(data))
                    waited, expires_in = self._flight_state(key)
                return waited
            finally:
                pubsub.close()

    def _flight_state(self, key: str) -> tuple[Waited, float]:
        """How the key's flight stands, and the seconds its lock has left (0 when there is none)."""
        with self._redis.pipeline(transaction=False) as pipe:
            pipe.pttl(self._flight(key))
            pipe.get(self._failed(key))
            left_ms, failed = pipe.execute()
        if left_ms > 0 or left_ms == -1:  # -1: a lock without expiry (not ours to set); look again in a second
            return Waited(HELD), left_ms / 1000 if left_ms > 0 else 1.0
        failure = failure_from(failed)
        return (Waited(FAILED, failure) if failure is not None else Waited(FREE)), 0.0

    def add_savings(self, tally: dict[str, Any]) -> None:
        increments = savings_increments(tally)
        if not increments:
            return
        with self._talking(), self._redis.pipeline(transaction=True) as pipe:
            pipe.hsetnx(self._ledger, "since", repr(time.time()))
            for name, value in increments.items():
                pipe.hincrby(self._ledger, name, value)
            pipe.execute()

    def savings(self) -> dict[str, Any]:
        with self._talking():
            raw = self._redis.hgetall(self._ledger)
        return savings_totals({k.decode(): v.decode() for k, v in raw.items()})

    def close(self) -> None:
        self._redis.close()

    def __len__(self) -> int:
        """Live entries: the index, less the keys past their TTL that no prune has swept yet."""
        with self._talking(), self._redis.pipeline(transaction=False) as pipe:
            pipe.zcard(self._index)
            pipe.zcount(self._expiry, "-inf", time.time())
            listed, expired = pipe.execute()
        return int(listed) - int(expired)

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str):
            return False
        with self._talking():
            return bool(self._redis.exists(self._entry_key(key)))

    def __enter__(self) -> RedisStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"RedisStore({self.location!r}, prefix={self.prefix!r})"


def _ms(seconds: float) -> int:
    return max(int(seconds * 1000), 1)
