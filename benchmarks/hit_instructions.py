"""Instructions per cache hit, counted by callgrind: the proxy at its defaults next to a bare aiohttp
server answering the same bytes, the same requests.

Wall-clock and CPU-time figures of a shared machine swing with the neighbours' load; an instruction
count does not. Each server runs under `valgrind --tool=callgrind --instr-atstart=no` in its own
process: `seedreplay proxy --mode replay --cache-dir DIR` as a user starts it (over one recorded
answer, as `proxy_hit.py` does), and the bare server of `proxy_hit.py`. This process warms each one
up, switches counting on (`callgrind_control -i on`), sends --requests requests over --connections
keep-alive connections, switches it off, and divides the instructions counted by the requests. The
files callgrind writes stay in --out for `callgrind_annotate --inclusive=yes FILE` (C functions:
Python 3.11 names no Python frames there; `proxy_hit.py --profile` samples those).

Run: python benchmarks/hit_instructions.py [--requests 4000] [--connections 32] [--endpoint chat|messages]
     [--stream] [--before SCRIPT] [--out DIR]
(`--before`: another installed `seedreplay` script, e.g. an older version's, counted beside.)
Target: the default proxy's instructions per hit <= bare's / 0.9.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import _load
import proxy_hit

TARGET = 0.9
WARM_UP = 500  # requests before counting starts: imports, first connections, the memory copy filled


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=4000, help="requests counted per server (default 4000)")
    parser.add_argument("--connections", type=int, default=32, help="keep-alive connections sending them (default 32)")
    parser.add_argument("--endpoint", choices=tuple(proxy_hit.ENDPOINTS), default="chat")
    parser.add_argument("--stream", action="store_true", help="ask for a streamed answer (SSE hit)")
    parser.add_argument("--before", metavar="SCRIPT", help="another installed `seedreplay` script, counted beside as 'before'")
    parser.add_argument("--out", help="where callgrind's files go (default: a temporary directory, removed)")
    args = parser.parse_args()
    for tool in ("valgrind", "callgrind_control"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is not installed: apt-get install valgrind")

    path, headers, make_body = proxy_hit.ENDPOINTS[args.endpoint]
    proxy_hit.PATH, proxy_hit.HEADERS = path, headers
    body = make_body(args.stream)
    request = json.dumps(body).encode()
    work = _load.scratch_dir()
    out = args.out or work
    os.makedirs(out, exist_ok=True)
    cache_dir = os.path.join(work, "cache")
    proxy_hit.record_answer(cache_dir, body)
    wire = _wire(path, headers, request)

    print(
        f"instructions per cache hit (callgrind) | {_load.machine()} | {args.requests:,} requests over "
        f"{args.connections} connections after {WARM_UP} to warm up | {args.endpoint}, "
        f"{'streamed' if args.stream else 'plain JSON'} answer"
    )
    served = ("proxy", "--port", "0", "--mode", "replay", "--cache-dir", cache_dir)
    counted: dict[str, int] = {}
    servers = {"proxy": _cli(sys.executable, served)}
    if args.before:
        servers["before"] = _cli(_interpreter(args.before), served)
    answer: Answer | None = None
    for name, argv in servers.items():
        counted[name], got = _count(name, argv, wire, args, out)
        answer = answer or got
    assert answer is not None
    spec = os.path.join(work, "bare.json")
    Path(spec).write_text(json.dumps({"body": answer[0].decode(), "headers": answer[1], "path": path}))
    counted["bare"], _ = _count("bare", [sys.executable, "-c", _bare_source(spec)], wire, args, out)

    rows = [[name, f"{n:,}", f"{counted['bare'] / n:.2f}x"] for name, n in counted.items()]
    print()
    print(_load.table(["server", "instructions per hit", "bare/server"], rows))
    ratio = counted["bare"] / counted["proxy"]
    verdict = "OK" if ratio >= TARGET else "MISSED"
    print(f"\nproxy/bare capacity, by instructions per hit: {ratio:.2f}x   (target >= {TARGET}x)  {verdict}")
    if args.out:
        print(f"callgrind's files: {out}/callgrind.*.out (callgrind_annotate --inclusive=yes FILE)")


def _cli(python: str, args: tuple[str, ...]) -> list[str]:
    return [python, "-c", "import sys; sys.argv[0] = 'seedreplay'; from pytest_seedreplay.cli import main; main()", *args]


def _interpreter(script: str) -> str:
    """The Python a console script runs under (its #! line): valgrind needs the interpreter itself."""
    first = Path(script).read_text(errors="replace").splitlines()[0]
    if not first.startswith("#!"):
        sys.exit(f"--before {script}: not a console script (no #! line)")
    return first[2:].strip().split()[0]


def _bare_source(spec: str) -> str:
    return textwrap.dedent(
        f"""
        import asyncio, json, signal, sys
        sys.path.insert(0, {str(Path(__file__).resolve().parent)!r})
        import _load
        from pytest_seedreplay.proxy.serve import serving
        spec = json.load(open({spec!r}))

        async def main():
            async with serving(_load.bare_app(spec["body"].encode(), spec["headers"], spec["path"])) as root:
                print(f"listening on {{root}}/v1", flush=True)
                await asyncio.Event().wait()

        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        asyncio.run(main())
        """
    )


Answer = tuple[bytes, dict[str, str]]  # a body and the headers a bare server copies


def _count(name: str, argv: list[str], wire: bytes, args: argparse.Namespace, out: str) -> tuple[int, Answer]:
    """Instructions per request of the server `argv` starts under callgrind, and one answer it gave."""
    target = os.path.join(out, f"callgrind.{name}.out")
    with open(os.path.join(out, f"{name}.log"), "w") as log:
        server = subprocess.Popen(
            ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={target}", *argv],
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            cwd=out,  # not this directory: `python -c` would import the package from the checkout in it
        )
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        found = re.search(r"listening on http://127\.0\.0\.1:(\d+)", line)
        if not found:
            sys.exit(f"{name} did not start under valgrind: {line!r}; see {out}/{name}.log")
        port = int(found.group(1))
        asyncio.run(_send(port, wire, WARM_UP, args.connections))
        _control(server.pid, "on")
        asyncio.run(_send(port, wire, args.requests, args.connections))
        _control(server.pid, "off")
        answer = asyncio.run(_one(port, wire))
    finally:
        server.terminate()
        server.wait(120)
    total = _total(target)
    print(f"{name}: {total / args.requests:,.0f} instructions per request", flush=True)
    return round(total / args.requests), answer


def _control(pid: int, switch: str) -> None:
    subprocess.run(["callgrind_control", "-i", switch, str(pid)], check=True, capture_output=True, timeout=60)


def _total(target: str) -> int:
    """The instructions a callgrind file counted (its `totals:` or `summary:` line)."""
    total = 0
    for path in Path(target).parent.glob(Path(target).name + "*"):
        for line in path.read_text(errors="replace").splitlines():
            if line.startswith(("totals:", "summary:")):
                total = max(total, int(line.split()[1]))
    if not total:
        sys.exit(f"callgrind wrote no count to {target}")
    return total


def _wire(path: str, headers: dict[str, str], body: bytes) -> bytes:
    head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return (head + f"Content-Length: {len(body)}\r\n\r\n").encode() + body


async def _send(port: int, wire: bytes, requests: int, connections: int) -> None:
    left = [requests]

    async def one_connection() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while left[0] > 0:
                left[0] -= 1
                writer.write(wire)
                await _read_answer(reader)
        finally:
            writer.close()

    await asyncio.gather(*(one_connection() for _ in range(connections)))


async def _one(port: int, wire: bytes) -> Answer:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(wire)
        return await _read_answer(reader)
    finally:
        writer.close()


async def _read_answer(reader: asyncio.StreamReader) -> Answer:
    """One HTTP/1.1 answer with a Content-Length: its body and the headers a bare server copies."""
    status = await reader.readline()
    if b" 200 " not in status:
        raise SystemExit(f"the server answered {status!r}: not a hit")
    headers: dict[str, str] = {}
    while (line := await reader.readline()) != b"\r\n":
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip()] = value.strip()
    length = int(next(v for k, v in headers.items() if k.lower() == "content-length"))
    kept = {k: v for k, v in headers.items() if k.lower() not in proxy_hit._OWN_HEADERS}
    return await reader.readexactly(length), kept


if __name__ == "__main__":
    main()
