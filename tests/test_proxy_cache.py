"""The proxy as a cache: record then hit, replay, replay misses, modes and per-request overrides,
seed policy, auth isolation, store failures, stats — through the real openai SDK and plain HTTP."""

from __future__ import annotations

import openai
import pytest

from pytest_seedreplay.core.key import request_key
from pytest_seedreplay.proxy.app import ProxyConfig
from pytest_seedreplay.store import DiskStore

from proxy_support import API_KEY, CHAT, MODEL, http, messages, upstream_calls


def ask(client, text="hello", **params):
    params.setdefault("seed", 1)
    return client.chat.completions.with_raw_response.create(model=MODEL, messages=messages(text), **params)


def test_record_then_hit_does_not_call_the_upstream_again(sim, proxy_factory):
    proxy = proxy_factory(sim.url)
    client = proxy.client()
    first = ask(client)
    assert first.headers["x-seedreplay-cache"] == "miss"
    assert upstream_calls(sim) == 1
    second = ask(client)
    assert second.headers["x-seedreplay-cache"] == "hit"
    assert second.headers["x-seedreplay-key"] == first.headers["x-seedreplay-key"]
    assert second.parse().choices[0].message.content == first.parse().choices[0].message.content
    assert second.parse().model_dump() == first.parse().model_dump()
    assert upstream_calls(sim) == 1
    stats = proxy.stats()
    assert (stats["hits"], stats["misses"], stats["stored"], stats["upstream_calls"], stats["entries"]) == (1, 1, 1, 1, 1)
    entry = proxy.store.get(first.headers["x-seedreplay-key"])
    assert entry.request == {"endpoint": "/v1/chat/completions", "params": {"model": MODEL, "messages": messages(), "seed": 1}}
    assert entry.upstream == sim.url and entry.status == 200 and entry.body["object"] == "chat.completion"
    assert entry.model == first.parse().model and entry.system_fingerprint == first.parse().system_fingerprint
    assert entry.headers["content-type"].startswith("application/json")
    assert not any(name in entry.headers for name in ("authorization", "set-cookie", "date"))


async def test_async_sdk_records_and_hits(sim, proxy_factory):
    proxy = proxy_factory(sim.url)
    client = proxy.async_client()
    answers = []
    for _ in range(3):
        raw = await client.chat.completions.with_raw_response.create(model=MODEL, messages=messages("async"), seed=5)
        answers.append((raw.headers["x-seedreplay-cache"], raw.parse().choices[0].message.content))
    await client.close()
    assert [status for status, _ in answers] == ["miss", "hit", "hit"]
    assert len({text for _, text in answers}) == 1
    assert upstream_calls(sim) == 1


def test_key_header_is_the_request_key(sim, proxy_factory):
    proxy = proxy_factory(sim.url)
    reply = proxy.post(CHAT, {"model": MODEL, "messages": messages(), "seed": 3, "temperature": 1.0})
    assert reply.status == 200
    assert reply.headers["x-seedreplay-key"] == request_key(
        "/v1/chat/completions", {"model": MODEL, "messages": messages(), "seed": 3}
    )


def test_replay_serves_recordings_with_the_simulator_stopped(sim, proxy_factory, tmp_path):
    recorder = proxy_factory(sim.url, cache_dir=tmp_path / "shared")
    plain = ask(recorder.client()).parse()
    streamed = "".join(
        chunk.choices[0].delta.content or ""
        for chunk in recorder.client().chat.completions.create(model=MODEL, messages=messages("streamed"), seed=1, stream=True)
        if chunk.choices
    )
    recorder.settle()  # another proxy reads the recordings: their writes land behind the answers
    sim.stop()
    replayer = proxy_factory(sim.url, cache_dir=tmp_path / "shared", mode="replay")
    again = ask(replayer.client())
    assert again.headers["x-seedreplay-cache"] == "hit"
    assert again.parse().choices[0].message.content == plain.choices[0].message.content
    replayed = "".join(
        chunk.choices[0].delta.content or ""
        for chunk in replayer.client().chat.completions.create(model=MODEL, messages=messages("streamed"), seed=1, stream=True)
        if chunk.choices
    )
    assert replayed == streamed and replayed
    assert replayer.stats()["upstream_calls"] == 0


def test_replay_miss_names_the_key_the_closest_recording_and_the_differing_seed(sim, proxy_factory):
    proxy = proxy_factory(sim.url)
    recorded = ask(proxy.client(), seed=1)
    calls = upstream_calls(sim)
    with pytest.raises(openai.NotFoundError) as caught:
        proxy.client().chat.completions.create(
            model=MODEL, messages=messages(), seed=2, extra_headers={"X-Seedreplay-Mode": "replay"}
        )
    error = caught.value
    assert error.status_code == 404
    assert error.body["type"] == "seedreplay_miss" and error.body["code"] == "cache_miss" and error.body["param"] is None
    wanted_key = error.response.headers["x-seedreplay-key"]
    message = error.body["message"]
    assert wanted_key in message
    assert recorded.headers["x-seedreplay-key"] in message  # the closest recording, by key
    assert "seed: 1 → 2" in message
    assert error.response.headers["x-seedreplay-cache"] == "miss"
    assert upstream_calls(sim) == calls  # replay never contacts the upstream


def test_replay_miss_points_at_the_differing_message(sim, proxy_factory):
    proxy = proxy_factory(sim.url)
    proxy.post(CHAT, {"model": MODEL, "messages": [*messages("first"), {"role": "user", "content": "second"}], "seed": 1})
    reply = proxy.post(
        CHAT,
        {"model": MODEL, "messages": [*messages("first"), {"role": "user", "content": "other"}], "seed": 1},
        {"X-Seedreplay-Mode": "replay"},
    )
    assert reply.status == 404
    assert "messages[1].content" in reply.json()["error"]["message"]


def test_replay_miss_on_an_empty_store_says_nothing_is_recorded(proxy_factory):
    proxy = proxy_factory("http://127.0.0.1:9/v1", mode="replay")  # nothing listens there: never contacted
    reply = proxy.post(CHAT, {"model": MODEL, "messages": messages(), "seed": 1})
    assert reply.status == 404
    assert "nothing is recorded yet" in reply.json()["error"]["message"]
    assert proxy.stats()["upstream_calls"] == 0


def test_mode_header_overrides_the_proxy_mode(sim, proxy_factory):
    proxy = proxy_factory(sim.url)
    body = {"model": MODEL, "messages": messages(), "seed": 1}
    passthrough = proxy.post(CHAT, body, {"X-Seedreplay-Mode": "passthrough"})
    assert passthrough.status == 200 and passthrough.headers["x-seedreplay-cache"] == "bypass"
    assert len(proxy.store) == 0
    assert proxy.post(CHAT, body).headers["x-seedreplay-cache"] == "miss"
    assert proxy.post(CHAT, body, {"X-Seedreplay-Mode": "passthrough"}).headers["x-seedreplay-cache"] == "bypass"
    assert upstream_calls(sim) == 3
    assert proxy.post(CHAT, body, {"X-Seedreplay-Mode": "replay"}).headers["x-seedreplay-cache"] == "hit"
    bad = proxy.post(CHAT, body, {"X-Seedreplay-Mode": "sometimes"})
    assert bad.status == 400 and "record, replay, passthrough, refresh" in bad.json()["error"]["message"]


def test_cache_control_no_cache_refreshes_and_no_store_skips_writing(sim, proxy_factory):
    proxy = proxy_factory(sim.url)
    body = {"model": MODEL, "messages": messages(), "seed": 1}
    kept = proxy.post(CHAT, body, {"Cache-Control": "no-store"})
    assert kept.status == 200 and kept.headers["x-seedreplay-cache"] == "miss"
    assert len(proxy.store) == 0
    proxy.post(CHAT, body)
    key = proxy.post(CHAT, body).headers["x-seedreplay-key"]
    first_recorded_at = proxy.store.get(key).recorded_at
    refreshed = proxy.post(CHAT, body, {"Cache-Control": "no-cache"})
    assert refreshed.headers["x-seedreplay-cache"] == "refresh"
    assert proxy.store.get(key).recorded_at > first_recorded_at
    assert upstream_calls(sim) == 3


def test_refresh_mode_always_calls_the_upstream_and_overwrites(sim, proxy_factory):
    proxy = proxy_factory(sim.url, mode="refresh")
    body = {"model": MODEL, "messages": messages(), "seed": 1}
    statuses = [proxy.post(CHAT, body).headers["x-seedreplay-cache"] for _ in range(3)]
    assert statuses == ["refresh"] * 3
    assert upstream_calls(sim) == 3
    assert len(proxy.store) == 1 and proxy.stats()["stored"] == 3


def test_passthrough_mode_stores_nothing(sim, proxy_factory):
    proxy = proxy_factory(sim.url, mode="passthrough")
    for _ in range(2):
        assert ask(proxy.client()).headers["x-seedreplay-cache"] == "bypass"
    assert upstream_calls(sim) == 2 and len(proxy.store) == 0


def test_require_seed_refuses_unseeded_chat_and_names_the_field(sim, proxy_factory):
    proxy = proxy_factory(sim.url, require_seed=True)
    with pytest.raises(openai.BadRequestError) as caught:
        proxy.client().chat.completions.create(model=MODEL, messages=messages())
    assert caught.value.body["param"] == "seed" and "seed" in caught.value.body["message"]
    assert upstream_calls(sim) == 0
    assert ask(proxy.client(), seed=4).http_response.status_code == 200
    embedding = proxy.client().embeddings.create(model="text-embedding-3-small", input="no seed needed here")
    assert embedding.data


def test_default_seed_is_injected_keyed_and_read_per_request(sim, proxy_factory):
    proxy = proxy_factory(sim.url, default_seed=7)
    plain = {"model": MODEL, "messages": messages()}
    reply = proxy.post(CHAT, plain)
    assert reply.headers["x-seedreplay-key"] == request_key("/v1/chat/completions", {**plain, "seed": 7})
    direct = openai.OpenAI(base_url=sim.url, api_key=API_KEY, max_retries=0)
    assert reply.json()["choices"][0]["message"]["content"] == (
        direct.chat.completions.create(model=MODEL, messages=messages(), seed=7).choices[0].message.content
    )
    # A caller (the plugin, between tests) binds another store and seed: the next request sees them.
    other_store = DiskStore(proxy.cache_dir.parent / "swapped")
    proxy.proxy.bind(other_store, default_seed=8)
    swapped = proxy.post(CHAT, plain)
    assert swapped.headers["x-seedreplay-cache"] == "miss"
    assert swapped.headers["x-seedreplay-key"] == request_key("/v1/chat/completions", {**plain, "seed": 8})
    proxy.settle()  # the answer left before its write landed: wait for it before reading the store
    assert len(other_store) == 1
    other_store.close()


def test_isolate_by_auth_keeps_callers_apart_without_storing_their_keys(sim, proxy_factory):
    proxy = proxy_factory(sim.url, isolate_by_auth=True)
    body = {"model": MODEL, "messages": messages(), "seed": 1}
    alice = proxy.post(CHAT, body, {"Authorization": "Bearer sk-alice-0000000000000000000000"})
    bob = proxy.post(CHAT, body, {"Authorization": "Bearer sk-bob-11111111111111111111111111"})
    alice_again = proxy.post(CHAT, body, {"Authorization": "Bearer sk-alice-0000000000000000000000"})
    assert alice.headers["x-seedreplay-key"] != bob.headers["x-seedreplay-key"]
    assert alice.headers["x-seedreplay-key"] != request_key("/v1/chat/completions", body)
    assert (alice.headers["x-seedreplay-cache"], bob.headers["x-seedreplay-cache"]) == ("miss", "miss")
    assert alice_again.headers["x-seedreplay-cache"] == "hit"
    assert upstream_calls(sim) == 2
    # Carol replaying Alice's request misses, and learns nothing of what others recorded.
    carol = proxy.post(CHAT, body, {"Authorization": "Bearer sk-carol-2222222222222222222222", "X-Seedreplay-Mode": "replay"})
    assert carol.status == 404 and carol.json()["error"]["message"].endswith("nothing is recorded yet")
    assert len(proxy.store) == 2
    for path in proxy.cache_dir.rglob("*"):
        if path.is_file():
            content = path.read_bytes()
            assert b"sk-alice" not in content and b"sk-bob" not in content, path


def test_a_refused_store_write_still_answers_and_says_why(sim, proxy_factory):
    proxy = proxy_factory(sim.url)
    leaked = {"model": MODEL, "messages": messages(f"my key is {API_KEY}"), "seed": 1}
    reply = proxy.post(CHAT, leaked)
    assert reply.status == 200 and reply.json()["choices"]
    assert "refused to store" in reply.headers["x-seedreplay-store-error"]
    streamed = proxy.post(CHAT, {**leaked, "stream": True})
    assert streamed.status == 200 and b"[DONE]" in streamed.body
    assert "refused to store" in streamed.headers["x-seedreplay-store-error"]
    assert len(proxy.store) == 0
    stats = proxy.stats()
    assert stats["errors"] == 2 and stats["stored"] == 0


def test_stats_and_healthz(sim, proxy_factory):
    proxy = proxy_factory(sim.url)
    ask(proxy.client())
    ask(proxy.client())
    assert http(f"{proxy.url}/models", "GET").status == 200
    stats = proxy.stats()
    counted = {
        name: stats[name] for name in ("hits", "misses", "bypasses", "stored", "upstream_calls", "coalesced", "errors", "entries")
    }
    assert counted == {
        "hits": 1,
        "misses": 1,
        "bypasses": 1,
        "stored": 1,
        "upstream_calls": 2,
        "coalesced": 0,
        "errors": 0,
        "entries": 1,
    }
    assert stats["bytes"] > 0
    health = http(f"{proxy.root}/healthz", "GET").json()
    assert health == {"status": "ok", "mode": "record", "upstream": sim.url}


def test_token_guards_every_request_but_healthz(sim, proxy_factory):
    proxy = proxy_factory(sim.url, token="let-me-in")
    body = {"model": MODEL, "messages": messages(), "seed": 1}
    refused = proxy.post(CHAT, body)
    assert refused.status == 401 and "X-Seedreplay-Token" in refused.json()["error"]["message"]
    assert proxy.post(CHAT, body, {"X-Seedreplay-Token": "wrong"}).status == 401
    assert http(f"{proxy.root}/seedreplay/stats", "GET").status == 401
    assert http(f"{proxy.root}/healthz", "GET").status == 200
    assert upstream_calls(sim) == 0
    assert proxy.post(CHAT, body, {"X-Seedreplay-Token": "let-me-in"}).status == 200
    client = proxy.client(default_headers={"X-Seedreplay-Token": "let-me-in"})
    assert ask(client).headers["x-seedreplay-cache"] == "hit"


def test_make_proxy_app_rejects_unknown_modes_and_upstreams():
    from pytest_seedreplay.proxy.app import make_proxy_app

    with pytest.raises(ValueError, match="mode"):
        make_proxy_app(ProxyConfig(upstream="sim", mode="sometimes"), None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="http"):
        make_proxy_app(ProxyConfig(upstream="ftp://example/v1"), None)  # type: ignore[arg-type]


def test_a_recording_that_cannot_take_the_asked_shape_is_a_clear_error(proxy_factory):
    from pytest_seedreplay.core.entry import Entry
    from pytest_seedreplay.core.key import canonical_request

    proxy = proxy_factory("http://127.0.0.1:9/v1", mode="replay")
    body = {"model": MODEL, "messages": messages(), "seed": 1}
    key = request_key("/v1/chat/completions", body)
    proxy.store.put(
        Entry(key=key, endpoint="/v1/chat/completions", request=canonical_request("/v1/chat/completions", body), body=["odd"])
    )
    # A body that is no chat answer (only an older seedreplay recorded one) is a corrupt entry, in
    # either shape: a 503 naming it, counted, as every damaged entry is.
    for asked in ({**body, "stream": True}, body):
        reply = proxy.post(CHAT, asked)
        assert reply.status == 503
        error = reply.json()["error"]
        assert error["code"] == "store_unavailable" and key in error["message"] and "not a JSON object" in error["message"]
    assert proxy.stats()["errors"] == 2
