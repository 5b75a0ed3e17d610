"""Secrets never touch disk: find credential-shaped strings; keep only the response headers worth storing."""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from .constants import KEPT_RESPONSE_HEADERS, SECRET_PATTERNS


class SecretRefused(ValueError):
    """A write carried a credential-shaped string; nothing was written."""

    def __init__(self, where: str):
        self.where = where
        super().__init__(
            f"refused to store an API-key-shaped string found at {where}; "
            "remove the credential from the request/response (auth belongs in headers, which are never stored)"
        )


def looks_secret(text: str) -> bool:
    return any(p.search(text) for p in SECRET_PATTERNS)


def find_secret(value: Any, path: str = "$") -> str | None:
    """The JSON path of the first credential-shaped string inside `value`, or None."""
    if isinstance(value, str):
        return path if looks_secret(value) else None
    if isinstance(value, Mapping):
        for k, v in value.items():
            found = find_secret(str(k), f"{path}.{k}") or find_secret(v, f"{path}.{k}")
            if found:
                return found
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            found = find_secret(v, f"{path}[{i}]")
            if found:
                return found
    elif hasattr(value, "__dataclass_fields__"):
        for name in value.__dataclass_fields__:
            found = find_secret(getattr(value, name), f"{path}.{name}")
            if found:
                return found
    return None


def kept_response_headers(headers: Iterable[tuple[str, str]] | Mapping[str, str]) -> dict[str, str]:
    """The response headers worth storing with an entry (lower-cased names)."""
    items = headers.items() if isinstance(headers, Mapping) else headers
    return {k.lower(): v for k, v in items if k.lower() in KEPT_RESPONSE_HEADERS}
