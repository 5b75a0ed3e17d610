"""Per-app state keys and the waits every handler shares (latency, pacing, held requests)."""

from __future__ import annotations

import asyncio
import json
import re
from collections import Counter
from typing import Any

from aiohttp import web

from ..serve import decode_body
from .config import SimConfig
from .errors import APIError, bad_request, invalid_type
from .state import SimState

CONFIG = web.AppKey("sim_config", SimConfig)
CLOSING = web.AppKey("sim_closing", asyncio.Event)
STATS = web.AppKey("sim_stats", Counter)
STATE = web.AppKey("sim_state", SimState)


MAX_BODY = 512 * 1024 * 1024  # bytes of a request body, as read and as decoded (uploads for fine-tuning)
# A JSON escape of a UTF-16 surrogate (\ud800-\udfff): legal JSON text, but alone it is no character.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


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
    raw = decode_body(await request.read(), request.headers.get("Content-Encoding"), MAX_BODY)
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
    if _SURROGATE_ESCAPE.search(raw) and _has_lone_surrogate(body):
        raise bad_request(
            "We could not parse the JSON body of your request: it holds a lone UTF-16 surrogate escape "
            "(\\ud800-\\udfff without its pair), which is not a Unicode character. Send valid UTF-8 text."
        )
    deployment = request.match_info.get("deployment")
    if deployment is not None:  # Azure OpenAI: the deployment in the path is the model, whatever the body says
        body["model"] = deployment
    return body


def _has_lone_surrogate(body: dict[str, Any]) -> bool:
    # Paired escapes were joined into one character by the parser; a lone one cannot be encoded.
    try:
        json.dumps(body, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def stream_flag(body: dict[str, Any]) -> bool:
    value = body.get("stream", False)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise APIError(
            400,
            f"Invalid type for 'stream': expected a boolean, but got {type(value).__name__} instead.",
            param="stream",
            code="invalid_type",
        )
    return value


def include_usage(body: dict[str, Any]) -> bool:
    options = body.get("stream_options")
    if options is None:
        return False
    if not isinstance(options, dict):
        raise invalid_type("stream_options", "an object", options)
    return bool(options.get("include_usage"))
