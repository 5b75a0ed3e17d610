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

On a Redis Cluster (`--store redis+cluster://host:port`, `rediss+cluster://` with TLS) the same names
carry hash tags, so that what one transaction or script touches shares a slot and nothing else does:
entries, `keys` and `expiry` are split into `BUCKETS` buckets by key, each bucket in its own slot
(`{<prefix>2a}entry:<key>`, `{<prefix>2a}keys`, ...): a write is one MULTI/EXEC in its bucket's slot,
and a namespace's entries spread over every node instead of filling one. A key's `flight:` lock and
its `failed:` note share the key's own slot (`<prefix>flight:{<key>}`). The releasing script wakes
the waiting with sharded pub/sub (SPUBLISH, Redis 7); an older cluster is polled instead. Iteration
merges the buckets' sorted pages: still every key once, in order. One node down fails only the keys
of its slots (`StoreUnavailable` with `partial` set); the proxy keeps serving the others.
"""

from __future__ import annotations

import contextlib
import heapq
import logging
import time
import uuid
import zlib
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ..core.entry import Entry
from .base import CheckedWrites, CorruptEntry, StoreError, StoreStats, StoreUnavailable, check_namespace, display_location
from .codec import entry_from_parts, pack_head, pack_tail, unpack_head
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

log = logging.getLogger(__name__)

DEFAULT_PREFIX = "seedreplay:"
PAGE = 500  # keys (or request heads) fetched per round trip while iterating
ENTRY_PAGE = 50  # whole entries fetched per round trip: bounds memory when answers are large
INSTALL_HINT = "pip install 'pytest-seedreplay[redis]'"
CLUSTER_SCHEMES = ("redis+cluster", "rediss+cluster")
BUCKETS = 64  # slots a cluster store's entries spread over; fixed for good: it places every key
CLUSTER_PAGE = 100  # keys per bucket and round trip while a cluster store's buckets are merged
CONNECT_TIMEOUT = 2.0  # seconds; the URL's socket_connect_timeout= wins
READ_TIMEOUT = 3.0  # seconds a command may wait for its answer; the URL's socket_timeout= wins

# Drop the lock only if it is still ours, leave the failure (or clear an old one), wake the waiting.
_RELEASE = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
if ARGV[2] ~= '' then redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3]) else redis.call('DEL', KEYS[2]) end
if ARGV[4] ~= '' then redis.call(ARGV[4], KEYS[1], ARGV[2] ~= '' and ARGV[2] or 'free') end
return 1
"""
# The entry's two fields if it is stored; else the lock, taken if free (1) or held by another (0).
_READ_OR_CLAIM = """
local answer = redis.call('HMGET', KEYS[1], 'head', 'tail')
if answer[1] and answer[2] then return answer end
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
return 0
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


def is_cluster_url(url: str) -> bool:
    return urlsplit(url).scheme.lower() in CLUSTER_SCHEMES


def _cluster_client_url(url: str, location: str) -> str:
    """`redis+cluster://h:p[/0]?...` as redis-py's cluster client takes it: `redis://h:p?...`."""
    parts = urlsplit(url)
    if parts.path not in ("", "/", "/0"):
        raise StoreError(
            f"cannot use {location}: a Redis Cluster has only database 0; drop {parts.path!r} from the URL "
            "(keep stores apart with ?prefix=NAME: or --namespace NAME)"
        )
    scheme = parts.scheme.lower().removesuffix("+cluster")
    return urlunsplit((scheme, parts.netloc, "", parts.query, parts.fragment))


class RedisStore(CheckedWrites):
    """Entries in a Redis database or a Redis Cluster; MULTI/EXEC transactions keep each entry and the
    index in step."""

    memoizable = True  # a plain key -> entry map, as DiskStore.memoizable says
    remote = True  # reads cross a network: the proxy makes them off its event loop

    def __init__(self, url: str, prefix: str | None = None, namespace: str | None = None):
        redis = _redis_module()
        self._errors = redis
        client_url, url_prefix, url_namespace = _split_url(url)
        self.cluster = is_cluster_url(url)
        self.namespace = namespace or url_namespace
        self.location = display_location(url)
        self.prefix = prefix if prefix is not None else url_prefix
        if self.namespace:
            self.location = _with_namespace(self.location, check_namespace(self.namespace))
            self.prefix += f"ns:{self.namespace}:"
        if self.cluster and ("{" in self.prefix or "}" in self.prefix):
            raise StoreError(
                f"cannot use {self.location}: on a Redis Cluster the prefix {self.prefix!r} must not hold '{{' or '}}' "
                "(they would change which slot its keys hash to); pick another ?prefix="
            )
        # A cluster store's entries and their index live in BUCKETS slots (see the module's docstring).
        self._buckets = [f"{{{self.prefix}{n:02x}}}" for n in range(BUCKETS)] if self.cluster else [self.prefix]
        self._ledger = f"{self.prefix}savings"
        self.skipped = 0  # damaged or planted entries the listings met (each skipped, said once)
        self._redis = self._connect(redis, client_url)
        self._refuse_evicting_server()
        self._publish = self._publish_command()
        self._scripts = {text: self._redis.register_script(text) for text in (_RELEASE, _RENEW, _PURGE, _READ_OR_CLAIM)}

    def _connect(self, redis: Any, client_url: str) -> Any:
        if self.cluster:
            client_url = _cluster_client_url(client_url, self.location)  # a wrong URL says so by itself
        try:
            # One immediate retry on a broken connection: the first command after a server restart
            # reconnects instead of failing. Never a retry on a timeout: that would double the wait.
            from redis.backoff import NoBackoff
            from redis.retry import Retry

            retry = Retry(NoBackoff(), 1, supported_errors=(redis.ConnectionError,))
            timeouts = {"socket_connect_timeout": CONNECT_TIMEOUT, "socket_timeout": READ_TIMEOUT}
            if self.cluster:
                # No cluster-level retry: its loop retries timeouts too, doubling a hung node's wait
                # (its nodes' clients still reconnect a broken connection). require_full_coverage=False:
                # a cluster with a primary down still opens; its other slots answer (see _talking).
                client = redis.RedisCluster.from_url(
                    client_url,
                    retry=Retry(NoBackoff(), 0),
                    require_full_coverage=False,
                    **timeouts,
                )
            else:
                client = redis.Redis.from_url(client_url, retry=retry, **timeouts)
            client.ping()
        except (redis.RedisError, redis.RedisClusterException, ValueError) as exc:
            expected = (
                "redis+cluster://[[user]:password@]host[:port] (any node of the cluster)"
                if self.cluster
                else "redis://[[user]:password@]host[:port][/db]"
            )
            raise StoreError(
                f"cannot open the store at {self.location} ({exc}); is redis-server running and the URL right? "
                f"expected {expected}"
            ) from exc
        return client

    @contextlib.contextmanager
    def _talking(self) -> Iterator[None]:
        """A server that does not answer becomes StoreUnavailable, saying which server and why. On a
        cluster, a node that does not answer fails only its own slots' keys: `partial`, unless no
        node answers at all."""
        redis = self._errors
        try:
            yield
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise self._unavailable(exc, partial=self.cluster) from None
        except redis.exceptions.ClusterError as exc:  # CLUSTERDOWN: the cluster refuses some slots
            raise self._unavailable(exc, partial=True) from None
        except redis.RedisClusterException as exc:  # no node reachable, or a slot nobody serves
            # redis-py 8.2 names "no node reachable" with its own class; before it, only the message says so.
            unreachable = getattr(redis.exceptions, "RedisClusterUnreachableError", None)
            whole = isinstance(exc, unreachable) if unreachable else "cannot be connected" in str(exc)
            raise self._unavailable(exc, partial=not whole) from None

    def _unavailable(self, exc: Exception, partial: bool) -> StoreUnavailable:
        what = "a node of the Redis Cluster" if partial else "the Redis Cluster" if self.cluster else "the Redis server"
        error = StoreUnavailable(f"{what} at {self.location} does not answer ({exc})")
        error.partial = partial
        return error

    def _server_infos(self, section: str) -> list[dict[str, Any]]:
        """INFO `section` of the server, or of every primary of the cluster that answers (a proxy
        started while one node is away still learns what the others run)."""
        if not self.cluster:
            return [self._redis.info(section)]
        infos = []
        for node in self._redis.get_primaries():
            with contextlib.suppress(self._errors.ConnectionError, self._errors.TimeoutError):
                infos.append(self._redis.info(section, target_nodes=node))
        return infos

    def _refuse_evicting_server(self) -> None:
        # An allkeys-* policy lets Redis drop recordings silently when memory runs out.
        try:
            policies = [str(info.get("maxmemory_policy", "")) for info in self._server_infos("memory")]
        except Exception:  # INFO may be forbidden by ACLs; then we cannot tell, and do not guess
            return
        for policy in policies:
            if policy.startswith("allkeys-"):
                raise StoreError(
                    f"the Redis server at {self.location} has maxmemory-policy {policy}, which evicts keys "
                    "silently when memory is full; recordings must not vanish: set maxmemory-policy to "
                    "noeviction (or a volatile-* policy) or use a dedicated Redis"
                )

    def _publish_command(self) -> str:
        """How a release wakes the waiting: PUBLISH on one server; on a cluster SPUBLISH (sharded,
        Redis 7: the message stays on the key's shard), or '' where a node is older (they poll)."""
        if not self.cluster:
            return "PUBLISH"
        try:
            versions = [str(info.get("redis_version", "0")) for info in self._server_infos("server")]
        except Exception:  # INFO forbidden: polling works everywhere
            return ""
        return "SPUBLISH" if versions and all(int(v.split(".")[0]) >= 7 for v in versions) else ""

    def _run(self, script: str, keys: list[str], args: list[Any]) -> Any:
        """One of our Lua scripts. On a cluster as EVAL, text and all: EVALSHA's fallback loads the
        script on every primary, which fails while any one is down, even for keys it does not serve."""
        if self.cluster:
            return self._redis.eval(script, len(keys), *keys, *args)
        return self._scripts[script](keys=keys, args=args)

    # --- where keys live ---------------------------------------------------------------------------

    def _bucket(self, key: str) -> str:
        """The name prefix of the bucket holding `key` (on one server: the store's prefix)."""
        if not self.cluster:
            return self.prefix
        return self._buckets[zlib.crc32(key.encode()) % BUCKETS]

    def _entry_key(self, key: str) -> str:
        return f"{self._bucket(key)}entry:{key}"

    def _where(self, key: str) -> str:
        return f"entry {key} in {self.location}"

    def get(self, key: str) -> Entry | None:
        with self._talking():
            head, tail = self._redis.hmget(self._entry_key(key), ["head", "tail"])
        if head is None or tail is None:
            return None
        return entry_from_parts(head, tail, self._where(key))

    def _write_entries(self, entries: list[Entry]) -> None:
        """One MULTI/EXEC per bucket: on one server all of them or none; on a cluster each bucket's
        entries together (a transaction cannot span slots)."""
        buckets: dict[str, list[tuple[str, bytes, bytes, float | None]]] = {}
        for entry in entries:
            parts = (entry.key, pack_head(entry), pack_tail(entry), entry.expires_at)
            buckets.setdefault(self._bucket(entry.key), []).append(parts)
        with self._talking():
            for bucket, parts_of in buckets.items():
                self._write_bucket(bucket, parts_of)

    def _write_bucket(self, bucket: str, parts: list[tuple[str, bytes, bytes, float | None]]) -> None:
        index, expiry = f"{bucket}keys", f"{bucket}expiry"
        with self._redis.pipeline(transaction=True) as pipe:
            for key, head, tail, expires_at in parts:
                name = f"{bucket}entry:{key}"
                pipe.hset(name, mapping={"head": head, "tail": tail})
                pipe.zadd(index, {key: 0})
                if expires_at is None:
                    pipe.persist(name)
                    pipe.zrem(expiry, key)
                else:
                    pipe.pexpireat(name, int(expires_at * 1000))
                    pipe.zadd(expiry, {key: expires_at})
            pipe.execute()

    def delete(self, key: str) -> bool:
        bucket = self._bucket(key)
        with self._talking(), self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(f"{bucket}entry:{key}")
            pipe.zrem(f"{bucket}keys", key)
            pipe.zrem(f"{bucket}expiry", key)
            deleted, _, _ = pipe.execute()
        return bool(deleted)

    def purge_expired(self) -> int:
        """Take the entries past their `expires_at` (--ttl) out of the index; how many went."""
        gone = 0
        now = time.time()
        with self._talking():
            for bucket in self._buckets:
                gone += int(self._run(_PURGE, [f"{bucket}keys", f"{bucket}expiry"], [now, f"{bucket}entry:"]))
        return gone

    def _bucket_keys(self, bucket: str, size: int) -> Iterator[str]:
        """A bucket's keys in sorted order, `size` per round trip, each page resuming after the last key."""
        start = "-"
        while True:
            with self._talking():
                page = [k.decode() for k in self._redis.zrangebylex(f"{bucket}keys", start, "+", start=0, num=size)]
            if not page:
                return
            yield from page
            start = "(" + page[-1]

    def _pages(self, size: int = PAGE) -> Iterator[list[str]]:
        """Every key in sorted order, `size` at a time (a cluster's buckets merged as they are read)."""
        keys: Iterator[str]
        if self.cluster:
            keys = heapq.merge(*(self._bucket_keys(bucket, CLUSTER_PAGE) for bucket in self._buckets))
        else:
            keys = self._bucket_keys(self.prefix, PAGE)
        page: list[str] = []
        for key in keys:
            page.append(key)
            if len(page) == size:
                yield page
                page = []
        if page:
            yield page

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
                if head is None or tail is None:  # deleted since the key was listed
                    continue
                try:
                    entry = entry_from_parts(head, tail, self._where(key))
                except CorruptEntry as exc:
                    self._skip(exc)
                    continue
                yield entry

    def iter_requests(self) -> Iterator[tuple[str, dict]]:
        for page in self._pages():
            with self._talking(), self._redis.pipeline(transaction=False) as pipe:
                for key in page:
                    pipe.hget(self._entry_key(key), "head")
                heads = pipe.execute()
            for key, head in zip(page, heads):
                if head is None:
                    continue
                try:
                    request = _request_of(unpack_head(head, self._where(key)), self._where(key))
                except CorruptEntry as exc:
                    self._skip(exc)
                    continue
                yield key, request

    def _skip(self, exc: CorruptEntry) -> None:
        """A damaged or planted entry met by a listing: counted and said in one line, and the listing
        goes on (as the disk store's does), instead of ending at it."""
        self.skipped += 1
        log.warning("skipped: %s", exc)

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
        # On a cluster the key is the hash tag: the lock and its failure note share one slot.
        return f"{self.prefix}flight:{{{key}}}" if self.cluster else f"{self.prefix}flight:{key}"

    def _failed(self, key: str) -> str:
        return f"{self.prefix}failed:{{{key}}}" if self.cluster else f"{self.prefix}failed:{key}"

    def claim(self, key: str, expiry: float) -> str | None:
        token = uuid.uuid4().hex
        with self._talking():
            return token if self._redis.set(self._flight(key), token, nx=True, px=_ms(expiry)) else None

    def read_or_claim(self, key: str, expiry: float) -> tuple[Entry | None, str | None]:
        """One script, one round trip. On a cluster the entry and the lock live in different slots,
        which no script may span: there a read, and on a miss the claim and a read again (an answer
        stored between the two is served, and the claim let go)."""
        if self.cluster:
            return self._read_then_claim(key, expiry)
        token = uuid.uuid4().hex
        with self._talking():
            answer = self._run(_READ_OR_CLAIM, [self._entry_key(key), self._flight(key)], [token, _ms(expiry)])
        if isinstance(answer, list):
            head, tail = answer
            return entry_from_parts(head, tail, self._where(key)), None
        return None, token if answer == 1 else None

    def _read_then_claim(self, key: str, expiry: float) -> tuple[Entry | None, str | None]:
        entry = self.get(key)
        if entry is not None:
            return entry, None
        token = self.claim(key, expiry)
        if token is None:
            return None, None
        landed = self.get(key)
        if landed is not None:
            self.release(key, token)
            return landed, None
        return None, token

    def renew(self, key: str, token: str, expiry: float) -> bool:
        with self._talking():
            return bool(self._run(_RENEW, [self._flight(key)], [token, _ms(expiry)]))

    def release(self, key: str, token: str, failure: dict[str, Any] | None = None) -> None:
        left = failure_bytes(failure) if failure is not None else b""
        with self._talking():
            self._run(_RELEASE, [self._flight(key), self._failed(key)], [token, left, _ms(LEFT_FOR), self._publish])

    def wait_for(self, key: str, timeout: float) -> Waited:
        """Subscribe first, then look: a release before the look is seen by it, one after by the
        message. A holder that dies sends none: the wait looks again when its lock expires. Where
        nothing is published (an older cluster), the lock is polled."""
        if not self._publish:
            with self._talking():
                return poll_until(lambda: self._flight_state(key)[0], timeout)
        deadline = time.monotonic() + timeout
        sharded = self._publish == "SPUBLISH"
        with self._talking():
            pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
            try:
                (pubsub.ssubscribe if sharded else pubsub.subscribe)(self._flight(key))
                waited, expires_in = self._flight_state(key)
                while waited.state == HELD:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return waited
                    wait = min(left, expires_in + 0.005)
                    if sharded:
                        message = pubsub.get_sharded_message(ignore_subscribe_messages=True, timeout=wait)
                    else:
                        message = pubsub.get_message(timeout=wait)
                    if message is not None and message.get("type") in ("message", "smessage"):
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
        now = time.time()
        with self._talking(), self._redis.pipeline(transaction=False) as pipe:
            for bucket in self._buckets:
                pipe.zcard(f"{bucket}keys")
                pipe.zcount(f"{bucket}expiry", "-inf", now)
            counts = pipe.execute()
        return sum(int(n) for n in counts[0::2]) - sum(int(n) for n in counts[1::2])

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


def _request_of(head: Any, where: str) -> dict[str, Any]:
    request = head.get("request") if isinstance(head, dict) else None
    if not isinstance(request, dict):
        raise CorruptEntry(f"{where} is damaged: its head holds no request object")
    return request


def _ms(seconds: float) -> int:
    return max(int(seconds * 1000), 1)
