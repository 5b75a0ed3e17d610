"""What proxies sharing one store share besides recordings (optional store capabilities).

`SharedFlights`: one upstream call per key across every proxy on the store. The first proxy to
miss a key `claim`s it — a lock with an expiry, renewed while its upstream call runs — and the
others `wait_for` it: until the lock is released (the answer is then in the store, or its holder
gave up), until its holder leaves a failure for them, or until the lock expires because its holder
died. `release` ends the lock, with the failure (if any) that the waiting proxies share.
`read_or_claim` is the read that finds a miss and the claim in one step (one SQLite transaction,
one Redis script): what a miss that goes on to call the upstream asks first.

`SavingsLedger`: what answers served from recordings saved (hits, tokens, dollars), added up by
every proxy on the store, for `seedreplay cache stats`.

Both stores offer both: Redis with SET NX PX, a Lua check-and-delete and a pub/sub wake-up;
the disk store with diskcache's atomic `add` (an expiring row) and SQLite transactions, across
the processes on one machine, polling while it waits.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeGuard, runtime_checkable

from ..core.entry import Entry

FREE = "free"  # no proxy holds the key: its answer is in the store, or its holder gave up or died
HELD = "held"  # another proxy still holds the key
FAILED = "failed"  # its holder failed and left the failure for those waiting

SAVINGS_FIELDS = ("hits", "input_tokens", "output_tokens", "unpriced_hits")
MICRO = 1_000_000  # dollars are added up as integer micro-dollars: exact, and what atomic INCR takes


@dataclass(frozen=True)
class Waited:
    """How a wait for another proxy's call ended."""

    state: str  # FREE, HELD or FAILED
    failure: dict[str, Any] | None = None  # FAILED: what the holder left (an upstream error answer, or why it broke)


@runtime_checkable
class SharedFlights(Protocol):
    def claim(self, key: str, expiry: float) -> str | None:
        """A token when this caller now holds `key` for `expiry` seconds; None when another does."""
        ...

    def read_or_claim(self, key: str, expiry: float) -> tuple[Entry | None, str | None]:
        """The entry stored for `key` and no claim; else, as one step with that read, `claim`'s answer:
        (None, token) when this caller now holds the key, (None, None) when another does. A miss that
        goes on to call the upstream asks so, once, instead of a read and then a claim (and a second
        read, for an answer that landed between the two)."""
        ...

    def renew(self, key: str, token: str, expiry: float) -> bool:
        """Push the expiry of a held key `expiry` seconds on; False when it is no longer this token's."""
        ...

    def release(self, key: str, token: str, failure: dict[str, Any] | None = None) -> None:
        """End the hold (only if still this token's). `failure` is kept `LEFT_FOR` seconds for the waiting."""
        ...

    def wait_for(self, key: str, timeout: float) -> Waited:
        """Block until `key` is free or failed, at most `timeout` seconds (then HELD)."""
        ...


@runtime_checkable
class SavingsLedger(Protocol):
    def add_savings(self, tally: dict[str, Any]) -> None:
        """Add a `SavingsTally.to_dict()` to the store's running totals."""
        ...

    def savings(self) -> dict[str, Any]:
        """The totals: hits, input_tokens, output_tokens, tokens, cost, unpriced_hits, since (epoch s or None)."""
        ...


LEFT_FOR = 30.0  # seconds a failure stays for proxies that were waiting on the call that failed


def shares_flights(store: object) -> TypeGuard[SharedFlights]:
    return isinstance(store, SharedFlights)


def flights_of(store: object) -> SharedFlights:
    """`store` as the shared flights it offers (the caller asked `shares_flights` first)."""
    if not shares_flights(store):
        raise TypeError(f"{type(store).__name__} does not share flights across proxies")
    return store


def failure_bytes(failure: dict[str, Any]) -> bytes:
    return json.dumps(failure, separators=(",", ":")).encode()


def failure_from(raw: bytes | str | None) -> dict[str, Any] | None:
    if raw is None:
        return None
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def savings_increments(tally: dict[str, Any]) -> dict[str, int]:
    """The integer increments a tally adds to a ledger (dollars as micro-dollars)."""
    counts = {name: int(tally.get(name, 0)) for name in SAVINGS_FIELDS}
    counts["cost_micro"] = round(float(tally.get("cost", 0.0)) * MICRO)
    return {name: value for name, value in counts.items() if value}


def savings_totals(raw: dict[str, Any]) -> dict[str, Any]:
    """A ledger's stored integers back as a tally (see `SavingsLedger.savings`)."""
    ints = {name: int(raw.get(name) or 0) for name in SAVINGS_FIELDS}
    since = raw.get("since")
    return {
        **ints,
        "tokens": ints["input_tokens"] + ints["output_tokens"],
        "cost": int(raw.get("cost_micro") or 0) / MICRO,
        "since": float(since) if since is not None else None,
    }


def poll_until(check: Callable[[], Waited], timeout: float) -> Waited:
    """`check()` until it says FREE or FAILED, at most `timeout` seconds; backs off 2 ms -> 50 ms."""
    deadline = time.monotonic() + timeout
    pause = 0.002
    while True:
        waited = check()
        left = deadline - time.monotonic()
        if waited.state != HELD or left <= 0:
            return waited
        time.sleep(min(pause, left))
        pause = min(pause * 2, 0.05)
