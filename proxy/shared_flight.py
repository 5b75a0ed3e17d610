"""Single-flight across proxies sharing a store: one upstream call per key, whichever proxy misses first.

Within one proxy, identical concurrent misses already share one `Flight`. Before that flight calls
the upstream, it asks the store for the key (`SharedFlights.claim`, a lock with an expiry):
- it gets it: this proxy leads. It re-reads the store (the answer may have landed a moment ago),
  renews the lock while the upstream answers, and releases it once the answer is stored — or
  leaves the upstream's error (or why the call broke) for the proxies waiting on it;
- another proxy holds it: this flight waits (`wait_for`) until that lock is released, then serves
  the stored answer — a stream is sent once it has landed, not relayed as it comes — or shares the
  failure; if the holder died, its lock expires and one waiting proxy takes the lead.

Only stores that offer `SharedFlights` (Redis, and the disk store across processes) take part, and
only requests whose policy shares a flight and stores the answer (record mode).
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from pytest_seedreplay.core.entry import Entry
from pytest_seedreplay.core.redact import looks_secret
from pytest_seedreplay.policy import Fate
from pytest_seedreplay.store import Store, StoreBusy, StoreUnavailable
from pytest_seedreplay.store.shared import FAILED, FREE, SharedFlights, Waited, flights_of, shares_flights

from .flight import Failure, Flight
from .incoming import caller_hash

if TYPE_CHECKING:
    from .incoming import Call
    from .state import Bound, ProxyState

log = logging.getLogger("seedreplay.proxy")

WAIT_SLICE = 1.0  # seconds one wait_for may block a thread: bounds a shutdown, re-claims an expired lock
_SHARED_HEADERS = ("content-type", "retry-after", "retry-after-ms", "x-should-retry", "x-request-id")
_SHARED_BODY = 64 * 1024  # bytes of an upstream error answer left for the waiting proxies


@dataclass
class Lease:
    """This proxy's hold on a key while its upstream call runs (token None: the store could not be asked)."""

    key: str
    token: str | None
    # The renewals: a timer until the first is due, then the task making them (both are cancelled alike).
    renewing: asyncio.Task | asyncio.TimerHandle | None = field(default=None, repr=False)
    releasing: bool = False  # handed to the store thread, to let go right after the answer's write


def release_after_write(bound: Bound, lease: Lease) -> Callable[[], None] | None:
    """The release of `lease` as a plain call for the store thread to make right after the write of
    its answer lands: the proxies waiting on the key read the store as soon as it is free, so the
    answer must be there first, and letting go there costs no hop of its own to a flight thread nor
    a turn of the loop. The write job calls it only once its write succeeded; `released` then says so
    on the loop. None when there is nothing to release."""
    token = lease.token
    if token is None:
        return None
    flights = _flights(bound.store)

    def release() -> None:
        lease.releasing = True  # a renewal finding the key gone from here on is no expiry: say nothing
        try:
            flights.release(lease.key, token, None)
        except Exception as exc:  # the lock expires by itself; the waiting proxies take over then
            log.warning("releasing the shared flight of %s failed: %s", lease.key[:15], exc)
            raise ReleaseFailed() from None

    return release


class ReleaseFailed(Exception):
    """The store thread could not release a lease after its write (said in the log already)."""


def released(lease: Lease, let_go: bool) -> None:
    """On the loop, after the write job that was to release `lease`. `let_go`: its release ran (a failed
    one too: the lock expires by itself), so `end` only stops the renewal; else (the write failed, or
    never ran) the lease is still held, for `end` to release."""
    lease.releasing = False
    if let_go:
        lease.token = None
        if lease.renewing is not None:
            lease.renewing.cancel()


def takes_part(state: ProxyState, bound: Bound, call: Call) -> bool:
    """The flight of `call` is shared with the other proxies on its store."""
    policy = call.policy
    return (
        state.config.lock_expiry > 0
        and policy.share_flight
        and policy.fate is Fate.STORE
        and bound.health.up
        and _shares(bound.store)
    )


# Whether a store's type offers shared flights: `shares_flights` is an isinstance of a runtime Protocol,
# which checks each of its methods by name (~9 µs), three times a miss. A store's methods are its class's.
_SHARING: dict[type, bool] = {}


def _shares(store: object) -> bool:
    kind = type(store)
    known = _SHARING.get(kind)
    if known is None:
        known = _SHARING[kind] = shares_flights(store)
    return known


def _flights(store: object) -> SharedFlights:
    """`store` as its shared flights (the caller asked `takes_part` first)."""
    return cast(SharedFlights, store) if _shares(store) else flights_of(store)


async def warm_up(state: ProxyState, bound: Bound) -> None:
    """Open what the store's shared flights need (the disk store creates its side cache: ~0.1 s) before
    the first miss needs it, off the request path."""
    where = bound.store.location
    if state.config.lock_expiry <= 0 or not shares_flights(bound.store):
        return
    try:
        await state.store_threads.run(flights_of(bound.store).wait_for, "seedreplay:warm-up", 0)
        claim_now = getattr(bound.store, "claim_now", None)
        if claim_now is not None:  # opens its handle (it writes settings) off the loop too
            await state.store_threads.run(claim_now, "seedreplay:warm-up", 0.001)
    except Exception as exc:  # the first miss will say what is wrong, if it still is
        log.debug("warming up the shared flights of %s failed: %s", where, exc)


async def read_or_claim(state: ProxyState, bound: Bound, call: Call) -> tuple[Entry | None, str | None]:
    """The stored entry for `call`, or — the read having found none — the claim of its key as well,
    in the same step (`SharedFlights.read_or_claim`): a miss then pays one SQLite transaction (one
    Redis round trip) before its upstream call, not a read, a claim and a read again. The token, if
    any, is the flight's (`lead_or_follow`), or let go (`let_go`). A local store claims on the loop
    without waiting (`read_or_claim_now`): while another process writes, this is a plain read, and
    the flight claims as before. Raises what the store's read raises."""
    store, key = bound.store, call.key
    if not bound.remote:
        at_once = getattr(store, "read_or_claim_now", None)
        if at_once is not None:
            try:
                return at_once(key, state.config.lock_expiry)
            except StoreBusy:
                return store.get(key), None
    read = asyncio.ensure_future(bound.ask_store(_flights(store).read_or_claim, key, state.config.lock_expiry))
    try:
        return await asyncio.shield(read)
    except asyncio.CancelledError:  # the request went: a claim its read still takes is let go
        read.add_done_callback(lambda done: _let_go_of(state, bound, key, done))
        raise


def _let_go_of(state: ProxyState, bound: Bound, key: str, read: asyncio.Future) -> None:
    if not read.cancelled() and read.exception() is None and read.result()[1] is not None:
        let_go(state, bound, key, read.result()[1])


def let_go(state: ProxyState, bound: Bound, key: str, token: str) -> None:
    """Release a claim this proxy took and will not use (its request joined a flight already in the
    air here), in the store thread, without holding up the request."""

    async def release() -> None:
        try:
            await state.store_threads.run(_flights(bound.store).release, key, token, None)
        except Exception as exc:  # the lock expires by itself
            state.stats.store_errors += 1
            log.warning("releasing the shared flight of %s failed: %s", key[:15], exc)

    task = asyncio.ensure_future(release())
    state.tasks.add(task)
    task.add_done_callback(state.tasks.discard)


async def lead_or_follow(state: ProxyState, bound: Bound, flight: Flight, call: Call, claimed: str | None = None) -> Lease | None:
    """A `Lease` when this proxy calls the upstream; None when another proxy's call answered the
    flight (its entry, or its failure, is now in `flight`). `claimed`: the token of the claim taken
    with the read that found the miss (`read_or_claim`): the lease is that one."""
    store, expiry = _flights(bound.store), state.config.lock_expiry
    if claimed is not None:
        lease = Lease(call.key, claimed)
        lease.renewing = _renew_later(state, bound, lease, expiry)
        return lease
    threads = state.store_threads
    waiting = False
    try:
        while True:
            token, stored = await _claim(state, bound, call.key, expiry)
            if token is not None:
                landed = _fresh(call, stored)
                if landed is None:
                    lease = Lease(call.key, token)
                    lease.renewing = _renew_later(state, bound, lease, expiry)
                    return lease
                await threads.run(store.release, call.key, token, None)
                _served(state, flight, landed)
                return None
            if not waiting:  # another proxy holds the key: from now on this flight waits on its call
                waiting = True
                state.stats.shared_waiting += 1
            waited: Waited = await threads.run(store.wait_for, call.key, min(WAIT_SLICE, expiry))
            if waited.state == FAILED:
                if _failed(state, flight, waited.failure or {}):
                    return None
                continue  # its upstream error answer was another caller's: claim the key and ask
            if waited.state == FREE:
                landed = await _fresh_entry(state, bound, call)
                if landed is not None:
                    _served(state, flight, landed)
                    return None
            # Still held, or free with no answer (its holder gave up or died): claim again.
    except StoreUnavailable as exc:
        bound.health.failed(bound.store, exc)
        state.stats.store_errors += 1
        return Lease(call.key, None)  # call the upstream alone; the answer is not stored (the store is down)
    except Exception as exc:  # a lock that cannot be taken must never fail the request: ask alone
        state.stats.store_errors += 1
        log.warning("sharing the flight of %s with the other proxies failed (%s); asking the upstream alone", call.key[:15], exc)
        return Lease(call.key, None)
    finally:
        if waiting:
            state.stats.shared_waiting -= 1


async def end(state: ProxyState, bound: Bound, lease: Lease, flight: Flight) -> None:
    """Release the lease once the answer is stored, leaving any failure for the waiting proxies."""
    if lease.renewing is not None:
        lease.renewing.cancel()
    if lease.token is None:  # never held, or already released
        return
    token, lease.token = lease.token, None
    failure = None if flight.entry is not None and flight.store_error is None else failure_of(flight)
    try:
        await state.store_threads.run(_flights(bound.store).release, lease.key, token, failure)
    except Exception as exc:  # the lock expires by itself; the waiting proxies take over then
        state.stats.store_errors += 1
        log.warning("releasing the shared flight of %s failed: %s", lease.key[:15], exc)


def failure_of(flight: Flight) -> dict[str, Any] | None:
    """What the proxies waiting on this call share: the upstream's error answer, or why the call
    broke; None when there is nothing to share (a 2xx answer that could not be stored: they ask again)."""
    if flight.failure is not None:
        return {"broke": flight.failure.message, "code": flight.failure.code}
    if flight.status is None or 200 <= flight.status < 300:
        return None
    text = flight.body.decode("utf-8", "replace")
    if len(flight.body) > _SHARED_BODY or looks_secret(text):
        return {
            "broke": f"the upstream answered HTTP {flight.status} to another seedreplay proxy sharing this store",
            "code": "upstream_error",
            "caller": caller_hash(flight.caller),  # an answer to that credential, as the one below
        }
    headers = {k: v for k, v in flight.headers.items() if k.lower() in _SHARED_HEADERS or k.lower().startswith("x-ratelimit-")}
    body = base64.b64encode(flight.body).decode("ascii")
    return {"status": flight.status, "headers": headers, "body": body, "caller": caller_hash(flight.caller)}


def _failed(state: ProxyState, flight: Flight, failure: dict[str, Any]) -> bool:
    """The flight ends as the other proxy's call did: with its upstream error answer, or as a 502.
    False, and the flight goes on, when that answer was to another credential than this flight's
    (as `Flight.answers_anyone`; a record without one, from an older proxy, counts as another's)."""
    if "caller" in failure and failure["caller"] != caller_hash(flight.caller):
        return False
    status = failure.get("status")
    if isinstance(status, int) and isinstance(failure.get("body"), str):
        if "caller" not in failure:
            return False
        state.stats.shared_waits += 1
        flight.status = status
        flight.headers = {str(k): str(v) for k, v in (failure.get("headers") or {}).items()}
        flight.body = base64.b64decode(failure["body"])
    else:
        state.stats.shared_waits += 1
        message = str(failure.get("broke") or "another seedreplay proxy's call to the upstream failed")
        flight.failure = Failure(message, str(failure.get("code") or "upstream_error"), callers_own="caller" in failure)
    return True


def _served(state: ProxyState, flight: Flight, entry: Entry) -> None:
    """The flight ends with the answer another proxy's call stored."""
    state.stats.shared_waits += 1
    flight.entry = entry
    flight.recorded = True
    flight.status = entry.status


async def _claim(state: ProxyState, bound: Bound, key: str, expiry: float) -> tuple[str | None, Entry | None]:
    """Claim `key` and, once it is ours, read its stored answer (it may have landed a moment ago).
    A local store that can claim without waiting (`claim_now`) does so here, on the loop, as it reads
    here: every thread hop costs a miss two wake-ups, much more than the claim on a loaded machine.
    Otherwise, or while another process writes, the claim and the read take one hop together."""
    claim_now = None if bound.remote else getattr(bound.store, "claim_now", None)
    if claim_now is not None:
        try:
            token = claim_now(key, expiry)
        except StoreBusy:
            pass  # another process writes: wait for it in a thread, not here
        else:
            return token, (_landed(bound.store, key) if token is not None else None)
    return await state.store_threads.run(_claim_and_read, _flights(bound.store), bound.store, key, expiry)


def _landed(store: Store, key: str) -> Entry | None:
    """The answer stored for `key` since this miss read the store. Asked first whether the key is there
    at all: the miss it nearly always is then costs the disk store one SQLite query, not a read's two
    (its read looks again for a row whose file vanished under it); Redis one round trip either way."""
    return store.get(key) if key in store else None


def _claim_and_read(flights: SharedFlights, store: Store, key: str, expiry: float) -> tuple[str | None, Entry | None]:
    """Claim `key`; once it is ours, its stored answer too (it may have landed a moment ago)."""
    token = flights.claim(key, expiry)
    return token, (_landed(store, key) if token is not None else None)


async def _fresh_entry(state: ProxyState, bound: Bound, call: Call) -> Entry | None:
    """The stored answer to `call` if there is one it may be served (not expired, young enough)."""
    return _fresh(call, await state.store_threads.run(bound.store.get, call.key))


def _fresh(call: Call, entry: Entry | None) -> Entry | None:
    if entry is None or entry.expired() or not call.policy.fresh(entry.recorded_at, time.time()):
        return None
    return entry


def _renew_later(state: ProxyState, bound: Bound, lease: Lease, expiry: float) -> asyncio.TimerHandle:
    """Start renewing the lease once a third of its expiry has passed. A timer, not a task that sleeps
    first: nearly every miss is over long before, and a task costs the loop three turns (start, sleep,
    cancel) on every miss."""

    def start() -> None:
        lease.renewing = asyncio.create_task(_renew(state, bound, lease, expiry))

    return asyncio.get_running_loop().call_later(expiry / 3, start)


async def _renew(state: ProxyState, bound: Bound, lease: Lease, expiry: float) -> None:
    """Keep the lock while the upstream answers (a long stream outlives one expiry): a renewal now,
    then one every third of the expiry."""
    while True:
        try:
            kept = await state.store_threads.run(flights_of(bound.store).renew, lease.key, lease.token, expiry)
        except Exception as exc:  # tried again at the next turn: the lock may still be ours
            log.warning("renewing the shared flight of %s failed: %s", lease.key[:15], exc)
        else:
            if not kept and lease.releasing:
                return  # released by the store thread a moment ago, right after the answer's write
            if not kept:
                log.warning("the shared flight of %s expired before its answer came: another proxy may ask too", lease.key[:15])
                return
        await asyncio.sleep(expiry / 3)
