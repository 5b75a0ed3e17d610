"""Bad input gets a clear OpenAI-shaped 4xx, never a 500, and the proxy keeps serving."""

from __future__ import annotations

import http.client as httplib
import json
import socket
import urllib.parse

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from proxy_support import CHAT, MODEL, http, messages, upstream_calls

GOOD = {"model": MODEL, "messages": messages("fine"), "seed": 1}
ENDPOINTS = ["/chat/completions", "/completions", "/embeddings", "/responses"]


def assert_openai_error(reply, status):
    assert reply.status == status, reply.body
    error = reply.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["message"]
    return error


@pytest.mark.parametrize(
    "body, says",
    [
        (b"{not json", "not valid JSON"),
        (b"", "empty"),
        (b"   ", "empty"),
        (b"[1, 2]", "JSON object"),
        (b'"text"', "JSON object"),
        (b"null", "JSON object"),
        (b'{"model": NaN}', "NaN"),
        (b'{"model": "x", "temperature": Infinity}', "Infinity"),
        (b"\xff\xfe\x00garbage", "JSON"),
        (b'{"a":' * 5000 + b"1" + b"}" * 5000, "nested"),
        (b'{"model": "m"} trailing', "not valid JSON"),
    ],
)
def test_malformed_bodies_are_400(sim, proxy_factory, body, says):
    proxy = proxy_factory(sim.url)
    reply = proxy.post(CHAT, body, {"Content-Type": "application/json"})
    error = assert_openai_error(reply, 400)
    assert says in error["message"]
    assert reply.headers["x-seedreplay-cache"] == "bypass"
    assert upstream_calls(sim) == 0


def test_wrong_content_type_is_400_naming_the_fix(sim, proxy_factory):
    proxy = proxy_factory(sim.url)
    reply = proxy.post(CHAT, json.dumps(GOOD).encode(), {"Content-Type": "application/x-www-form-urlencoded"})
    assert "application/json" in assert_openai_error(reply, 400)["message"]
    assert proxy.post(CHAT, json.dumps(GOOD).encode(), {"Content-Type": "application/json; charset=utf-8"}).status == 200


def test_body_over_max_body_is_413_with_or_without_content_length(sim, proxy_factory):
    proxy = proxy_factory(sim.url, max_body=1000)
    big = {**GOOD, "messages": messages("x" * 2000)}
    error = assert_openai_error(proxy.post(CHAT, big), 413)
    assert "--max-body" in error["message"]
    # Chunked upload (no Content-Length): the limit still holds, checked as bytes arrive.
    parts = urllib.parse.urlsplit(proxy.url)
    connection = httplib.HTTPConnection(parts.hostname, parts.port, timeout=10)
    payload = json.dumps(big).encode()
    connection.request(
        "POST",
        parts.path + CHAT,
        body=iter([payload[:500], payload[500:]]),
        headers={"Content-Type": "application/json"},
        encode_chunked=True,
    )
    answer = connection.getresponse()
    assert answer.status == 413 and json.loads(answer.read())["error"]["code"] == "request_too_large"
    connection.close()
    assert proxy.post(CHAT, GOOD).status == 200
    assert upstream_calls(sim) == 1


def test_a_client_that_waits_for_100_continue_gets_it_then_its_answer(sim, proxy_factory):
    """curl sends `Expect: 100-continue` before a large body and waits for the go-ahead: the cacheable
    paths, answered without the router, must still give it."""
    proxy = proxy_factory(sim.url)
    body = json.dumps(GOOD).encode()
    parts = urllib.parse.urlsplit(proxy.url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        head = (
            f"POST {parts.path}{CHAT} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n"
        )
        sock.sendall(head.encode())
        interim = sock.recv(64)  # nothing more can come before the body is sent
        assert interim.startswith(b"HTTP/1.1 100 Continue"), interim
        sock.sendall(body)
        answer = b"".join(iter(lambda: sock.recv(65536), b""))
    assert answer.startswith(b"HTTP/1.1 200") and b"x-seedreplay-cache: miss" in answer.lower()
    assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["choices"][0]["message"]["content"]


@pytest.mark.parametrize("path", ["/chat/completions/", "/chat//completions", "/Chat/Completions", "/chat%2Fcompletions"])
def test_a_path_near_a_cacheable_one_is_not_taken_for_it(sim, proxy_factory, path):
    """Only a cacheable endpoint's exact path is served from the cache; a near one is passed through."""
    proxy = proxy_factory(sim.url)
    reply = http(proxy.url + path, "POST", GOOD)
    assert reply.headers["x-seedreplay-cache"] == "bypass" and reply.status == 404
    assert len(proxy.store) == 0


def test_invalid_embedding_encoding_is_400(sim, proxy_factory):
    proxy = proxy_factory(sim.url, mode="replay")
    reply = proxy.post("/embeddings", {"model": "text-embedding-3-small", "input": "x", "encoding_format": "int8"})
    assert assert_openai_error(reply, 400)["param"] == "encoding_format"


def test_unknown_paths_are_openai_shaped_404s(sim, proxy_factory):
    proxy = proxy_factory(sim.url)
    error = assert_openai_error(http(f"{proxy.root}/chat/completions", "POST", GOOD), 404)
    assert "/v1" in error["message"]
    assert assert_openai_error(http(f"{proxy.root}/healthz", "POST", GOOD), 405)["code"] == "method_not_allowed"


def test_replay_mode_refuses_non_cacheable_paths_without_calling_the_upstream(sim, proxy_factory):
    proxy = proxy_factory(sim.url, mode="replay")
    error = assert_openai_error(http(f"{proxy.url}/models", "GET"), 404)
    assert error["code"] == "not_replayable" and "GET /v1/models cannot be replayed" in error["message"]
    assert sim.stats()["total"] == 0
    # A replay proxy's mode is a ceiling: a request may not widen it to reach the upstream...
    widened = assert_openai_error(http(f"{proxy.url}/models", "GET", headers={"X-Seedreplay-Mode": "passthrough"}), 403)
    assert widened["code"] == "mode_not_allowed" and "--allow-mode-override" in widened["message"]
    assert sim.stats()["total"] == 0
    # ...unless its owner lets clients choose.
    open_proxy = proxy_factory(sim.url, mode="replay", allow_mode_override=True)
    allowed = http(f"{open_proxy.url}/models", "GET", headers={"X-Seedreplay-Mode": "passthrough"})
    assert allowed.status == 200 and allowed.json()["data"]


# --- fuzzing ------------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=8,
)
request_bodies = st.one_of(
    st.binary(max_size=300),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.dictionaries(
        st.sampled_from(
            ["model", "messages", "seed", "stream", "stream_options", "input", "prompt", "encoding_format", "n", "x"]
        ),
        json_values,
        max_size=6,
    ).map(lambda v: json.dumps(v).encode()),
)
headers = st.fixed_dictionaries(
    {},
    optional={
        "Content-Type": st.sampled_from(
            ["application/json", "text/plain", "application/json; charset=latin-1", "multipart/form-data", ""]
        ),
        "X-Seedreplay-Mode": st.sampled_from(["replay", "REPLAY", "bogus", ""]),
        "Cache-Control": st.sampled_from(["no-store", "no-cache", "max-age=0, no-store", ",,"]),
    },
)


@pytest.mark.slow
def test_fuzzed_requests_get_4xx_never_5xx_and_the_proxy_keeps_serving(sim, proxy_factory):
    # Replay mode: every answer is the proxy's own (the upstream is never asked), so any 5xx is ours.
    proxy = proxy_factory(sim.url, mode="replay", max_body=2000, allow_mode_override=True)
    proxy.post(CHAT, GOOD, {"X-Seedreplay-Mode": "record"})
    parts = urllib.parse.urlsplit(proxy.url)
    connection = httplib.HTTPConnection(parts.hostname, parts.port, timeout=10)
    seen: set[int] = set()

    @settings(max_examples=2000, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(endpoint=st.sampled_from(ENDPOINTS), body=request_bodies, sent_headers=headers)
    def one(endpoint, body, sent_headers):
        nonlocal connection
        try:
            connection.request("POST", parts.path + endpoint, body=body, headers=sent_headers)
            answer = connection.getresponse()
            payload = answer.read()
        except (ConnectionError, httplib.HTTPException):
            # The proxy may close a connection after refusing a body it did not read; reconnect.
            connection.close()
            connection = httplib.HTTPConnection(parts.hostname, parts.port, timeout=10)
            connection.request("POST", parts.path + endpoint, body=body, headers=sent_headers)
            answer = connection.getresponse()
            payload = answer.read()
        seen.add(answer.status)
        assert 400 <= answer.status < 500, (answer.status, body[:200], payload[:300])
        error = json.loads(payload)["error"]
        assert set(error) == {"message", "type", "param", "code"}

    one()
    connection.close()
    assert {400, 404} <= seen
    assert proxy.post(CHAT, GOOD).headers["x-seedreplay-cache"] == "hit"
    assert http(f"{proxy.root}/healthz", "GET").status == 200
    assert upstream_calls(sim) == 1
    assert proxy.stats()["errors"] == 0
