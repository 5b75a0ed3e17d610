"""One decision per request: read the store? call the upstream? share a flight? what becomes of the answer?

Every mode, the proxy's (`--mode`, `X-Seedreplay-Mode`) and the plugin's (`--seedreplay=`), is said here
once, as a `Policy` value computed from the mode the request runs in and its `Cache-Control` header. The
proxy follows the value; it never asks which mode it is in. Pure: no I/O, no aiohttp.
"""

from __future__ import annotations

import enum
import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass, replace

from .core.constants import CACHE_BYPASS, CACHE_MISS, CACHE_REFRESH, HEADER_MODE


class Mode(str, enum.Enum):
    """Every mode, spelled once. The first four are the proxy's `--mode`; rewrite and live are the
    pytest plugin's, bound to a test's cassette; off is the plugin's word for "leave this test alone"
    (never bound to a proxy: its requests pass through)."""

    RECORD = "record"
    REPLAY = "replay"
    PASSTHROUGH = "passthrough"
    REFRESH = "refresh"
    REWRITE = "rewrite"
    LIVE = "live"
    OFF = "off"

    def __str__(self) -> str:
        return self.value


PROXY_MODES = (Mode.RECORD, Mode.REPLAY, Mode.PASSTHROUGH, Mode.REFRESH)
DEFAULT_PROXY_MODE = Mode.RECORD
# The plugin's (--seedreplay, ini seedreplay_mode, the marker's mode=), and use_cassette's (all but off).
PYTEST_MODES = (Mode.REPLAY, Mode.RECORD, Mode.REWRITE, Mode.LIVE, Mode.OFF)
DEFAULT_PYTEST_MODE = Mode.REPLAY


class Fate(str, enum.Enum):
    """What becomes of a complete 2xx answer from the upstream."""

    STORE = "store"  # written to the store (a cassette, a cache)
    COMPARE = "compare"  # set against the recording, never written (live drift checks)
    DROP = "drop"  # forwarded only


class ModeRefused(ValueError):
    """A request asked for a mode it may not use here (unknown, or above the proxy's ceiling)."""

    def __init__(self, message: str, code: str):
        super().__init__(message)
        self.code = code


class CacheControlRefused(ModeRefused):
    """A Cache-Control directive the proxy cannot read (max-age=soon)."""


@dataclass(frozen=True)
class Policy:
    """The cache decision for one request."""

    mode: Mode
    serve_recording: bool  # a recording, when there is one, answers the request
    call_upstream: bool  # what no recording answers is fetched from the upstream
    share_flight: bool  # identical concurrent misses wait for one upstream call
    fate: Fate
    status: str  # X-Seedreplay-Cache of an answer not served from a recording
    # Cache-Control: max-age=N: only a recording at most N seconds old answers; an older one is a miss.
    max_age: float | None = None

    def fresh(self, recorded_at: float, now: float) -> bool:
        """A recording made at `recorded_at` may answer this request."""
        return self.max_age is None or now - recorded_at <= self.max_age

    @property
    def reads_recording(self) -> bool:
        """The store is read before the upstream: to serve a hit, or to compare with it."""
        return self.serve_recording or self.fate is Fate.COMPARE


@functools.cache  # a dozen values in all: made once, shared by every request
def policy_for(mode: Mode, write: bool = True) -> Policy:
    """The policy of `mode`; `write=False` (Cache-Control: no-store) keeps every answer out of the store."""
    if mode is Mode.REPLAY:
        return Policy(mode, serve_recording=True, call_upstream=False, share_flight=False, fate=Fate.DROP, status=CACHE_MISS)
    if mode is Mode.RECORD:
        # A no-store miss must not decide whether the others sharing its flight get stored.
        fate = Fate.STORE if write else Fate.DROP
        return Policy(mode, serve_recording=True, call_upstream=True, share_flight=write, fate=fate, status=CACHE_MISS)
    if mode in (Mode.REFRESH, Mode.REWRITE):
        fate = Fate.STORE if write else Fate.DROP
        return Policy(mode, serve_recording=False, call_upstream=True, share_flight=False, fate=fate, status=CACHE_REFRESH)
    if mode is Mode.LIVE:
        return Policy(
            mode, serve_recording=False, call_upstream=True, share_flight=False, fate=Fate.COMPARE, status=CACHE_REFRESH
        )
    return Policy(mode, serve_recording=False, call_upstream=True, share_flight=False, fate=Fate.DROP, status=CACHE_BYPASS)


def without_store(policy: Policy) -> Policy:
    """The same request when the store does not answer: the upstream answers it, nothing is read,
    stored or compared. Identical requests still share one upstream call."""
    return replace(policy, serve_recording=False, share_flight=policy.call_upstream, fate=Fate.DROP, status=CACHE_BYPASS)


# What each mode may do beyond reading recordings. A request may tighten the proxy's mode (ask for
# fewer of these), never widen it, unless the owner lifts the ceiling (`--allow-mode-override`).
_EFFECTS: dict[Mode, frozenset[str]] = {
    Mode.REPLAY: frozenset(),
    Mode.PASSTHROUGH: frozenset({"upstream"}),
    Mode.RECORD: frozenset({"upstream", "write"}),
    Mode.REFRESH: frozenset({"upstream", "write"}),
    Mode.REWRITE: frozenset({"upstream", "write"}),
    Mode.LIVE: frozenset({"upstream"}),
}


def parse_mode(text: str, allowed: tuple[Mode, ...] = PROXY_MODES) -> Mode:
    """`text` as a mode, or `ModeRefused` naming the modes there are."""
    word = text.strip().lower()
    for mode in allowed:
        if mode.value == word:
            return mode
    raise ModeRefused(
        f"{HEADER_MODE}: {text[:40]!r} is not a mode; use one of {', '.join(m.value for m in allowed)}",
        code="invalid_seedreplay_mode",
    )


def request_policy(headers: Mapping[str, str], bound: Mode, override: bool = False) -> Policy:
    """The policy of one request: the bound mode, tightened by `X-Seedreplay-Mode`; `Cache-Control:
    no-cache` turns record into refresh and `no-store` keeps the answer out of the store.

    no-cache never lifts replay's promise not to touch the upstream: use X-Seedreplay-Mode for that.
    `override` lets a request widen the bound mode too (the proxy owner's opt-in)."""
    asked = headers.get(HEADER_MODE)
    control = headers.get("Cache-Control")
    if asked is None and control is None:  # most requests: the bound mode as it is
        return policy_for(bound)
    mode = bound
    if asked is not None:
        mode = parse_mode(asked)
        if not override and not _EFFECTS[mode] <= _EFFECTS[bound]:
            raise ModeRefused(
                f"{HEADER_MODE}: {mode.value} is not allowed on this proxy: it runs in {bound.value} mode, and a "
                f"request may only tighten that (to {', '.join(_tighter(bound))}); start the proxy with "
                "--allow-mode-override to let clients choose any mode",
                code="mode_not_allowed",
            )
    directives = cache_control(control)
    if "no-cache" in directives and mode is Mode.RECORD:
        mode = Mode.REFRESH
    policy = policy_for(mode, write="no-store" not in directives)
    if "max-age" in directives:
        policy = replace(policy, max_age=max_age(control or ""))
    return policy


def _tighter(bound: Mode) -> list[str]:
    return [m.value for m in PROXY_MODES if _EFFECTS[m] <= _EFFECTS[bound]]


def max_age(value: str) -> float:
    """The seconds of a Cache-Control `max-age=N`, or CacheControlRefused saying how to write it."""
    for part in value.split(","):
        name, _, given = part.partition("=")
        if name.strip().lower() != "max-age":
            continue
        text = given.strip().strip('"')
        try:
            seconds = float(text)
        except ValueError:
            seconds = math.nan
        if not math.isfinite(seconds) or seconds < 0:
            raise CacheControlRefused(
                f"Cache-Control: max-age={text[:20]!r} is not a number of seconds; send e.g. max-age=3600 "
                "(serve only a recording made in the last hour)",
                code="invalid_cache_control",
            )
        return seconds
    raise AssertionError("max_age() is called only when the header has max-age")


def cache_control(value: str | None) -> set[str]:
    """The directive names of a Cache-Control header, lower-cased."""
    if not value:
        return set()
    return {part.split("=", 1)[0].strip().lower() for part in value.split(",")}
