"""Streaming through the proxy: live relay, SSE hits, stream <-> plain conversions with usage,
embeddings in both encodings, completions and the Responses API."""

from __future__ import annotations

import asyncio
import json
import math
import threading
import time
from collections.abc import Awaitable, Callable

import aiohttp
import openai
from aiohttp import web
from multidict import CIMultiDict

from pytest_seedreplay.proxy.answers import answer_from_flight
from pytest_seedreplay.proxy.flight import Flight, Shape
from pytest_seedreplay.proxy.serve import BackgroundServer, serving
from pytest_seedreplay.shapes import parse_sse

from proxy_support import API_KEY, CHAT, MODEL, messages, upstream_calls

EMBEDDING_MODEL = "text-embedding-3-small"


def stream_text(stream) -> tuple[str, object]:
    text, usage = "", None
    for chunk in stream:
        if chunk.choices:
            text += chunk.choices[0].delta.content or ""
        if chunk.usage is not None:
            usage = chunk.usage
    return text, usage


def _held_stream_upstream(release: threading.Event) -> BackgroundServer:
    """An upstream that streams one chunk, then holds the rest until `release` is set."""

    def chunk(delta: dict, finish: str | None = None) -> bytes:
        data = {"id": "chatcmpl-held", "object": "chat.completion.chunk", "created": 1, "model": MODEL}
        data["choices"] = [{"index": 0, "delta": delta, "finish_reason": finish}]
        return b"data: " + json.dumps(data).encode() + b"\n\n"

    async def chat(request: web.Request) -> web.StreamResponse:
        await request.read()
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(chunk({"role": "assistant", "content": "first"}))
        await asyncio.get_running_loop().run_in_executor(None, release.wait, 30)
        for delta, finish in (({"content": " and the rest"}, None), ({}, "stop")):
            await response.write(chunk(delta, finish))
        await response.write(b"data: [DONE]\n\n")
        return response

    return _serving_chat(chat)


def _serving_chat(chat: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> BackgroundServer:
    """An upstream on loopback whose chat completions `chat` answers."""

    def app() -> web.Application:
        made = web.Application()
        made.router.add_post("/v1/chat/completions", chat)
        return made

    server = BackgroundServer(app)
    server.start()
    return server


async def test_stream_is_relayed_as_it_arrives_not_buffered(proxy_factory):
    # The upstream holds its answer after the first chunk until the client has that chunk: a proxy
    # that buffered would never deliver it, and the read below would time out.
    release = threading.Event()
    upstream = _held_stream_upstream(release)
    try:
        proxy = proxy_factory(upstream.url + "/v1")
        body = {"model": MODEL, "messages": messages("pace me"), "seed": 1, "stream": True}
        received = b""
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
            async with session.post(f"{proxy.url}{CHAT}", json=body, headers={"Authorization": f"Bearer {API_KEY}"}) as answer:
                assert answer.headers["X-Seedreplay-Cache"] == "miss"
                assert answer.content_type == "text/event-stream"
                while b'"first"' not in received:
                    piece = await asyncio.wait_for(answer.content.readany(), 20)
                    assert piece, "the stream ended before its first chunk"
                    received += piece
                assert b"[DONE]" not in received  # the upstream is still holding the rest
                release.set()
                received += await answer.content.read()
        events = parse_sse(received)
        assert events[-1].data == "[DONE]"
        proxy.settle()
        (stored,) = list(proxy.store.iter_entries())  # stored once complete, whole
        assert (
            "".join(json.loads(e.data)["choices"][0]["delta"].get("content", "") for e in stored.events[:-1])
            == "first and the rest"
        )
    finally:
        release.set()
        upstream.stop()


async def test_a_streams_head_and_first_event_reach_the_client_in_one_write():
    # A client waits for one read less before its first token: the proxy sends the head with the first
    # piece when that is at hand (sent apart, the client's first read may be the head alone). Each
    # write the server makes to this connection is recorded on its transport.
    writes: list[bytes] = []
    frame = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": MODEL}
    frame["choices"] = [{"index": 0, "delta": {"content": "first"}, "finish_reason": None}]
    first = b"data: " + json.dumps(frame).encode() + b"\n\n"

    async def chat(request: web.Request) -> web.StreamResponse:
        transport = request.transport
        assert transport is not None
        plain_write = transport.write
        transport.write = lambda data: (writes.append(bytes(data)), plain_write(data))[1]  # type: ignore[method-assign]
        transport.writelines = lambda pieces: transport.write(b"".join(pieces))  # type: ignore[method-assign]
        flight = Flight("k", CHAT, Shape(stream=True))
        flight.start_stream(200, CIMultiDict({"Content-Type": "text/event-stream"}))
        for piece in (first, b"data: [DONE]\n\n"):
            flight.feed(piece, parse_sse(piece))
        flight.finish()
        return await answer_from_flight(request, flight, Shape(stream=True), {"X-Seedreplay-Cache": "miss"})

    app = web.Application()
    app.router.add_post(CHAT, chat)
    async with serving(app) as root, aiohttp.ClientSession() as session:
        async with session.post(root + CHAT, json={}) as answer:
            assert answer.status == 200 and b"[DONE]" in await answer.read()
    assert writes[0].startswith(b"HTTP/1.1 200") and first in writes[0], writes[:2]


async def test_a_streams_head_goes_out_at_once_when_its_first_event_is_slow(proxy_factory):
    # The head waits for the first piece only when that is at hand: a client must see the answer begin
    # (status, headers) while the upstream still thinks about its first event.
    release = threading.Event()

    async def chat(request: web.Request) -> web.StreamResponse:
        await request.read()
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)  # the head, alone
        await asyncio.get_running_loop().run_in_executor(None, release.wait, 30)
        frame = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": MODEL}
        frame["choices"] = [{"index": 0, "delta": {"content": "late"}, "finish_reason": "stop"}]
        await response.write(b"data: " + json.dumps(frame).encode() + b"\n\ndata: [DONE]\n\n")
        return response

    upstream = _serving_chat(chat)
    try:
        proxy = proxy_factory(upstream.url + "/v1")
        body = {"model": MODEL, "messages": messages("slow first event"), "seed": 1, "stream": True}
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
            asked = session.post(f"{proxy.url}{CHAT}", json=body, headers={"Authorization": f"Bearer {API_KEY}"})
            answer = await asyncio.wait_for(asked, 20)  # returns at the head
            assert answer.status == 200 and answer.headers["X-Seedreplay-Cache"] == "miss"
            assert not release.is_set()
            release.set()
            assert b'"late"' in await answer.read()
            answer.release()
    finally:
        release.set()
        upstream.stop()


def test_streamed_hit_is_replayed_as_sse(sim, proxy_factory):
    proxy = proxy_factory(sim.url)
    client = proxy.client()
    params = dict(model=MODEL, messages=messages("stream twice"), seed=2, stream=True)
    first, _ = stream_text(client.chat.completions.create(**params))
    raw = client.chat.completions.with_raw_response.create(**params)
    assert raw.headers["x-seedreplay-cache"] == "hit"
    assert raw.headers["content-type"].startswith("text/event-stream")
    second, _ = stream_text(raw.parse())
    assert first == second and first
    assert upstream_calls(sim) == 1


def test_a_stream_recorded_without_usage_still_gives_usage_to_later_requests(sim, proxy_factory):
    proxy = proxy_factory(sim.url)
    client = proxy.client()
    chunks = list(client.chat.completions.create(model=MODEL, messages=messages("no usage"), seed=6, stream=True))
    assert chunks and all(chunk.choices and chunk.usage is None for chunk in chunks)  # as this client asked
    plain = client.chat.completions.create(model=MODEL, messages=messages("no usage"), seed=6)
    assert plain.usage is not None and plain.usage.completion_tokens > 0
    _, usage = stream_text(
        client.chat.completions.create(
            model=MODEL, messages=messages("no usage"), seed=6, stream=True, stream_options={"include_usage": True}
        )
    )
    assert usage == plain.usage
    assert upstream_calls(sim) == 1


def test_streamed_recording_answers_a_plain_request_with_usage(sim, proxy_factory):
    proxy = proxy_factory(sim.url)
    client = proxy.client()
    text, usage = stream_text(
        client.chat.completions.create(
            model=MODEL, messages=messages("s2p"), seed=3, stream=True, stream_options={"include_usage": True}
        )
    )
    raw = client.chat.completions.with_raw_response.create(model=MODEL, messages=messages("s2p"), seed=3)
    assert raw.headers["x-seedreplay-cache"] == "hit"
    completion = raw.parse()
    assert completion.object == "chat.completion"
    assert completion.choices[0].message.content == text
    assert completion.choices[0].finish_reason == "stop" or completion.choices[0].finish_reason == "length"
    assert completion.usage == usage and usage.total_tokens > 0
    direct = openai.OpenAI(base_url=sim.url, api_key=API_KEY).chat.completions.create(
        model=MODEL, messages=messages("s2p"), seed=3
    )
    assert completion.choices[0].message.content == direct.choices[0].message.content


def test_plain_recording_answers_a_stream_request_with_and_without_usage(sim, proxy_factory):
    proxy = proxy_factory(sim.url)
    client = proxy.client()
    plain = client.chat.completions.create(model=MODEL, messages=messages("p2s"), seed=4)
    with_usage = client.chat.completions.with_raw_response.create(
        model=MODEL, messages=messages("p2s"), seed=4, stream=True, stream_options={"include_usage": True}
    )
    assert with_usage.headers["x-seedreplay-cache"] == "hit"
    text, usage = stream_text(with_usage.parse())
    assert text == plain.choices[0].message.content
    assert usage == plain.usage
    text, usage = stream_text(client.chat.completions.create(model=MODEL, messages=messages("p2s"), seed=4, stream=True))
    assert text == plain.choices[0].message.content and usage is None
    assert upstream_calls(sim) == 1


async def test_async_streaming_with_usage(sim, proxy_factory):
    proxy = proxy_factory(sim.url)
    client = proxy.async_client()
    texts = []
    for _ in range(2):
        stream = await client.chat.completions.create(
            model=MODEL, messages=messages("async stream"), seed=5, stream=True, stream_options={"include_usage": True}
        )
        text, usage = "", None
        async for chunk in stream:
            if chunk.choices:
                text += chunk.choices[0].delta.content or ""
            usage = chunk.usage or usage
        texts.append((text, usage.total_tokens))
    await client.close()
    assert texts[0] == texts[1] and texts[0][0]
    assert upstream_calls(sim) == 1


def _close(a: list[float], b: list[float]) -> bool:
    return len(a) == len(b) and all(math.isclose(x, y, rel_tol=1e-6, abs_tol=1e-7) for x, y in zip(a, b))


def test_embeddings_recorded_as_float_answer_base64_requests_and_back(sim, proxy_factory):
    proxy = proxy_factory(sim.url)
    client = proxy.client()
    as_float = client.embeddings.with_raw_response.create(model=EMBEDDING_MODEL, input="vectors", encoding_format="float")
    assert as_float.headers["x-seedreplay-cache"] == "miss"
    as_base64 = client.embeddings.with_raw_response.create(model=EMBEDDING_MODEL, input="vectors")  # SDK sends base64
    assert as_base64.headers["x-seedreplay-cache"] == "hit"
    assert _close(as_float.parse().data[0].embedding, as_base64.parse().data[0].embedding)
    wire = proxy.post("/embeddings", {"model": EMBEDDING_MODEL, "input": "vectors", "encoding_format": "base64"}).json()
    assert isinstance(wire["data"][0]["embedding"], str)

    recorded_b64 = client.embeddings.with_raw_response.create(model=EMBEDDING_MODEL, input="other vectors")
    assert recorded_b64.headers["x-seedreplay-cache"] == "miss"
    floats = proxy.post("/embeddings", {"model": EMBEDDING_MODEL, "input": "other vectors"}).json()
    assert floats["data"][0]["embedding"][:3] == [float(x) for x in floats["data"][0]["embedding"][:3]]
    assert _close(floats["data"][0]["embedding"], recorded_b64.parse().data[0].embedding)
    assert upstream_calls(sim, "POST /v1/embeddings") == 2


def test_completions_stream_and_plain_answer_each_other(sim, proxy_factory):
    proxy = proxy_factory(sim.url)
    client = proxy.client()
    streamed = "".join(
        chunk.choices[0].text
        for chunk in client.completions.create(model="gpt-3.5-turbo-instruct", prompt="Once", seed=1, stream=True)
        if chunk.choices
    )
    plain = client.completions.with_raw_response.create(model="gpt-3.5-turbo-instruct", prompt="Once", seed=1)
    assert plain.headers["x-seedreplay-cache"] == "hit"
    assert plain.parse().choices[0].text == streamed and streamed


def test_responses_api_stream_and_plain_answer_each_other(sim, proxy_factory):
    proxy = proxy_factory(sim.url)
    client = proxy.client()
    plain = client.responses.create(model=MODEL, input="tell me")
    raw = client.responses.with_raw_response.create(model=MODEL, input="tell me", stream=True)
    assert raw.headers["x-seedreplay-cache"] == "hit"
    events = list(raw.parse())
    assert events[-1].type == "response.completed"
    assert events[-1].response.output_text == plain.output_text
    streamed = list(client.responses.create(model=MODEL, input="tell me more", stream=True))
    again = client.responses.with_raw_response.create(model=MODEL, input="tell me more")
    assert again.headers["x-seedreplay-cache"] == "hit"
    assert again.parse().output_text == streamed[-1].response.output_text
    assert upstream_calls(sim, "POST /v1/responses") == 2


async def test_client_leaving_mid_stream_does_not_lose_the_recording(sim_factory, proxy_factory):
    sim = sim_factory(tokens_per_s=100)
    proxy = proxy_factory(sim.url)
    body = {"model": MODEL, "messages": messages("leave early"), "seed": 1, "stream": True, "max_tokens": 30}
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{proxy.url}{CHAT}", json=body) as answer:
            await answer.content.readany()  # one chunk, then hang up
    deadline = time.monotonic() + 10
    while len(proxy.store) == 0 and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    assert len(proxy.store) == 1
    again = proxy.post(CHAT, {**body, "stream": False})
    assert again.headers["x-seedreplay-cache"] == "hit"
