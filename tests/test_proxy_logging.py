"""The proxy's log at its default level (info): a line per miss, error and passthrough request, and
the hits summed up in one line every few seconds; at debug a line per hit too."""

from __future__ import annotations

import logging
import re
import time

import pytest

from pytest_seedreplay.proxy import app as proxy_app

from proxy_support import CHAT, MODEL, messages

SUMMARY = re.compile(r"^([\d,]+) hits? in the last ([\d.]+) s \(p50 ([\d.]+) ms, p99 ([\d.]+) ms\)$")


def _said(caplog, level: int = logging.INFO) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "seedreplay.proxy" and r.levelno == level]


def _summed_hits(caplog) -> int:
    return sum(int(m.group(1).replace(",", "")) for m in map(SUMMARY.match, _said(caplog)) if m)


def _wait_for(condition, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


@pytest.fixture
def often(monkeypatch):
    """Summary lines every 0.2 s instead of every 5 s (read when the proxy starts)."""
    monkeypatch.setattr(proxy_app, "HITS_EVERY", 0.2)


def test_at_info_misses_have_their_line_and_hits_are_summed_up(sim, proxy_factory, caplog, often):
    caplog.set_level(logging.INFO, logger="seedreplay.proxy")
    proxy = proxy_factory(sim.url)
    client = proxy.client()
    first = client.chat.completions.with_raw_response.create(model=MODEL, messages=messages(), seed=3)
    for _ in range(25):
        assert (
            client.chat.completions.with_raw_response.create(model=MODEL, messages=messages(), seed=3).headers[
                "x-seedreplay-cache"
            ]
            == "hit"
        )
    _wait_for(lambda: _summed_hits(caplog) == 25, 10, "the hit summary lines to count 25 hits")
    lines = _said(caplog)
    key = first.headers["x-seedreplay-key"][:11]
    assert [line for line in lines if "cache=miss" in line] == [
        line for line in lines if re.match(rf"POST /v1/chat/completions key={key} cache=miss upstream=200 status=200 ", line)
    ]
    assert len([line for line in lines if "cache=miss" in line]) == 1
    assert not [line for line in lines if "cache=hit" in line]  # no line per hit at info
    summary = next(SUMMARY.match(line) for line in lines if SUMMARY.match(line))
    assert 0 < float(summary.group(3)) <= float(summary.group(4))


def test_errors_and_unknown_paths_keep_their_own_line(sim, proxy_factory, caplog):
    caplog.set_level(logging.INFO, logger="seedreplay.proxy")
    proxy = proxy_factory(sim.url, mode="replay")
    assert proxy.post(CHAT, {"model": MODEL, "messages": messages("never recorded"), "seed": 1}).status == 404
    assert proxy.post(CHAT, b"{not json", {"Content-Type": "application/json"}).status == 400
    proxy.stop()
    lines = _said(caplog)
    assert any(re.search(r"POST /v1/chat/completions key=\S+ cache=miss upstream=- status=404 ", line) for line in lines)
    assert any(re.search(r"POST /v1/chat/completions key=- cache=- upstream=- status=400 ", line) for line in lines)
    assert _summed_hits(caplog) == 0


def test_at_debug_each_hit_has_its_line_as_well(sim, proxy_factory, caplog):
    caplog.set_level(logging.DEBUG, logger="seedreplay.proxy")
    proxy = proxy_factory(sim.url)
    client = proxy.client()
    for _ in range(3):
        client.chat.completions.create(model=MODEL, messages=messages(), seed=4)
    proxy.stop()  # the last summary is said as the proxy stops
    hits = [line for line in _said(caplog, logging.DEBUG) if "cache=hit" in line]
    assert len(hits) == 2 and all(re.search(r"cache=hit upstream=- status=200 [\d.]+ms$", line) for line in hits)
    assert _summed_hits(caplog) == 2
