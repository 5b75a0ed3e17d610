"""Turning what the proxy has — a stored entry or a flight in the air — into the client's answer,
in the shape the client asked for (stream or not, usage chunk or not, float or base64)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from aiohttp import web
from multidict import CIMultiDict

from pytest_seedreplay.core.constants import CONTENT_TYPE_JSON, ERROR_TYPE_PROXY, HEADER_STORE_ERROR, LARGE_ANSWER
from pytest_seedreplay.core.entry import Entry, check_wire
from pytest_seedreplay.core.jsontext import compact_json_bytes
from pytest_seedreplay.shapes import (
    CONTENT_TYPE_SSE_UTF8,
    adapt_stream,
    answer_body,
    answer_events,
    answer_text,
    ends_stream,
    format_sse,
    streams,
)

from .errors import APIError, bad_gateway, sse_error_frame
from .flight import Flight, Shape
from .memory import Rendered

_FRAMING = ("content-type", "content-length")


def render_entry(entry: Entry, shape: Shape, extra: Mapping[str, str]) -> Rendered:
    """A stored answer as the request asked for it, in bytes ready to send (may raise ValueError
    if it cannot take that shape, or its status or headers cannot be sent)."""
    check_wire(entry.status, entry.headers)
    headers = CIMultiDict((k, v) for k, v in entry.headers.items() if k.lower() not in _FRAMING)
    headers.update(extra)
    if shape.stream and streams(entry.endpoint):
        headers["Content-Type"] = CONTENT_TYPE_SSE_UTF8
        return Rendered(entry.status, headers, format_sse(answer_events(entry, shape.include_usage)))
    return _json_answer(entry.status, answer_body(entry, shape.encoding_format), headers)


def serve_entry(entry: Entry, shape: Shape, extra: Mapping[str, str]) -> Rendered:
    """`render_entry`, with a recording that cannot take the asked shape said as an OpenAI error."""
    try:
        return render_entry(entry, shape, extra)
    except ValueError as exc:
        raise APIError(
            500,
            f"the recording {entry.key} cannot be served as this request asks: {exc}",
            type=ERROR_TYPE_PROXY,
            code="unservable_recording",
        ) from None


async def serve_entry_off_loop(entry: Entry, shape: Shape, extra: Mapping[str, str]) -> Rendered:
    """`serve_entry`, in a thread when it cuts a large plain recording into a stream (megabytes of
    events to build and encode), so every other client is served meanwhile."""
    if shape.stream and entry.body is not None and streams(entry.endpoint) and _text_size(entry) > LARGE_ANSWER:
        return await asyncio.to_thread(serve_entry, entry, shape, extra)
    return serve_entry(entry, shape, extra)


def _text_size(entry: Entry) -> int:
    try:
        return len(answer_text(entry.endpoint, entry.body))
    except (TypeError, ValueError, AttributeError):
        return 0  # not an answer: serve_entry says why, quickly


def _json_answer(status: int, body: Any, headers: CIMultiDict[str]) -> Rendered:
    headers["Content-Type"] = CONTENT_TYPE_JSON
    return Rendered(status, headers, compact_json_bytes(body))


async def answer_from_flight(request: web.Request, flight: Flight, shape: Shape, extra: dict[str, str]) -> web.StreamResponse:
    """Serve one request from a flight: a stream is relayed live (fitted to this client's
    include_usage), anything else waits for the whole answer and is converted to the shape asked.
    Upstream errors come back as the upstream sent them."""
    await flight.wait_head()
    if flight.streaming and shape.stream:
        return await _relay(request, flight, shape, _with_store_error(extra, flight))
    await flight.wait_done()
    extra = _with_store_error(extra, flight)
    if flight.failure is not None:
        raise bad_gateway(flight.failure.message, flight.failure.code)
    if flight.entry is not None and (flight.streaming or flight.recorded or shape != flight.shape):
        return (await serve_entry_off_loop(flight.entry, shape, extra)).response()
    headers = CIMultiDict(flight.headers)
    headers.update(extra)
    return web.Response(status=flight.status or 502, body=flight.body, headers=headers)


def _with_store_error(extra: dict[str, str], flight: Flight) -> dict[str, str]:
    if not flight.store_error:
        return extra
    return {**extra, HEADER_STORE_ERROR: _header_safe(flight.store_error)}


class _Relayed(web.StreamResponse):
    """A relayed stream, whose head goes out with its first piece when that is at hand: one write
    for the proxy, one read for the client, instead of two of each before its first byte. (aiohttp
    buffers a `web.Response`'s head so; a version without this switch sends the head at once.)"""

    _send_headers_immediately = False


async def _relay(request: web.Request, flight: Flight, shape: Shape, extra: Mapping[str, str]) -> web.StreamResponse:
    headers = CIMultiDict(flight.headers)
    headers.update(extra)
    response = _Relayed(status=flight.status or 200, headers=headers)
    await response.prepare(request)
    if not flight.chunks or ends_stream(flight.chunks[0][1]):
        await response.write(b"")  # nothing to send with the head yet: it goes alone, now
    as_sent = shape == flight.shape
    held: list[bytes] = []
    async for chunk, events in flight.follow():
        if as_sent:
            piece = chunk
        else:  # e.g. the usage chunk this client did not ask for goes
            fitted = adapt_stream(flight.endpoint, events, shape.include_usage)
            piece = format_sse(fitted) if fitted else b""
        # The stream's last word waits for the flight to finish: a client that asks again the
        # moment it reads it must find the answer recorded (a hit), not a flight still closing.
        if held or ends_stream(events):
            held.append(piece)
        elif piece:
            await response.write(piece)
    for piece in held:
        if piece:
            await response.write(piece)
    if flight.failure is not None:
        await response.write(sse_error_frame(flight.endpoint, flight.failure.message, flight.failure.code))
    try:
        await response.write_eof()
    except ConnectionResetError:  # the client hung up once it read the end: it has the whole stream
        pass
    return response


def _header_safe(text: str) -> str:
    # One line of visible ASCII: a header value cannot hold line breaks.
    return " ".join(text.encode("ascii", "replace").decode("ascii").split())[:500]
