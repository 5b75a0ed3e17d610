"""The hit lane: a repeated request whose answer is in memory, answered before the guard and the
request's full reading (`cache.handle_cacheable`) run.

A hit costs little of its own (a memo lookup, a copy of prepared bytes), so the steps every request
takes around it (the request note, the busy count, the policy, the Arrival, the log line) were a
fifth of its CPU time. The lane takes only requests whose answer follows from what it checks here:
no mode or Cache-Control header, a small JSON body of known length (waited for), the token right, the memo and
the memory copy holding the answer. Anything else (and every error) takes the full path, which
answers as it always did; a request the lane gives up on is read there again (aiohttp keeps the
body), so the lane never changes an answer, only its cost. It counts what the guard counts: the
request, the hit (by endpoint too), the saving, and the hit in the summary line (its own line at
debug).
"""

from __future__ import annotations

import hmac
import logging
import time

from aiohttp import hdrs, web
from multidict import istr

from pytest_seedreplay.core.constants import (
    ANTHROPIC_ENDPOINTS,
    CACHE_HIT,
    CONTENT_TYPE_JSON,
    HEADER_MODE,
    HEADER_TOKEN,
)

from .incoming import LARGE_BODY, KeyMemo, auth_namespace, keyed_headers
from .memory import Rendered
from .state import Bound, ProxyState

log = logging.getLogger("seedreplay.proxy")

# Headers that change what a request may do or how its body reads: the full path judges them. (As
# istr, which a CIMultiDict looks up without folding the name's case each time.)
_JUDGED = (istr(HEADER_MODE), hdrs.CACHE_CONTROL, hdrs.CONTENT_ENCODING)
_TOKEN = istr(HEADER_TOKEN)


class HitLane:
    """The lane for requests to one cacheable endpoint (at one of its own paths): `takes` says whether
    a request may try it, `answer` gives the hit once its body is read, or None."""

    def __init__(self, state: ProxyState, endpoint: str):
        self.state = state
        self.endpoint = endpoint
        config = state.config
        self.token = config.token.encode("utf-8") if config.token else None
        self.limit = min(config.max_body, LARGE_BODY)
        self.anthropic = endpoint in ANTHROPIC_ENDPOINTS

    def takes(self, request: web.BaseRequest) -> bool:
        """May the lane answer `request`? No unless its answer follows from what the lane checks."""
        if not self.state.bound.lane:
            return False
        headers = request.headers
        if self.token is not None and not _token_given(headers.get(_TOKEN), self.token):
            return False  # the full path says 401
        for name in _JUDGED:
            if name in headers:
                return False
        content_type = headers.get(hdrs.CONTENT_TYPE)
        if content_type is not None and content_type != CONTENT_TYPE_JSON:
            return False
        size = request.content_length
        # Chunked or large: the full path bounds its size. A small body still arriving (an SDK sends the
        # head and the body in two writes) is waited for: the connection's body deadline bounds that.
        return size is not None and size <= self.limit

    def answer(self, request: web.BaseRequest, path: str, raw: bytes) -> web.Response | None:
        """The hit for `raw` (the body of a request the lane takes, at `path`), or None."""
        started = time.perf_counter()
        state, bound = self.state, self.state.bound
        headers = request.headers
        namespace = auth_namespace(headers) if state.config.isolate_by_auth else None
        keyed = keyed_headers(headers) if self.anthropic else ()
        slot = KeyMemo.slot_of(path, raw, namespace, bound.binding.default_seed, state.config.require_seed, keyed)
        known = state.keys.get(slot)
        if known is None:
            return None
        key, shape = known
        rendered = bound.memory.get(key, shape)
        if rendered is None:
            return None
        self._count(bound, key, rendered)
        response = rendered.response()
        if log.isEnabledFor(logging.INFO):
            ms = (time.perf_counter() - started) * 1000
            state.hit_log.add(ms)
            if log.isEnabledFor(logging.DEBUG):
                _hit_line(request, key, response.status, ms)
        return response

    def _count(self, bound: Bound, key: str, rendered: Rendered) -> None:
        """What the guard and the handler count for a hit from memory."""
        stats, endpoint = self.state.stats, self.endpoint
        stats.requests += 1
        stats.hits += 1
        stats.memory_hits += 1
        stats.count(endpoint, CACHE_HIT)
        if bound.hears_served:
            bound.observer.served(key, None)
        self.state.count_saving(rendered)


def _token_given(given: str | None, token: bytes) -> bool:
    return given is not None and hmac.compare_digest(given.encode("utf-8", "surrogateescape"), token)


def _hit_line(request: web.BaseRequest, key: str, status: int, ms: float) -> None:
    # The guard's line for a hit, word for word. Never the headers: they carry credentials.
    log.debug(
        "%s %s key=%s cache=%s upstream=%s status=%s %.1fms", request.method, request.path, key[:11], CACHE_HIT, "-", status, ms
    )
