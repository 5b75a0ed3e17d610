"""The descriptor-exhaustion scenario end to end: a real `seedreplay proxy` under `ulimit -n 256`
held by 300 clients dribbling request bodies still answers `/healthz` at once, serves again when they
leave, and says the crowd in a line or two, never a traceback per accept."""

from __future__ import annotations

import os
import queue
import resource
import socket
import subprocess
import threading
import urllib.parse

import pytest

from proxy_support import http
from test_proxy_cli import LISTENING, SEEDREPLAY, _wait_for
from test_proxy_slow_clients import read_all

DESCRIPTORS = 256
ALLOWED = DESCRIPTORS - 64  # the proxy keeps 64 descriptors for its store, upstream and logs
CLIENTS = 300


def limited() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (DESCRIPTORS, DESCRIPTORS))


class LimitedProxy:
    """`seedreplay proxy` in a subprocess whose open-file limit is DESCRIPTORS."""

    def __init__(self, cache: str):
        self.process = subprocess.Popen(
            [SEEDREPLAY, "proxy", "--port", "0", "--upstream", "sim", "--cache-dir", cache],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=limited,
            env={**{k: v for k, v in os.environ.items() if not k.startswith("SEEDREPLAY_")}, "PYTHONUNBUFFERED": "1"},
        )
        lines: queue.Queue[str] = queue.Queue()
        self.stderr: list[str] = []
        threading.Thread(target=self._pump, args=(self.process.stdout, lines.put), daemon=True).start()
        threading.Thread(target=self._pump, args=(self.process.stderr, self.stderr.append), daemon=True).start()
        first = lines.get(timeout=20)
        match = LISTENING.match(first)
        assert match, first
        self.root = match.group(1)[: -len("/v1")]

    @staticmethod
    def _pump(stream, sink) -> None:
        for line in stream:
            sink(line.rstrip("\n"))

    def log(self) -> str:
        return "\n".join(self.stderr)


def dribbler(root: str) -> socket.socket:
    """A connection that sent a request head and the start of its 4 KB body, and then goes slowly."""
    parts = urllib.parse.urlsplit(root)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=20)
    sock.sendall(
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b'Content-Length: 4000\r\n\r\n{"model": "gpt-4o-mini", '
    )
    return sock


def refused(sock: socket.socket) -> bool:
    """Whether the server turned this connection away: a 503 `too_many_connections`, or a reset (its
    close, with our unread request bytes in hand, may reach us before we read the 503)."""
    try:
        answer = read_all(sock)
    except ConnectionResetError:
        return True
    return answer.startswith(b"HTTP/1.1 503") and b"too_many_connections" in answer


@pytest.mark.slow
def test_three_hundred_slow_bodies_under_ulimit_256_leave_healthz_answering_and_the_log_quiet(tmp_path):
    proxy = LimitedProxy(str(tmp_path / "cache"))
    clients: list[socket.socket] = []
    try:
        clients = [dribbler(proxy.root) for _ in range(CLIENTS)]
        held = clients[:ALLOWED]  # accepted in the order they connected
        for sock in clients[ALLOWED:]:
            assert refused(sock)
        for sock in held:
            sock.sendall(b'"messages": ')  # the bodies keep dribbling, and their connections stay
        # Full: /healthz is told so at once (it timed out when the proxy took every connection).
        busy = http(f"{proxy.root}/healthz", "GET", timeout=10)
        assert busy.status == 503 and busy.json()["error"]["code"] == "too_many_connections"
        for sock in held[:10]:
            sock.close()
        _wait_for(lambda: http(f"{proxy.root}/healthz", "GET", timeout=10).status == 200, what="room again")
    finally:
        for sock in clients:
            sock.close()
        proxy.process.terminate()
        assert proxy.process.wait(20) == 0
    log = proxy.log()
    assert "Traceback" not in log and "out of system resource" not in log, log[-3000:]
    loud = [line for line in proxy.stderr if " WARNING " in line or " ERROR " in line or " CRITICAL " in line]
    # The crowd is said once, and running out of descriptors (if the accepts outran the closes) once:
    # under ulimit -n 256 the proxy used to log a traceback per accept, thousands of them.
    assert len([line for line in loud if "connections are open, the most this server takes" in line]) == 1, loud
    assert len([line for line in loud if "cannot be accepted: [Errno 24]" in line]) <= 1, loud
    # A start-up warm-up that met the exhausted descriptors says so once (the first miss does it then).
    warm_up = [line for line in loud if "building the secret catalogue at start failed" in line]
    assert len(warm_up) <= 1 and len(loud) - len(warm_up) <= 2, loud
