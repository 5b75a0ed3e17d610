"""Compressed request bodies and malformed HTTP: a clear 4xx, never a 500, and one log line."""

from __future__ import annotations

import gzip
import json
import logging
import socket
import zlib

import pytest

from proxy_support import API_KEY, CHAT, MODEL, messages, raw_request

BODY = json.dumps({"model": MODEL, "messages": messages("hello"), "seed": 3}).encode()


def post(proxy, body: bytes, encoding: str | None):
    headers = {"Content-Type": "application/json"} | ({"Content-Encoding": encoding} if encoding else {})
    return raw_request(proxy.root, "POST", "/v1/chat/completions", body, headers)


@pytest.mark.parametrize(
    "encoding, body",
    [
        ("gzip", BODY),  # says gzip, is not
        ("gzip", gzip.compress(BODY, mtime=0)[:-12]),  # cut short
        ("deflate", b"\x78\x9c not deflate at all"),
        ("gzip", gzip.compress(BODY, mtime=0) + b"trailing junk"),
    ],
)
def test_a_body_that_is_not_what_its_encoding_says_is_a_400(sim, proxy_factory, encoding, body, caplog):
    proxy = proxy_factory(sim.url)
    status, _, answer = post(proxy, body, encoding)
    assert status == 400, answer
    assert json.loads(answer)["error"]["code"] == "invalid_content_encoding"
    assert proxy.stats()["errors"] == 0 and "Traceback" not in caplog.text


@pytest.mark.parametrize("encoding", ["br", "zstd", "compress", "made-up"])
def test_an_encoding_the_proxy_does_not_decode_is_a_415_naming_it(sim, proxy_factory, encoding):
    proxy = proxy_factory(sim.url)
    status, _, answer = post(proxy, BODY, encoding)
    assert status == 415
    error = json.loads(answer)["error"]
    assert error["code"] == "unsupported_content_encoding" and repr(encoding) in error["message"]


@pytest.mark.parametrize(
    "encoding, body",
    [
        ("gzip", gzip.compress(BODY, mtime=0)),
        ("x-gzip", gzip.compress(BODY, mtime=0)),
        ("deflate", zlib.compress(BODY)),
        ("deflate", zlib.compress(BODY)[2:-4]),  # raw deflate, as some clients send it
        ("identity", BODY),
        ("gzip, identity", gzip.compress(BODY, mtime=0)),
    ],
)
def test_a_compressed_request_is_decoded_keyed_and_answered(sim, proxy_factory, encoding, body):
    proxy = proxy_factory(sim.url)
    status, headers, answer = post(proxy, body, encoding)
    assert status == 200, answer
    assert json.loads(answer)["choices"][0]["message"]["content"]
    plain = proxy.post(CHAT, json.loads(BODY))  # the same request uncompressed: the same key, a hit
    assert plain.headers["x-seedreplay-cache"] == "hit" and plain.headers["x-seedreplay-key"] == headers["x-seedreplay-key"]


def test_a_compression_bomb_stops_at_the_size_limit(sim, proxy_factory):
    proxy = proxy_factory(sim.url, max_body=1024 * 1024)
    bomb = gzip.compress(b'{"model": "' + b"0" * (64 * 1024 * 1024) + b'"}')
    assert len(bomb) < 1024 * 1024
    status, _, answer = post(proxy, bomb, "gzip")
    assert status == 413 and json.loads(answer)["error"]["code"] == "request_too_large"


def test_a_cacheable_call_sends_the_decoded_body_without_the_client_encoding(recorder, proxy_factory):
    upstream, server = recorder
    proxy = proxy_factory(server.url + "/v1")
    status, _, _ = post(proxy, gzip.compress(BODY, mtime=0), "gzip")
    assert status == 200
    [arrived] = upstream.seen
    assert json.loads(arrived.body) == json.loads(BODY) and "Content-Encoding" not in arrived.headers


def test_the_pass_through_forwards_compressed_bytes_unchanged(recorder, proxy_factory):
    upstream, server = recorder
    proxy = proxy_factory(server.url + "/v1")
    upload = gzip.compress(b'{"input_file_id": "file-1", "endpoint": "/v1/chat/completions"}')
    headers = {"Content-Encoding": "gzip", "Content-Type": "application/json"}
    status, _, _ = raw_request(proxy.root, "POST", "/v1/batches", upload, headers)
    assert status == 200
    [arrived] = upstream.seen
    assert arrived.body == upload and arrived.headers["Content-Encoding"] == "gzip"


def test_the_simulator_decodes_gzip_and_refuses_a_body_that_is_not(sim):
    compressed = gzip.compress(BODY, mtime=0)
    status, _, answer = raw_request(sim.root, "POST", "/v1/chat/completions", compressed, {"Content-Encoding": "gzip"})
    assert status == 200 and json.loads(answer)["choices"]
    status, _, answer = raw_request(sim.root, "POST", "/v1/chat/completions", BODY, {"Content-Encoding": "gzip"})
    assert status == 400 and json.loads(answer)["error"]["code"] == "invalid_content_encoding"


MALFORMED = [
    b"GET /healthz HTTP/1.1\r\nHost x\r\n\r\n",  # header without a colon
    b"GET /healthz HTTP/1.1\r\nX-Long: " + b"a" * 70_000 + b"\r\n\r\n",  # header line too long
    b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
    b"GARBAGE\x00\x01 / HTTP/9\r\n\r\n",  # not HTTP at all (aiohttp says this one at debug level)
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",  # a TLS hello on the plain port
]


def send_raw(root: str, data: bytes) -> bytes:
    host, port = root.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(data)
        answer = b""  # the server answers 400 and closes the connection
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


@pytest.mark.parametrize("data", MALFORMED, ids=["no-colon", "long-header", "bad-chunk", "not-http", "tls"])
def test_a_malformed_raw_request_is_a_400_and_one_warning_line(sim, proxy_factory, caplog, data):
    proxy = proxy_factory(sim.url)
    caplog.set_level(logging.DEBUG, logger="aiohttp.server")
    answer = send_raw(proxy.root, data)
    head, body = answer.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.") and b" 400 " in head.split(b"\r\n", 1)[0]
    assert b"content-type: application/json" in head.lower()  # OpenAI's error object, as SDKs read it
    error = json.loads(body)["error"]
    assert error["code"] == "malformed_request" and error["type"] == "invalid_request_error" and error["message"]
    proxy.stop()  # the server has finished with the connection: all its log lines are in
    said = [r for r in caplog.records if r.name == "aiohttp.server"]
    assert len(said) == 1, [r.getMessage() for r in said]
    [record] = said
    assert record.levelno == logging.WARNING and record.exc_info is None
    assert "\n" not in record.getMessage() and "Traceback" not in caplog.text


def test_a_bad_body_leaves_no_traceback_in_the_log(sim, proxy_factory, caplog):
    proxy = proxy_factory(sim.url)
    caplog.set_level(logging.DEBUG)
    status, _, _ = post(proxy, BODY, "gzip")
    assert status == 400
    proxy.stop()
    assert "Traceback" not in caplog.text and not [r for r in caplog.records if r.levelno >= logging.ERROR]


KEY_IN_A_BAD_LINE = [
    b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\x01\r\n\r\n",  # a bad byte in the value
    b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization Bearer %s\r\n\r\n",  # no colon
    b"GET /%s HTTP/1.1 x\r\n\r\n",  # a bad request line
]


@pytest.mark.parametrize("template", KEY_IN_A_BAD_LINE, ids=["bad-value", "no-colon", "request-line"])
def test_a_key_in_a_line_the_parser_refuses_reaches_neither_the_answer_nor_the_log(sim, proxy_factory, caplog, template):
    # aiohttp quotes the line it could not parse in its error; a credential in that line stays out.
    proxy = proxy_factory(sim.url)
    caplog.set_level(logging.DEBUG)
    answer = send_raw(proxy.root, template % API_KEY.encode())
    proxy.stop()
    assert b" 400 " in answer.split(b"\r\n", 1)[0]
    assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["error"]["code"] == "malformed_request"
    assert API_KEY.encode() not in answer
    assert API_KEY not in caplog.text and API_KEY[:20] not in caplog.text
    assert [r for r in caplog.records if r.name == "aiohttp.server"]  # it was said, without the key


def test_the_simulator_answers_a_malformed_request_with_an_openai_error_too(sim):
    answer = send_raw(sim.root, MALFORMED[2])
    assert b" 400 " in answer.split(b"\r\n", 1)[0]
    assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["error"]["code"] == "malformed_request"
