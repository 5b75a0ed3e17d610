"""OpenAI-shaped errors: `{"error": {"message", "type", "param", "code"}}` with the matching status."""

from __future__ import annotations

from typing import Any

from aiohttp import web


class APIError(Exception):
    """Raised anywhere in a handler; the error middleware turns it into the JSON answer."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}

    def response(self) -> web.Response:
        return web.json_response(self.body(), status=self.status, headers=self.headers)


def bad_request(message: str, param: str | None = None, code: str | None = None) -> APIError:
    return APIError(400, message, param=param, code=code)


def missing(param: str) -> APIError:
    return bad_request(f"Missing required parameter: '{param}'.", param, "missing_required_parameter")


def invalid_type(param: str, expected: str, value: Any) -> APIError:
    return bad_request(
        f"Invalid type for '{param}': expected {expected}, but got {_type_name(value)} instead.",
        param,
        "invalid_type",
    )


def invalid_value(param: str, message: str) -> APIError:
    return bad_request(f"Invalid value for '{param}': {message}", param, "invalid_value")


def model_not_found(model: str) -> APIError:
    return APIError(
        404,
        f"The model `{model}` does not exist or you do not have access to it.",
        code="model_not_found",
    )


def _type_name(value: Any) -> str:
    names = {str: "a string", int: "an integer", float: "a decimal", bool: "a boolean", list: "an array", dict: "an object"}
    if value is None:
        return "null"
    return names.get(type(value), type(value).__name__)
