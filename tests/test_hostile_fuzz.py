"""A bounded fuzz of the proxy with hostile bodies, paths, encodings and secrets, on loopback.

Each property runs a fixed number of generated examples against one real proxy whose upstream
records every request that reaches it. What must hold for every input: no 500, an OpenAI-shaped
error for every refusal, nothing outside the upstream's base path, no traceback in the log, and
the proxy still answering afterwards.
"""

from __future__ import annotations

import gzip
import itertools
import json
import logging
import os
import pickle
import posixpath
import sqlite3
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote

import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_seedreplay.core.redact import shape_of
from pytest_seedreplay.proxy.app import ProxyConfig, make_proxy_app
from pytest_seedreplay.proxy.serve import BackgroundServer
from pytest_seedreplay.store import DiskStore

from proxy_support import Recorder, http, raw_request

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)
MAX_BODY = 256 * 1024


@dataclass
class Target:
    upstream: Recorder
    root: str
    cache_dir: Path


@pytest.fixture(scope="module")
def target(tmp_path_factory) -> Iterator[Target]:
    """One proxy (record mode, small --max-body) in front of a recording upstream at /base/v1."""
    upstream = Recorder()
    upstream_server = BackgroundServer(upstream.app)
    upstream_server.start()
    cache_dir = tmp_path_factory.mktemp("fuzz") / "cache"
    store = DiskStore(cache_dir)
    config = ProxyConfig(upstream=upstream_server.url.replace("http://", "http://owner:pw@") + "/base/v1", max_body=MAX_BODY)
    proxy = BackgroundServer(lambda: make_proxy_app(config, store))
    proxy.start()
    yield Target(upstream, proxy.url, cache_dir)
    proxy.stop()
    store.close()
    upstream_server.stop()


@pytest.fixture(autouse=True)
def no_tracebacks(caplog) -> Iterator[None]:
    caplog.set_level(logging.INFO)
    yield
    assert "Traceback" not in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR and r.name != "seedreplay.proxy"]


def assert_clean_answer(status: int, body: bytes) -> None:
    assert status < 500, body[:300]
    if status >= 400:
        error = json.loads(body)["error"]
        assert isinstance(error["message"], str) and error["message"]


def still_alive(target: Target) -> None:
    assert http(f"{target.root}/healthz", "GET").status == 200


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5),
    max_leaves=40,
)
hostile_bodies = st.one_of(
    st.binary(max_size=2_000),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.builds(
        lambda messages, extra: json.dumps({"model": "gpt-4o-mini", "messages": messages, **extra}).encode(),
        st.lists(st.dictionaries(st.sampled_from(["role", "content", "name"]), json_values, max_size=3), max_size=3),
        st.dictionaries(st.text(max_size=12), json_values, max_size=4),
    ),
    st.sampled_from([b"[" * 5000, b'{"a":' * 3000, b'{"model": "\\ud800"}', b"\xff\xfe{}", b'{"x": 1e999999}', b"{}" * 100_000]),
)


@FUZZ
@given(body=hostile_bodies, content_type=st.sampled_from(["application/json", "text/plain", "application/x+json", None]))
def test_hostile_bodies_never_make_a_500(target: Target, body: bytes, content_type: str | None) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    status, _, answer = raw_request(target.root, "POST", "/v1/chat/completions", body, headers)
    assert_clean_answer(status, answer)
    still_alive(target)


path_pieces = st.sampled_from(
    ["..", ".", "%2e", "%2E", "%252e", "%2f", "%5c", "\\", "/", ";", "a", "models", "%", "%25", "v1", "\uff0e"]
)
hostile_paths = st.lists(path_pieces, min_size=1, max_size=10).map(lambda parts: "/v1/" + "".join(parts))


def normalised(raw: str) -> str:
    """The path as the most lenient server would read it: decoded until stable, backslashes as slashes."""
    seen = raw
    for _ in range(6):
        decoded = unquote(seen)
        if decoded == seen:
            break
        seen = decoded
    return posixpath.normpath(seen.replace("\\", "/").replace("\uff0e", "."))


@FUZZ
@given(path=hostile_paths, method=st.sampled_from(["GET", "POST", "DELETE"]))
def test_no_path_reaches_the_upstream_outside_its_base(target: Target, path: str, method: str) -> None:
    before = len(target.upstream.seen)
    quoted = "".join(c if ord(c) < 128 else quote(c) for c in path)  # a request line is ASCII
    status, _, answer = raw_request(target.root, method, quoted, b"{}" if method == "POST" else b"")
    assert_clean_answer(status, answer)
    for arrived in target.upstream.seen[before:]:
        assert normalised(arrived.path.split("?")[0]).startswith("/base/v1"), (path, arrived.path)


encodings = st.sampled_from(
    ["gzip", "deflate", "x-gzip", "br", "zstd", "identity", "gzip, gzip", "GZIP", "", "gzip;q=1", " deflate ", "identity, br"]
)


@FUZZ
@given(
    payload=json_values.map(
        lambda v: json.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": json.dumps(v)}]})
    ),
    encoding=encodings,
    mangle=st.sampled_from(["none", "truncate", "flip", "garbage", "wrong-coding"]),
)
def test_any_content_encoding_is_decoded_or_refused_cleanly(target: Target, payload: str, encoding: str, mangle: str) -> None:
    raw = payload.encode()
    body = gzip.compress(raw, mtime=0) if "gzip" in encoding.lower() else zlib.compress(raw) if encoding == "deflate" else raw
    if mangle == "truncate":
        body = body[: max(1, len(body) // 2)]
    elif mangle == "flip" and len(body) > 12:
        body = body[:10] + bytes([body[10] ^ 0xFF]) + body[11:]
    elif mangle == "garbage":
        body = body + b"\x00garbage"
    elif mangle == "wrong-coding":
        body = raw
    status, _, answer = raw_request(
        target.root, "POST", "/v1/chat/completions", body, {"Content-Type": "application/json", "Content-Encoding": encoding}
    )
    assert_clean_answer(status, answer)
    assert status in (200, 400, 413, 415), (status, answer[:200])


@settings(max_examples=60, deadline=None, database=None)
@given(
    filler=st.text(alphabet=st.sampled_from("abcXYZ0189 -_./:=+\n\"'"), min_size=0, max_size=3000),
    repeat=st.integers(min_value=0, max_value=200),
    at=st.floats(min_value=0, max_value=1),
    key=st.sampled_from(["AKIAIOSFODNN7EXAMPLE", "ghp_" + "aB3" * 12, "-----BEGIN RSA PRIVATE KEY-----"]),
)
def test_a_planted_credential_is_found_wherever_it_lands(filler: str, repeat: int, at: float, key: str) -> None:
    # These shapes need no boundary around them, so whatever surrounds them they must be found,
    # also across the windows a long text is searched in.
    text = filler * max(repeat, 1) if filler else "x" * 70_000
    cut = int(len(text) * at)
    assert shape_of(text[:cut] + key + text[cut:]) is not None


def test_after_the_fuzz_no_credential_and_no_partial_entry_is_stored(target: Target) -> None:
    store = DiskStore(target.cache_dir)
    try:
        for entry in store.iter_entries():
            assert entry.request and (entry.body is not None or entry.events)
    finally:
        store.close()
    stored = b"".join(p.read_bytes() for p in target.cache_dir.rglob("*") if p.is_file())
    assert b"owner:pw" not in stored and b"b3duZXI6cHc" not in stored  # the upstream URL's credentials


# ---------------------------------------------------------------- rows planted in the disk store


class _Payload:
    """Unpickling this makes a directory: the proof a planted pickle ran."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


@dataclass
class Planted:
    proxy: str
    cache_dir: Path
    key: str
    good: dict
    marker: Path
    victim: Path


@pytest.fixture(scope="module")
def planted(tmp_path_factory) -> Iterator[Planted]:
    """A proxy (no memory copy: every hit reads the row; durable: the row is there once answered)
    over a store holding one recorded answer."""
    upstream = Recorder()
    upstream_server = BackgroundServer(upstream.app)
    upstream_server.start()
    root = tmp_path_factory.mktemp("planted")
    store = DiskStore(root / "cache")
    proxy = BackgroundServer(
        lambda: make_proxy_app(ProxyConfig(upstream=upstream_server.url + "/v1", memory_cache=0, durable=True), store)
    )
    proxy.start()
    status, headers, _ = raw_request(proxy.url, "POST", "/v1/chat/completions", PLANTED_REQUEST, JSON)
    assert status == 200
    key = headers["x-seedreplay-key"]
    victim = root / "victim.txt"
    victim.write_text("precious")
    with sqlite3.connect(root / "cache" / "cache.db") as db:
        row = db.execute("SELECT value FROM Cache WHERE key = ?", (key,)).fetchone()
    yield Planted(proxy.url, root / "cache", key, _unpacked(bytes(row[0])), root / "ran", victim)
    proxy.stop()
    store.close()
    upstream_server.stop()


PLANTED_REQUEST = json.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "planted"}]}).encode()
JSON = {"Content-Type": "application/json"}


def _unpacked(blob: bytes) -> dict:
    length = struct.unpack(">I", blob[:4])[0]
    head = json.loads(blob[8 : 4 + length])
    tail = blob[4 + length :]
    return {**head, **json.loads(zlib.decompress(tail[1:]) if tail[:1] == b"z" else tail[1:])}


def _packed(fields: dict) -> bytes:
    head = b"SRE\x01" + json.dumps({k: v for k, v in fields.items() if k not in ("body", "events")}).encode()
    answer = {"events": fields["events"]} if fields.get("events") is not None else {"body": fields.get("body")}
    return struct.pack(">I", len(head)) + head + b"j" + json.dumps(answer).encode()


def _plant_row(cache_dir: Path, key: str, raw: int, mode: int, filename: str | None, value: bytes | None) -> None:
    with sqlite3.connect(cache_dir / "cache.db") as db:
        db.execute("DELETE FROM Cache WHERE key = ?", (key,))
        db.execute(
            "INSERT INTO Cache (key, raw, store_time, expire_time, access_time, access_count, tag, size, mode, filename, value)"
            " VALUES (?, ?, 0, NULL, 0, 0, NULL, 0, ?, ?, ?)",
            (key, raw, mode, filename, None if value is None else sqlite3.Binary(value)),
        )


hostile_headers = st.dictionaries(
    st.sampled_from(["x-a", "x a", "x:a", "content-type", "x\r\nb", ""]),
    st.one_of(st.sampled_from(["1\r\nSet-Cookie: b", "\x00", "ok", "\x7f"]), json_values),
    max_size=3,
)
field_changes = st.fixed_dictionaries(
    {},
    optional={
        "status": st.one_of(st.integers(min_value=-10, max_value=100_000), json_values),
        "headers": st.one_of(hostile_headers, json_values),
        "request": json_values,
        "key": json_values,
        "endpoint": json_values,
        "events": json_values,
        "body": json_values,
        "recorded_at": json_values,
        "expires_at": json_values,
        "model": json_values,
    },
)


@FUZZ
@given(
    raw=st.sampled_from([0, 1]),
    mode=st.integers(min_value=0, max_value=6),
    filename=st.sampled_from([None, "ABSOLUTE", "../victim.txt", "ab/cd/" + "e" * 28 + ".val", "", "/dev/zero"]),
    value=st.sampled_from(["pickle", "entry", "garbage", None]),
    changes=field_changes,
    no_cache=st.booleans(),
)
def test_a_planted_row_is_corrupt_never_run_nor_followed(
    planted: Planted, raw: int, mode: int, filename: str | None, value: str | None, changes: dict, no_cache: bool
) -> None:
    blob = {
        "pickle": pickle.dumps(_Payload(str(planted.marker))),
        "entry": _packed({**planted.good, **changes}),
        "garbage": b"\x00\x01garbage",
        None: None,
    }[value]
    name = str(planted.victim) if filename == "ABSOLUTE" else filename
    # raw=0: a pickled key, what diskcache would unpickle on iteration
    key = planted.key if raw else pickle.dumps(_Payload(str(planted.marker)))
    _plant_row(planted.cache_dir, key, raw, mode, name, blob)
    headers = {**JSON, **({"Cache-Control": "no-cache"} if no_cache else {})}
    status, _, answer = raw_request(planted.proxy, "POST", "/v1/chat/completions", PLANTED_REQUEST, headers)
    assert status in (200, 503), answer[:300]  # served, recorded anew, or a corrupt entry
    if status == 503:
        assert json.loads(answer)["error"]["code"] == "store_unavailable"
    with DiskStore(planted.cache_dir) as store:
        list(store.iter_entries())
        list(store.iter_requests())
    assert not planted.marker.exists()
    assert planted.victim.read_text() == "precious"
    if not raw:
        with sqlite3.connect(planted.cache_dir / "cache.db") as db:
            db.execute("DELETE FROM Cache WHERE raw = 0")


# --- hostile upstream answers: sizes, shapes, redirects -----------------------------------------

ANSWER_BOUND = 64 * 1024  # the proxy's max_answer in this class: far below the default, so examples stay small


@dataclass
class Scripted:
    """An upstream answering each request with the answer set last: status, headers and body pieces."""

    status: int = 200
    headers: dict | None = None
    pieces: tuple[bytes, ...] = ()

    def app(self) -> web.Application:
        async def answer(request: web.Request) -> web.StreamResponse:
            await request.read()
            response = web.StreamResponse(status=self.status, headers=self.headers or {})
            await response.prepare(request)
            for piece in self.pieces:
                await response.write(piece)
            await response.write_eof()
            return response

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", answer)
        return app


def chat_frame(content: object, finish: object = None) -> bytes:
    chunk = {
        "id": "c",
        "object": "chat.completion.chunk",
        "model": "gpt-4o-mini",
        "choices": [{"index": 0, "delta": {"content": content}, "finish_reason": finish}],
    }
    return b"data: " + json.dumps(chunk).encode() + b"\n\n"


frames = st.one_of(
    st.text(max_size=30).map(chat_frame),
    st.integers(min_value=1, max_value=40_000).map(lambda n: chat_frame("x" * n)),  # big deltas cross the bound
    st.sampled_from(
        [
            b"data: [DONE]\n\n",
            b"data: {not json\n\n",
            b"data: " + json.dumps({"choices": [7]}).encode() + b"\n\n",
            b"data: " + json.dumps({"choices": [{"index": "one", "delta": {}}]}).encode() + b"\n\n",
            b"data: " + json.dumps({"choices": [{"index": 0, "delta": {"tool_calls": [3]}}]}).encode() + b"\n\n",
            b'data: {"error": {"message": "boom"}}\n\n',
            b": keep-alive\n\n",
            b"event: x\r\ndata: y\r\n\r\n",
            b"data: " + b"z" * 70_000,  # one event with no end yet
        ]
    ),
)
plain_bodies = st.one_of(
    st.binary(max_size=500),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.integers(min_value=0, max_value=3 * ANSWER_BOUND).map(
        lambda n: json.dumps(
            {
                "id": "c",
                "object": "chat.completion",
                "model": "gpt-4o-mini",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "y" * n}, "finish_reason": "stop"}],
            }
        ).encode()
    ),
)
answers = st.one_of(
    st.builds(
        lambda status, body, cut: Scripted(
            status, {"Content-Type": "application/json"}, (body[: len(body) // 2], body[len(body) // 2 :]) if cut else (body,)
        ),
        st.sampled_from([200, 200, 201, 400, 404, 429, 500, 503]),
        plain_bodies,
        st.booleans(),
    ),
    st.builds(lambda pieces: Scripted(200, {"Content-Type": "text/event-stream"}, tuple(pieces)), st.lists(frames, max_size=8)),
    st.builds(
        lambda status, where: Scripted(status, {"Location": where}, (b"moved",)),
        st.sampled_from([301, 302, 303, 307, 308]),
        st.sampled_from(["ELSEWHERE", "/v1/chat/completions", "http://169.254.169.254/latest"]),
    ),
)


class TestHostileUpstreamAnswers:
    """Whatever the upstream answers (any size, a broken stream, an error in a 200, a redirect), the
    client gets it or a 502, never a 500 or a traceback; no redirect is followed; nothing over the
    answer bound, nothing broken, is recorded; the proxy serves on."""

    @pytest.fixture(scope="class")
    @classmethod
    def scripted(cls, tmp_path_factory) -> Iterator[tuple[Scripted, Recorder, str, Path]]:
        upstream, elsewhere = Scripted(), Recorder()
        upstream_server, elsewhere_server = BackgroundServer(upstream.app), BackgroundServer(elsewhere.app)
        upstream_server.start()
        elsewhere_server.start()
        cache_dir = tmp_path_factory.mktemp("answers") / "cache"
        store = DiskStore(cache_dir)
        config = ProxyConfig(upstream=upstream_server.url + "/v1", max_answer=ANSWER_BOUND)
        proxy = BackgroundServer(lambda: make_proxy_app(config, store))
        proxy.start()
        upstream.elsewhere = elsewhere_server.url  # type: ignore[attr-defined]
        yield upstream, elsewhere, proxy.url, cache_dir
        proxy.stop()
        store.close()
        upstream_server.stop()
        elsewhere_server.stop()

    seeds = itertools.count()  # a new request each example: every answer is a miss, never a recording's replay

    @FUZZ
    @given(answer=answers, stream=st.booleans())
    def test_any_upstream_answer_is_passed_on_or_a_502(self, scripted, answer: Scripted, stream: bool) -> None:
        upstream, elsewhere, root, _ = scripted
        seed = next(self.seeds)
        location = (answer.headers or {}).get("Location")
        headers = dict(answer.headers or {})
        if location == "ELSEWHERE":
            headers["Location"] = upstream.elsewhere + "/v1/chat/completions"
        upstream.status, upstream.headers, upstream.pieces = answer.status, headers, answer.pieces
        body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "seed": seed, "stream": stream}
        status, _, got = raw_request(
            root, "POST", "/v1/chat/completions", json.dumps(body).encode(), {"Content-Type": "application/json"}
        )
        assert status != 500 or answer.status == 500, got[:300]  # an upstream's own 500 passes on as it came
        if status == 502:
            assert json.loads(got)["error"]["code"].startswith("upstream_")
        elif answer.status < 300 or location is not None:
            assert status == answer.status  # passed on as it came (a 3xx included: never followed)
        assert elsewhere.seen == []
        assert http(f"{root}/healthz", "GET").status == 200

    def test_after_the_fuzz_nothing_broken_or_over_the_bound_is_stored(self, scripted) -> None:
        _, _, root, cache_dir = scripted
        http(f"{root}/seedreplay/stats", "GET")  # answers once the writes under way have landed
        with DiskStore(cache_dir) as store:
            for entry in store.iter_entries():
                assert 200 <= entry.status < 300 and (entry.body is not None or entry.events)
                assert len(json.dumps(entry.body if entry.body is not None else entry.events, default=str)) <= 2 * ANSWER_BOUND
