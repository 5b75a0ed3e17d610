"""Anthropic's Messages API through the proxy, with the real `anthropic` SDK (sync and async, its
streaming helpers) against the simulator and fake upstreams: recorded and replayed plain and streamed,
a stream from a plain recording and back, tool use exact, single-flight, every mode, disk and Redis,
errors passed on and never stored (in a 200 and in a stream too), Anthropic-shaped refusals of our
own, the API key kept off disk and apart under --isolate-by-auth, one proxy for OpenAI and Anthropic."""

from __future__ import annotations

import asyncio
import json
import uuid

import anthropic
import openai
import pytest
from aiohttp import web

from pytest_seedreplay import Proxy
from pytest_seedreplay.proxy.serve import BackgroundServer

from proxy_support import http

MODEL = "claude-sonnet-4-5"
KEY = "sk-ant-api03-proxyTEST0123456789abcdefABCDEFghij"
VERSION = {"anthropic-version": "2023-06-01"}
HELLO = [{"role": "user", "content": "Tell me about bread."}]
WEATHER = {
    "name": "get_weather",
    "description": "The weather in a city.",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


def client_of(proxy, **options) -> anthropic.Anthropic:
    options.setdefault("api_key", KEY)
    return anthropic.Anthropic(base_url=proxy.root, max_retries=0, **options)


def messages_calls(sim) -> int:
    return sim.stats()["requests"].get("POST /v1/messages", 0)


def create(client, messages=HELLO, **options):
    """The answer and the X-Seedreplay-Cache header it came with."""
    options.setdefault("max_tokens", 200)
    raw = client.messages.with_raw_response.create(model=MODEL, messages=messages, **options)
    return raw.parse(), raw.headers.get("x-seedreplay-cache")


@pytest.fixture
def pair(sim, proxy_factory):
    """(the simulator, a proxy whose Anthropic upstream it is)."""
    return sim, proxy_factory(sim.url, anthropic_upstream=sim.root)


def test_recorded_then_replayed_the_key_kept_off_disk(pair):
    sim, proxy = pair
    with client_of(proxy) as client:
        first, cache = create(client, system="Be brief.")
        assert cache == "miss"
        # The same request in other spellings: the system and the content as text blocks, cache markers.
        same = [
            {
                "role": "user",
                "content": [{"type": "text", "text": "Tell me about bread.", "cache_control": {"type": "ephemeral"}}],
            }
        ]
        again, cache = create(client, same, system=[{"type": "text", "text": "Be brief."}], metadata={"user_id": "u1"})
    assert cache == "hit" and again.model_dump() == first.model_dump()
    assert messages_calls(sim) == 1
    [entry] = list(proxy.store.iter_entries())
    assert entry.endpoint == "/v1/messages" and entry.request["headers"]["anthropic-version"]
    assert entry.upstream.endswith("/v1") and entry.body["content"][0]["text"] == first.content[0].text
    files = b"".join(p.read_bytes() for p in proxy.cache_dir.rglob("*") if p.is_file())
    assert KEY.encode() not in files and b"proxyTEST" not in files


def test_a_stream_from_a_plain_recording_and_a_plain_answer_from_a_streamed_one(pair):
    sim, proxy = pair
    with client_of(proxy) as client:
        plain, _ = create(client)
        with client.messages.stream(model=MODEL, max_tokens=200, messages=HELLO) as stream:
            pieces = list(stream.text_stream)
            final = stream.get_final_message()
        assert len(pieces) > 1 and "".join(pieces) == plain.content[0].text
        assert final.model_dump() == plain.model_dump()
        other = [{"role": "user", "content": "Tell me about cheese."}]
        with client.messages.stream(model=MODEL, max_tokens=200, messages=other) as stream:
            streamed = stream.get_final_message()
        replayed, cache = create(client, other)
    assert cache == "hit" and replayed.model_dump() == streamed.model_dump()
    assert messages_calls(sim) == 2
    assert [e.events is not None for e in sorted(proxy.store.iter_entries(), key=lambda e: e.body is None)] == [False, True]


def test_tool_use_round_trips_exactly_both_ways(pair):
    sim, proxy = pair
    asked = [{"role": "user", "content": "What is the weather in Paris?"}]
    with client_of(proxy) as client:
        with client.messages.stream(model=MODEL, max_tokens=200, messages=asked, tools=[WEATHER]) as stream:
            streamed = stream.get_final_message()
        plain, cache = create(client, asked, tools=[WEATHER])
        assert cache == "hit"
        assert plain.stop_reason == "tool_use" and plain.content == streamed.content
        turn = [{"role": "user", "content": "Weather in Rome, please?"}]
        recorded, _ = create(client, turn, tools=[WEATHER], tool_choice={"type": "any"})
        with client.messages.stream(
            model=MODEL, max_tokens=200, messages=turn, tools=[WEATHER], tool_choice={"type": "any"}
        ) as stream:
            again = stream.get_final_message()
    assert again.content == recorded.content and again.content[0].input == recorded.content[0].input
    assert messages_calls(sim) == 2


async def test_async_client_and_single_flight(sim_factory, proxy_factory):
    sim = sim_factory(latency_ms=500)  # the window in which the others join the first's flight
    proxy = proxy_factory(sim.url, anthropic_upstream=sim.root)
    async with anthropic.AsyncAnthropic(base_url=proxy.root, api_key=KEY, max_retries=0) as client:
        answers = await asyncio.gather(*[client.messages.create(model=MODEL, max_tokens=100, messages=HELLO) for _ in range(5)])
        async with client.messages.stream(model=MODEL, max_tokens=100, messages=HELLO) as stream:
            text = await stream.get_final_text()
    assert len({a.content[0].text for a in answers}) == 1 and text == answers[0].content[0].text
    assert messages_calls(sim) == 1
    assert proxy.stats()["coalesced"] >= 1


def test_replay_passthrough_and_refresh(pair, proxy_factory):
    sim, recording = pair
    with client_of(recording) as client:
        recorded, _ = create(client)
    recording.settle()
    replaying = proxy_factory(sim.url, cache_dir=recording.cache_dir, anthropic_upstream=sim.root, mode="replay")
    with client_of(replaying) as client:
        replayed, cache = create(client)
        assert cache == "hit" and replayed.model_dump() == recorded.model_dump()
        with pytest.raises(anthropic.NotFoundError) as missed:
            create(client, [{"role": "user", "content": "Never asked."}])
    body = missed.value.body
    assert body["type"] == "error" and body["error"]["type"] == "seedreplay_miss"
    assert 'differs in: messages[0].content: "Tell me about bread." → "Never asked."' in body["error"]["message"]
    with client_of(replaying, default_headers={"X-Seedreplay-Mode": "passthrough"}) as client:
        with pytest.raises(anthropic.PermissionDeniedError):  # a replay proxy is not widened by a header
            create(client)
    before = messages_calls(sim)
    for mode, status in (("passthrough", "bypass"), ("refresh", "refresh")):
        proxy = proxy_factory(sim.url, cache_dir=recording.cache_dir, anthropic_upstream=sim.root, mode=mode)
        with client_of(proxy) as client:
            assert create(client)[1] == status
    assert messages_calls(sim) == before + 2


def test_a_redis_store(sim, shared_redis):
    store = shared_redis.url + f"?prefix=messages{uuid.uuid4().hex[:10]}:"
    with Proxy(upstream=sim.url, anthropic_upstream=sim.root, store=store) as proxy, client_of(proxy) as client:
        first, cache = create(client)
        assert cache == "miss"
        proxy.settle(10)
        again, cache = create(client)
    assert cache == "hit" and again.content == first.content and messages_calls(sim) == 1


def test_upstream_errors_pass_through_anthropic_shaped_and_are_never_stored(pair):
    sim, proxy = pair
    with client_of(proxy) as client:
        with pytest.raises(anthropic.InternalServerError) as failed:
            create(client, extra_headers={"X-Sim-Fault": "500"})
        assert failed.value.body["type"] == "error"
        with pytest.raises(anthropic.BadRequestError) as refused:
            create(client, max_tokens=0)
    assert refused.value.body["error"]["message"] == "max_tokens: Input should be an integer of at least 1"
    assert len(list(proxy.store.iter_entries())) == 0


def test_an_overloaded_upstream_is_passed_on_as_its_529_and_never_stored(pair):
    sim, proxy = pair
    overloaded = getattr(anthropic, "OverloadedError", anthropic.InternalServerError)
    with client_of(proxy) as client:
        with pytest.raises(overloaded) as raised:
            create(client, extra_headers={"X-Sim-Fault": "503"})
        assert raised.value.status_code == 529
        assert raised.value.body["error"]["type"] == "overloaded_error"
        proxy.settle()
        assert len(proxy.store) == 0
        _, cache = create(client)  # the same request, once the upstream answers: a miss, then stored
    proxy.settle()
    assert cache == "miss" and len(proxy.store) == 1
    assert messages_calls(sim) == 2


ERROR = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}


def _faulty_upstream() -> BackgroundServer:
    """An upstream that answers an Anthropic error object inside a 200, or a stream that ends in an error event."""

    async def answer(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        if not body.get("stream"):
            return web.json_response(ERROR)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        start = {
            "type": "message_start",
            "message": {
                "id": "msg_x",
                "type": "message",
                "role": "assistant",
                "model": MODEL,
                "content": [],
                "usage": {"input_tokens": 1, "output_tokens": 1},
            },
        }
        await response.write(f"event: message_start\ndata: {json.dumps(start)}\n\n".encode())
        await response.write(f"event: error\ndata: {json.dumps(ERROR)}\n\n".encode())
        return response

    def app() -> web.Application:
        made = web.Application()
        made.router.add_post("/v1/messages", answer)
        return made

    server = BackgroundServer(app)
    server.start()
    return server


def test_an_error_inside_a_200_or_a_stream_is_passed_on_and_never_stored(proxy_factory):
    upstream = _faulty_upstream()
    try:
        proxy = proxy_factory("sim", anthropic_upstream=upstream.url)
        reply = http(
            f"{proxy.root}/v1/messages",
            body={"model": MODEL, "max_tokens": 10, "messages": HELLO},
            headers={"x-api-key": KEY, **VERSION},
        )
        assert reply.status == 200 and reply.json() == ERROR
        with client_of(proxy) as client:
            with pytest.raises(anthropic.APIStatusError, match="Overloaded"):
                with client.messages.stream(model=MODEL, max_tokens=10, messages=HELLO) as stream:
                    stream.get_final_message()
        assert len(list(proxy.store.iter_entries())) == 0
        assert proxy.stats()["stored"] == 0
    finally:
        upstream.stop()


def test_the_proxys_own_refusals_are_anthropic_shaped(pair):
    _, proxy = pair
    bad = http(
        f"{proxy.root}/v1/messages", body=b"{not json", headers={"x-api-key": KEY, "Content-Type": "application/json", **VERSION}
    )
    assert bad.status == 400
    assert bad.json()["type"] == "error" and bad.json()["error"]["type"] == "invalid_request_error"
    assert "not valid JSON" in bad.json()["error"]["message"]
    empty = http(f"{proxy.root}/v1/messages", body=b"", headers={"x-api-key": KEY, **VERSION})
    assert empty.status == 400 and empty.json()["type"] == "error"
    chat = http(f"{proxy.url}/chat/completions", body=b"{not json", headers={"Content-Type": "application/json"})
    assert chat.status == 400 and "type" not in chat.json() and chat.json()["error"]["code"] == "invalid_json"


def test_an_anthropic_key_in_a_prompt_is_never_stored(pair):
    _, proxy = pair
    leaked = [{"role": "user", "content": f"my key is {KEY}"}]
    with client_of(proxy) as client:
        raw = client.messages.with_raw_response.create(model=MODEL, max_tokens=20, messages=leaked)
    assert raw.parse().content
    assert "API-key-shaped string found at entry.request.params.messages[0].content" in raw.headers["x-seedreplay-store-error"]
    assert len(list(proxy.store.iter_entries())) == 0


def test_isolate_by_auth_splits_on_x_api_key(sim, proxy_factory):
    proxy = proxy_factory(sim.url, anthropic_upstream=sim.root, isolate_by_auth=True)
    body = {"model": MODEL, "max_tokens": 20, "messages": HELLO}

    def ask(key: str) -> str:
        reply = http(f"{proxy.root}/v1/messages", body=body, headers={"x-api-key": key, **VERSION})
        assert reply.status == 200
        return reply.headers["x-seedreplay-cache"]

    assert [ask("sk-ant-api03-teamAAAAAAAAAAAAAAAAAAAAAAAA"), ask("sk-ant-api03-teamAAAAAAAAAAAAAAAAAAAAAAAA")] == ["miss", "hit"]
    assert ask("sk-ant-api03-teamBBBBBBBBBBBBBBBBBBBBBBBB") == "miss"


def test_count_tokens_passes_through_uncached(pair):
    sim, proxy = pair
    with client_of(proxy) as client:
        counts = [client.messages.count_tokens(model=MODEL, messages=HELLO).input_tokens for _ in range(2)]
    assert counts[0] == counts[1] > 0
    assert sim.stats()["requests"]["POST /v1/messages/count_tokens"] == 2
    assert len(list(proxy.store.iter_entries())) == 0


def test_one_proxy_fronts_openai_and_anthropic_with_stats_by_endpoint(pair):
    sim, proxy = pair
    with client_of(proxy) as claude, openai.OpenAI(base_url=proxy.url, api_key="sk-test", max_retries=0) as gpt:
        for _ in range(2):
            create(claude)
            gpt.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], seed=1)
    assert messages_calls(sim) == 1 and sim.stats()["requests"]["POST /v1/chat/completions"] == 1
    by_endpoint = proxy.stats()["by_endpoint"]
    assert by_endpoint["/v1/messages"] == {"requests": 2, "miss": 1, "hit": 1}
    assert by_endpoint["/v1/chat/completions"] == {"requests": 2, "miss": 1, "hit": 1}
    metrics = http(f"{proxy.root}/metrics", "GET").body.decode()
    assert 'seedreplay_endpoint_requests_total{cache="hit",endpoint="/v1/messages"} 1.0' in metrics
    # Saved tokens count Anthropic's usage too.
    assert proxy.stats()["saved"]["input_tokens"] > 0


def test_the_same_body_under_another_api_version_or_beta_is_another_recording(pair):
    sim, proxy = pair
    with client_of(proxy) as client:
        assert [create(client)[1] for _ in range(2)] == ["miss", "hit"]  # the second from the memory copy
        assert create(client, extra_headers={"anthropic-beta": "some-feature-2025"})[1] == "miss"
        assert create(client, extra_headers={"anthropic-version": "2023-01-01"})[1] == "miss"
        assert create(client, extra_headers={"anthropic-beta": "some-feature-2025"})[1] == "hit"
    assert messages_calls(sim) == 3
