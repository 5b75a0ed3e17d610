"""The body timeout is a timeout to asyncio and to aiohttp on every Python the suite runs on: on 3.10
asyncio.TimeoutError is not the built-in TimeoutError, and aiohttp, draining an unread body after the
answer, only stops quietly on asyncio's."""

from __future__ import annotations

import asyncio
import logging

import pytest

from pytest_seedreplay.proxy.serve import BodyTimeout

from proxy_support import API_KEY
from test_proxy_slow_clients import connect, read_all


def test_a_body_timeout_is_both_timeout_errors():
    assert issubclass(BodyTimeout, asyncio.TimeoutError) and issubclass(BodyTimeout, TimeoutError)
    with pytest.raises(asyncio.TimeoutError):
        raise BodyTimeout("the request body sent nothing for 1 s")


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/files"], ids=["cacheable", "passed-through"])
def test_a_body_that_stops_while_aiohttp_drains_it_after_the_answer_is_quiet(sim, proxy_factory, caplog, path):
    # Without the token the 401 goes out before the body is read; aiohttp then drains the rest of
    # the body, and the body timeout ends that drain.
    proxy = proxy_factory(sim.url, token="team-token-1", body_timeout=0.5)
    caplog.set_level(logging.DEBUG, logger="aiohttp")
    with connect(proxy.root) as sock:
        sock.sendall(
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {API_KEY}\r\n".encode()
            + b"Content-Type: application/json\r\nContent-Length: 500\r\n\r\n"
            + b'{"model": "gpt-4o-mini", '
        )
        answer = read_all(sock)  # the server closes once the drain ends
    assert answer.startswith(b"HTTP/1.1 401"), answer[:200]
    proxy.settle()
    loud = [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert not loud, [(r.name, r.getMessage()) for r in loud]
