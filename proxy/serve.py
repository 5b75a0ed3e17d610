"""Running an aiohttp app: in the current loop, in a background thread, or as the CLI's foreground server."""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import re
import select
import signal
import socket
import sys
import threading
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pytest_seedreplay.core.constants import (
    DEFAULT_BODY_TIMEOUT,
    DEFAULT_HEADER_TIMEOUT,
    DEFAULT_MAX_CONNECTIONS,
    SERVER_THREAD,
)

if TYPE_CHECKING:
    import asyncio

    from aiohttp import web

    from .errors import APIError

# aiohttp is imported where a server is built, not with this module: a caller that reserves a port
# (the pytest plugin) and may never serve pays nothing for it.

AppFactory = Callable[[], "web.Application | Awaitable[web.Application]"]

_RESERVED_FDS = 64  # descriptors kept for the store, the upstream and logs when connections are bounded by ulimit -n


@dataclass(frozen=True)
class ConnectionLimits:
    """How long a client may take to send a request, and how many may be connected at once.

    header_timeout: seconds from a request's first byte (or the connection's opening) to the end of
    its head; past it the connection gets a 408 and is closed. body_timeout: seconds a request body
    may go without a byte while the server is reading it (a 408 to the handler reading it).
    max_connections: connections served at once; one more gets a 503 and is closed (never more than
    the process's descriptor limit allows)."""

    header_timeout: float = DEFAULT_HEADER_TIMEOUT
    body_timeout: float = DEFAULT_BODY_TIMEOUT
    max_connections: int = DEFAULT_MAX_CONNECTIONS

    def connections_allowed(self) -> int:
        """`max_connections`, lowered to what the process's open-file limit leaves room for."""
        try:
            import resource

            soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        except (ImportError, OSError, ValueError):
            return self.max_connections
        if soft == resource.RLIM_INFINITY:
            return self.max_connections
        return max(1, min(self.max_connections, soft - _RESERVED_FDS))


def _timeouts() -> tuple[type[BaseException], ...]:
    # Python 3.10: asyncio.TimeoutError is its own class, not the built-in TimeoutError (one since 3.11).
    import asyncio

    return (TimeoutError,) if asyncio.TimeoutError is TimeoutError else (asyncio.TimeoutError, TimeoutError)


class BodyTimeout(*_timeouts()):  # type: ignore[misc]
    """A request body sent no byte for `body_timeout` seconds (set on the body's reader, so the
    handler reading it stops with this). Both TimeoutErrors, asyncio's and the built-in (two classes
    on Python 3.10): aiohttp, draining what is left of a body once the answer is sent, stops quietly
    on asyncio's, and our readers catch either."""


def typed_request_key(name: str, kind: type) -> Any:
    """A typed request-storage key (aiohttp >= 3.13), or the plain name on older aiohttp."""
    from aiohttp import web

    maker = getattr(web, "RequestKey", None)
    return maker(name, kind) if maker is not None else name


async def _build(factory: AppFactory) -> web.Application:
    import asyncio

    app = factory()
    if asyncio.iscoroutine(app) or isinstance(app, Awaitable):
        app = await app
    return app


class ServerLog(logging.LoggerAdapter):
    """aiohttp's server log (`aiohttp.server`), where a client's malformed request (bad HTTP, a
    broken body) is one warning line instead of a multi-line traceback: it is the client's fault,
    and anyone could fill the log with them. aiohttp logs some of them (a first request that is not
    HTTP at all) at debug level: those are said the same way, so every one shows. A client that hangs
    up mid-request is one info line (nothing went wrong here). A failure of the server itself keeps
    its traceback."""

    def exception(self, msg: object, *args: object, exc_info: Any = True, **kwargs: Any) -> None:
        if not self._said_in_one_line(msg, args, exc_info):
            super().exception(msg, *args, exc_info=exc_info, **kwargs)

    def debug(self, msg: object, *args: object, exc_info: Any = None, **kwargs: Any) -> None:
        if not (exc_info and self._said_in_one_line(msg, args, exc_info)):
            super().debug(msg, *args, exc_info=exc_info, **kwargs)

    def _said_in_one_line(self, msg: object, args: tuple[object, ...], exc_info: Any) -> bool:
        from aiohttp import web
        from aiohttp.http_exceptions import HttpProcessingError

        error = exc_info if isinstance(exc_info, BaseException) else sys.exc_info()[1]
        said = str(msg) % args if args else msg
        if isinstance(error, ConnectionResetError):
            self.info("%s: the client hung up before the request was answered (%s)", said, error)
            return True
        if not isinstance(error, (HttpProcessingError, web.RequestPayloadError)):
            return False
        self.warning("%s: %s: %s", said, type(error).__name__, client_error_text(error))
        return True


# The bytes aiohttp quotes from a line it could not parse (b'...'): a header line may hold a credential.
_QUOTED = re.compile(r"(?<!\w)b?'(?:[^'\\]|\\.)*'" + r'|(?<!\w)b?"(?:[^"\\]|\\.)*"')


def client_error_text(error: BaseException) -> str:
    """What was wrong with a request the HTTP parser refused, in one line, without the bytes it
    quotes from the request (they may be a header holding a key): for the log and for the client."""
    from aiohttp.http_exceptions import HttpProcessingError

    from pytest_seedreplay.core.redact import looks_secret

    text = error.message if isinstance(error, HttpProcessingError) else str(error)
    line = _QUOTED.sub("(...)", str(text).strip().split("\n", 1)[0]).rstrip(" :")
    if looks_secret(line):  # unquoted request bytes (the pure-Python parser says some so)
        return f"{type(error).__name__} (the text holds a credential-shaped string; not shown)"
    return line.encode("ascii", "backslashreplace").decode("ascii")[:200] or type(error).__name__


SERVER_ERROR = "The server had an error while processing your request."


@functools.cache
def _json_error_server() -> type:
    """aiohttp's Server, answering what it refuses itself (a request it cannot parse: bad framing, a
    line too long, not HTTP at all) with an OpenAI error object instead of plain text: clients of an
    OpenAI-compatible server read that. Same status, same log line, the connection still closes.

    It also holds every connection to its `ConnectionLimits`: a head that takes too long, a body that
    stops coming, a connection over the bound (aiohttp itself waits for a request's bytes for ever)."""
    from aiohttp import web
    from aiohttp.web_protocol import RequestHandler

    from .errors import error_body

    class JSONErrorHandler(RequestHandler):
        __slots__ = ()  # the layout of RequestHandler's, so a handler can take this class

        def handle_error(
            self, request: Any, status: int = 500, exc: BaseException | None = None, message: str | None = None
        ) -> Any:
            super().handle_error(request, status, exc, message)  # logs it; raises if an answer began
            if status >= 500:
                body = error_body(SERVER_ERROR, type="server_error")
            else:
                said = client_error_text(exc) if exc is not None else (message or "malformed request")
                body = error_body(f"malformed HTTP request: {said}", type="invalid_request_error", code="malformed_request")
            answer = web.Response(status=status, body=json.dumps(body).encode(), content_type="application/json")
            answer.force_close()
            return answer

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            server = self._manager
            if isinstance(server, JSONErrorServer):
                server.watch.opened(self, transport)

        def data_received(self, data: bytes) -> None:
            server, before = self._manager, self._request_count
            super().data_received(data)
            if isinstance(server, JSONErrorServer):
                server.watch.heard(self, self._request_count > before, self._messages)

        def connection_lost(self, exc: BaseException | None) -> None:
            server, task = self._manager, self._task_handler
            if isinstance(server, JSONErrorServer):
                server.watch.closed(self)
            super().connection_lost(exc)  # lets go of the connection's task, which may still run
            if isinstance(server, JSONErrorServer) and task is not None and not task.done():
                server.watch.outlive(task)

    class JSONErrorServer(web.Server):
        watch: _Watch

        def __call__(self) -> RequestHandler:
            handler = super().__call__()
            handler.__class__ = JSONErrorHandler
            return handler

        async def shutdown(self, timeout: float | None = None) -> None:
            await super().shutdown(timeout)
            await self.watch.end_outliving()

    return JSONErrorServer


def _refusal(status: int, reason: str, message: str, code: str) -> bytes:
    """A whole HTTP/1.1 answer, written straight to a connection no request handler will answer."""
    from .errors import error_body

    body = json.dumps(error_body(message, type="invalid_request_error" if status < 500 else "server_error", code=code))
    head = (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    )
    return (head + body).encode()


class _Watch:
    """The deadlines of one server's connections (see `ConnectionLimits`). Per connection: its head's
    deadline from its first byte, then its body's, renewed by every byte of it; none between requests
    (aiohttp's keep-alive timeout closes an idle connection)."""

    def __init__(self, limits: ConnectionLimits):
        self.limits = limits
        self.allowed = limits.connections_allowed()
        self.open = 0
        self._timers: dict[Any, asyncio.TimerHandle] = {}
        self._bodies: dict[Any, Any] = {}  # a connection whose body is being read: that body's reader
        self._outliving: set[asyncio.Task] = set()  # tasks of connections gone (see `outlive`)
        self.said_busy = False

    def opened(self, handler: Any, transport: Any) -> None:
        self.open += 1
        if self.open > self.allowed:
            if not self.said_busy:  # once per crowd, not per connection
                self.said_busy = True
                SERVER_LOG.warning("%d connections are open, the most this server takes: refusing more with 503", self.allowed)
            transport.write(
                _refusal(
                    503,
                    "Service Unavailable",
                    f"this server has {self.allowed} connections open, the most it takes; retry shortly",
                    "too_many_connections",
                )
            )
            transport.close()
            return
        self._arm(handler, self.limits.header_timeout, self._head_late)

    def heard(self, handler: Any, head_done: bool, messages: Any) -> None:
        if handler not in self._timers and handler not in self._bodies and not head_done:
            self._arm(handler, self.limits.header_timeout, self._head_late)  # a new request begins
            return
        if head_done:
            payload = messages[-1][1] if messages else None
            if payload is not None and not payload.is_eof():
                self._bodies[handler] = payload
            else:
                self._bodies.pop(handler, None)
                self._disarm(handler)
                return
        body = self._bodies.get(handler)
        if body is None:
            return  # the head still arriving: its deadline stands
        if body.is_eof():
            del self._bodies[handler]
            self._disarm(handler)
        else:
            self._arm(handler, self.limits.body_timeout, self._body_late)

    def closed(self, handler: Any) -> None:
        self.open -= 1
        self._bodies.pop(handler, None)
        self._disarm(handler)
        if self.open <= self.allowed // 2:
            self.said_busy = False

    def outlive(self, task: asyncio.Task) -> None:
        """Hold a connection's task that aiohttp let go of when its client hung up (with handler
        cancellation off, the task runs on: it may linger up to 10 s reading a body that will never
        come). aiohttp's shutdown reaches a task only through its connection: unheld, a task still
        running when the server stops is left pending on a closed loop, and the garbage collector
        later reports it destroyed, in whatever code runs then."""
        self._outliving.add(task)
        task.add_done_callback(self._outliving.discard)

    async def end_outliving(self) -> None:
        """At shutdown, after aiohttp's own: cancel the tasks held by `outlive` and wait for them."""
        import asyncio

        left = set(self._outliving)
        for task in left:
            task.cancel()
        if left:
            await asyncio.wait(left, timeout=_OUTLIVING_SECONDS)

    def _arm(self, handler: Any, seconds: float, late: Callable[[Any], None]) -> None:
        import asyncio

        self._disarm(handler)
        if seconds > 0:
            self._timers[handler] = asyncio.get_running_loop().call_later(seconds, late, handler)

    def _disarm(self, handler: Any) -> None:
        timer = self._timers.pop(handler, None)
        if timer is not None:
            timer.cancel()

    def _head_late(self, handler: Any) -> None:
        self._timers.pop(handler, None)
        transport = handler.transport
        if transport is None or transport.is_closing():
            return
        timeout = self.limits.header_timeout
        message = f"the request's head did not arrive within {timeout:g} s; send it whole, at once"
        transport.write(_refusal(408, "Request Timeout", message, "request_timeout"))
        transport.close()

    def _body_late(self, handler: Any) -> None:
        self._timers.pop(handler, None)
        body = self._bodies.get(handler)
        if body is None or body.is_eof():
            return
        if handler._reading_paused:  # the server is not reading (backpressure): not the client's fault
            self._arm(handler, self.limits.body_timeout, self._body_late)
            return
        del self._bodies[handler]
        body.set_exception(BodyTimeout(f"the request body sent nothing for {self.limits.body_timeout:g} s"))


_OUTLIVING_SECONDS = 5.0  # how long a shutdown waits for the cancelled tasks of connections gone

SERVER_LOG = ServerLog(logging.getLogger("aiohttp.server"), {})


@asynccontextmanager
async def serving(
    app: web.Application,
    host: str = "127.0.0.1",
    port: int = 0,
    sock: socket.socket | None = None,
    private: str | None = None,
) -> AsyncIterator[str]:
    """Serve `app` in the running loop (on `sock` if given); yields its root URL (`http://127.0.0.1:PORT`).
    `private`: also serve it on this Unix socket path (a --workers worker's, for its siblings).

    Request bodies are read as they came (auto_decompress off): the proxy passes them through with
    their Content-Encoding, and the proxy and the simulator decode the ones they parse (`decode_body`)."""
    from aiohttp import web

    from .front import CONNECTION_LIMITS, FRONT_DOOR

    runner = web.AppRunner(app, handle_signals=False, access_log=None, auto_decompress=False, logger=SERVER_LOG)
    await runner.setup()
    if type(runner.server) is web.Server:
        runner.server.__class__ = _json_error_server()
        runner.server.watch = _Watch(app.get(CONNECTION_LIMITS) or ConnectionLimits())  # type: ignore[attr-defined]
    _say_exhaustion_once()
    front = app.get(FRONT_DOOR)
    if front is not None and runner.server is not None:
        runner.server.request_handler = front(runner.server.request_handler)
    # setup() has run the app's startup (an in-process simulator may be serving): a port that cannot
    # be bound must still clean it up, or asyncio prints tracebacks about generators left running.
    try:
        site: web.BaseSite = web.SockSite(runner, sock) if sock is not None else web.TCPSite(runner, host, port)
        await site.start()
        if private is not None:
            await web.UnixSite(runner, private).start()
        bound = runner.addresses[0]
        yield f"http://{_url_host(bound[0])}:{bound[1]}"
    finally:
        await runner.cleanup()


def _say_exhaustion_once() -> None:
    """Make the running loop log a refused accept (out of file descriptors, memory) in one line, once
    until an accept works again, instead of a traceback per try (thousands a minute). Any other
    exception goes to the handler that was there before."""
    import asyncio

    loop = asyncio.get_running_loop()
    previous = loop.get_exception_handler()
    if getattr(previous, "says_exhaustion_once", False):
        return
    said: list[float] = []

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if context.get("message") != "socket.accept() out of system resource":
            if previous is not None:
                previous(loop, context)
            else:
                loop.default_exception_handler(context)
            return
        now = loop.time()
        if said and now - said[0] < _EXHAUSTION_REPEAT:
            return
        said[:] = [now]
        exc = context.get("exception")
        SERVER_LOG.error(
            "new connections cannot be accepted: %s; they wait in the listen queue (said again at most every %d s). "
            "Raise the open-file limit (ulimit -n) or lower max_connections",
            exc,
            _EXHAUSTION_REPEAT,
        )

    handler.says_exhaustion_once = True  # type: ignore[attr-defined]
    loop.set_exception_handler(handler)


_EXHAUSTION_REPEAT = 60  # seconds between two log lines saying connections cannot be accepted


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def listening_socket(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    """A bound, listening TCP socket: its address is known before any server runs on it."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    return sock


class BackgroundServer:
    """An aiohttp app on a loopback port, served from its own thread and loop (for sync callers).

    `start_lazily()` binds the port at once but builds the app (imports and all) only when the first
    connection arrives or `start()` is called: a caller that may never need the server pays a socket.
    `sock`: a listening socket to serve on instead of binding `host:port` (closed when the server stops)."""

    def __init__(self, factory: AppFactory, host: str = "127.0.0.1", port: int = 0, sock: socket.socket | None = None):
        self._factory = factory
        self._host = host
        self._port = port
        self._sock = sock
        self._wake: tuple[int, int] | None = None
        self._closing = False
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self.url = ""
        self.app: web.Application | None = None

    def start_lazily(self) -> str:
        """Bind the port and return the root URL; the server starts on the first connection or `start()`."""
        if self._sock is None:
            self._sock = listening_socket(self._host, self._port)
        self._wake = os.pipe()
        host, port = self._sock.getsockname()[:2]
        self.url = f"http://{_url_host(host)}:{port}"
        self._thread = threading.Thread(target=self._run, name=SERVER_THREAD, daemon=True)
        self._thread.start()
        return self.url

    @property
    def started(self) -> bool:
        return self._ready.is_set()

    def start(self, timeout: float = 30) -> str:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=SERVER_THREAD, daemon=True)
            self._thread.start()
        elif self._wake is not None and not self._ready.is_set():
            os.write(self._wake[1], b"x")
        if not self._ready.wait(timeout):
            raise RuntimeError(f"server did not start within {timeout}s")
        if self._error is not None:
            raise self._error
        return self.url

    def _run(self) -> None:
        if self._wake is not None:
            assert self._sock is not None
            # Wait, at no cost, for a client or for start(); then build the app and serve.
            select.select([self._sock.fileno(), self._wake[0]], [], [])
            wake, self._wake = self._wake, None
            for fd in wake:
                os.close(fd)
            if self._closing:
                self._sock.close()
                return
        import asyncio  # here, in the server's thread: a server reserved and never started needs none

        self._loop = asyncio.new_event_loop()
        try:
            self._loop.run_until_complete(self._serve())
        except BaseException as exc:  # surfaced to start()'s caller
            self._error = exc
            self._ready.set()
        finally:
            _close_loop(self._loop)

    async def _serve(self) -> None:
        import asyncio

        self._stop = asyncio.Event()
        self.app = await _build(self._factory)
        async with serving(self.app, self._host, self._port, self._sock) as url:
            self.url = url
            self._ready.set()
            await self._stop.wait()

    def call(self, coro_factory: Callable[[], Coroutine[Any, Any, Any]], timeout: float = 30) -> Any:
        """Run a coroutine on the server's loop and wait for its result."""
        assert self._loop is not None
        import asyncio

        return asyncio.run_coroutine_threadsafe(coro_factory(), self._loop).result(timeout)

    def stop(self, timeout: float = 30) -> None:
        if self._thread is None:
            return
        if not self._ready.is_set() and self._wake is not None:
            # A lazy server that never started: close its port without building anything.
            self._closing = True
            with contextlib.suppress(OSError, TypeError):  # the thread may be waking up already
                os.write(self._wake[1], b"x")
        if self._loop is not None and self._stop is not None and self._loop.is_running():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout)

    def __enter__(self) -> BackgroundServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _close_loop(loop: asyncio.AbstractEventLoop) -> None:
    """Close a loop as asyncio.run does: tasks still pending (a timer an app started, a write it left
    under way) are cancelled and given their turn to run their `finally`, async generators and the
    default executor shut down. A loop closed with pending tasks drops them unfinished, and asyncio
    prints "Task was destroyed but it is pending!" when they are collected."""
    import asyncio

    try:
        pending = [task for task in asyncio.all_tasks(loop) if not task.done()]
        for task in pending:
            task.cancel()
        if pending:
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.run_until_complete(loop.shutdown_default_executor())
    finally:
        loop.close()


SHUTDOWN_GRACE = 30.0  # seconds a stop signal leaves the graceful shutdown before the process ends anyway


def run_until_signal(
    factory: AppFactory,
    host: str,
    port: int,
    on_listening: Callable[[str], None],
    sock: socket.socket | None = None,
    private: str | None = None,
) -> None:
    """The CLI's foreground server: serve until SIGINT/SIGTERM, then shut down gracefully. `sock`,
    `private`: a --workers worker's listening socket and private socket path (see `serving`).

    A stop signal always ends the process: the graceful shutdown gets `SHUTDOWN_GRACE` seconds, and
    a second signal ends it at once. The handler is a plain `signal.signal` one, run between two
    bytecodes of the main thread, so it acts even while the event loop is busy (asyncio's own signal
    handlers wait for the loop to come round)."""

    import asyncio

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        on_signal = _StopSignal(functools.partial(loop.call_soon_threadsafe, stop.set))
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, on_signal)
        app = await _build(factory)
        async with serving(app, host, port, sock, private) as url:
            on_listening(url)
            await stop.wait()

    asyncio.run(main())


class _StopSignal:
    """The first stop signal asks for a graceful stop and sets a deadline for it; the next ends the
    process there and then. Written with os.write: the logging lock may be held by the code interrupted."""

    def __init__(self, graceful: Callable[[], object], grace: float = SHUTDOWN_GRACE):
        self.graceful = graceful
        self.grace = grace
        self.received = 0

    def __call__(self, signum: int, frame: object) -> None:
        self.received += 1
        if self.received > 1:
            _end_now(signum, "a second stop signal: stopping now, without waiting for requests in flight")
        _say(f"stopping: finishing the requests in flight (at most {self.grace:g} s; a second signal stops at once)")
        self.graceful()
        deadline = threading.Timer(self.grace, _end_now, (signum, f"still shutting down after {self.grace:g} s: stopping now"))
        deadline.daemon = True
        deadline.start()


def _end_now(signum: int, why: str) -> None:
    _say(why)
    os._exit(128 + signum)


def _say(line: str) -> None:
    with contextlib.suppress(OSError):
        os.write(2, f"seedreplay: {line}\n".encode())


# --- request bodies sent compressed -------------------------------------------------------------
# The servers read bodies as they came off the wire (see `serving`); a body the proxy or the
# simulator parses is decoded here, with the size limit applied to what it decodes to (a 1 MB gzip
# can hold 1 GB of zeros).

SUPPORTED = ("gzip", "deflate", "identity")


def decode_body(raw: bytes, content_encoding: str | None, limit: int) -> bytes:
    """`raw` with the codings `content_encoding` names undone (last applied, first undone); a 400
    when it is not what it says, 413 past `limit` bytes decoded, 415 for a coding not supported."""
    from .errors import APIError  # brings aiohttp: imported when a body is read, like the server

    codings = [c.strip().lower() for c in (content_encoding or "").split(",") if c.strip()]
    body = raw
    for coding in reversed(codings):
        if coding == "identity":
            continue
        if coding in ("gzip", "x-gzip"):
            body = _inflate(body, 16 + zlib.MAX_WBITS, limit, coding)
        elif coding == "deflate":
            # RFC 9110's deflate is zlib-wrapped; some clients send the raw stream.
            try:
                body = _inflate(body, zlib.MAX_WBITS, limit, coding)
            except APIError as exc:
                if exc.status != 400:
                    raise
                body = _inflate(body, -zlib.MAX_WBITS, limit, coding)
        else:
            raise APIError(
                415,
                f"the request has Content-Encoding {coding[:40]!r}, which this server does not decode; "
                f"send the body uncompressed or as one of {', '.join(SUPPORTED)}",
                code="unsupported_content_encoding",
            )
    return body


def _inflate(data: bytes, wbits: int, limit: int, coding: str) -> bytes:
    from .errors import APIError

    out = bytearray()
    rest = data
    while rest:  # a gzip body may hold several members, one after the other
        decoder = zlib.decompressobj(wbits)
        try:
            out += decoder.decompress(rest, limit + 1 - len(out))
        except zlib.error as exc:
            raise _not_encoded(coding, str(exc)) from None
        if len(out) > limit or decoder.unconsumed_tail:
            raise APIError(
                413,
                f"the request body decodes ({coding}) to more than this server's limit of {limit} bytes; "
                "start the proxy with a larger --max-body if the request is meant to be this big",
                code="request_too_large",
            )
        if not decoder.eof:
            raise _not_encoded(coding, "the compressed data ends early")
        rest = decoder.unused_data
        if rest and wbits <= zlib.MAX_WBITS:  # only gzip has several members
            raise _not_encoded(coding, "data follows the end of the compressed stream")
    return bytes(out)


def _not_encoded(coding: str, why: str) -> APIError:
    from .errors import APIError

    return APIError(
        400,
        f"the request body is not valid {coding} data as its Content-Encoding says ({why}); "
        "send it uncompressed, or compress it with that coding",
        code="invalid_content_encoding",
    )
