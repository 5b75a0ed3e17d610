"""The cacheable endpoints: hit (from memory, an answer landing, or the store), miss, replay miss,
single-flight, and the store write behind a complete answer."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import TYPE_CHECKING

from aiohttp import web
from multidict import CIMultiDict

from pytest_seedreplay.core.constants import (
    CACHE_BYPASS,
    CACHE_HIT,
    CACHE_MISS,
    CACHE_REFRESH,
    CONTENT_TYPE_JSON,
    ERROR_TYPE_MISS,
    ERROR_TYPE_PROXY,
    HEADER_CACHE,
    HEADER_KEY,
)
from pytest_seedreplay.core.entry import Entry, SSEEvent
from pytest_seedreplay.core.key import closest_recording, describe_miss
from pytest_seedreplay.core.redact import SecretRefused, find_secret, kept_response_headers
from pytest_seedreplay.shapes import answer_summary, assemble
from pytest_seedreplay.store import Store

from .answers import answer_from_flight, serve_entry
from .config import ProxyConfig, public_url
from .errors import APIError
from .flight import Failure, Flight
from .incoming import Call, make_call, read_arrival
from .memory import Rendered
from .upstream import forward_headers, upstream_url
from .writer import SETTLE_SECONDS

if TYPE_CHECKING:
    from .app import ProxyState, RequestNote

log = logging.getLogger("seedreplay.proxy")

CACHE_STATUS_BY_MODE = {"record": CACHE_MISS, "refresh": CACHE_REFRESH, "passthrough": CACHE_BYPASS}


async def handle_cacheable(request: web.Request, state: ProxyState, endpoint: str) -> web.StreamResponse:
    # Read config and store once: the plugin may swap them between requests, never within one.
    config, store = state.config, state.store
    note = state.note(request)
    arrival = await read_arrival(request, endpoint, config)
    slot = None
    if config.memory_cache > 0 and getattr(store, "memoizable", False):
        slot = state.keys.slot(arrival, config)
        # A request seen lately whose answer is in memory: no parsing, no hashing, no store.
        known = state.keys.get(slot) if arrival.mode in ("record", "replay") else None
        rendered = state.memory.get(store, *known) if known is not None else None
        if rendered is not None:
            state.stats.memory_hits += 1
            note.key = known[0]
            return _served_hit(state, note, rendered)
    call = make_call(arrival, config)
    if slot is not None:
        state.keys.put(slot, call)
    note.key = call.key
    ours = {HEADER_KEY: call.key}

    if call.mode in ("record", "replay"):
        hit = _hit(state, config, store, call)
        if hit is not None:
            return _served_hit(state, note, hit)
        state.stats.misses += 1
        if call.mode == "replay":
            note.cache = CACHE_MISS
            return await _replay_miss(state, store, call, ours)

    status = CACHE_STATUS_BY_MODE[call.mode]
    note.cache = status
    if call.mode == "passthrough":
        state.stats.bypasses += 1
    elif call.mode == "refresh":
        state.stats.refreshes += 1
    ours[HEADER_CACHE] = status

    # Only plain record-mode misses share a flight: refresh and passthrough always call the
    # upstream themselves, and a no-store request must not decide whether others get stored.
    shared = call.mode == "record" and call.write
    flight = state.flights.join(call.key) if shared else None
    if flight is not None:
        state.stats.coalesced += 1
    else:
        put = call.write and call.mode != "passthrough"
        flight = _launch(request, state, config, store, call, shared, put)
    response = await answer_from_flight(request, flight, call.shape, ours)
    note.upstream = flight.status
    return response


def _served_hit(state: ProxyState, note: RequestNote, rendered: Rendered) -> web.Response:
    state.stats.hits += 1
    note.cache = CACHE_HIT
    return rendered.response()


def _hit(state: ProxyState, config: ProxyConfig, store: Store, call: Call) -> Rendered | None:
    """The recorded answer in the shape asked: from memory, else an answer still being written,
    else from the store (then kept in memory); None on a miss."""
    memoizable = getattr(store, "memoizable", False)
    memoize = memoizable and config.memory_cache > 0
    if memoize:
        rendered = state.memory.get(store, call.key, call.shape)
        if rendered is not None:
            state.stats.memory_hits += 1  # other bytes than those remembered, the same key
            return rendered
    landed = state.flights.landing(store, call.key) if memoizable else None
    if landed is not None:  # answered, and its store write has not landed yet: newer than the store
        return serve_entry(landed, call.shape, {HEADER_KEY: call.key, HEADER_CACHE: CACHE_HIT})
    entry = _get(state, store, call.key)
    if entry is None:
        return None
    rendered = serve_entry(entry, call.shape, {HEADER_KEY: call.key, HEADER_CACHE: CACHE_HIT})
    if memoize:
        state.memory.put(store, call.key, call.shape, rendered, config.memory_cache)
    return rendered


def _get(state: ProxyState, store: Store, key: str) -> Entry | None:
    try:
        return store.get(key)
    except Exception as exc:  # a broken store must not look like a proxy crash
        state.stats.errors += 1
        log.error("store get %s failed: %s", key[:15], exc)
        raise APIError(503, f"the cache store could not be read: {exc}", type=ERROR_TYPE_PROXY, code="store_unavailable") from None


async def _replay_miss(state: ProxyState, store: Store, call: Call, ours: dict[str, str]) -> web.Response:
    state.stats.replay_misses += 1
    await state.writer.settle(SETTLE_SECONDS)  # the closest recording may be one just answered
    # Scanning every recorded request can take a while on a big store: keep the loop free.
    recorded = await asyncio.to_thread(lambda: list(store.iter_requests()))
    closest = closest_recording(call.canonical, recorded)
    error = APIError(404, describe_miss(call.key, call.canonical, closest), type=ERROR_TYPE_MISS, code="cache_miss")
    return error.response({**ours, HEADER_CACHE: CACHE_MISS})


def _launch(
    request: web.Request, state: ProxyState, config: ProxyConfig, store: Store, call: Call, shared: bool, put: bool
) -> Flight:
    """Start the upstream call as its own task: it outlives a client that goes away, so followers
    and the store still get the answer."""
    flight = Flight(call.key, call.endpoint, call.upstream_shape)
    if shared:
        state.flights.add(flight)
    headers = forward_headers(request.headers)
    headers["Content-Type"] = CONTENT_TYPE_JSON
    task = asyncio.create_task(_fly(state, config, store, flight, call, headers, put))
    state.flights.tasks.add(task)
    task.add_done_callback(state.flights.tasks.discard)
    return flight


async def _fly(
    state: ProxyState, config: ProxyConfig, store: Store, flight: Flight, call: Call, headers: CIMultiDict[str], put: bool
) -> None:
    write: asyncio.Task | None = None
    try:
        base = await state.upstream_base(config.upstream)
        shown = public_url(config.upstream)
        if put:
            where = find_secret(call.canonical, "request")
            if where:  # known before the stream starts, so even a streamed answer can say it
                flight.store_error = str(SecretRefused(where))
        state.stats.upstream_calls += 1
        events = await state.upstream.fetch(
            flight, upstream_url(base, call.endpoint), headers, call.payload, config.upstream_timeout, shown
        )
        if flight.failure is not None:
            state.stats.upstream_failures += 1
            log.warning("%s %s: %s", call.endpoint, call.key[:15], flight.failure.message)
        elif flight.status is not None and 200 <= flight.status < 300:
            flight.entry = _entry(call, flight, events, shown)
            if flight.entry is not None and put:
                write = _start_put(state, store, flight)
                if write is not None and not getattr(store, "memoizable", False):
                    # A cassette store counts gets and puts to order its recordings: its answer
                    # waits for the put, so the next request finds the recording there.
                    await asyncio.shield(write)
        else:
            state.stats.upstream_errors += 1
    except asyncio.CancelledError:
        if not flight.finished:
            flight.failure = Failure("the proxy shut down before the upstream answered", "proxy_shutdown")
        raise
    except Exception as exc:  # a bug here must still release every waiting request
        state.stats.errors += 1
        log.exception("upstream call for %s failed", call.key[:15])
        flight.failure = Failure(f"seedreplay proxy error while calling the upstream: {exc}", "proxy_error")
    finally:
        # The waiting requests go as soon as the answer is complete, before its write lands; a
        # request arriving meanwhile finds it in `landing`: a hit, never a second upstream call.
        state.flights.remove(flight)
        flight.finish()
    if write is not None:
        await asyncio.shield(write)  # this task ends when the answer is stored (the plugin and shutdown wait for it)


def _entry(call: Call, flight: Flight, events: list[SSEEvent] | None, upstream: str) -> Entry | None:
    """The entry to store for a complete 2xx answer, or None when the answer cannot be stored."""
    common = dict(
        key=call.key,
        endpoint=call.endpoint,
        request=call.canonical,
        status=flight.status or 200,
        headers=kept_response_headers(flight.headers.items()),
        upstream=upstream,
    )
    if flight.streaming:
        if events is None:
            return None
        try:
            model, fingerprint = answer_summary(call.endpoint, assemble(call.endpoint, events))
        except ValueError:
            model, fingerprint = None, None
        return Entry(**common, events=events, model=model, system_fingerprint=fingerprint)
    try:
        body = json.loads(flight.body)
    except ValueError:
        log.warning("%s %s: the upstream answered 2xx with a body that is not JSON; not stored", call.endpoint, call.key[:15])
        return None
    model, fingerprint = answer_summary(call.endpoint, body)
    return Entry(**common, body=body, model=model, system_fingerprint=fingerprint)


def _start_put(state: ProxyState, store: Store, flight: Flight) -> asyncio.Task | None:
    """Start writing the flight's entry in the store thread; None when it is refused up front."""
    memoizable = getattr(store, "memoizable", False)
    if memoizable and not flight.streaming:
        # The answer leaves before its write lands, so say now what the store would refuse: a
        # plain answer can still carry the X-Seedreplay-Store-Error header.
        refused = flight.store_error or _answer_secret(flight)
        if refused:
            state.stats.errors += 1
            flight.store_error = refused
            log.error("store put %s refused: %s", flight.key[:15], refused)
            return None
    if memoizable:
        state.flights.writing(store, flight.entry)
        state.memory.invalidate(flight.key)
    return state.writer.start(_put(state, store, flight))


def _answer_secret(flight: Flight) -> str | None:
    """The store's refusal of this plain answer for a credential-shaped string in it, or None."""
    assert flight.entry is not None
    raw = flight.body.lower()
    # A cheap filter that misses nothing: the letters of a parsed string come from the same
    # letters in the text or from a \u escape, so with neither "sk-" nor "bearer" nor "\u" in the
    # text, no string of the answer can match. (The request was checked before the call.)
    if b"sk-" in raw or b"bearer" in raw or b"\\u" in raw:
        where = find_secret(flight.entry, "entry")
    else:
        where = find_secret(flight.entry.headers, "entry.headers")
    return str(SecretRefused(where)) if where else None


async def _put(state: ProxyState, store: Store, flight: Flight) -> None:
    """The store write, in the store thread; then this proxy's memory copies of the key go."""
    assert flight.entry is not None
    # One turn of the loop first: the requests the finished flight just woke send their last
    # bytes before the store thread starts packing (it would hold the GIL while they wait).
    await asyncio.sleep(0)
    try:
        await state.writer.call(store.put, flight.entry)
    except Exception as exc:  # the client still gets its answer; the failure is said, not hidden
        state.stats.errors += 1
        flight.store_error = str(exc) or type(exc).__name__
        log.error("store put %s failed: %s", flight.key[:15], flight.store_error)
    else:
        flight.store_error = None
        state.stats.stored += 1
    finally:
        state.flights.written(flight.entry)
        state.memory.invalidate(flight.key)
