"""The cacheable endpoints: hit (from memory, an answer landing, or the store), miss, replay miss,
single-flight, and what becomes of a complete answer (stored, compared with its recording, dropped).

Each request follows its `Policy` (see `pytest_seedreplay.policy`), computed once when it arrives, and
the `Bound` binding it arrived under; it never asks which mode the proxy is in.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, TypeVar

from aiohttp import web
from multidict import CIMultiDict

from pytest_seedreplay.core.constants import (
    ANTHROPIC_ENDPOINTS,
    CACHE_HIT,
    CACHE_MISS,
    CACHEABLE_ENDPOINTS,
    CONTENT_TYPE_JSON,
    ERROR_TYPE_MISS,
    ERROR_TYPE_PROXY,
    HEADER_CACHE,
    HEADER_COST_SAVED,
    HEADER_KEY,
    HEADER_STORE_ERROR,
    HEADER_TOKENS_SAVED,
    LARGE_ANSWER,
    STORE_PROBE_SECONDS,
)
from pytest_seedreplay.core.entry import Entry, SSEEvent
from pytest_seedreplay.core.jsontext import compact_json_bytes
from pytest_seedreplay.core.key import CLOSEST_SECONDS, describe_miss, key_of_canonical, search_closest
from pytest_seedreplay.core.redact import (
    EventScan,
    SecretRefused,
    find_secret,
    kept_response_headers,
    refuse_secrets,
    vouch_events,
    vouch_request,
)
from pytest_seedreplay.core.urls import entry_url, join_upstream, public_url, recorded_upstream
from pytest_seedreplay.policy import Fate, Mode, without_store
from pytest_seedreplay.savings import cost_header, saving_of
from pytest_seedreplay.shapes import Summary, answer_problem, summary
from pytest_seedreplay.store import StoreUnavailable

from . import shared_flight
from .answers import answer_from_flight, serve_entry_off_loop
from .anthropic import upstream_of
from .binding import ReplayMiss
from .errors import APIError
from .flight import Failure, Flight, Shape
from .incoming import LARGE_BODY, Call, credential_of, make_call, read_arrival
from .memory import Rendered
from .tiers import Asked
from .upstream import forward_headers, upstream_url
from .writer import SETTLE_SECONDS

if TYPE_CHECKING:
    from .state import Bound, ProxyState, RequestNote

log = logging.getLogger("seedreplay.proxy")
_SEARCHER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="seedreplay-closest")
T = TypeVar("T")


async def handle_cacheable(request: web.Request, state: ProxyState, endpoint: str) -> web.StreamResponse:
    # The binding is read once: a request finishes with the store and mode it arrived under.
    config, bound = state.config, state.bound
    note = state.note(request)
    arrival = await read_arrival(request, endpoint, config, bound.binding.mode, bound.binding.default_seed)
    policy = arrival.policy
    slot = None
    if bound.memoize:
        slot = state.keys.slot(arrival, config)
        # A request seen lately whose answer is in memory: no parsing, no hashing, no store.
        known = state.keys.get(slot) if policy.serve_recording and policy.max_age is None else None
        if known is not None:
            rendered = bound.memory.get(*known)
            if rendered is not None:
                state.stats.memory_hits += 1
                note.key = known[0]
                bound.observer.served(known[0], None)
                return _served_hit(state, note, rendered)
    if len(arrival.raw) > LARGE_BODY:
        # Parsing, keying and hashing a big body takes a while: not on the loop every client shares.
        call = await asyncio.to_thread(make_call, arrival, config)
    else:
        call = make_call(arrival, config)
    if slot is not None:
        state.keys.put(slot, call)
    if call.retry:
        _rewind(bound, call.key)
    note.key = call.key
    ours = {HEADER_KEY: call.key}

    recorded: Entry | None = None
    claimed: str | None = None  # the key, claimed with the read that found the miss (see shared_flight)
    try:
        if policy.reads_recording:
            if policy.serve_recording:
                hit, claimed = await _hit(state, bound, call)
                if hit is not None:
                    return _served_hit(state, note, hit)
                learned = await _learned(request, state, bound, call) if state.tiers else None
                if learned is not None:
                    return learned
                state.stats.misses += 1
            else:  # live: the recording this answer should match
                recorded = await _get(state, bound, call.key)
    except StoreUnavailable:
        # The store does not answer: the upstream does, uncached; replay mode has nothing to answer with.
        state.stats.without_store += 1
        if not policy.call_upstream:
            raise _store_down(bound) from None
        call = dataclasses.replace(call, policy=without_store(policy))
        policy = call.policy
        ours[HEADER_STORE_ERROR] = bound.health.said()
    if not policy.call_upstream:
        note.cache = CACHE_MISS
        return await _replay_miss(state, bound, call, ours)

    note.cache = policy.status
    ours[HEADER_CACHE] = policy.status
    if policy.mode is Mode.PASSTHROUGH:
        state.stats.bypasses += 1
    elif not policy.serve_recording:
        state.stats.refreshes += 1

    flight = await _flight_for(request, state, bound, call, recorded, claimed)
    response = await answer_from_flight(request, flight, call.shape, ours)
    note.upstream = flight.status
    return response


async def _flight_for(
    request: web.Request, state: ProxyState, bound: Bound, call: Call, recorded: Entry | None, claimed: str | None
) -> Flight:
    """The flight that answers this request: the one in the air for its key, else its own. A flight
    asked with another credential answers it unless it ends in an upstream error answer, which is
    that caller's alone: this request then asks again (`Flight.answers_anyone`)."""
    caller = credential_of(request.headers)
    while call.policy.share_flight and (flight := bound.flights.join(call.key)) is not None:
        if claimed is not None:  # the flight here came in while the store was read (a remote store)
            shared_flight.let_go(state, bound, call.key, claimed)
            claimed = None
        if flight.caller == caller or await flight.answers_anyone():
            state.stats.coalesced += 1
            return flight
    return _launch(request, state, bound, call, recorded, claimed, caller)


def _rewind(bound: Bound, key: str) -> None:
    """A client retrying a request takes the place of the try it repeats, in a store that plays its
    recordings in order (a cassette): it is served what that try was (recorded or replayed), and a
    retry never adds a second recording of an answer the client did not use."""
    rewind = getattr(bound.store, "rewind", None)
    if rewind is not None:
        rewind(key)


def _served_hit(state: ProxyState, note: RequestNote, rendered: Rendered) -> web.Response:
    state.stats.hits += 1
    note.cache = CACHE_HIT
    state.count_saving(rendered)
    return rendered.response()


def _saving_headers(state: ProxyState, entry: Entry) -> tuple[Any, dict[str, str]]:
    """What serving `entry` saves, and the headers that say so."""
    saving = saving_of(entry, state.config.prices)
    if saving is None:
        return None, {}
    headers = {HEADER_TOKENS_SAVED: str(saving.tokens)}
    if saving.cost is not None:
        headers[HEADER_COST_SAVED] = cost_header(saving.cost)
    return saving, headers


def _store_down(bound: Bound) -> APIError:
    return APIError(
        503,
        f"the cache store {bound.store.location} is unavailable ({bound.health.reason}); replay mode answers "
        f"only from recordings: retry once it answers again (the proxy checks every {STORE_PROBE_SECONDS:g} s)",
        type=ERROR_TYPE_PROXY,
        code="store_unavailable",
        headers={"Retry-After": f"{max(int(STORE_PROBE_SECONDS), 1)}"},
    )


async def _hit(state: ProxyState, bound: Bound, call: Call) -> tuple[Rendered | None, str | None]:
    """The recorded answer in the shape asked: from memory, else an answer still being written,
    else from the store (then kept in memory); None on a miss (also for a recording older than the
    request's max-age), with the token of its key's claim when the read that found it took one
    (`_read`). Raises StoreUnavailable when the store does not answer."""
    if bound.memoize and call.policy.max_age is None:
        rendered = bound.memory.get(call.key, call.shape)
        if rendered is not None:
            state.stats.memory_hits += 1  # other bytes than those remembered, the same key
            bound.observer.served(call.key, None)
            return rendered, None
    # An answer sent whose store write has not landed yet is newer than the store.
    entry = bound.flights.landing(call.key) if bound.pure else None
    claimed = None
    if entry is None:
        entry, claimed = await _read(state, bound, call)
    if entry is None or entry.expired() or not call.policy.fresh(entry.recorded_at, time.time()):
        return None, claimed
    saving, said = _saving_headers(state, entry)
    rendered = await serve_entry_off_loop(entry, call.shape, {HEADER_KEY: call.key, HEADER_CACHE: CACHE_HIT, **said})
    rendered = dataclasses.replace(rendered, saving=saving)
    if bound.memoize:
        bound.memory.put(call.key, call.shape, rendered, state.config.memory_cache)
    bound.observer.served(call.key, entry)
    return rendered, None


async def _read(state: ProxyState, bound: Bound, call: Call) -> tuple[Entry | None, str | None]:
    """The store's entry for `call`; when a miss goes on to call the upstream on behalf of every proxy
    on the store (and no learned tier or flight here may answer it first), the claim of its key too,
    taken with the read (`shared_flight.read_or_claim`)."""
    if state.tiers or not shared_flight.takes_part(state, bound, call) or bound.flights.join(call.key) is not None:
        return await _get(state, bound, call.key), None
    return await _asking(state, bound, call.key, lambda: shared_flight.read_or_claim(state, bound, call))


async def _learned(request: web.Request, state: ProxyState, bound: Bound, call: Call) -> web.Response | None:
    """The first learned tier's answer to an exact miss (similar, then fine-tune), or None: the request
    goes on to the general model (or is a replay miss). See `tiers`."""
    note = state.note(request)

    async def ask(body: dict[str, Any], endpoint: str | None = None) -> Asked:
        if endpoint is not None and endpoint not in CACHEABLE_ENDPOINTS:
            raise ValueError(f"a tier asks a cacheable endpoint ({', '.join(CACHEABLE_ENDPOINTS)}), not {endpoint!r}")
        headers = forward_headers(request.headers)
        headers["Content-Type"] = CONTENT_TYPE_JSON
        base = await state.upstream_base(state.config.upstream)
        state.stats.upstream_calls += 1  # a tier's call (the fine-tuned model, embeddings) is one too
        started = time.perf_counter()
        # The endpoint's /v1 path, not the client's: a tier picks its model in the body, which an Azure
        # deployment's path would override.
        status, raw = await state.upstream.ask(
            upstream_url(base, endpoint or call.endpoint),
            headers,
            compact_json_bytes(body),
            state.config.upstream_timeout,
            public_url(state.config.upstream),
        )
        state.metrics.upstream_latency.labels(endpoint or call.endpoint).observe(time.perf_counter() - started)
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = None
        return Asked(status, parsed)

    for tier in state.tiers:
        if tier.needs_upstream and not call.policy.call_upstream:
            continue
        if not bound.health.up:
            raise StoreUnavailable(bound.health.reason or "the store is unavailable")
        answer = await tier.answer(call, bound.store, ask)
        if answer is None:
            continue
        state.stats.hits_by_tier[tier.name] = state.stats.hits_by_tier.get(tier.name, 0) + 1
        note.cache = tier.name
        saving, said = (None, {}) if tier.needs_upstream else _saving_headers(state, answer.entry)
        headers = {HEADER_KEY: call.key, HEADER_CACHE: tier.name, **said, **answer.headers}
        bound.observer.learned(call.key, tier.name, answer.entry)
        if answer.store and call.policy.fate is Fate.STORE:
            stored = dataclasses.replace(answer.entry, key=call.key, request=call.canonical, expires_at=_expires(state))
            _store_learned(state, bound, stored)
        rendered = dataclasses.replace(await serve_entry_off_loop(answer.entry, call.shape, headers), saving=saving)
        state.count_saving(rendered)
        return rendered.response()
    return None


def _store_learned(state: ProxyState, bound: Bound, entry: Entry) -> None:
    """Keep a learned answer as the exact entry of the request it answered (the tier asked for it)."""
    flight = Flight(entry.key, entry.endpoint, Shape())
    flight.entry = entry
    flight.body = compact_json_bytes(entry.body) if entry.body is not None else b""
    flight.streaming = entry.events is not None
    _start_put(state, bound, flight)


async def _get(state: ProxyState, bound: Bound, key: str) -> Entry | None:
    """The store's entry for `key`. StoreUnavailable when the store does not answer (or is known
    not to); any other failure of the store is a 503 naming it."""
    return await _asking(state, bound, key, lambda: bound.ask_store(bound.store.get, key))


async def _asking(state: ProxyState, bound: Bound, key: str, read: Callable[[], Awaitable[T]]) -> T:
    """`read()`, a read of the store about `key`, with the failures `_get` says."""
    if not bound.health.up:
        raise StoreUnavailable(bound.health.reason or "the store is unavailable")
    started = time.perf_counter()
    try:
        return await read()
    except StoreUnavailable as exc:
        state.stats.store_errors += 1
        bound.health.failed(bound.store, exc)
        raise
    except Exception as exc:  # a broken store must not look like a proxy crash
        state.stats.errors += 1
        state.stats.store_errors += 1
        log.error("store get %s failed: %s", key[:15], exc)
        raise APIError(
            503, f"the cache store could not be read: {exc}", type=ERROR_TYPE_PROXY, code="store_unavailable"
        ) from None
    finally:
        state.metrics.store_latency.labels("get").observe(time.perf_counter() - started)


def _expires(state: ProxyState) -> float | None:
    """When a recording made now stops answering (--ttl), or None."""
    return time.time() + state.config.ttl if state.config.ttl else None


async def _replay_miss(state: ProxyState, bound: Bound, call: Call, ours: dict[str, str]) -> web.Response:
    state.stats.replay_misses += 1
    await state.writer.settle(SETTLE_SECONDS)  # the closest recording may be one just answered
    try:
        stale = await _too_old(state, bound, call)
        # Off the loop, in the one searcher thread: misses queue there, not in the pool that also
        # serves store reads (hits), and each gives up at its deadline (CLOSEST_SECONDS).
        deadline = time.monotonic() + CLOSEST_SECONDS
        closest, complete = (
            await asyncio.get_running_loop().run_in_executor(_SEARCHER, _closest_of_caller, bound, call, deadline)
            if stale is None
            else (None, True)
        )
    except StoreUnavailable as exc:
        bound.health.failed(bound.store, exc)
        state.stats.without_store += 1
        raise _store_down(bound) from None
    message = stale or describe_miss(call.key, call.canonical, closest, complete)
    miss = ReplayMiss(call.key, call.endpoint, call.canonical, closest, message)
    bound.observer.replay_miss(miss)
    error = APIError(404, bound.binding.wording.replay_miss(miss), type=ERROR_TYPE_MISS, code="cache_miss")
    return error.response({**ours, HEADER_CACHE: CACHE_MISS}, call.endpoint in ANTHROPIC_ENDPOINTS)


async def _too_old(state: ProxyState, bound: Bound, call: Call) -> str | None:
    """Why the recording of `call` did not answer it when it is there but older than its max-age."""
    if call.policy.max_age is None:
        return None
    entry = await _get(state, bound, call.key)
    if entry is None or entry.expired():
        return None
    return (
        f"the recording for key {call.key} ({call.endpoint}) is {entry.age():.0f} s old, older than this "
        f"request's Cache-Control: max-age={call.policy.max_age:g}; record it again, or ask without max-age"
    )


def _closest_of_caller(bound: Bound, call: Call, deadline: float):  # -> (Closest | None, complete)
    """The recording nearest the request among the caller's own: a recording another namespace
    (another API key under --isolate-by-auth) made is neither shown nor confirmed to exist."""
    namespace = call.namespace
    # Another namespace's recording passes as None (skipped), so the search still sees its clock.
    own = (
        (key, canonical if isinstance(canonical, dict) and key_of_canonical(canonical, namespace) == key else None)
        for key, canonical in bound.store.iter_requests()
    )
    return search_closest(call.canonical, own, deadline)


def _launch(
    request: web.Request,
    state: ProxyState,
    bound: Bound,
    call: Call,
    recorded: Entry | None,
    claimed: str | None = None,
    caller: str = "",
) -> Flight:
    """Start the upstream call as its own task: it outlives a client that goes away, so followers
    and the store still get the answer. `claimed`: the token of the key's claim, already taken."""
    redirect = bound.binding.redirect
    if redirect is not None and redirect.applies(call.endpoint, call.body):
        # What goes upstream asks the other model with its seed; the key and the recording stay the request's.
        sent = {**json.loads(call.payload), "model": redirect.model, "seed": redirect.seed}
        call = dataclasses.replace(call, payload=compact_json_bytes(sent))
    flight = Flight(call.key, call.endpoint, call.upstream_shape, caller)
    if call.policy.share_flight:
        bound.flights.add(flight)
    headers = forward_headers(request.headers)
    headers["Content-Type"] = CONTENT_TYPE_JSON
    task = asyncio.create_task(_fly(state, bound, flight, call, headers, recorded, claimed))
    state.tasks.add(task)
    task.add_done_callback(state.tasks.discard)
    return flight


async def _fly(
    state: ProxyState,
    bound: Bound,
    flight: Flight,
    call: Call,
    headers: CIMultiDict[str],
    recorded: Entry | None,
    claimed: str | None = None,
) -> None:
    """The flight's answer: from the upstream, or — when other proxies share the store and one of them
    is already asking — from that proxy's call (see shared_flight)."""
    lease = None
    if claimed is not None or shared_flight.takes_part(state, bound, call):
        try:
            lease = await shared_flight.lead_or_follow(state, bound, flight, call, claimed)
        except asyncio.CancelledError:
            bound.flights.remove(flight)
            flight.failure = Failure("the proxy shut down while waiting for another proxy's answer", "proxy_shutdown")
            flight.finish()
            raise
        if lease is None:  # another proxy's call answered it
            state.stats.coalesced += 1
            bound.flights.remove(flight)
            flight.finish()
            return
    try:
        await _call_upstream(state, bound, flight, call, headers, recorded, lease)
    finally:
        if lease is not None:
            await shared_flight.end(state, bound, lease, flight)


async def _call_upstream(
    state: ProxyState,
    bound: Bound,
    flight: Flight,
    call: Call,
    headers: CIMultiDict[str],
    recorded: Entry | None,
    lease: shared_flight.Lease | None = None,
) -> None:
    config = state.config
    fate = call.policy.fate
    write: asyncio.Task | None = None
    try:
        configured = upstream_of(config, call.endpoint)
        base = await state.upstream_base(configured)
        shown = public_url(configured)
        # The request is searched for credentials while the upstream thinks: the search runs at the
        # call's first pause (the request sent, on a kept-alive connection), always before its answer
        # is read, so even a streamed answer's head can say the store will refuse it.
        checked = asyncio.create_task(_check_request(flight, call)) if fate is Fate.STORE else None
        # A stream's events are searched as they come, in the pauses between its chunks: not in the
        # store thread once it is over, beside the next request.
        scan = EventScan() if fate is Fate.STORE else None
        state.stats.upstream_calls += 1
        started = time.perf_counter()
        read = await state.upstream.fetch(
            flight,
            upstream_url(base, call.target),
            headers,
            call.payload,
            config.upstream_timeout,
            shown,
            config.max_answer,
            _scanning(scan) if scan is not None else None,
        )
        if checked is not None:
            await checked  # done long since; raises what the search raised
        state.metrics.upstream_latency.labels(call.endpoint).observe(time.perf_counter() - started)
        if flight.failure is not None:
            state.stats.upstream_failures += 1
            log.warning("%s %s: %s", call.endpoint, call.key[:15], flight.failure.message)
            bound.observer.upstream_error(call.key, 502, flight.failure.message)
        elif flight.oversize:
            log.warning("%s %s: %s", call.endpoint, call.key[:15], flight.store_error)
            bound.observer.write_failed(call.key, flight.store_error or "too large")
        elif flight.is_2xx and (read := await _read_2xx(call, flight, read)) is not _ERROR_BODY:
            flight.entry = _entry(call, flight, read, shown)
            if flight.entry is not None:
                flight.entry.expires_at = _expires(state)
                if checked is not None and checked.result():
                    vouch_request(flight.entry)  # searched while the upstream thought: not again
                if scan is not None and flight.streaming:
                    vouch_events(flight.entry, scan)
            if flight.entry is not None and fate is Fate.STORE:
                write = await _queue_put(state, bound, flight, lease)
            elif flight.entry is not None and fate is Fate.COMPARE:
                bound.observer.compared(call.key, recorded, flight.entry, read)
        else:
            state.stats.upstream_errors += 1
            bound.observer.upstream_error(call.key, flight.status or 502, _error_message(flight))
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
        bound.flights.remove(flight)
        try:
            if lease is not None and write is None:
                # Nothing to store: let go of the key before the answer goes out, so a request made once
                # the client has it (a retry after an error) makes its own call, not shares this one's.
                await shared_flight.end(state, bound, lease, flight)
        finally:
            flight.finish()
    if write is not None:
        await asyncio.shield(write)  # this task ends when the answer is stored (settle and shutdown wait for it)


def _scanning(scan: EventScan) -> Callable[[list[SSEEvent]], None]:
    def catch_up(events: list[SSEEvent]) -> None:
        try:
            scan.catch_up(events)
        except Exception as exc:  # never a callback's traceback: the store searches the stream itself
            scan.dirty = True
            log.debug("searching a stream as it came failed: %s", exc)

    return catch_up


async def _check_request(flight: Flight, call: Call) -> bool:
    """True when the request holds no credential; else the store's refusal goes in `flight.store_error`."""
    where = find_secret(call.canonical, "entry.request")
    if where:
        flight.store_error = str(SecretRefused(where))
    return not where


async def _off_loop(flight: Flight, function: Callable[..., T], *args: Any) -> T:
    """`function(*args)` on a plain answer: in a thread when the answer is large (parsing or scanning
    tens of MB on the loop holds every other client for seconds)."""
    if len(flight.body) > LARGE_ANSWER:
        return await asyncio.to_thread(function, *args)
    return function(*args)


# What `_read_2xx` says of a 2xx whose body is an OpenAI error object (some compatible servers answer
# so): an error, never a recording.
_ERROR_BODY: Any = object()


async def _read_2xx(call: Call, flight: Flight, read: Summary | None) -> Summary | None:
    """The one read of a 2xx answer: a stream's (`read`, from the relay), or its plain body parsed
    once (in a thread when large), or `_ERROR_BODY`."""
    if flight.streaming:
        return read
    return await _off_loop(flight, _plain_read, call, flight)


def _is_error_body(body: Any) -> bool:
    return isinstance(body, dict) and isinstance(body.get("error"), dict) and "choices" not in body and "data" not in body


def _error_message(flight: Flight) -> str:
    """The upstream's own error message, for the observer (the client gets the answer as it came)."""
    try:
        error = json.loads(flight.body).get("error")
        message = error.get("message") if isinstance(error, dict) else error
    except (ValueError, AttributeError):
        message = None
    return str(message or f"HTTP {flight.status}")


def _plain_read(call: Call, flight: Flight) -> Summary | None:
    """The one read of a plain 2xx answer (its one JSON parse): `_ERROR_BODY` when it is an error object,
    None when its body is not JSON, or not an answer of the endpoint (`null`, `{}`: it would replay
    as nonsense, and could not be served as a stream): not stored."""
    problem: str | None
    try:
        body = json.loads(flight.body)
    except (ValueError, RecursionError):
        body, problem = None, "it is not JSON"
    else:
        if _is_error_body(body):
            return _ERROR_BODY
        problem = answer_problem(call.endpoint, body)
    if problem:
        log.warning(
            "%s %s: the upstream answered 2xx with a body that is no answer (%s); not stored",
            call.endpoint,
            call.key[:15],
            problem,
        )
        return None
    return summary(call.endpoint, body=body)


def _entry(call: Call, flight: Flight, read: Summary | None, upstream: str) -> Entry | None:
    """The entry for a complete 2xx answer, or None when the answer cannot be kept."""
    if read is None:
        return None
    answer = {"events": read.events} if flight.streaming else {"body": read.body}
    upstream = recorded_upstream(upstream)
    return Entry(
        key=call.key,
        endpoint=call.endpoint,
        request=call.canonical,
        status=flight.status or 200,
        headers=kept_response_headers(flight.headers.items()),
        upstream=upstream,
        url=entry_url(upstream, call.endpoint, join_upstream(upstream, call.target)),
        model=read.model,
        system_fingerprint=read.system_fingerprint,
        **answer,
    )


async def _queue_put(
    state: ProxyState, bound: Bound, flight: Flight, lease: shared_flight.Lease | None = None
) -> asyncio.Task | None:
    """Start the store write once the write backlog has room: until then the answer is held
    (backpressure), and past `write_wait` seconds it goes out unrecorded, saying why. Under a durable
    binding (--durable, a cassette that counts its requests) the answer also waits for the write. A
    `lease` on the key is let go by the store thread right after the write (see shared_flight)."""
    config = state.config
    size = len(flight.body) + sum(len(chunk) for chunk, _ in flight.chunks)
    scanned = False
    if not flight.streaming and not flight.store_error and len(flight.body) > LARGE_ANSWER:
        # A large answer's secret scan, in a thread, before `room`: nothing may wait between the two.
        flight.store_error = await _off_loop(flight, _answer_secret, flight)
        scanned = True
    if not await state.writer.room(size, config):
        state.stats.errors += 1
        flight.store_error = state.writer.full_error(config)
        log.error("store put %s skipped: %s", flight.key[:15], flight.store_error)
        bound.observer.write_failed(flight.key, flight.store_error)
        return None
    # _call_upstream searched the request before the call; a large answer was scanned off the loop above.
    write = _start_put(state, bound, flight, size, scanned, lease)
    if write is not None and bound.binding.durable:
        # The answer waits for its write: the next request finds the recording there.
        await asyncio.shield(write)
    return write


def _start_put(
    state: ProxyState,
    bound: Bound,
    flight: Flight,
    size: int = 0,
    scanned: bool = False,
    lease: shared_flight.Lease | None = None,
) -> asyncio.Task | None:
    """Start writing the flight's entry in the store thread; None when it is refused up front.
    `scanned`: the answer was checked for secrets already (off the loop, being large)."""
    if not bound.health.up:  # answered while the store is away: said, not attempted
        flight.store_error = bound.health.said()
        return None
    if not flight.streaming:
        # The answer may leave before its write lands, so say now what the store would refuse: a
        # plain answer can still carry the X-Seedreplay-Store-Error header.
        refused = flight.store_error or (None if scanned else _answer_secret(flight))
        if refused:
            state.stats.errors += 1
            flight.store_error = refused
            log.error("store put %s refused: %s", flight.key[:15], refused)
            bound.observer.write_failed(flight.key, refused)
            return None
    assert flight.entry is not None
    if bound.pure:
        bound.flights.writing(flight.entry)
        bound.memory.invalidate(flight.key)
    return state.writer.start(_put(state, bound, flight, lease), size)


def _answer_secret(flight: Flight) -> str | None:
    """The store's refusal of this plain answer for a credential-shaped string in it, or None: the
    one check the store makes, made here so that the answer can say it. The entry remembers it was
    found clean, so the store's own call of the check passes it at once; a request searched before
    the upstream call (`vouch_request`) is not searched again."""
    assert flight.entry is not None
    try:
        refuse_secrets(flight.entry)
    except SecretRefused as exc:
        return str(exc)
    return None


async def _put(state: ProxyState, bound: Bound, flight: Flight, lease: shared_flight.Lease | None = None) -> None:
    """The store write, in the store thread (and there, once it landed, the release of `lease`);
    then this binding's memory copies of the key go."""
    assert flight.entry is not None
    if not bound.binding.durable:
        # One turn of the loop first: the requests the finished flight just woke send their last
        # bytes before the store thread starts packing (it would hold the GIL while they wait).
        await asyncio.sleep(0)
    release = shared_flight.release_after_write(bound, lease) if lease is not None else None
    let_go = False
    try:
        await state.writer.call(_write_then_release, state.metrics.timed_store("put", bound.store.put), flight.entry, release)
    except shared_flight.ReleaseFailed:  # stored, and said in the log; the lock expires by itself
        let_go = True
        state.stats.store_errors += 1
        _stored(state, bound, flight)
    except Exception as exc:  # the client still gets its answer; the failure is said, not hidden
        state.stats.errors += 1
        state.stats.store_errors += 1
        if isinstance(exc, StoreUnavailable):
            bound.health.failed(bound.store, exc)
        flight.store_error = str(exc) or type(exc).__name__
        log.error("store put %s failed: %s", flight.key[:15], flight.store_error)
        bound.observer.write_failed(flight.key, flight.store_error)
    else:
        let_go = release is not None
        _stored(state, bound, flight)
    finally:
        if lease is not None:
            shared_flight.released(lease, let_go)
        bound.flights.written(flight.entry)
        bound.memory.invalidate(flight.key)


def _write_then_release(put: Callable[[Entry], None], entry: Entry, release: Callable[[], None] | None) -> None:
    """In the store thread: the write, then — once it landed — the release of the shared flight."""
    put(entry)
    if release is not None:
        release()


def _stored(state: ProxyState, bound: Bound, flight: Flight) -> None:
    assert flight.entry is not None
    flight.store_error = None
    state.stats.stored += 1
    bound.observer.stored(flight.entry)
    for tier in state.tiers:
        tier.heard_stored(flight.entry)
