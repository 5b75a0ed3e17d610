"""Where an app names the handler its server calls for every request: `app[FRONT_DOOR] = front`, with
`front(routed) -> handler` given the app's own routing handler, to answer some requests without the
router (see the proxy's `_front_door`). `serving` installs it.

Its own module because an `AppKey` is made at import, with aiohttp, which `serve` imports only when
a server is built."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from .serve import ConnectionLimits

Routed = Callable[[web.Request], Awaitable[web.StreamResponse]]  # a route's handler
Served = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]  # what the server calls

FRONT_DOOR: web.AppKey[Callable[[Served], Served]] = web.AppKey("front_door")

# What the app's server holds its connections to (see `serve.ConnectionLimits`); defaults when unset.
CONNECTION_LIMITS: web.AppKey[ConnectionLimits] = web.AppKey("connection_limits")
