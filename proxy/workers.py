"""`seedreplay proxy --workers N`: one port served by N processes, each a whole proxy.

The parent binds the port with SO_REUSEPORT (bound, never listening: it only holds the port) and
forks the workers; each binds its own listening socket to the same port, and the kernel spreads new
connections over them. The workers share what the store shares: the recordings, the single-flight
claims (one upstream call per key across processes: the disk store's claims, or Redis's) and the
savings ledger. Each also serves its app on a private Unix socket, where `/seedreplay/stats` and
`/metrics`, asked on the port, collect the other workers' own figures and add them up.

A worker that dies unasked is started again in its place (its counters start from zero), as
gunicorn's arbiter does; one that keeps dying (RESTARTS times within RESTART_WINDOW seconds, a fault at
start say) is left dead, and the others go on serving. SIGINT or SIGTERM to the parent reaches every
worker, and each drains as a single proxy does (requests under way answered, their writes landed); the
parent exits once every worker has.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pytest_seedreplay.core.constants import HEADER_TOKEN

if TYPE_CHECKING:
    from .state import ProxyState

log = logging.getLogger("seedreplay.proxy")

HEADER_WORKER = "X-Seedreplay-Worker"  # "local": a worker's own figures, not the sum (asked by its siblings)
START_SECONDS = 60.0  # how long the workers may take to start listening
ASK_SECONDS = 5.0  # how long a worker waits for a sibling's figures
# A worker that dies this many times within the window is not started again: it would only die again.
RESTARTS = 5
RESTART_WINDOW = 60.0


@dataclass(frozen=True)
class Worker:
    """What one worker process is given: its number, its listening socket on the shared port, the
    path of its private socket, and those of the other workers."""

    number: int
    sock: socket.socket
    private: str
    siblings: tuple[str, ...]


ServeOne = Callable[[Worker, Callable[[str], None]], None]


def reuse_port_socket(host: str, port: int, listen: bool) -> socket.socket:
    """A TCP socket bound with SO_REUSEPORT: several processes' sockets on one port."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        if listen:
            sock.listen(128)
    except OSError:
        sock.close()
        raise
    return sock


def run_workers(count: int, host: str, port: int, serve_one: ServeOne, on_listening: Callable[[str], None]) -> int:
    """Serve `host:port` from `count` forked workers, each running `serve_one(worker, listening)`
    (it calls `listening(url)` once it accepts connections) until SIGINT/SIGTERM; `on_listening(root)`
    once all of them listen. The exit status: 0 when every worker stopped cleanly."""
    if not hasattr(socket, "SO_REUSEPORT") or not hasattr(os, "fork"):
        raise OSError("--workers needs SO_REUSEPORT and fork (Linux, macOS, BSD)")
    # SO_REUSEPORT would also share a port another proxy of this user listens on: a plain bind first
    # fails as any other server's would when the port is taken.
    port = _free_port(host, port)
    reserved = reuse_port_socket(host, port, listen=False)  # holds the port; the workers listen on it
    rundir = tempfile.mkdtemp(prefix="seedreplay-workers-")  # 0700: the private sockets are ours alone
    group = _Group(count, host, port, rundir, serve_one, reserved)
    previous = {sig: signal.signal(sig, group.stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        for number in range(count):
            group.start(number)
        if not group.wait_until_listening():
            group.stop()
            group.reap()
            return 1
        on_listening(f"http://{host if ':' not in host else f'[{host}]'}:{port}")
        return group.reap()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        group.close()
        reserved.close()
        shutil.rmtree(rundir, ignore_errors=True)


def _free_port(host: str, port: int) -> int:
    """`port` (a free one for 0) if no socket holds it, else the OSError of a plain bind."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((host, port))
        return int(probe.getsockname()[1])


class _Group:
    """The parent's view of its workers."""

    def __init__(self, count: int, host: str, port: int, rundir: str, serve_one: ServeOne, reserved: socket.socket):
        self.host, self.port = host, port
        self.serve_one, self.reserved = serve_one, reserved
        self.private = [os.path.join(rundir, f"worker-{n}.sock") for n in range(count)]
        self.children: dict[int, int] = {}  # pid -> worker number
        self.deaths: dict[int, list[float]] = {n: [] for n in range(count)}  # worker number -> when it died unasked
        self.stopping = False
        self.ready_r, self.ready_w = os.pipe()
        os.set_blocking(self.ready_r, False)

    def start(self, number: int) -> None:
        pid = os.fork()
        if pid:
            self.children[pid] = number
            if self.stopping:  # the stop signal came while this worker was being started again
                os.kill(pid, signal.SIGTERM)
            return
        _be_worker(self, number, self.serve_one, self.reserved)  # never returns

    def stop(self, *_: Any) -> None:
        """Ask every worker to drain and stop (a signal handler too)."""
        self.stopping = True
        for pid in list(self.children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    def wait_until_listening(self) -> bool:
        """Until every worker listens; False when one ended first (it said why) or took too long."""
        deadline = time.monotonic() + START_SECONDS
        listening = 0
        while listening < len(self.private):
            if self.stopping:
                return False
            readable, _, _ = select.select([self.ready_r], [], [], 0.1)
            if readable:
                with contextlib.suppress(BlockingIOError):
                    listening += len(os.read(self.ready_r, 64))
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid:
                number = self.children.pop(pid, None)
                log.error("worker %s exited with status %d before it listened", number, os.waitstatus_to_exitcode(status))
                return False
            if time.monotonic() > deadline:
                log.error("the workers did not all listen within %.0f s", START_SECONDS)
                return False
        return True

    def reap(self) -> int:
        """Wait for every worker to end, starting again each one that dies unasked; 0 when each
        stopped cleanly when asked and none was given up."""
        status = 0
        while self.children:
            pid, raw = os.wait()  # retried after a signal handler runs (PEP 475)
            number = self.children.pop(pid, None)
            if number is None:
                continue
            code = os.waitstatus_to_exitcode(raw)
            if self.stopping:
                # -SIGTERM: a worker stopped before it could install its draining handler had nothing to drain.
                status = 1 if code not in (0, -signal.SIGTERM) else status
            elif self.restart(number, pid, code):
                self.drain_ready()
            else:
                status = 1
        return status

    def restart(self, number: int, pid: int, code: int) -> bool:
        """Start worker `number` again after it died unasked; False when it keeps dying."""
        now = time.monotonic()
        deaths = [when for when in self.deaths[number] if now - when < RESTART_WINDOW] + [now]
        self.deaths[number] = deaths
        if len(deaths) > RESTARTS:
            log.error(
                "worker %d (pid %d) exited with status %d, %d times in %.0f s: it is not started again; "
                "the %d other worker%s go on serving",
                number, pid, code, len(deaths), RESTART_WINDOW, len(self.children), "" if len(self.children) == 1 else "s",
            )  # fmt: skip
            return False
        log.error("worker %d (pid %d) exited with status %d; starting it again", number, pid, code)
        self.start(number)
        return True

    def drain_ready(self) -> None:
        """Empty the pipe the workers say "listening" on (a restarted worker says it too)."""
        with contextlib.suppress(BlockingIOError, OSError):
            while os.read(self.ready_r, 64):
                pass

    def close(self) -> None:
        for fd in (self.ready_r, self.ready_w):
            with contextlib.suppress(OSError):
                os.close(fd)


def _be_worker(group: _Group, number: int, serve_one: ServeOne, reserved: socket.socket) -> None:
    """The forked child: serve until stopped, then leave without running the parent's code."""
    code = 1
    try:
        # The parent's handlers forward signals to workers; a worker installs its own as it serves.
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        os.close(group.ready_r)
        reserved.close()
        sock = reuse_port_socket(group.host, group.port, listen=True)
        siblings = tuple(path for n, path in enumerate(group.private) if n != number)
        worker = Worker(number, sock, group.private[number], siblings)

        def listening(_: str) -> None:
            os.write(group.ready_w, b"1")

        serve_one(worker, listening)
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except KeyboardInterrupt:
        code = 0
    except BaseException as exc:  # said in one line: the parent reports the exit
        print(f"seedreplay proxy worker {number}: {type(exc).__name__}: {exc}", file=sys.stderr)
    finally:
        with contextlib.suppress(Exception):
            logging.shutdown()
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


# --- the figures of all the workers --------------------------------------------------------------

# Fields of /seedreplay/stats every worker reads from the same store or config: taken once, not added.
_SAME_FOR_ALL = frozenset({"entries", "bytes", "store", "store_error", "mode", "upstream", "uptime_s", "memory_limit"})


async def ask_siblings(state: ProxyState, path: str) -> list[bytes | None]:
    """Each sibling worker's own answer at `path` (None from one that did not answer)."""
    import asyncio

    import aiohttp

    headers = {HEADER_WORKER: "local"}
    if state.config.token:
        headers[HEADER_TOKEN] = state.config.token

    async def ask(private: str) -> bytes | None:
        try:
            connector = aiohttp.UnixConnector(path=private)
            timeout = aiohttp.ClientTimeout(total=ASK_SECONDS)
            async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
                async with session.get(f"http://worker{path}", headers=headers) as response:
                    body = await response.read()
                    return body if response.status == 200 else None
        except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as exc:
            log.warning("worker at %s did not give its figures: %s", private, exc)
            return None

    return list(await asyncio.gather(*(ask(private) for private in state.siblings)))


def add_stats(total: dict[str, Any], part: dict[str, Any]) -> None:
    """Add one worker's /seedreplay/stats into `total`: counters and gauges added up, `store_up`
    true only when it is for all; what every worker reads alike (entries, mode...) taken once."""
    for name, value in part.items():
        if name in _SAME_FOR_ALL:
            continue
        mine = total.get(name)
        if isinstance(value, bool) or isinstance(mine, bool):
            total[name] = bool(mine) and bool(value) if name in total else value
        elif isinstance(value, (int, float)) and isinstance(mine, (int, float)):
            total[name] = mine + value
        elif isinstance(value, dict) and isinstance(mine, dict):
            add_stats(mine, value)
        elif name not in total:
            total[name] = value


def local(headers: Any) -> bool:
    """The request asks for one worker's own figures."""
    return headers.get(HEADER_WORKER) == "local"
