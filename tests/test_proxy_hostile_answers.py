"""Hostile input the request path itself must bound, and an upstream that hides an error in a 200."""

from __future__ import annotations

import json

from aiohttp import web

from pytest_seedreplay.proxy.serve import BackgroundServer

from proxy_support import CHAT, MODEL, http, messages


def test_a_body_of_millions_of_objects_is_refused_before_it_is_parsed(sim, proxy_factory):
    proxy = proxy_factory(sim.url)
    body = b'{"model": "gpt-4o-mini", "messages": [], "x": [' + b"{}," * 5_000_000 + b"{}]}"
    reply = proxy.post(CHAT, body, {"Content-Type": "application/json"})
    assert reply.status == 413 and reply.json()["error"]["code"] == "request_too_complex"
    assert http(f"{proxy.root}/healthz", "GET").status == 200  # and the proxy serves on
    assert sim.stats()["total"] == 0


def error_in_a_200_app() -> web.Application:
    async def answer(request: web.Request) -> web.Response:
        await request.read()
        return web.json_response({"error": {"message": "quota exceeded", "type": "insufficient_quota", "code": None}})

    app = web.Application()
    app.router.add_post("/v1/chat/completions", answer)
    return app


def test_a_200_whose_body_is_an_error_object_is_passed_on_and_never_stored(proxy_factory):
    with BackgroundServer(error_in_a_200_app) as upstream:
        proxy = proxy_factory(upstream.url + "/v1")
        body = {"model": MODEL, "messages": messages("error in disguise"), "seed": 1}
        first = proxy.post(CHAT, body)
        second = proxy.post(CHAT, body)
        assert first.status == 200 and json.loads(first.body)["error"]["message"] == "quota exceeded"
        assert second.headers["x-seedreplay-cache"] == "miss"  # asked again: nothing was recorded
        assert len(proxy.store) == 0
        stats = proxy.stats()
        assert stats["upstream_errors"] == 2 and stats["stored"] == 0
