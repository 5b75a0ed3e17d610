"""Errors shaped like OpenAI's, `{"error": {"message", "type", "param", "code"}}`, for the proxy and the
simulator; on Anthropic's API, shaped like Anthropic's: `{"type": "error", "error": {"type", "message"}}`."""

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

    def anthropic_body(self) -> dict[str, Any]:
        """The error as Anthropic's API says it: the SDK picks its exception by the status, and shows
        the message. Our own types (seedreplay_miss...) stay; OpenAI's become Anthropic's for the status."""
        kind = self.type if self.type.startswith("seedreplay") else anthropic_error_type(self.status)
        return {"type": "error", "error": {"type": kind, "message": self.message}}

    def response(self, headers: dict[str, str] | None = None, anthropic: bool = False) -> web.Response:
        """The JSON answer (Anthropic-shaped when `anthropic`); `headers` are added to the error's own."""
        return web.Response(
            status=self.status,
            body=json.dumps(self.anthropic_body() if anthropic else self.body()).encode(),
            content_type=CONTENT_TYPE_JSON,
            headers={**self.headers, **headers} if headers else self.headers,
        )


def error_body(message: str, *, type: str, code: str | None = None, param: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


# Anthropic's error types by HTTP status (https://docs.anthropic.com/en/api/errors).
_ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    529: "overloaded_error",
}


def anthropic_error_type(status: int) -> str:
    return _ANTHROPIC_TYPES.get(status) or ("api_error" if status >= 500 else "invalid_request_error")


def anthropic_error(status: int, message: str, kind: str | None = None) -> web.Response:
    """An Anthropic-shaped JSON error (the simulator's)."""
    body = {"type": "error", "error": {"type": kind or anthropic_error_type(status), "message": message}}
    return web.Response(status=status, body=json.dumps(body).encode(), content_type=CONTENT_TYPE_JSON)


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
