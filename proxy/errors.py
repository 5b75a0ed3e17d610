"""Errors shaped like OpenAI's, `{"error": {"message", "type", "param", "code"}}`, for the proxy and the simulator."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from pytest_seedreplay.core.constants import CONTENT_TYPE_JSON, ERROR_TYPE_PROXY
from pytest_seedreplay.shapes import error_event, format_event


class APIError(Exception):
    """Raised anywhere while handling a request, by the proxy or the simulator; answered as an
    OpenAI-shaped JSON error with `status` and any `headers` (e.g. retry-after)."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.param = param
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return error_body(self.message, type=self.type, code=self.code, param=self.param)

    def response(self, headers: dict[str, str] | None = None) -> web.Response:
        """The JSON answer; `headers` are added to the error's own."""
        return web.Response(
            status=self.status,
            body=json.dumps(self.body()).encode(),
            content_type=CONTENT_TYPE_JSON,
            headers={**self.headers, **headers} if headers else self.headers,
        )


def error_body(message: str, *, type: str, code: str | None = None, param: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


def bad_request(message: str, code: str = "invalid_request", param: str | None = None) -> APIError:
    return APIError(400, message, code=code, param=param)


def bad_gateway(message: str, code: str) -> APIError:
    """The upstream failed us (unreachable, timed out, cut off): 502, which SDKs retry."""
    return APIError(502, message, type=ERROR_TYPE_PROXY, code=code)


def sse_error_frame(endpoint: str, message: str, code: str) -> bytes:
    """The frame that ends a stream the upstream broke off, shaped as the endpoint's streams end
    in an error, so the client raises instead of hanging."""
    error = error_body(message, type=ERROR_TYPE_PROXY, code=code)["error"]
    return format_event(error_event(endpoint, error))
