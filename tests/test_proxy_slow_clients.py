"""Clients that hold a connection without finishing a request, hang up half-way, or ask to upload
before they have shown the token: each is bounded, said in one quiet line, and refused first."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import socket
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from http.client import HTTPException

import pytest
from aiohttp import web

from pytest_seedreplay.proxy.serve import serving

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


def read_all(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (the socket's timeout bounds it)."""
    got = b""
    while True:
        piece = sock.recv(65536)
        if not piece:
            return got
        got += piece


def test_a_head_that_does_not_arrive_in_time_gets_a_408_and_the_connection_closes(sim, proxy_factory):
    proxy = proxy_factory(sim.url, header_timeout=1)
    with connect(proxy.root) as silent, connect(proxy.root) as dribbling:
        dribbling.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        for sock in (silent, dribbling):
            answer = read_all(sock)  # aiohttp alone would hold both for its keep-alive time, 75 s or more
            assert answer.startswith(b"HTTP/1.1 408") and b'"code": "request_timeout"' in answer
    assert http(f"{proxy.root}/healthz", "GET").status == 200


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/files"], ids=["cacheable", "passed-through"])
def test_a_body_that_stops_coming_is_cut_off(recorder, proxy_factory, caplog, path):
    proxy = proxy_factory(recorder[1].url + "/v1", body_timeout=1)  # an upstream that reads what it is sent
    with connect(proxy.root) as sock:
        sock.sendall(
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n".encode()
            + b"Content-Length: 500\r\n\r\n"
            + b'{"model": "gpt-4o-mini", '
        )
        answer = read_all(sock)
    assert answer.startswith(b"HTTP/1.1 408") and b"request_timeout" in answer, answer[:200]
    assert not [r for r in caplog.records if r.exc_info], [r.getMessage() for r in caplog.records]
    assert proxy.stats()["errors"] == 0 and len(proxy.store) == 0


def test_connections_past_the_bound_get_a_503_and_the_proxy_serves_on(sim, proxy_factory):
    proxy = proxy_factory(sim.url, max_connections=4)
    held = [connect(proxy.root) for _ in range(4)]  # accepted in order, before the next
    with connect(proxy.root) as extra:
        answer = read_all(extra)
    assert answer.startswith(b"HTTP/1.1 503") and b"too_many_connections" in answer
    for sock in held:
        sock.close()
    _wait_for(lambda: http(f"{proxy.root}/healthz", "GET").status == 200, what="room again")


def test_running_out_of_descriptors_is_said_once_not_per_accept(caplog):
    async def exhausted_twice() -> None:
        async with serving(web.Application()):
            loop = asyncio.get_running_loop()
            for _ in range(3):  # what asyncio says each time an accept fails with EMFILE
                loop.call_exception_handler(
                    {"message": "socket.accept() out of system resource", "exception": OSError(24, "Too many open files")}
                )

    with caplog.at_level(logging.ERROR):
        asyncio.run(exhausted_twice())
    said = [r for r in caplog.records if "cannot be accepted" in r.getMessage()]
    assert len(said) == 1 and said[0].exc_info is None and "ulimit -n" in said[0].getMessage()
    assert not [r for r in caplog.records if "out of system resource" in r.getMessage()]


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/files"], ids=["cacheable", "passed-through"])
def test_a_client_hanging_up_mid_body_is_one_quiet_line(recorder, proxy_factory, caplog, path):
    proxy = proxy_factory(recorder[1].url + "/v1")
    with caplog.at_level(logging.DEBUG, logger="aiohttp"):
        for _ in range(3):
            with connect(proxy.root) as sock:
                sock.sendall(
                    f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n".encode()
                    + b"Content-Length: 5000\r\n\r\n"
                    + b'{"model": "gpt-4o-mini", '
                )
        proxy.settle()
        assert http(f"{proxy.root}/healthz", "GET").status == 200
    loud = [r for r in caplog.records if r.exc_info or r.levelno >= logging.WARNING]
    assert not loud, [(r.name, r.getMessage()) for r in loud]
    assert proxy.stats()["errors"] == 0 and len(proxy.store) == 0


def test_a_request_lingering_when_its_client_hangs_up_is_ended_when_the_proxy_stops(sim, proxy_factory, caplog):
    # Answered before its body came (no token: 401), a request's connection lingers to read the rest
    # of the body (aiohttp does, up to 10 s); its client hangs up meanwhile and aiohttp lets go of the
    # task. Stopping the proxy must end that task, not leave it pending on a closed loop for the
    # garbage collector to report "destroyed but it is pending" in whatever runs next.
    proxy = proxy_factory(sim.url, token=TOKEN)
    for _ in range(3):
        with connect(proxy.root) as sock:
            sock.sendall(
                b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                b"Content-Length: 5000\r\n\r\n{"
            )
            assert read_head(sock).startswith(b"HTTP/1.1 401")
    proxy.proxy.stop()
    gc.collect()  # what would find a task left pending
    destroyed = [r.getMessage() for r in caplog.records if "Task was destroyed" in r.getMessage()]
    assert not destroyed, destroyed[0]
    assert sim.stats()["total"] == 0
