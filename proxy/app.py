"""The caching proxy as an aiohttp app: `make_proxy_app(config, store)`, and `running_proxy` to serve it.

Routes: the cacheable endpoints (POST), every other `/v1/*` request passed through, `/healthz` and
`/seedreplay/stats`. One guard wraps every handler: the token, OpenAI-shaped errors (never a bare
500 page), and the log: at info one line per request that is not a hit (misses, errors, passthrough),
and the hits summed up every few seconds (`HitLog`); at debug one line per hit too.
"""

from __future__ import annotations

import asyncio
import functools
import hmac
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import asdict
from typing import cast

from aiohttp import hdrs, web

from pytest_seedreplay.core.constants import (
    ANTHROPIC_ENDPOINTS,
    CACHE_BYPASS,
    CACHE_HIT,
    CACHEABLE_ENDPOINTS,
    ERROR_TYPE_PROXY,
    HEADER_CACHE,
    HEADER_KEY,
    HEADER_TOKEN,
    SIM_UPSTREAM,
)
from pytest_seedreplay.core.urls import AZURE_PREFIX, check_upstream, public_url
from pytest_seedreplay.policy import PROXY_MODES
from pytest_seedreplay.store import Store, StoreUnavailable

from . import workers
from .anthropic import forwarded_upstream, speaks_anthropic
from .binding import Binding, first_binding
from .cache import handle_cacheable
from .config import ProxyConfig
from .errors import APIError
from .front import CONNECTION_LIMITS, FRONT_DOOR, Routed, Served
from .hits import HitLane
from .incoming import policy_of
from .metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from .metrics import ProxyMetrics, merge_metrics
from .serve import ConnectionLimits, serving
from .shared_flight import warm_up
from .state import NOTE, PROXY_STATE, ProxyState, ProxyStats, RequestNote, add_savings
from .tiers import Tier, check_tenants
from .upstream import upstream_url
from .writer import SETTLE_SECONDS

__all__ = ["PROXY_STATE", "Binding", "ProxyConfig", "ProxyState", "ProxyStats", "make_proxy_app", "running_proxy"]

log = logging.getLogger("seedreplay.proxy")

Handler = Callable[[web.Request, "ProxyState"], Awaitable[web.StreamResponse]]  # ours: the state given
_DRAIN_SECONDS = 10.0  # on shutdown, how long upstream calls whose clients left may still finish
_SAVINGS_EVERY = 5.0  # seconds between additions of what hits saved to the store's ledger
HITS_EVERY = 5.0  # seconds between the info lines that sum up the hits


def make_proxy_app(config: ProxyConfig, store: Store | Binding, tiers: Sequence[Tier] = ()) -> web.Application:
    """The caching proxy over `store` (or a whole `Binding`), with learned `tiers` asked in order on an
    exact miss. The caller owns the store (the proxy never closes it)."""
    if config.mode not in PROXY_MODES:
        raise ValueError(f"mode {config.mode!r} is not one of {', '.join(PROXY_MODES)}")
    check_upstream(config.upstream)
    check_upstream(config.anthropic_upstream)
    check_tenants(tiers, config.isolate_by_auth)
    binding = store if isinstance(store, Binding) else first_binding(config, store)
    # Bodies are read and size-checked by the handlers themselves (--max-body).
    app = web.Application(client_max_size=2**62)
    state = app[PROXY_STATE] = ProxyState(config, binding, tiers)
    state.metrics = ProxyMetrics(state)
    app.cleanup_ctx.append(_resources)
    for path, handler in _OWN_PATHS.items():
        app.router.add_get(path, _guarded(state, handler))
    fast: dict[str, tuple[HitLane, Routed]] = {}
    for endpoint in CACHEABLE_ENDPOINTS:
        cacheable = _guarded(state, _cacheable(endpoint), api=True, endpoint=endpoint)
        lane = HitLane(state, endpoint)
        for path in api_paths(endpoint):
            app.router.add_post(path, cacheable)
            if "{" not in path:
                fast[path] = (lane, cacheable)
    app.router.add_route("*", "/v1/{tail:.*}", _guarded(state, _forward, api=True))
    app.router.add_route("*", AZURE_PREFIX + "{tail:.*}", _guarded(state, _forward, api=True))
    # Last: every other path and method gets OpenAI's error object, not aiohttp's plain text.
    app.router.add_route("*", "/{tail:.*}", _guarded(state, _unknown))
    app[FRONT_DOOR] = lambda routed: _front_door(fast, routed, config.token)
    app[CONNECTION_LIMITS] = ConnectionLimits(config.header_timeout, config.body_timeout, config.max_connections)
    return app


def _front_door(fast: dict[str, tuple[HitLane, Routed]], routed: Served, token: str | None = None) -> Served:
    """What the server calls for each request: a POST to one of the cacheable endpoints' own paths goes
    to its hit lane (`hits`), then, unless the lane answered, straight to its handler; everything else
    through the app's router. Resolving the route, binding the app to the request and freezing the
    match cost a cache hit as much as finding its answer; the handlers need none of it (they are given
    the state), and the router still holds every route."""

    async def front(request: web.BaseRequest) -> web.StreamResponse:
        if hdrs.EXPECT not in request.headers:
            if request.method == "POST":
                # The path as sent, not decoded: `chat%2Fcompletions` is not the endpoint to the router either.
                path = request.raw_path.partition("?")[0]
                ours = fast.get(path)
                if ours is not None:
                    lane, handler = ours
                    if lane.takes(request):  # plain calls, not a coroutine: a hit's own cost is that small
                        try:
                            raw = await request.read()
                        except Exception:  # a body too late or cut: the full path reads it again and says so (408, 400)
                            raw = None
                        hit = lane.answer(request, path, raw) if raw is not None else None
                        if hit is not None:
                            return hit
                    return await handler(cast(web.Request, request))  # the app makes the requests: web.Request
        elif token:
            # The router answers `Expect: 100-continue` before any handler runs: a client without the
            # token must hear 401 first, not be invited to upload its body.
            refused = _refused(request, token)
            if refused is not None:
                return refused
        return await routed(request)

    return front


@asynccontextmanager
async def running_proxy(
    config: ProxyConfig, store: Store | Binding, host: str = "127.0.0.1", port: int = 0
) -> AsyncIterator[str]:
    """Serve a proxy in the running loop; yields its base URL, ending in `/v1`."""
    async with serving(make_proxy_app(config, store), host, port) as root:
        yield f"{root}/v1"


def api_paths(endpoint: str) -> tuple[str, ...]:
    """Where clients post to `endpoint` (`/v1/chat/completions`): there, and at Azure OpenAI's paths for
    it (a deployment's, the `/openai/v1/` surface's, and the Azure client's own: `/openai/responses`).
    Anthropic's endpoints only at their own path."""
    if endpoint in ANTHROPIC_ENDPOINTS:
        return (endpoint,)
    tail = endpoint.removeprefix("/v1")
    azure = AZURE_PREFIX.rstrip("/")
    return (endpoint, f"{azure}/v1{tail}", f"{azure}/deployments/{{deployment}}{tail}", azure + tail)


def _api_path(path: str) -> bool:
    return path.startswith(("/v1/", AZURE_PREFIX))


async def _resources(app: web.Application) -> AsyncIterator[None]:
    state = app[PROXY_STATE]
    state.attach()
    await state.upstream.open()
    ledger = asyncio.create_task(_add_savings_every(state, _SAVINGS_EVERY))
    hit_lines = asyncio.create_task(_say_hits_every(state, HITS_EVERY))
    warming = state.warming = asyncio.create_task(warm_up(state, state.bound))
    try:
        # The price library's import and data (~0.2 s, file reads) load here, in a thread, before the
        # first hit prices its answer on the loop.
        await asyncio.to_thread(state.config.prices.warm)
        if SIM_UPSTREAM in (state.config.upstream, state.config.anthropic_upstream):
            await state.upstream_base(SIM_UPSTREAM)
        yield
    finally:
        await _drain(state.tasks)
        ledger.cancel()
        hit_lines.cancel()
        await asyncio.gather(ledger, hit_lines, warming, return_exceptions=True)
        state.hit_log.say()  # the hits since the last line
        state.writer.start(add_savings(state, state.bound))
        await state.writer.close()  # every answer sent is in the store before the caller closes it
        await state.bound.health.close()
        state.store_threads.close()
        await state.aclose()
        await state.upstream.close()


async def _add_savings_every(state: ProxyState, seconds: float) -> None:
    while True:
        await asyncio.sleep(seconds)
        if state.bound.unsaved.hits:
            state.writer.start(add_savings(state, state.bound))


async def _say_hits_every(state: ProxyState, seconds: float) -> None:
    while True:
        await asyncio.sleep(seconds)
        state.hit_log.say()


async def _drain(tasks: set[asyncio.Task]) -> None:
    # Upstream calls outlive their clients (followers and the store want the answer): give
    # those still running a moment to finish, then stop them.
    pending = set(tasks)
    if not pending:
        return
    _, pending = await asyncio.wait(pending, timeout=_DRAIN_SECONDS)
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.wait(pending, timeout=5)


# --- handlers ---------------------------------------------------------------------------------


def _cacheable(endpoint: str) -> Handler:
    # A partial, not a wrapping coroutine: one frame less to enter and resume on every hit.
    return functools.partial(handle_cacheable, endpoint=endpoint)


async def _forward(request: web.Request, state: ProxyState) -> web.StreamResponse:
    """Any other /v1 request (files, fine-tuning, models, batches...): passed through unchanged."""
    config, binding = state.config, state.bound.binding
    note = request[NOTE]
    note.cache = CACHE_BYPASS
    policy = policy_of(request.headers, binding.mode, config.allow_mode_override)
    if not policy.call_upstream:
        binding.observer.not_replayable(request.method, request.path)
        raise APIError(404, binding.wording.not_replayable(request.method, request.path), code="not_replayable")
    state.stats.bypasses += 1
    state.stats.upstream_calls += 1
    configured = forwarded_upstream(config, request)
    base = await state.upstream_base(configured)
    response = await state.upstream.forward(
        request,
        upstream_url(base, request.raw_path),
        config.upstream_timeout,
        public_url(configured),
        {HEADER_CACHE: CACHE_BYPASS},
    )
    note.upstream = response.status
    return response


async def _healthz(request: web.Request, state: ProxyState) -> web.Response:
    return web.json_response(
        {"status": "ok", "mode": str(state.bound.binding.mode), "upstream": public_url(state.config.upstream)}
    )


async def _stats(request: web.Request, state: ProxyState) -> web.Response:
    counted = await counters(state)
    if state.siblings and not workers.local(request.headers):
        counted = await _all_workers(state, counted)
    return web.json_response(counted)


async def _all_workers(state: ProxyState, counted: dict[str, object]) -> dict[str, object]:
    """--workers: this worker's counters with the other workers' added (`workers`: how many answered)."""
    answered = 1
    for raw in await workers.ask_siblings(state, "/seedreplay/stats"):
        if raw is not None:
            workers.add_stats(counted, json.loads(raw))
            answered += 1
    counted["cost_saved"] = round(cast(float, counted["cost_saved"]), 6)
    saved = cast(dict, counted["saved"])
    saved["cost"] = round(saved["cost"], 6)
    counted["workers"] = answered
    if answered <= len(state.siblings):
        counted["workers_missing"] = len(state.siblings) + 1 - answered
    return counted


async def _metrics(request: web.Request, state: ProxyState) -> web.Response:
    body = state.metrics.render()
    if state.siblings and not workers.local(request.headers):
        body = merge_metrics([body, *(raw for raw in await workers.ask_siblings(state, "/metrics") if raw is not None)])
    return web.Response(body=body, headers={"Content-Type": METRICS_CONTENT_TYPE})


# The proxy's own GET endpoints, beside the API.
_OWN_PATHS: dict[str, Handler] = {"/healthz": _healthz, "/seedreplay/stats": _stats, "/metrics": _metrics}


async def counters(state: ProxyState) -> dict[str, object]:
    """What /seedreplay/stats serves (and `Proxy.stats()` returns)."""
    # Answers leave before their store write lands: let those writes finish, so `stored` and
    # `entries` count every answer already sent.
    await state.writer.settle(SETTLE_SECONDS)
    counted: dict[str, object] = dict(asdict(state.stats))
    bound = state.bound
    try:
        if not bound.health.up:  # asking it would wait for its timeout
            raise RuntimeError(bound.health.reason)
        store_stats = await bound.ask_store(bound.store.stats)
        counted.update(entries=store_stats.entries, bytes=store_stats.bytes, store=store_stats.location)
    except Exception as exc:  # the counters are still worth showing
        if isinstance(exc, StoreUnavailable):
            bound.health.failed(bound.store, exc)
        counted.update(entries=None, bytes=None, store_error=str(exc))
    # A tier's own counters (e.g. how often the fine-tune's answer fell through), where it keeps some.
    tier_stats = {}
    for tier in state.tiers:
        stats = getattr(tier, "stats", None)
        if callable(stats):
            tier_stats[tier.name] = stats()
    if tier_stats:
        counted["tiers"] = tier_stats
    saved = state.saved
    counted.update(
        tokens_saved=saved.tokens,
        cost_saved=round(saved.cost, 6),
        saved={**saved.to_dict(), "prices": state.config.prices.describe()},
        store_up=bound.health.up,
        in_flight=len(bound.flights),
        memory_bytes=bound.memory.bytes,
        memory_limit=state.config.memory_cache if bound.memoize else 0,
        mode=str(bound.binding.mode),
        upstream=public_url(state.config.upstream),
        uptime_s=round(time.time() - state.started, 3),
    )
    return counted


# --- the guard: token, errors, log line ---------------------------------------------------------


def _guarded(state: ProxyState, handler: Handler, api: bool = False, endpoint: str | None = None) -> Routed:
    """`handler` behind the guard: the token, OpenAI-shaped errors, the log line. Each route's handler
    is wrapped once, rather than an aiohttp middleware, which builds its chain anew for every request
    (a tenth of a cache hit's time). `api`: the route serves the API (its requests are counted);
    `endpoint`: the cacheable endpoint it serves (its requests are counted by endpoint too)."""

    async def guarded(request: web.Request) -> web.StreamResponse:
        note = request[NOTE] = RequestNote()
        logged = log.isEnabledFor(logging.INFO)
        started = time.perf_counter() if logged else 0.0
        response: web.StreamResponse | None = None
        state.enter()
        try:
            if state.config.token:
                _check_token(request, state.config.token)
            if api:
                state.stats.requests += 1
            response = await handler(request, state)
        except APIError as exc:
            if exc.status == 500:
                state.stats.errors += 1
            response = exc.response(_our_headers(request, note), speaks_anthropic(request))
        except web.HTTPException as exc:
            response = _http_error(request, exc).response(_our_headers(request, note), speaks_anthropic(request))
        except (asyncio.CancelledError, ConnectionError):
            raise  # the client went away: nothing to answer
        except Exception as exc:
            state.stats.errors += 1
            log.exception("%s %s failed", request.method, request.path)
            response = APIError(
                500,
                f"internal error in the seedreplay proxy: {type(exc).__name__}: {exc}",
                type=ERROR_TYPE_PROXY,
                code="proxy_error",
            ).response(_our_headers(request, note), speaks_anthropic(request))
        finally:
            state.leave()
            if endpoint is not None:
                state.stats.count(endpoint, note.cache)
            if logged:
                _log_request(state, request, note, response, started)
        return response

    # The route's name in aiohttp's listings (a cacheable endpoint's handler is a partial of handle_cacheable).
    guarded.__name__ = getattr(handler, "__name__", handle_cacheable.__name__)
    return guarded


async def _unknown(request: web.Request, state: ProxyState) -> web.StreamResponse:
    """A path none of the others takes: 405 on one of ours asked with another method, else 404."""
    if request.path in _OWN_PATHS:
        raise web.HTTPMethodNotAllowed(request.method, ["GET", "HEAD"])
    raise web.HTTPNotFound()


def _refused(request: web.BaseRequest, token: str) -> web.StreamResponse | None:
    """The 401 a request without the token gets before anything else happens, or None."""
    try:
        _check_token(request, token)
    except APIError as exc:
        response = exc.response({HEADER_CACHE: CACHE_BYPASS} if _api_path(request.path) else {})
        response.force_close()  # its body was never asked for: the connection cannot be reused
        return response
    return None


def _check_token(request: web.BaseRequest, token: str | None) -> None:
    if not token or request.path == "/healthz":
        return
    given = request.headers.get(HEADER_TOKEN, "")
    if not hmac.compare_digest(given.encode("utf-8", "surrogateescape"), token.encode("utf-8")):
        raise APIError(
            401,
            f"this seedreplay proxy needs its token: send the {HEADER_TOKEN} header with the value given to --token",
            code="invalid_seedreplay_token",
        )


def _our_headers(request: web.Request, note: RequestNote) -> dict[str, str]:
    headers = {}
    if note.key:
        headers[HEADER_KEY] = note.key
    if note.cache:
        headers[HEADER_CACHE] = note.cache
    elif _api_path(request.path):
        headers[HEADER_CACHE] = CACHE_BYPASS  # refused before the cache was consulted
    return headers


def _http_error(request: web.Request, exc: web.HTTPException) -> APIError:
    if exc.status == 404:
        return APIError(
            404,
            f"no such path {request.path}: the seedreplay proxy serves the OpenAI API under /v1 "
            "(point clients at http://HOST:PORT/v1), Azure OpenAI's under /openai (azure_endpoint "
            "http://HOST:PORT) and Anthropic's at /v1/messages (ANTHROPIC_BASE_URL=http://HOST:PORT), plus "
            "/healthz, /seedreplay/stats and /metrics",
            code="unknown_url",
        )
    if exc.status == 405:
        return APIError(405, f"{request.method} is not allowed on {request.path}", code="method_not_allowed")
    return APIError(exc.status, exc.reason or exc.text or "request refused", code=None)


def _log_request(
    state: ProxyState, request: web.Request, note: RequestNote, response: web.StreamResponse | None, started: float
) -> None:
    """A hit is counted for the next summary line (and has its own line at debug); any other request
    has its line at info."""
    ms = (time.perf_counter() - started) * 1000
    if note.cache == CACHE_HIT and response is not None and response.status < 400:
        state.hit_log.add(ms)
        if log.isEnabledFor(logging.DEBUG):
            _log_line(logging.DEBUG, request, note, response, ms)
        return
    _log_line(logging.INFO, request, note, response, ms)


def _log_line(level: int, request: web.Request, note: RequestNote, response: web.StreamResponse | None, ms: float) -> None:
    # Never the headers: they carry credentials.
    log.log(
        level,
        "%s %s key=%s cache=%s upstream=%s status=%s %.1fms",
        request.method,
        request.path,
        note.key[:11] if note.key else "-",
        note.cache or "-",
        note.upstream if note.upstream is not None else "-",
        response.status if response is not None else "client-gone",
        ms,
    )
