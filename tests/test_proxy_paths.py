"""No request leaves the upstream's base path, and the upstream URL's credentials go nowhere else:
a real upstream on loopback records every request that reaches it."""

from __future__ import annotations

import base64
import json

import pytest

from pytest_seedreplay.proxy.serve import BackgroundServer

from proxy_support import CHAT, MODEL, Recorder, messages, raw_request

CLIMBING_PATHS = [
    "/v1/../../admin/secret",
    "/v1/models/../../../admin/secret",
    "/v1/%2e%2e/%2e%2e/admin/secret",
    "/v1/%2E%2e/admin",
    "/v1/..%2f..%2fadmin/secret",
    "/v1/..%5c..%5cadmin",
    "/v1/..\\..\\admin\\secret",
    "/v1/%252e%252e/%252e%252e/admin",  # decoded twice by some servers
    "/v1/models/..;/..;/admin",  # `..;` is `..` to Tomcat-style servers
    "/v1/%ef%bc%8e%ef%bc%8e/admin",  # fullwidth dots, folded to '..' by NFKC
    "/v1/./models",
    "/v1/files/..?purpose=x",
]


@pytest.mark.parametrize("path", CLIMBING_PATHS)
def test_a_path_climbing_out_of_the_base_is_refused_before_any_upstream_call(recorder, proxy_factory, path):
    upstream, server = recorder
    proxy = proxy_factory(server.url.replace("http://", "http://owner:hunter2@") + "/base/v1")
    for method in ("GET", "POST", "DELETE"):
        status, _, body = raw_request(proxy.root, method, path, b"{}" if method == "POST" else b"")
        assert status == 400, (method, path, body)
        error = json.loads(body)["error"]
        assert error["code"] == "invalid_path" and "base path" in error["message"]
    assert upstream.seen == []


def test_a_plain_path_reaches_the_base_path_with_the_url_credentials(recorder, proxy_factory):
    upstream, server = recorder
    proxy = proxy_factory(server.url.replace("http://", "http://owner:hunter2@") + "/base/v1")
    status, _, _ = raw_request(proxy.root, "GET", "/v1/models?limit=2", auth=False)
    assert status == 200
    [arrived] = upstream.seen
    assert (arrived.method, arrived.path) == ("GET", "/base/v1/models?limit=2")
    assert arrived.headers["Authorization"] == "Basic " + base64.b64encode(b"owner:hunter2").decode()


def test_an_upstream_redirect_is_not_followed_so_no_credential_goes_elsewhere(recorder, proxy_factory):
    upstream, server = recorder
    elsewhere = Recorder()
    other = BackgroundServer(elsewhere.app)
    other.start()
    try:
        upstream.redirect_to = f"{other.url}/steal"
        proxy = proxy_factory(server.url.replace("http://", "http://owner:hunter2@") + "/base/v1")
        reply = proxy.post(CHAT, {"model": MODEL, "messages": messages("hi"), "seed": 1}, {"api-key": "azure-secret-123"})
        assert reply.status == 307 and reply.headers["x-seedreplay-cache"] == "miss"
        status, _, _ = raw_request(proxy.root, "GET", "/v1/models")
        assert status == 307
        assert len(upstream.seen) == 2 and elsewhere.seen == []
        assert len(proxy.store) == 0  # a redirect is no answer to record
    finally:
        other.stop()
