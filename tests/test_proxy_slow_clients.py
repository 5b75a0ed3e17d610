"""Clients that hold a connection without finishing a request, hang up half-way, or ask to upload
before they have shown the token: each is bounded, said in one quiet line, and refused first."""

from __future__ import annotations

import signal
import socket
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from http.client import HTTPException

import pytest

from proxy_support import API_KEY, CHAT, MODEL, http, messages
from test_proxy_cli import _wait_for, spawn  # noqa: F401 (a fixture)

TOKEN = "team-token-5b9d"


def connect(root: str) -> socket.socket:
    parts = urllib.parse.urlsplit(root)
    return socket.create_connection((parts.hostname, parts.port), timeout=20)


def read_head(sock: socket.socket) -> bytes:
    """The bytes up to the end of the first response head the server sends."""
    got = b""
    while b"\r\n\r\n" not in got:
        piece = sock.recv(4096)
        if not piece:
            break
        got += piece
    return got


def expecting(path: str, token: str | None = None) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {API_KEY}\r\n"
        "Content-Type: application/json\r\nContent-Length: 60\r\nExpect: 100-continue\r\n"
    )
    if token:
        head += f"X-Seedreplay-Token: {token}\r\n"
    return (head + "\r\n").encode()


def test_expect_100_continue_without_the_token_gets_the_401_and_no_invitation(sim, proxy_factory):
    proxy = proxy_factory(sim.url, token=TOKEN)
    for path in ("/v1/chat/completions", "/v1/files", "/openai/deployments/d/chat/completions", "/elsewhere"):
        with connect(proxy.root) as sock:
            sock.sendall(expecting(path))
            head = read_head(sock)
        assert head.startswith(b"HTTP/1.1 401"), (path, head[:80])
        assert b"invalid_seedreplay_token" in head or b"Content-Length" in head
    with connect(proxy.root) as sock:  # with the token, the client is invited to send its body
        sock.sendall(expecting("/v1/chat/completions", TOKEN))
        assert read_head(sock).startswith(b"HTTP/1.1 100")
    assert sim.stats()["total"] == 0


def test_a_second_stop_signal_ends_the_proxy_at_once_whatever_is_in_flight(spawn, tmp_path):  # noqa: F811
    # An upstream that takes the request and never answers: the graceful stop would wait for it.
    silent = socket.create_server(("127.0.0.1", 0))
    try:
        upstream = f"http://127.0.0.1:{silent.getsockname()[1]}/v1"
        proxy = spawn("--upstream", upstream, "--cache-dir", str(tmp_path / "cache"), "--log-level", "warning")
        with ThreadPoolExecutor(1) as pool:
            pending = pool.submit(lambda: http(proxy.url + CHAT, body={"model": MODEL, "messages": messages(), "seed": 1}))
            _wait_for(lambda: http(f"{proxy.root}/seedreplay/stats", "GET").json()["upstream_calls"] >= 1, what="the call")
            proxy.process.send_signal(signal.SIGTERM)
            _wait_for(lambda: "seedreplay: stopping: finishing the requests in flight" in proxy.log(), what="the first signal")
            proxy.process.send_signal(signal.SIGTERM)
            assert proxy.process.wait(5) == 128 + signal.SIGTERM
            with pytest.raises((OSError, HTTPException)):  # the client's connection ends with the process
                pending.result(timeout=10)
        assert "a second stop signal: stopping now" in proxy.log()
    finally:
        silent.close()
