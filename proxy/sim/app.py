"""The simulator's aiohttp app factory: routes, middlewares (stats, errors, auth, faults), lifecycle."""

from __future__ import annotations

import asyncio
import logging
import random
import secrets
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from aiohttp import web

from pytest_seedreplay.core.urls import anthropic_path
from pytest_seedreplay.proxy.serve import serving, typed_request_key

from . import azure, chat, embeddings, files, finetune, messages, models, responses
from .config import SimConfig
from .errors import APIError
from .runtime import CLOSING, CONFIG, MAX_BODY, STATE, STATS, ServerClosing, pause
from .sse import CUT_KEY, ConnectionCut, cut_connection
from .state import SimState

log = logging.getLogger("seedreplay.sim")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

FAULT_HEADER = "X-Sim-Fault"
FAULTS = ("500", "429", "503", "timeout", "cut-stream", "slow")
RANDOM_FAULTS = ("500", "429", "503")  # what --fault-rate draws from
HOLD_SECONDS = 30.0  # a `timeout` fault holds the request this long (or until shutdown)
SLOW_SECONDS = 1.0  # a `slow` fault answers correctly after this extra delay
RETRY_AFTER_SECONDS = "1"
STARTED = typed_request_key("sim_started", float)
UNCOUNTED = frozenset({"/sim/stats", "/healthz"})


def route_name(request: web.Request) -> str:
    """`METHOD /path/template` for the stats: `GET /v1/files/{file_id}`, not one line per id."""
    resource = request.match_info.route.resource
    path = resource.canonical if resource is not None else request.path
    return f"{request.method} {path}"


@web.middleware
async def count_requests(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path not in UNCOUNTED:
        request.app[STATS][route_name(request)] += 1
    return await handler(request)


@web.middleware
async def openai_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every failure becomes an OpenAI-shaped JSON error (Anthropic-shaped on Anthropic's paths); no
    traceback ever reaches the client."""
    anthropic = anthropic_path(request.path)
    try:
        response = await handler(request)
    except APIError as exc:
        return exc.response(anthropic=anthropic)
    except ConnectionCut as cut:
        return cut.response  # already half sent; the socket is closed
    except ServerClosing:
        closing = APIError(503, "The simulator is shutting down.", type="server_error", code="shutting_down")
        return closing.response(anthropic=anthropic)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _http_error(request, exc).response(anthropic=anthropic)
    except Exception:
        log.exception("simulator error on %s %s", request.method, request.path)
        return APIError(
            500, "The simulator had an internal error while processing your request.", type="server_error", code="server_error"
        ).response(anthropic=anthropic)
    if _api_path(request.path) and not anthropic:
        _add_upstream_headers(response, request)
    return response


def _api_path(path: str) -> bool:
    return path.startswith("/v1/") or azure.is_azure_path(path)


def _http_error(request: web.Request, exc: web.HTTPException) -> APIError:
    if exc.status == 404:
        return APIError(404, f"Invalid URL ({request.method} {request.path})", code="unknown_url")
    if exc.status == 405:
        return APIError(405, f"Method {request.method} is not allowed on {request.path}.", code="method_not_allowed")
    if exc.status == 413:
        return APIError(413, "The request body is too large.", code="request_too_large")
    return APIError(exc.status, exc.reason or "HTTP error", code=None)


def _add_upstream_headers(response: web.StreamResponse, request: web.Request) -> None:
    if response.prepared:
        return
    response.headers.setdefault("x-request-id", f"req_{secrets.token_hex(16)}")
    response.headers.setdefault("openai-version", "2020-10-01")
    response.headers.setdefault(
        "openai-processing-ms", str(int((time.monotonic() - request.get(STARTED, time.monotonic())) * 1000))
    )


@web.middleware
async def require_auth(request: web.Request, handler: Handler) -> web.StreamResponse:
    request[STARTED] = time.monotonic()
    if anthropic_path(request.path):
        messages.check_auth(request.headers)
    elif request.app[CONFIG].require_auth and _api_path(request.path):
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        azure_key = azure.is_azure_path(request.path) and request.headers.get("api-key", "").strip()
        if not azure_key and (scheme.lower() != "bearer" or not token.strip()):
            raise APIError(
                401,
                "You didn't provide an API key. You need to provide your API key in an Authorization header "
                "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
                code="invalid_api_key",
            )
    return await handler(request)


@web.middleware
async def inject_faults(request: web.Request, handler: Handler) -> web.StreamResponse:
    """X-Sim-Fault (or --fault-rate) turns a /v1 request into a failure the proxy must cope with."""
    if not _api_path(request.path):
        return await handler(request)
    fault = request.headers.get(FAULT_HEADER, "").strip().lower()
    rate = request.app[CONFIG].fault_rate
    if not fault and rate > 0 and random.random() < rate:
        fault = random.choice(RANDOM_FAULTS)
    if not fault:
        return await handler(request)
    if fault not in FAULTS:
        raise APIError(
            400,
            f"Unknown {FAULT_HEADER} value {fault!r}; use one of {', '.join(FAULTS)}.",
            param=FAULT_HEADER,
            code="invalid_fault",
        )
    if fault == "500":
        raise APIError(
            500,
            "The server had an error while processing your request. Sorry about that! (simulated)",
            type="server_error",
            code="server_error",
        )
    if fault == "429":
        raise APIError(
            429,
            "Rate limit reached for requests (simulated). Please try again in 1s.",
            type="requests",
            code="rate_limit_exceeded",
            headers={"retry-after": RETRY_AFTER_SECONDS},
        )
    if fault == "503":
        if anthropic_path(request.path):
            # Anthropic says overload with its own status, which its SDK retries (OverloadedError).
            raise APIError(529, "Overloaded (simulated)", type="overloaded_error")
        raise APIError(
            503, "The engine is currently overloaded, please try again later. (simulated)", type="server_error", code="overloaded"
        )
    if fault == "timeout":
        await pause(request.app, HOLD_SECONDS)
        raise APIError(504, "The simulated request timed out.", type="server_error", code="timeout")
    if fault == "slow":
        await pause(request.app, SLOW_SECONDS)
        return await handler(request)
    request[CUT_KEY] = True
    response = await handler(request)
    if not response.prepared:
        return await _cut_body(request, response)
    return response


async def _cut_body(request: web.Request, response: web.StreamResponse) -> web.StreamResponse:
    """cut-stream on a plain answer: send the headers and half the body, then drop the connection."""
    body = getattr(response, "body", None) or b""
    partial = web.StreamResponse(status=response.status, headers=response.headers)
    partial.content_length = len(body)
    await partial.prepare(request)
    await partial.write(bytes(body[: len(body) // 2]))
    cut_connection(request, partial)
    return partial  # not reached: cut_connection raises


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def get_stats(request: web.Request) -> web.Response:
    counts = request.app[STATS]
    return web.json_response({"total": sum(counts.values()), "requests": dict(sorted(counts.items()))})


async def reset_stats(request: web.Request) -> web.Response:
    request.app[STATS].clear()
    return web.json_response({"total": 0, "requests": {}})


async def _on_shutdown(app: web.Application) -> None:
    app[CLOSING].set()  # wakes held (`timeout`) and paced requests so shutdown is prompt


def make_sim_app(config: SimConfig | None = None) -> web.Application:
    """The simulator as an aiohttp app (serve it with proxy.serve or `running_sim`)."""
    config = config or SimConfig()
    app = web.Application(middlewares=[count_requests, openai_errors, require_auth, inject_faults], client_max_size=MAX_BODY)
    app[CONFIG] = config
    app[CLOSING] = asyncio.Event()
    app[STATS] = Counter()
    app[STATE] = SimState(config.state_dir)
    app.on_shutdown.append(_on_shutdown)
    chat.add_routes(app)
    embeddings.add_routes(app)
    models.add_routes(app)
    responses.add_routes(app)
    messages.add_routes(app)
    files.add_routes(app)
    finetune.add_routes(app)
    azure.add_routes(app)  # after the others: it serves their routes under Azure's paths
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/sim/stats", get_stats)
    app.router.add_delete("/sim/stats", reset_stats)
    return app


@asynccontextmanager
async def running_sim(config: SimConfig | None = None, host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[str]:
    """Serve a simulator in the running loop; yields its base URL, ending in `/v1`."""
    async with serving(make_sim_app(config), host, port) as root:
        yield f"{root}/v1"
