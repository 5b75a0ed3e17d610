"""How long a recording answers: `--ttl` on new recordings, `Cache-Control: max-age=N` per request, and
`cache prune` sweeping what expired — on the disk store and on Redis."""

from __future__ import annotations

import dataclasses
import time
import uuid

import pytest
from click.testing import CliRunner

from pytest_seedreplay.cli import main
from pytest_seedreplay.core.key import request_key
from pytest_seedreplay.store import store_at

from proxy_support import API_KEY, CHAT, MODEL, http, messages
from test_proxy_team import chat_calls, proxies  # noqa: F401

AUTH = {"Authorization": f"Bearer {API_KEY}"}


def body(text: str) -> dict:
    return {"model": MODEL, "messages": messages(text), "seed": 3}


@pytest.fixture(params=["disk", "redis"])
def location(request, tmp_path) -> str:
    if request.param == "disk":
        return str(tmp_path / "cache")
    return request.getfixturevalue("shared_redis").url + f"?prefix=ttl{uuid.uuid4().hex[:10]}:"


def age(location: str, text: str, seconds: float, **fields) -> None:
    """Make the recording of `text` as if it were made `seconds` ago (and change other fields)."""
    key = request_key(CHAT, body(text))
    with store_at(location) as store:
        entry = store.get(key)
        store.put(dataclasses.replace(entry, recorded_at=entry.recorded_at - seconds, **fields))


def test_ttl_sets_when_a_new_recording_stops_answering(sim, proxies, location):
    (proxy,) = proxies(sim.url, location, n=1, ttl=3600)
    answer = http(proxy.url + CHAT, "POST", body("kept an hour"), AUTH)
    proxy.settle()
    with store_at(location) as store:
        entry = store.get(answer.headers["x-seedreplay-key"])
    assert entry.expires_at == pytest.approx(entry.recorded_at + 3600, abs=5)


def test_a_recording_past_its_ttl_is_a_miss_and_prune_frees_it(sim, proxies, location):
    (proxy,) = proxies(sim.url, location, n=1, memory_cache=0)
    http(proxy.url + CHAT, "POST", body("short-lived"), AUTH)
    http(proxy.url + CHAT, "POST", body("kept"), AUTH)
    proxy.settle()
    age(location, "short-lived", 0, expires_at=time.time() - 1)
    again = http(proxy.url + CHAT, "POST", body("short-lived"), AUTH)
    assert again.headers["x-seedreplay-cache"] == "miss" and chat_calls(sim) == 3
    proxy.settle()
    age(location, "short-lived", 0, expires_at=time.time() - 1)  # expired once more, for prune to sweep
    target = ["--store", location] if "://" in location else ["--cache-dir", location]
    pruned = CliRunner().invoke(main, ["cache", "prune", "--expired", *target])
    assert pruned.exit_code == 0 and pruned.output.strip() == "removed 0 entries and 1 past their TTL, 1 left"
    with store_at(location) as store:
        assert sorted(store.iter_keys()) == [request_key(CHAT, body("kept"))]


def test_max_age_serves_only_a_recording_young_enough(sim, proxies, location):
    (proxy,) = proxies(sim.url, location, n=1)
    http(proxy.url + CHAT, "POST", body("news"), AUTH)
    proxy.settle()
    age(location, "news", 100)
    young = http(proxy.url + CHAT, "POST", body("news"), {**AUTH, "Cache-Control": "max-age=500"})
    assert young.headers["x-seedreplay-cache"] == "hit" and chat_calls(sim) == 1
    old = http(proxy.url + CHAT, "POST", body("news"), {**AUTH, "Cache-Control": "max-age=50"})
    assert old.status == 200 and old.headers["x-seedreplay-cache"] == "miss" and chat_calls(sim) == 2
    proxy.settle()
    fresh = http(proxy.url + CHAT, "POST", body("news"), {**AUTH, "Cache-Control": "max-age=50"})
    assert fresh.headers["x-seedreplay-cache"] == "hit" and chat_calls(sim) == 2  # re-recorded by the miss


def test_replay_names_a_recording_too_old_for_max_age(sim, proxies, location):
    (recorder,) = proxies(sim.url, location, n=1)
    http(recorder.url + CHAT, "POST", body("stale"), AUTH)
    recorder.settle()
    age(location, "stale", 100)
    (replayer,) = proxies(sim.url, location, n=1, mode="replay")
    miss = http(replayer.url + CHAT, "POST", body("stale"), {**AUTH, "Cache-Control": "max-age=50"})
    error = miss.json()["error"]
    assert miss.status == 404 and error["code"] == "cache_miss"
    assert "s old, older than this request's Cache-Control: max-age=50" in error["message"]
    assert http(replayer.url + CHAT, "POST", body("stale"), AUTH).status == 200


@pytest.mark.parametrize("value", ["max-age=soon", "max-age=-1", "max-age=nan", "no-store, max-age="])
def test_a_max_age_that_is_not_seconds_is_a_400(sim, proxies, tmp_path, value):
    (proxy,) = proxies(sim.url, str(tmp_path / "c"), n=1)
    refused = http(proxy.url + CHAT, "POST", body("x"), {**AUTH, "Cache-Control": value})
    assert refused.status == 400 and refused.json()["error"]["code"] == "invalid_cache_control"
    assert "max-age=3600" in refused.json()["error"]["message"] and chat_calls(sim) == 0
