"""Shared pieces of the benchmark scripts: servers in their own process, load generators, tables.

Every server runs in a child process (spawned, so it starts clean) and the load comes from the
parent: on a 2-core machine that gives the server one core and the client the other, so a figure
measures the server rather than a client fighting it for the same interpreter. A seedreplay proxy is
started the way users start one, through the public `Proxy` (`ProxyProcess`); the simulator and the
bare baseline are plain aiohttp apps (`ServerProcess`).
"""

from __future__ import annotations

import asyncio
import atexit
import cProfile
import json
import multiprocessing
import os
import pstats
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

# The scripts run as `python benchmarks/<name>.py`; the package lives one level up.
ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from pytest_seedreplay import Proxy  # noqa: E402
from pytest_seedreplay.core.constants import SERVER_THREAD  # noqa: E402
from pytest_seedreplay.proxy.serve import serving  # noqa: E402

CHAT = "/v1/chat/completions"
AUTH = {"Authorization": "Bearer sk-bench-not-a-real-key", "Content-Type": "application/json"}
DEAD_UPSTREAM = "http://127.0.0.1:9/v1"  # discard port: a hit benchmark that ever misses fails loudly
# Anthropic's Messages API: its path, and the headers its SDK sends (key and API version).
MESSAGES = "/v1/messages"
ANTHROPIC_AUTH = {"x-api-key": "sk-bench-not-a-real-key", "anthropic-version": "2023-06-01", "Content-Type": "application/json"}


def chat_body(seed: int, content: str = "Name three facts about the moon.", **extra: Any) -> dict[str, Any]:
    """The request every benchmark sends: a small seeded chat completion."""
    return {
        "model": "gpt-4o-mini",
        "seed": seed,
        "temperature": 0,
        "max_tokens": 64,
        "messages": [{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": content}],
        **extra,
    }


def messages_body(content: str = "Name three facts about the moon.", **extra: Any) -> dict[str, Any]:
    """The Messages API's counterpart of `chat_body` (the API has no seed)."""
    return {
        "model": "claude-sonnet-4-5",
        "temperature": 0,
        "max_tokens": 64,
        "system": "Answer briefly.",
        "messages": [{"role": "user", "content": content}],
        **extra,
    }


def scratch_dir(root: str | None = None) -> str:
    """A temporary directory for stores and cassettes, removed when the script exits."""
    path = tempfile.mkdtemp(prefix="seedreplay-bench-", dir=root)
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


# --- app factories, built inside the server process ----------------------------------------------


def sim_app(latency_ms: float = 0, tokens_per_s: float = 0) -> web.Application:
    from pytest_seedreplay.proxy.sim import SimConfig, make_sim_app

    return make_sim_app(SimConfig(latency_ms=latency_ms, tokens_per_s=tokens_per_s))


def proxy_server(upstream: str, cache_dir: str, mode: str = "record", **options: Any) -> Proxy:
    """The proxy over a DiskStore at `cache_dir`; `options`: more `Proxy` keywords (e.g. durable=True)."""
    return Proxy(upstream, store=cache_dir, mode=mode, **options)


def bare_app(body: bytes, headers: dict[str, str], path: str = CHAT) -> web.Application:
    """The baseline: an aiohttp server that reads the request and answers fixed bytes, nothing else."""

    async def answer(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=body, headers=headers)

    app = web.Application()
    app.router.add_post(path, answer)
    return app


def relay_app(upstream: str) -> web.Application:
    """The floor of any aiohttp proxy: a bare relay that forwards each POST to `upstream` (a root URL)
    and streams the answer back as it comes, with no key, store, check or log."""
    import aiohttp

    client = web.AppKey("client", aiohttp.ClientSession)

    async def open_client(app: web.Application) -> None:
        app[client] = aiohttp.ClientSession(auto_decompress=False)

    async def close_client(app: web.Application) -> None:
        await app[client].close()

    async def relay(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        headers = {"Authorization": request.headers.get("Authorization", ""), "Content-Type": "application/json"}
        async with request.app[client].post(upstream + request.path, data=body, headers=headers) as answer:
            response = web.StreamResponse(status=answer.status, headers={"Content-Type": answer.headers["Content-Type"]})
            await response.prepare(request)
            async for chunk in answer.content.iter_any():
                await response.write(chunk)
            await response.write_eof()
            return response

    app = web.Application()
    app.router.add_post("/{path:.*}", relay)
    app.on_startup.append(open_client)
    app.on_cleanup.append(close_client)
    return app


# --- a server in its own process ------------------------------------------------------------------


def _child(factory: Callable[..., web.Application], kwargs: dict, urls: Any, stop: Any, profile: str | None) -> None:
    profiler = cProfile.Profile() if profile else None

    async def main() -> None:
        app = factory(**kwargs)
        async with serving(app) as root:
            urls.put(root)
            # Waiting in a worker thread keeps the profiler (which follows this thread) on the server.
            await asyncio.get_running_loop().run_in_executor(None, stop.wait)

    if profiler:
        profiler.enable()
    try:
        asyncio.run(main())
    except BaseException as exc:  # the parent is waiting for a URL: tell it why there is none
        urls.put(f"error: {type(exc).__name__}: {exc}")
        raise
    finally:
        if profiler:
            profiler.disable()
            profiler.dump_stats(profile)


def _proxy_child(factory: Callable[..., Proxy], kwargs: dict, urls: Any, stop: Any, profile: str | None) -> None:
    # A Proxy serves from its own thread (as it does for every user); this one only waits, so the
    # process still gives the proxy a core of its own.
    profiler = cProfile.Profile() if profile else None
    if profiler:
        _profile_server_thread(profiler)
    try:
        with factory(**kwargs) as proxy:
            urls.put(proxy.url.removesuffix("/v1"))
            stop.wait()
    except BaseException as exc:  # the parent is waiting for a URL: tell it why there is none
        urls.put(f"error: {type(exc).__name__}: {exc}")
        raise
    finally:
        if profiler:
            threading.setprofile(None)
            profiler.dump_stats(profile)


def _profile_server_thread(profiler: cProfile.Profile) -> None:
    """cProfile follows the thread that enables it: enable it in the proxy's server thread as it starts."""

    def enable_in_the_server(*_: object) -> None:
        sys.setprofile(None)
        if threading.current_thread().name == SERVER_THREAD:
            profiler.enable()

    threading.setprofile(enable_in_the_server)


class ServerProcess:
    """`with ServerProcess(sim_app, latency_ms=...) as root:` — an app served from a spawned child
    process; `root` is `http://127.0.0.1:PORT`. `profile=PATH` runs it under cProfile."""

    _target = staticmethod(_child)

    def __init__(self, factory: Callable[..., Any], profile: str | None = None, **kwargs: Any):
        ctx = multiprocessing.get_context("spawn")
        self._urls = ctx.Queue()
        self._stop = ctx.Event()
        self._process = ctx.Process(target=self._target, args=(factory, kwargs, self._urls, self._stop, profile), daemon=True)
        self.root = ""

    def __enter__(self) -> str:
        self._process.start()
        root = self._wait_for_url(deadline=time.monotonic() + 60)
        if root.startswith("error:"):
            self._process.join(10)
            raise RuntimeError(f"server process failed to start: {root}")
        self.root = root
        return root

    @property
    def pid(self) -> int | None:
        return self._process.pid

    def _wait_for_url(self, deadline: float) -> str:
        import queue

        while time.monotonic() < deadline:
            try:
                return self._urls.get(timeout=0.2)
            except queue.Empty:
                if not self._process.is_alive():
                    return f"error: the process exited with status {self._process.exitcode}"
        return "error: no URL within 60 s"

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._process.join(30)
        if self._process.is_alive():  # never leave a stray server behind
            self._process.terminate()
            self._process.join(10)


class ProxyProcess(ServerProcess):
    """`with ProxyProcess(proxy_server, upstream=..., cache_dir=...) as root:` — a seedreplay `Proxy`
    (what `factory` returns, built in the child) running in a spawned child process, in a `with` block
    as a user runs one; `root` is its `.url` without `/v1`. `profile=PATH`: its server thread under cProfile."""

    _target = staticmethod(_proxy_child)


class CliProxy:
    """`with CliProxy("--mode", "replay", "--cache-dir", DIR) as root:` — `seedreplay proxy ...` as a user
    starts it from a shell (the installed script, its default --log-level info; `script`: another
    installed `seedreplay`, e.g. an older release's, to compare with), on a free port; its
    log goes to a file in `log_dir` (a terminal or a journal in real use). `pids()`: the process and
    its workers, for their CPU time."""

    def __init__(self, *args: str, log_dir: str | None = None, script: str | None = None, prefix: Sequence[str] = ()):
        self.args = args
        self.script = script
        self.prefix = list(prefix)  # e.g. taskset -c 0: pins the proxy (it execs, so the pid stays its own)
        self.log_path = os.path.join(log_dir or scratch_dir(), f"proxy-{id(self)}.log")
        self.process: subprocess.Popen | None = None
        self.root = ""

    def __enter__(self) -> str:
        script = Path(self.script or Path(sys.executable).parent / "seedreplay")
        command = [str(script)] if script.exists() else [sys.executable, "-c", "from pytest_seedreplay.cli import main; main()"]
        with open(self.log_path, "w") as log:
            self.process = subprocess.Popen(
                [*self.prefix, *command, "proxy", "--port", "0", *self.args], stdout=subprocess.PIPE, stderr=log, text=True
            )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()  # the listening line (or nothing: the process failed)
        found = re.search(r"listening on (http://\S+)/v1", line)
        if not found:
            self.__exit__()
            raise RuntimeError(f"seedreplay proxy {' '.join(self.args)} did not start: {line!r}; log: {self.log()[-2000:]}")
        self.root = found.group(1)
        return self.root

    def log(self) -> str:
        return Path(self.log_path).read_text(errors="replace")

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def pids(self) -> list[int]:
        """The proxy's process and its children (the workers of --workers N)."""
        if self.process is None:
            return []
        children: list[int] = []
        for task in Path(f"/proc/{self.process.pid}/task").glob("*/children"):
            children += [int(pid) for pid in task.read_text().split()]
        return [self.process.pid, *children]

    def __exit__(self, *exc: object) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:  # never leave a stray server behind
            self.process.kill()
            self.process.wait(10)


# --- load generators ----------------------------------------------------------------------------


@dataclass
class LoadResult:
    """What one load run measured; latencies in milliseconds."""

    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int = 0

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def cpu_seconds_of(pids: Iterable[int]) -> float | None:
    """The CPU time of several processes together (a proxy and its workers); None where unknown."""
    total = 0.0
    for pid in pids:
        used = cpu_seconds(pid)
        if used is None:
            return None
        total += used
    return total


def cpu_seconds(pid: int | None) -> float | None:
    """CPU time (user + system, all its threads) process `pid` has used so far, from /proc; None where
    there is no /proc (not Linux). Read here rather than through psutil: one file, no extra dependency."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()  # after the command name, which may hold spaces
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime: fields 14 and 15


def have_wrk() -> bool:
    return shutil.which("wrk") is not None


def _lua_string(text: str) -> str:
    level = 0
    while f"]{'=' * level}]" in text:
        level += 1
    eq = "=" * level
    return f"[{eq}[{text}]{eq}]"


def wrk_script(body: bytes, headers: dict[str, str]) -> str:
    """A wrk Lua script that POSTs `body` with `headers` (wrk sends GET without one)."""
    lines = ['wrk.method = "POST"', f"wrk.body = {_lua_string(body.decode())}"]
    lines += [f'wrk.headers["{name}"] = {_lua_string(value)}' for name, value in headers.items()]
    return "\n".join(lines) + "\n"


_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _wrk_ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()
    return float(number) * _UNITS_MS[unit]


def parse_wrk(output: str, seconds: float) -> LoadResult:
    requests = int(re.search(r"(\d+) requests in", output).group(1))
    p50 = _wrk_ms(re.search(r"^\s*50%\s+(\S+)", output, re.M).group(1))
    p99 = _wrk_ms(re.search(r"^\s*99%\s+(\S+)", output, re.M).group(1))
    errors = 0
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if non_2xx:
        errors += int(non_2xx.group(1))
    sockets = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    if sockets:
        errors += sum(int(n) for n in sockets.groups())
    elapsed_s = _wrk_ms(re.search(r"requests in ([\d.]+(?:us|ms|s|m)),", output).group(1)) / 1000
    return LoadResult(requests, elapsed_s or seconds, p50, p99, errors)


def run_wrk(
    url: str, body: bytes, headers: dict[str, str], connections: int, seconds: float, prefix: Sequence[str] = ()
) -> LoadResult:
    """One wrk run (one thread: the other core belongs to the server); `prefix`: e.g. taskset -c 1."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(wrk_script(body, headers))
    try:
        cmd = [*prefix, "wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency", "-s", script.name, url]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60, check=True)
    finally:
        os.unlink(script.name)
    return parse_wrk(done.stdout, seconds)


async def _aiohttp_load(url: str, body: bytes, headers: dict[str, str], connections: int, seconds: float, cap: int) -> LoadResult:
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal errors
        while time.perf_counter() < deadline and len(latencies) + errors < cap:
            started = time.perf_counter()
            async with session.post(url, data=body, headers=headers) as response:
                await response.read()
                if response.status != 200:
                    errors += 1
                    continue
            latencies.append((time.perf_counter() - started) * 1000)

    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=connector) as session:
        began = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(connections)))
        elapsed = time.perf_counter() - began
    return LoadResult(len(latencies), elapsed, percentile(latencies, 50), percentile(latencies, 99), errors)


def run_aiohttp(
    url: str, body: bytes, headers: dict[str, str], connections: int, seconds: float, cap: int = 1_000_000
) -> LoadResult:
    """The fallback load generator: `connections` keep-alive workers, bounded by time and count."""
    return asyncio.run(_aiohttp_load(url, body, headers, connections, seconds, cap))


def load(tool: str, url: str, body: bytes, headers: dict[str, str], connections: int, seconds: float) -> LoadResult:
    if tool == "wrk":
        return run_wrk(url, body, headers, connections, seconds)
    return run_aiohttp(url, body, headers, connections, seconds)


def pick_tool(asked: str) -> str:
    if asked == "auto":
        return "wrk" if have_wrk() else "aiohttp"
    if asked == "wrk" and not have_wrk():
        raise SystemExit("wrk is not installed (apt-get install wrk); use --loadgen aiohttp")
    return asked


# --- plain HTTP helpers ---------------------------------------------------------------------------


async def get_json(session: aiohttp.ClientSession, url: str) -> Any:
    async with session.get(url) as response:
        return await response.json()


def fetch_json(url: str) -> Any:
    async def go() -> Any:
        async with aiohttp.ClientSession() as session:
            return await get_json(session, url)

    return asyncio.run(go())


def post_once(url: str, body: dict[str, Any], headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    async def go() -> tuple[int, dict[str, str], bytes]:
        async with aiohttp.ClientSession() as session:
            async with session.post(url, data=json.dumps(body), headers=headers or AUTH) as response:
                return response.status, dict(response.headers), await response.read()

    return asyncio.run(go())


# --- numbers and tables ---------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (nearest rank); NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def median(values: Iterable[float]) -> float:
    values = list(values)
    return statistics.median(values) if values else float("nan")


def table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A plain aligned text table: first column left, the rest right."""
    cells = [[str(h) for h in header]] + [[_cell(v) for v in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]

    def line(row: list[str]) -> str:
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths)))

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(cells[0]), rule] + [line(r) for r in cells[1:]])


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"
    return str(value)


def top_functions(profile_path: str, limit: int = 15) -> str:
    """Where a profiled server spent its time: the busiest functions by own time, then the project's
    own functions by cumulative time, each with µs per call."""
    stats = pstats.Stats(profile_path).stats  # {(file, line, name): (cc, nc, tottime, cumtime, callers)}
    total = sum(row[2] for row in stats.values()) or 1.0

    def rows(items: list) -> list[list[Any]]:
        out = []
        for (path, line, name), (_, calls, own, cum, _) in items:
            where = os.path.relpath(path, ROOT) if path.startswith(str(ROOT)) else Path(path).name
            out.append(
                [f"{where}:{line}({name})", calls, own / total * 100, cum / total * 100, cum / calls * 1e6 if calls else 0.0]
            )
        return out

    header = ["function", "calls", "own %", "cum %", "cum µs/call"]
    busiest = sorted(stats.items(), key=lambda kv: kv[1][2], reverse=True)[:limit]
    ours = [kv for kv in stats.items() if kv[0][0].startswith(str(ROOT)) and "/benchmarks/" not in kv[0][0]]
    ours = sorted(ours, key=lambda kv: kv[1][3], reverse=True)[:limit]
    return (
        f"busiest functions by own time (of {total:.2f} s profiled)\n"
        + table(header, rows(busiest))
        + "\n\nseedreplay's own functions by cumulative time\n"
        + table(header, rows(ours))
    )


SAMPLE_RATE = 500  # py-spy samples per second


def py_spy() -> str | None:
    return shutil.which("py-spy")


def start_sampling(pid: int, seconds: float, out: str) -> subprocess.Popen:
    """py-spy sampling `pid` for `seconds` into collapsed stacks (one `frames count` line each).
    Unlike cProfile it does not slow the server down, so the shares are the real ones."""
    cmd = [
        py_spy() or "py-spy",
        "record",
        "--pid",
        str(pid),
        "--duration",
        str(max(1, round(seconds))),
        "--rate",
        str(SAMPLE_RATE),
        "--format",
        "raw",
        "--function",
        "--full-filenames",
        "--nonblocking",
        "--output",
        out,
    ]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def sampled_functions(collapsed: str, requests: int, limit: int = 15) -> str:
    """Tables of a py-spy collapsed-stack file: busiest frames by own samples, and the project's
    functions by inclusive samples; as a share of the busy samples and as µs per request served."""
    own: dict[str, int] = {}
    inclusive: dict[str, int] = {}
    total = 0
    for line in Path(collapsed).read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        samples = int(count)
        total += samples
        frames = [_short_frame(f) for f in stack.split(";")[1:]]  # the first is the process
        if frames:
            own[frames[-1]] = own.get(frames[-1], 0) + samples
        for frame in set(frames):
            inclusive[frame] = inclusive.get(frame, 0) + samples
    if not total:
        return "py-spy took no samples"
    us = 1e6 / SAMPLE_RATE / max(requests, 1)  # one sample, in µs per request served
    busiest = sorted(own.items(), key=lambda kv: kv[1], reverse=True)[:limit]
    ours = sorted(
        ((f, n) for f, n in inclusive.items() if f.split(" (")[-1].startswith(("proxy/", "pytest_seedreplay/"))),
        key=lambda kv: kv[1],
        reverse=True,
    )[:limit]
    text = f"{total} busy samples = {total * us:.0f} µs of busy time per request ({requests} requests)\n" + table(
        ["frame (own time)", "own %", "µs/request"], [[f, n / total * 100, n * us] for f, n in busiest]
    )
    if ours:
        text += "\n\n" + table(
            ["seedreplay function (inclusive)", "incl %", "µs/request"], [[f, n / total * 100, n * us] for f, n in ours]
        )
    return text


def _short_frame(frame: str) -> str:
    """`handle_cacheable (/work/main/proxy/cache.py)` -> `handle_cacheable (proxy/cache.py)`."""
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    where = where.split(":")[0]
    if where.startswith(str(ROOT)):
        where = os.path.relpath(where, ROOT)
    elif "site-packages/" in where:
        where = where.split("site-packages/", 1)[1]
    elif where:
        where = Path(where).name
    return f"{name} ({where})"


def load_average() -> str:
    return "load average " + " ".join(f"{v:.2f}" for v in os.getloadavg())


def machine() -> str:
    return f"{os.cpu_count()} cores, Python {sys.version.split()[0]}, {sys.platform}"
