"""What the proxy sends to the upstream, and what it does with what comes back, when the upstream is
hostile or another tenant's recordings are near: redirects are never followed by any upstream call,
a learned tier's embeddings stay in the caller's namespace."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest
from aiohttp import web
from multidict import CIMultiDict
from yarl import URL

from pytest_seedreplay.core import redact
from pytest_seedreplay.proxy.serve import BackgroundServer
from pytest_seedreplay.proxy.upstream import Upstream

from proxy_support import API_KEY, MODEL, Recorder, messages


def test_a_learned_tiers_upstream_call_never_follows_a_redirect(recorder):
    elsewhere, redirecting = Recorder(), recorder[0]
    with BackgroundServer(elsewhere.app) as other:
        redirecting.redirect_to = f"{other.url}/v1/embeddings"

        async def ask() -> tuple[int, bytes]:
            upstream = Upstream()
            await upstream.open()
            try:
                headers = CIMultiDict({"api-key": API_KEY, "Content-Type": "application/json"})
                url = URL(f"{recorder[1].url}/v1/embeddings")
                return await upstream.ask(url, headers, b'{"model": "m", "input": ["x"]}', 10, "the upstream")
            finally:
                await upstream.close()

        status, _ = asyncio.run(ask())
    assert status == 307  # the redirect itself is the answer: the tier treats it as a failed one
    assert len(redirecting.seen) == 1 and redirecting.seen[0].headers["api-key"] == API_KEY
    assert elsewhere.seen == []  # the caller's key never went to the Location


# --- answers larger than usual ------------------------------------------------------------------


def chat_answer(text: str) -> dict:
    return {
        "id": "chatcmpl-big",
        "object": "chat.completion",
        "created": 1700000000,
        "model": MODEL,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }


def chat_chunk(delta: dict, finish: str | None = None) -> bytes:
    chunk = {
        "id": "chatcmpl-big",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": MODEL,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return b"data: " + json.dumps(chunk).encode() + b"\n\n"


def big_answer_app(text: str, piece: int) -> Callable[[], web.Application]:
    """An upstream answering every chat request with `text`: whole, or streamed in `piece`-character deltas."""

    async def answer(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        if not body.get("stream"):
            return web.json_response(chat_answer(text))
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(chat_chunk({"role": "assistant", "content": ""}))
        frames = [chat_chunk({"content": text[at : at + piece]}) for at in range(0, len(text), piece)]
        for start in range(0, len(frames), 256):  # many events per write, as a fast upstream sends them
            await response.write(b"".join(frames[start : start + 256]))
        await response.write(chat_chunk({}, "stop") + b"data: [DONE]\n\n")
        return response

    def factory() -> web.Application:
        app = web.Application(client_max_size=2**20)
        app.router.add_post("/v1/chat/completions", answer)
        return app

    return factory


def ask_chat(proxy, stream: bool, seed: int = 1) -> tuple[Any, str]:
    """(the raw SDK answer, the text the SDK read from it)."""
    client = proxy.client()
    raw = client.chat.completions.with_raw_response.create(
        model=MODEL, messages=messages("tell me everything"), seed=seed, stream=stream
    )
    if stream:
        return raw, "".join(chunk.choices[0].delta.content or "" for chunk in raw.parse() if chunk.choices)
    return raw, raw.parse().choices[0].message.content


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
def test_an_answer_over_the_bound_is_relayed_whole_and_not_recorded(proxy_factory, stream):
    text = "".join(f"w{i} " for i in range(60_000))  # ~470 KB
    with BackgroundServer(big_answer_app(text, 8192)) as upstream:
        proxy = proxy_factory(upstream.url + "/v1", max_answer=256 * 1024)
        raw, read = ask_chat(proxy, stream)
        assert read == text  # relayed as it came
        if not stream:  # a stream's head has gone before its size is known; a plain answer says why
            assert "larger than this proxy's bound of 262144 bytes" in raw.headers["x-seedreplay-store-error"]
        again, _ = ask_chat(proxy, stream)
        assert again.headers["x-seedreplay-cache"] == "miss"  # nothing was recorded
        assert len(proxy.store) == 0


@pytest.mark.parametrize(
    ("words", "piece"), [(200_000, 8192), (5_000, 4)], ids=["1.6MB-in-8KB-deltas", "40KB-in-4-character-deltas"]
)
@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
def test_a_large_answer_under_the_bound_is_recorded_and_replayed(proxy_factory, stream, words, piece):
    # Over 1 MB an answer is read and checked off the loop; a stream is assembled in linear time.
    text = "".join(f"w{i:06d} " for i in range(words))
    with BackgroundServer(big_answer_app(text, piece)) as upstream:
        proxy = proxy_factory(upstream.url + "/v1")
        first, read = ask_chat(proxy, stream)
        assert read == text and first.headers["x-seedreplay-cache"] == "miss"
        assert "x-seedreplay-store-error" not in first.headers
        proxy.settle()
        hit, again = ask_chat(proxy, False)  # plain: a recorded stream is served assembled
        assert hit.headers["x-seedreplay-cache"] == "hit" and again == text


def test_a_large_plain_answer_holding_a_secret_is_checked_off_the_loop_and_not_recorded(proxy_factory):
    text = "".join(f"w{i:06d} " for i in range(200_000)) + "AKIAIOSFODNN7EXAMPLE"  # 1.6 MB, then an AWS key
    with BackgroundServer(big_answer_app(text, 8192)) as upstream:
        proxy = proxy_factory(upstream.url + "/v1")
        raw, read = ask_chat(proxy, stream=False)
        assert read == text
        assert "refused to store" in raw.headers["x-seedreplay-store-error"]
        assert len(proxy.store) == 0


def test_a_stream_is_searched_as_it_comes_and_one_holding_a_key_is_never_stored(proxy_factory, monkeypatch):
    # The proxy searches a recorded stream's events between its chunks; the store then searches them
    # again only to name where a key it is refusing sits. A key spelled across deltas is found too.
    searched: list[int] = []
    whole = redact._find_in_events

    def counted(events, at):
        searched.append(len(events))
        return whole(events, at)

    monkeypatch.setattr(redact, "_find_in_events", counted)
    for text, stored in (("the moon is far " * 50, 1), (f"my key: {API_KEY} ok", 0)):
        with BackgroundServer(big_answer_app(text, 3)) as upstream:
            proxy = proxy_factory(upstream.url + "/v1")
            first, read = ask_chat(proxy, stream=True)
            assert read == text and first.headers["x-seedreplay-cache"] == "miss"
            proxy.settle()
            assert len(proxy.store) == stored
            assert proxy.stats()["stored"] == stored
            if stored:
                assert searched == []  # searched as it came: not again in the store thread
                again, replayed = ask_chat(proxy, stream=True)
                assert again.headers["x-seedreplay-cache"] == "hit" and replayed == text
            else:
                assert searched and proxy.stats()["errors"] == 1  # the store's refusal, naming where
                assert API_KEY.encode() not in b"".join(p.read_bytes() for p in proxy.cache_dir.rglob("*") if p.is_file())


# --- cookies ------------------------------------------------------------------------------------


def test_an_upstreams_cookie_goes_back_to_its_caller_and_never_with_another_callers_request(proxy_factory):
    # Behind a CDN an upstream sets cookies (OpenAI's answers carry Cloudflare's __cf_bm). The proxy
    # keeps none: the caller gets the Set-Cookie and sends it back if it will; no other caller's
    # request, cached or passed through, ever carries it.
    arrived: list[str | None] = []

    async def answer(request: web.Request) -> web.Response:
        await request.read()
        arrived.append(request.headers.get("Cookie"))
        body: Any = chat_answer("ok") if request.path.endswith("/chat/completions") else {"object": "list", "data": []}
        return web.json_response(body, headers={"Set-Cookie": f"__cf_bm=for-call-{len(arrived)}; Path=/; HttpOnly"})

    def app() -> web.Application:
        made = web.Application()
        made.router.add_route("*", "/{tail:.*}", answer)
        return made

    with BackgroundServer(app) as upstream:
        port = URL(upstream.url).port
        proxy = proxy_factory(f"http://localhost:{port}/v1")  # a name, not an address: a cookie jar would keep its cookies
        first = proxy.client(api_key="sk-tenant-one-aaaaaaaa").chat.completions.with_raw_response.create(
            model=MODEL, messages=messages("first caller"), seed=1
        )
        assert first.headers["set-cookie"].startswith("__cf_bm=for-call-1")
        # (Each caller below is a new client: an SDK client sends back the cookies of its own answers.)
        proxy.client(api_key="sk-tenant-two-bbbbbbbb").chat.completions.create(model=MODEL, messages=messages("second"), seed=1)
        proxy.client(api_key="sk-tenant-three-cccccccc").models.list()  # passed through
        own = proxy.client(default_headers={"Cookie": "mine=1"})
        own.chat.completions.create(model=MODEL, messages=messages("third caller"), seed=1)
    assert arrived == [None, None, None, "mine=1"]
