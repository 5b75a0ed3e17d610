"""The simulator's ways of saying what a request got wrong, worded as the OpenAI API words them,
built on the shared OpenAI-shaped `APIError`."""

from __future__ import annotations

from typing import Any

from ..errors import APIError

__all__ = ["APIError", "bad_request", "invalid_type", "invalid_value", "missing", "model_not_found"]


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
