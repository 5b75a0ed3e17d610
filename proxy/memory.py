"""Recently served hits, kept in memory as ready-to-send bytes (`--memory-cache`).

A hit served from here skips the store read (SQLite, zlib, JSON) and the re-encoding of the answer
into the shape the request asked for (plain JSON, SSE with or without the usage chunk, float or
base64 embeddings): each (key, shape) is rendered once and then sent as it is.

Staleness bound: a copy is served for at most `MEMORY_CACHE_MAX_AGE` seconds after it was read from
the store; the next hit after that reads the store again. So a change another process makes to the
store (another proxy on the same directory, `seedreplay cache prune/clear/import`) is seen within
that time, while a write by this proxy drops the copies of its key at once. The bound is in bytes,
least recently used copies going first.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aiohttp import web
from multidict import CIMultiDict

from pytest_seedreplay.core.constants import MEMORY_CACHE_MAX_AGE

from .flight import Shape

if TYPE_CHECKING:
    from pytest_seedreplay.savings import Saving

_OVERHEAD = 256  # bytes counted per copy for the objects around the body and headers


@dataclass(frozen=True)
class Rendered:
    """One answer ready to send: never changed once built (aiohttp copies the headers it is given)."""

    status: int
    headers: CIMultiDict[str]
    body: bytes
    saving: Saving | None = None  # what serving it saves (tokens, dollars), when it is a recording
    size: int = field(init=False)

    def __post_init__(self) -> None:
        counted = len(self.body) + sum(len(k) + len(v) for k, v in self.headers.items()) + _OVERHEAD
        object.__setattr__(self, "size", counted)

    def response(self) -> web.Response:
        return web.Response(status=self.status, body=self.body, headers=self.headers)


@dataclass
class _Copy:
    rendered: Rendered
    expires: float


class MemoryCache:
    """Rendered hits by key and shape, for one binding's store (each binding has its own)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, max_age: float = MEMORY_CACHE_MAX_AGE):
        self.clock = clock
        self.max_age = max_age
        self.bytes = 0
        # Least recently used key first; each key holds the shapes it was served in.
        self._keys: OrderedDict[str, dict[Shape, _Copy]] = OrderedDict()

    def get(self, key: str, shape: Shape) -> Rendered | None:
        """The copy of this answer, unless there is none or it is too old."""
        shapes = self._keys.get(key)
        copy = shapes.get(shape) if shapes is not None else None
        if copy is None:
            return None
        if self.clock() >= copy.expires:  # past the staleness bound: the caller reads the store again
            self._drop(key, shape)
            return None
        self._keys.move_to_end(key)
        return copy.rendered

    def put(self, key: str, shape: Shape, rendered: Rendered, limit: int) -> None:
        """Keep `rendered` (just made from what the store holds), then evict down to `limit` bytes."""
        if rendered.size > limit:
            return
        self._drop(key, shape)
        self._keys.setdefault(key, {})[shape] = _Copy(rendered, self.clock() + self.max_age)
        self._keys.move_to_end(key)
        self.bytes += rendered.size
        while self.bytes > limit and self._keys:
            _, shapes = self._keys.popitem(last=False)
            self.bytes -= sum(copy.rendered.size for copy in shapes.values())

    def invalidate(self, key: str) -> None:
        """Forget every shape of `key` (its recording was just written)."""
        shapes = self._keys.pop(key, None)
        if shapes:
            self.bytes -= sum(copy.rendered.size for copy in shapes.values())

    def clear(self) -> None:
        self._keys.clear()
        self.bytes = 0

    def __len__(self) -> int:
        return sum(len(shapes) for shapes in self._keys.values())

    def _drop(self, key: str, shape: Shape) -> None:
        shapes = self._keys.get(key)
        if shapes is None or shape not in shapes:
            return
        self.bytes -= shapes.pop(shape).rendered.size
        if not shapes:
            del self._keys[key]
