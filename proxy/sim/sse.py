"""Sending Server-Sent Events (written by the shared `pytest_seedreplay.shapes`), with the `cut-stream` fault built in."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from pytest_seedreplay.core.entry import SSEEvent
from pytest_seedreplay.core.jsontext import compact_json
from pytest_seedreplay.shapes import CONTENT_TYPE_SSE_UTF8, format_event

from ..serve import typed_request_key

CUT_KEY = typed_request_key("sim_cut_stream", bool)  # set by the fault middleware


class ConnectionCut(Exception):
    """The answer was dropped on purpose (X-Sim-Fault: cut-stream); carries the half-sent response."""

    def __init__(self, response: web.StreamResponse):
        super().__init__("connection cut")
        self.response = response


class EventStream:
    """An open SSE response. `cut_after` frames are written before a cut-stream fault drops it."""

    def __init__(self, request: web.Request, response: web.StreamResponse, cut_after: int | None):
        self.request = request
        self.response = response
        self.cut_after = cut_after
        self.sent = 0

    async def send(self, data: dict[str, Any] | str, event: str | None = None) -> None:
        if self.cut_after is not None and self.sent >= self.cut_after:
            cut_connection(self.request, self.response)
        payload = data if isinstance(data, str) else compact_json(data)
        await self.response.write(format_event(SSEEvent(payload, event)))
        self.sent += 1


async def open_stream(request: web.Request, total_frames: int, headers: dict[str, str] | None = None) -> EventStream:
    response = web.StreamResponse(
        status=200,
        headers={"Content-Type": CONTENT_TYPE_SSE_UTF8, "Cache-Control": "no-cache", **(headers or {})},
    )
    await response.prepare(request)
    cut_after = max(1, total_frames // 2) if request.get(CUT_KEY, False) else None
    return EventStream(request, response, cut_after)


def cut_connection(request: web.Request, response: web.StreamResponse) -> None:
    """Close the socket mid-answer: the client sees a truncated body, as on a dropped connection."""
    if request.transport is not None:
        request.transport.close()
    raise ConnectionCut(response)
