"""Per-app state keys and the waits every handler shares (latency, pacing, held requests)."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from typing import Any

from aiohttp import web

from .config import SimConfig
from .errors import APIError, bad_request, invalid_type
from .state import SimState

CONFIG = web.AppKey("sim_config", SimConfig)
CLOSING = web.AppKey("sim_closing", asyncio.Event)
STATS = web.AppKey("sim_stats", Counter)
STATE = web.AppKey("sim_state", SimState)


class ServerClosing(Exception):
    """A wait was interrupted because the simulator is shutting down."""


async def pause(app: web.Application, seconds: float) -> None:
    """Sleep, but wake up at once (raising ServerClosing) when the server shuts down."""
    if seconds <= 0:
        return
    closing = app[CLOSING]
    try:
        await asyncio.wait_for(closing.wait(), seconds)
    except asyncio.TimeoutError:
        return
    raise ServerClosing()


async def first_token_delay(request: web.Request) -> None:
    await pause(request.app, request.app[CONFIG].latency_ms / 1000)


def token_interval(app: web.Application) -> float:
    tps = app[CONFIG].tokens_per_s
    return 1.0 / tps if tps > 0 else 0.0


async def read_json(request: web.Request) -> dict[str, Any]:
    """The request body as a JSON object, or a 400 the SDKs understand."""
    raw = await request.read()
    if not raw.strip():
        raise bad_request(
            "We could not parse the JSON body of your request: the body is empty. "
            "Send a JSON object with Content-Type: application/json."
        )
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise bad_request(
            f"We could not parse the JSON body of your request ({exc}). "
            "(HINT: This likely means you aren't using your HTTP library correctly. "
            "The OpenAI API expects a JSON payload.)"
        ) from None
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object.", code="invalid_type")
    deployment = request.match_info.get("deployment")
    if deployment is not None:  # Azure OpenAI: the deployment in the path is the model, whatever the body says
        body["model"] = deployment
    return body


def stream_flag(body: dict[str, Any]) -> bool:
    value = body.get("stream", False)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise APIError(400, f"Invalid type for 'stream': expected a boolean, but got {type(value).__name__} instead.",
                       param="stream", code="invalid_type")
    return value


def include_usage(body: dict[str, Any]) -> bool:
    options = body.get("stream_options")
    if options is None:
        return False
    if not isinstance(options, dict):
        raise invalid_type("stream_options", "an object", options)
    return bool(options.get("include_usage"))
