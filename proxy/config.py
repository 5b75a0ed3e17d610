"""The proxy's settings (one dataclass) and the small facts derived from them."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pytest_seedreplay.core.constants import (
    DEFAULT_ANTHROPIC_UPSTREAM,
    DEFAULT_BODY_TIMEOUT,
    DEFAULT_HEADER_TIMEOUT,
    DEFAULT_LOCK_EXPIRY,
    DEFAULT_MAX_ANSWER,
    DEFAULT_MAX_BODY,
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MEMORY_CACHE,
    DEFAULT_UPSTREAM,
    DEFAULT_UPSTREAM_TIMEOUT,
    DEFAULT_WRITE_BACKLOG,
    DEFAULT_WRITE_BACKLOG_ENTRIES,
    DEFAULT_WRITE_WAIT,
)
from pytest_seedreplay.policy import DEFAULT_PROXY_MODE
from pytest_seedreplay.savings import DEFAULT_TABLE, PriceTable

if TYPE_CHECKING:
    from .sim.config import SimConfig


@dataclass
class ProxyConfig:
    """How the proxy behaves; fixed once the proxy runs. `mode`, `default_seed` and `durable` make its
    first `Binding` (a caller may bind another store, mode or seed later: see `binding`)."""

    upstream: str = DEFAULT_UPSTREAM  # base URL incl. /v1, or "sim"
    # Anthropic's API (/v1/messages, requests with anthropic-version): its root (/v1 optional), or "sim".
    anthropic_upstream: str = DEFAULT_ANTHROPIC_UPSTREAM
    mode: str = DEFAULT_PROXY_MODE.value  # one of policy.PROXY_MODES
    require_seed: bool = False
    # Injected into chat/completions and completions requests that carry no seed; part of the key.
    default_seed: int | None = None
    # A request's X-Seedreplay-Mode may only tighten the bound mode, unless the owner allows any.
    allow_mode_override: bool = False
    durable: bool = False  # write each answer to the store before releasing it
    isolate_by_auth: bool = False
    token: str | None = None
    max_body: int = DEFAULT_MAX_BODY
    # The largest upstream answer recorded; a bigger one is relayed, not recorded (X-Seedreplay-Store-Error).
    max_answer: int = DEFAULT_MAX_ANSWER
    # A client's request head must arrive within header_timeout s of its first byte; its body may go
    # body_timeout s without a byte (and a body the proxy reads itself must be whole within it); at
    # most max_connections clients at once (fewer if ulimit -n is lower). See serve.ConnectionLimits.
    header_timeout: float = DEFAULT_HEADER_TIMEOUT
    body_timeout: float = DEFAULT_BODY_TIMEOUT
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    upstream_timeout: float = DEFAULT_UPSTREAM_TIMEOUT
    # Bytes of rendered hits kept in memory (0: off); used only with stores that say `memoizable`.
    memory_cache: int = DEFAULT_MEMORY_CACHE
    # Bounds of the writes answered but not yet landed (see writer.py); a miss past them waits for
    # room, at most `write_wait` seconds, then is answered unrecorded.
    write_backlog_entries: int = DEFAULT_WRITE_BACKLOG_ENTRIES
    write_backlog_bytes: int = DEFAULT_WRITE_BACKLOG
    write_wait: float = DEFAULT_WRITE_WAIT
    # Seconds a new recording answers (--ttl); None: for ever.
    ttl: float | None = None
    # Seconds a proxy holds a key in a shared store while its upstream call runs, renewed as it runs
    # (see shared_flight); 0 turns single-flight across proxies off.
    lock_expiry: float = DEFAULT_LOCK_EXPIRY
    # What a replayed answer would have cost (X-Seedreplay-Cost-Saved, stats, /metrics).
    prices: PriceTable = DEFAULT_TABLE
    # The in-process simulator's settings when an upstream is "sim" (e.g. SimConfig(strict_models=True));
    # None: its defaults.
    sim: SimConfig | None = None

    def __post_init__(self) -> None:
        if self.token is not None:
            check_token(self.token)


def check_token(token: str) -> str:
    """`token` if clients can send it: an HTTP header value is ASCII, so a token holding any other
    character could never be matched (and would fail every request). ValueError otherwise."""
    if not token or not (token.isascii() and token.isprintable()) or token != token.strip():
        raise ValueError(
            "the token must be printable ASCII (letters, digits, punctuation; no accents, no control "
            "characters, no spaces around it): clients send it in the X-Seedreplay-Token header"
        )
    return token


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmg]i?b?|b)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3}


def parse_size(text: str, allow_zero: bool = False) -> int:
    """`32MiB`, `512k`, `1048576` -> bytes (binary units). ValueError on anything else (and on 0
    unless `allow_zero`)."""
    match = _SIZE.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a size; write bytes like 1048576 or 32MiB, 512k, 1g")
    number, unit = match.groups()
    size = int(float(number) * _UNITS[(unit or "")[:1].lower()])
    if size < 0 or (size == 0 and not allow_zero):
        raise ValueError(f"size must be positive, got {text!r}")
    return size
