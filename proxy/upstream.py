"""Talking to the upstream: one shared aiohttp session, header hygiene, and two ways to forward.

- `fetch` runs one cacheable call into a `Flight`: streams are relayed in event-aligned chunks as
  they arrive, and parsed on the way so the complete stream can be stored.
- `forward` passes any other `/v1` request through unchanged, both bodies streamed (uploads,
  downloads), nothing buffered.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import logging
import re
import unicodedata
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import unquote

import aiohttp
from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from pytest_seedreplay.core.constants import DEFAULT_MAX_ANSWER, LARGE_ANSWER, OUR_HEADER_PREFIX
from pytest_seedreplay.core.entry import SSEEvent
from pytest_seedreplay.core.urls import is_loopback, join_upstream
from pytest_seedreplay.shapes import CONTENT_TYPE_SSE, SSEParser, Summary, summary

from .errors import APIError, bad_gateway, bad_request
from .flight import Failure, Flight
from .serve import BodyTimeout

log = logging.getLogger("seedreplay.proxy")

# Headers that describe one hop, not the request: never passed on, either way.
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
    }
)
# Request headers the proxy sets itself (or must not pass on) when it sends a new body: the body it
# sends is the decoded one, so the client's Content-Encoding no longer holds.
_NOT_FORWARDED = _HOP_BY_HOP | {"host", "content-length", "expect", "accept-encoding", "content-encoding"}
# Kept when the client's body goes on byte for byte (the pass-through).
_KEPT_WITH_RAW_BODY = frozenset({"content-length", "accept-encoding", "content-encoding"})
# Response headers that no longer hold once aiohttp has decoded and re-framed the body.
_NOT_RELAYED = _HOP_BY_HOP | {"content-length", "content-encoding"}

_CONNECT_TIMEOUT = 30.0


def forward_headers(headers: Mapping[str, str], keep_length: bool = False) -> CIMultiDict[str]:
    """The client's headers fit to send upstream: credentials kept, hop-by-hop and ours dropped."""
    out: CIMultiDict[str] = CIMultiDict()
    for name, value in headers.items():
        lower = name.lower()
        if lower.startswith(OUR_HEADER_PREFIX):
            continue
        if lower in _NOT_FORWARDED and not (keep_length and lower in _KEPT_WITH_RAW_BODY):
            continue
        out.add(name, value)
    return out


def relay_headers(headers: Iterable[tuple[str, str]] | CIMultiDictProxy[str], raw: bool = False) -> CIMultiDict[str]:
    """The upstream's response headers fit to send to the client (raw: body bytes untouched)."""
    dropped = _HOP_BY_HOP if raw else _NOT_RELAYED
    items = headers.items() if hasattr(headers, "items") else headers
    return CIMultiDict((k, v) for k, v in items if k.lower() not in dropped)


def upstream_url(base: str, raw_path: str) -> URL:
    """`base` (ends in /v1) + the client's path after its `/v1` (an Azure `/openai/...` path goes under
    the upstream's root: see `join_upstream`), query kept, encoding untouched.

    A path that could climb out of the upstream's base path (`..` in any spelling) is refused with
    a 400 before anything is sent: the request would carry the upstream URL's credentials there."""
    path, _, _ = raw_path.partition("?")
    if _climbs(path):
        raise bad_request(
            f"the path {path[:80]!r} has a '.' or '..' segment (in some encoding); the seedreplay proxy "
            "never sends a request outside the upstream's base path: send the path without them",
            code="invalid_path",
        )
    return URL(join_upstream(base, raw_path), encoded=True)


_SEGMENT_BREAKS = re.compile(r"[/\\]")  # a backslash is a slash to some servers
_DECODE_ROUNDS = 4  # %252e%252e is '..' after two rounds; still changing after four: refused


def _climbs(path: str) -> bool:
    """True when a server that decodes percent-escapes (once or several times), takes `\\` for `/`,
    drops `;params` or folds compatibility characters could read a `.` or `..` segment in `path`."""
    seen = path
    for _ in range(_DECODE_ROUNDS):
        for segment in _SEGMENT_BREAKS.split(seen):
            plain = unicodedata.normalize("NFKC", segment.split(";", 1)[0])
            if plain in (".", ".."):
                return True
        decoded = unquote(seen, errors="replace")
        if decoded == seen:
            return False
        seen = decoded
    return True


def _url_credentials(url: URL, headers: CIMultiDict[str]) -> URL:
    """user:password in the upstream URL becomes Basic auth, unless the client sent its own credential."""
    if url.user is None and url.password is None:
        return url
    if "Authorization" not in headers:
        pair = f"{url.user or ''}:{url.password or ''}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(pair).decode("ascii")
    return url.with_user(None)


class UnsupportedProxy(aiohttp.ClientError):
    """The environment names a forward proxy aiohttp cannot speak to (socks5://...)."""


def env_proxy(url: URL) -> tuple[URL, dict[str, str]] | None:
    """The forward proxy the environment names for `url`, and its Proxy-Authorization header; None: direct.

    HTTPS_PROXY / HTTP_PROXY by the upstream's scheme, else ALL_PROXY (upper or lower case), NO_PROXY
    honoured, as the openai SDK reads them. A loopback upstream is always direct: no forward proxy
    can reach this machine's loopback. Read per call (cheap next to an upstream call), so the
    environment of a long-running process can change. Unlike aiohttp's `trust_env`, ~/.netrc is
    never read: it would add the proxy owner's login to callers' requests that carry none, and
    make every request that carries one fail (a credential given twice).
    """
    host = url.raw_host or ""
    if is_loopback(host):
        return None
    proxies = urllib.request.getproxies_environment()
    where = host if url.explicit_port is None else f"{host}:{url.port}"
    # The stdlib's own NO_PROXY rules (undocumented, hence untyped), so we bypass exactly as clients do.
    if not proxies or urllib.request.proxy_bypass_environment(where, proxies):  # type: ignore[attr-defined]
        return None
    named = proxies.get(url.scheme) or proxies.get("all")
    if not named:
        return None
    proxy = URL(named if "://" in named else "http://" + named)
    headers: dict[str, str] = {}
    if proxy.user is not None or proxy.password is not None:
        pair = f"{unquote(proxy.raw_user or '')}:{unquote(proxy.raw_password or '')}".encode()
        headers["Proxy-Authorization"] = "Basic " + base64.b64encode(pair).decode("ascii")
        proxy = proxy.with_user(None)
    if proxy.scheme not in ("http", "https"):
        raise UnsupportedProxy(
            f"the environment names the forward proxy {proxy} for {url.scheme}:// upstreams, and seedreplay "
            "speaks to http:// and https:// proxies only; set HTTPS_PROXY/HTTP_PROXY to one, or add the "
            "upstream host to NO_PROXY"
        )
    return proxy, headers


def _route(url: URL, headers: CIMultiDict[str]) -> dict[str, object]:
    """The `proxy` / `proxy_headers` arguments of an aiohttp call to `url` (none when direct).

    The proxy's credential goes on the CONNECT of an https upstream, and on the request itself
    (which the proxy reads and strips) for an http one: aiohttp sends `proxy_headers` only on a CONNECT.
    """
    found = env_proxy(url)
    if found is None:
        return {}
    proxy, proxy_headers = found
    if url.scheme == "https":
        return {"proxy": proxy, "proxy_headers": proxy_headers or None}
    headers.update(proxy_headers)
    return {"proxy": proxy}


def _timeout(seconds: float) -> aiohttp.ClientTimeout:
    # No total limit: a long stream is fine as long as bytes keep coming.
    return aiohttp.ClientTimeout(total=None, sock_connect=min(_CONNECT_TIMEOUT, seconds), sock_read=seconds)


def _is_event_stream(response: aiohttp.ClientResponse) -> bool:
    return response.content_type == CONTENT_TYPE_SSE


def _event_boundary(buffer: bytes | bytearray, new: int) -> int:
    """Where the last complete SSE event in `buffer` ends (0: none yet), looking only at its last
    `new` bytes and the 3 before them: the rest was looked at before (a search of the whole buffer
    per chunk is quadratic in one long event)."""
    best = 0
    start = max(len(buffer) - new - 3, 0)
    for blank_line in (b"\n\n", b"\r\n\r\n", b"\r\r"):
        at = buffer.rfind(blank_line, start)
        if at >= 0:
            best = max(best, at + len(blank_line))
    return best


class Upstream:
    """The one client session the proxy uses, opened and closed with the app."""

    def __init__(self) -> None:
        self.session: aiohttp.ClientSession | None = None

    async def open(self) -> None:
        # Unlimited connections: single-flight already bounds identical calls, distinct ones may overlap.
        connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300)
        # trust_env stays off: the forward proxy comes from `env_proxy` per call, without ~/.netrc.
        # No cookie jar: a cookie an upstream sets (a CDN's, behind OpenAI) goes back to its caller,
        # who sends it again if it will; a shared jar would add it to every other caller's requests.
        self.session = aiohttp.ClientSession(
            connector=connector, auto_decompress=True, trust_env=False, cookie_jar=aiohttp.DummyCookieJar()
        )

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()
            self.session = None

    def _session(self) -> aiohttp.ClientSession:
        if self.session is None:
            raise RuntimeError("the upstream session is not open (the app has not started)")
        return self.session

    def _send(self, method: str, url: URL, headers: CIMultiDict[str], data: Any, timeout: float, **options: Any) -> Any:
        """Every request to the upstream goes here, under one rule: redirects are never followed (a
        Location elsewhere would receive the caller's credential headers: a 3xx goes back to the
        client as it came), and the forward proxy is the environment's (`env_proxy`)."""
        return self._session().request(
            method,
            url,
            headers=headers,
            data=data,
            timeout=_timeout(timeout),
            allow_redirects=False,
            **_route(url, headers),
            **options,
        )

    async def fetch(
        self,
        flight: Flight,
        url: URL,
        headers: CIMultiDict[str],
        body: bytes,
        timeout: float,
        shown: str,
        limit: int = DEFAULT_MAX_ANSWER,
        on_events: Callable[[list[SSEEvent]], None] | None = None,
    ) -> Summary | None:
        """Send one cacheable request and fill `flight` with the answer; never raises.

        Returns the one read of a complete 2xx stream (None otherwise). A stream cut short, a
        timeout or an unreachable upstream sets `flight.failure`. An answer over `limit` bytes is
        relayed whole and marked `flight.oversize` (never recorded). `shown` names the upstream in
        messages (no credentials). `on_events(events)` is called soon after each piece of a stream
        is handed to the flight — once the requests following it have sent it — with every event so far.
        """
        events: list[SSEEvent] = []
        url = _url_credentials(url, headers)
        try:
            async with self._send("POST", url, headers, body, timeout) as response:
                head = relay_headers(response.headers)
                if 200 <= response.status < 300 and _is_event_stream(response):
                    flight.start_stream(response.status, head)
                    return await self._relay_stream(flight, response, events, shown, limit, on_events)
                flight.status, flight.headers = response.status, head
                flight.body = await response.read()
                if len(flight.body) > limit:
                    _oversize(flight, limit)
                return None
        except (asyncio.TimeoutError, aiohttp.ClientError, OSError) as exc:
            message, code = _what_broke(exc, shown, timeout)
            if flight.streaming:
                message += " (the stream was cut; nothing was stored)"
            flight.failure = Failure(message, code)
        return None

    async def _relay_stream(
        self,
        flight: Flight,
        response: aiohttp.ClientResponse,
        events: list[SSEEvent],
        shown: str,
        limit: int,
        on_events: Callable[[list[SSEEvent]], None] | None = None,
    ) -> Summary | None:
        loop = asyncio.get_running_loop()
        parser = SSEParser()
        pending = bytearray()
        fed = 0  # events already handed to the flight with their bytes
        size = 0
        broke: Exception | None = None
        try:
            async for chunk in response.content.iter_any():
                events.extend(parser.feed(chunk))
                pending += chunk
                size += len(chunk)
                if size > limit and not flight.oversize:
                    _oversize(flight, limit)
                # Relay whole events only, so an error frame after a cut never lands inside half an event.
                cut = _event_boundary(pending, len(chunk))
                if cut:
                    flight.feed(bytes(pending[:cut]), events[fed:])
                    fed = len(events)
                    del pending[:cut]
                    if on_events is not None and not flight.oversize:
                        # Queued behind the wake-ups `feed` just queued: the piece goes out first.
                        loop.call_soon(on_events, events)
        except asyncio.TimeoutError:
            raise
        except (aiohttp.ClientError, OSError) as exc:
            broke = exc
        events.extend(parser.close())
        if flight.oversize and broke is None:
            flight.feed(bytes(pending), events[fed:])  # relayed as it came; never assembled nor stored
            return None
        # The one read of the stream: whole? model? fingerprint? A large one is assembled in a thread.
        if size > LARGE_ANSWER:
            read = await asyncio.to_thread(functools.partial(summary, flight.endpoint, events=events))
        else:
            read = summary(flight.endpoint, events=events)
        if read.complete:
            flight.feed(bytes(pending), events[fed:])  # a connection lost after the end loses nothing
            return read
        why = f" ({broke})" if broke else f" ({read.problem or 'no final event'})"
        flight.failure = Failure(
            f"the upstream {shown} cut the stream before the answer was complete{why}; nothing was stored",
            "upstream_stream_cut",
        )
        return None

    async def ask(self, url: URL, headers: CIMultiDict[str], body: bytes, timeout: float, shown: str) -> tuple[int, bytes]:
        """One plain (not streamed) request a learned tier makes of the upstream: (status, body).
        An unreachable upstream or a timeout is a 502 the caller treats as any other failed answer."""
        url = _url_credentials(url, headers)
        try:
            async with self._send("POST", url, headers, body, timeout) as response:
                return response.status, await response.read()
        except (asyncio.TimeoutError, aiohttp.ClientError, OSError) as exc:
            message, _ = _what_broke(exc, shown, timeout)
            log.warning("a learned tier's request to the upstream failed: %s", message)
            return 502, b""

    async def forward(
        self, request: web.Request, url: URL, timeout: float, shown: str, extra: Mapping[str, str]
    ) -> web.StreamResponse:
        """Pass a non-cacheable request through: both bodies streamed, headers and bytes unchanged."""
        data = request.content if request.body_exists else None
        headers = forward_headers(request.headers, keep_length=True)
        url = _url_credentials(url, headers)
        try:
            # The client asked for its encoding: the bytes pass as sent.
            upstream = await self._send(request.method, url, headers, data, timeout, auto_decompress=False)
        except BodyTimeout as exc:
            raise APIError(408, f"{exc}; send the body at once", code="request_timeout") from None
        except (asyncio.TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise bad_gateway(*_what_broke(exc, shown, timeout)) from None
        async with upstream:
            headers = relay_headers(upstream.headers, raw=True)
            headers.update(extra)
            response = web.StreamResponse(status=upstream.status, reason=upstream.reason, headers=headers)
            if upstream.content_length is not None:
                response.content_length = upstream.content_length
            await response.prepare(request)
            try:
                async for chunk in upstream.content.iter_any():
                    await response.write(chunk)
            except (asyncio.TimeoutError, aiohttp.ClientError, OSError) as exc:
                # Headers are gone: the only honest signal left is a connection that breaks off.
                log.warning(
                    "%s %s: upstream broke off mid-body (%s); closing the client connection", request.method, request.path, exc
                )
                if request.transport is not None:
                    request.transport.abort()
                return response
            await response.write_eof()
            return response


def _oversize(flight: Flight, limit: int) -> None:
    flight.oversize = True
    flight.store_error = (
        f"not stored: the answer is larger than this proxy's bound of {limit} bytes (max_answer); it was relayed "
        "as it came. Ask for a smaller answer, or raise the bound if answers this big are meant to be recorded"
    )


def _what_broke(exc: BaseException, shown: str, timeout: float) -> tuple[str, str]:
    """(message, code) of an upstream call that failed before a whole answer came back."""
    if isinstance(exc, asyncio.TimeoutError):  # first: since Python 3.11 a timeout is an OSError too
        return f"the upstream {shown} sent nothing for {timeout:g}s", "upstream_timeout"
    if isinstance(exc, UnsupportedProxy):
        return str(exc), "upstream_proxy_unsupported"
    if isinstance(exc, aiohttp.ClientProxyConnectionError):
        return f"the forward proxy for the upstream {shown} is unreachable: {exc.os_error or exc}", "upstream_unreachable"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return f"the upstream {shown} is unreachable: {exc.os_error or exc}", "upstream_unreachable"
    return f"the connection to the upstream {shown} broke: {exc}", "upstream_disconnected"
