"""Compact JSON as the API writes it, for answers, stream frames and forwarded requests alike."""

from __future__ import annotations

import json
import re
from typing import Any

# Encoders built once: json.dumps with options builds a new one per call. No circular-reference
# check: what is encoded here is parsed JSON or plain data built from it, never circular.
_COMPACT = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), check_circular=False)
_COMPACT_ASCII = json.JSONEncoder(separators=(",", ":"), check_circular=False)


def compact_json(value: Any) -> str:
    """No whitespace, UTF-8 characters as they are; a lone surrogate (legal in JSON text, not in
    UTF-8) makes the whole text escaped instead, so it always encodes."""
    text = _COMPACT.encode(value)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return _COMPACT_ASCII.encode(value)
    return text


def compact_json_bytes(value: Any) -> bytes:
    """`compact_json` as UTF-8 bytes (encoded once)."""
    try:
        return _COMPACT.encode(value).encode("utf-8")
    except UnicodeEncodeError:
        return _COMPACT_ASCII.encode(value).encode("ascii")


# A UTF-16 surrogate on its own: JSON text may carry one ("\ud800"), UTF-8 cannot encode it.
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _escaped(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def json_text(value: Any, indent: int | None = None) -> str:
    """JSON for a person or a file: characters as they are, except a lone surrogate, written as
    its `\\udXXX` escape (the same string when read back), so the text always encodes as UTF-8."""
    return _LONE_SURROGATE.sub(_escaped, json.dumps(value, ensure_ascii=False, indent=indent))


def printable(text: str) -> str:
    """`text` fit to print or write as UTF-8: a lone surrogate shown as its `\\udXXX` escape."""
    return _LONE_SURROGATE.sub(_escaped, text)
