"""The simulator's ways of saying what a request got wrong, worded as the OpenAI API words them,
built on the shared OpenAI-shaped `APIError`."""

from __future__ import annotations

from typing import Any

from ..errors import APIError

__all__ = [
    "APIError",
    "bad_request",
    "check_known",
    "check_known_responses",
    "check_text_only",
    "invalid_type",
    "invalid_value",
    "missing",
    "model_not_found",
]


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


def check_known(body: dict[str, Any], known: frozenset[str]) -> None:
    """400 for a parameter the endpoint does not document, worded as the API words it."""
    for name in body:
        if name not in known:
            raise bad_request(f"Unrecognized request argument supplied: {name}", name, "unrecognized_request_argument")


def check_known_responses(body: dict[str, Any], known: frozenset[str]) -> None:
    """400 for a parameter the Responses API does not document, worded as that API words it (unlike
    Chat Completions': another message and code)."""
    for name in body:
        if name not in known:
            raise bad_request(f"Unknown parameter: '{name}'.", name, "unknown_parameter")


def check_text_only(body: dict[str, Any]) -> None:
    """The simulator writes text: audio output (`modalities: ["audio"]`) is refused, not faked."""
    modalities = body.get("modalities")
    if modalities is None:
        return
    if not isinstance(modalities, list) or not all(isinstance(m, str) for m in modalities):
        raise invalid_type("modalities", "an array of strings", modalities)
    if "audio" in modalities or body.get("audio") is not None:
        raise invalid_value("modalities", "the simulator answers text only; audio output is not supported.")


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
