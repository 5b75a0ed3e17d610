"""Cassettes <-> entries: exact round trips, replay by plain vcrpy, import of pytest-recording cassettes."""

from __future__ import annotations

import base64
import gzip
import json
import os
from pathlib import Path

import openai
import pytest
import vcr
import yaml
from aiohttp import web

from pytest_seedreplay.core.entry import Entry, SSEEvent
from pytest_seedreplay.core.key import canonical_request, request_key
from pytest_seedreplay.core.redact import SecretRefused
from pytest_seedreplay.proxy.serve import BackgroundServer
from pytest_seedreplay.shapes import parse_sse
from pytest_seedreplay.store.cassette import (
    CassetteError,
    entry_to_interaction,
    interaction_to_entry,
    read_cassette,
    write_cassette,
)

try:  # openai 3.x talks through httpx2, 1.x/2.x through httpx; vcrpy patches whichever is there
    import httpx2 as httpx
except ImportError:  # pragma: no cover - depends on the installed openai
    import httpx

UPSTREAM = "http://127.0.0.1:9/v1"  # nothing listens on port 9: a request that escapes vcrpy fails loudly
CHAT = "/v1/chat/completions"


def chat_entry(content: str = "Say hi", answer: str = "Hi there!", seed: int = 7, **extra) -> Entry:
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": content}], "seed": seed, **extra}
    return Entry(
        key=request_key(CHAT, body),
        endpoint=CHAT,
        request=canonical_request(CHAT, body),
        headers={"content-type": "application/json", "x-request-id": "req_123"},
        body={
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 1700000000,
            "model": "gpt-4o-mini-2024-07-18",
            "system_fingerprint": "fp_abc",
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": answer}, "logprobs": None, "finish_reason": "stop"}
            ],
            "usage": {"prompt_tokens": 3, "completion_tokens": 3, "total_tokens": 6},
        },
        recorded_at=1700000000.25,
        upstream=UPSTREAM,
        model="gpt-4o-mini-2024-07-18",
        system_fingerprint="fp_abc",
    )


def chunk(delta: dict, finish: str | None = None) -> str:
    return json.dumps(
        {
            "id": "chatcmpl-2",
            "object": "chat.completion.chunk",
            "created": 1700000001,
            "model": "gpt-4o-mini",
            "system_fingerprint": "fp_s",
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }
    )


def streamed_entry() -> Entry:
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Count"}], "seed": 1, "stream": True}
    events = [
        SSEEvent(chunk({"role": "assistant", "content": ""})),
        SSEEvent(chunk({"content": "one, "})),
        SSEEvent(chunk({"content": "two"})),
        SSEEvent(chunk({}, "stop")),
        SSEEvent("[DONE]"),
    ]
    return Entry(
        key=request_key(CHAT, body),
        endpoint=CHAT,
        request=canonical_request(CHAT, body),
        headers={"content-type": "text/event-stream"},
        events=events,
        recorded_at=1700000100.0,
        upstream=UPSTREAM,
        model="gpt-4o-mini",
        system_fingerprint="fp_s",
    )


def embedding_entry() -> Entry:
    body = {"model": "text-embedding-3-small", "input": ["a", "b"]}
    path = "/v1/embeddings"
    return Entry(
        key=request_key(path, body),
        endpoint=path,
        request=canonical_request(path, body),
        headers={"content-type": "application/json"},
        body={
            "object": "list",
            "data": [
                {"object": "embedding", "index": 0, "embedding": [0.1, -0.25, 3.5e-05]},
                {"object": "embedding", "index": 1, "embedding": [1.0, 0.0, -1e-10]},
            ],
            "model": "text-embedding-3-small",
            "usage": {"prompt_tokens": 2, "total_tokens": 2},
        },
        recorded_at=1700000200.5,
        upstream=UPSTREAM,
        model="text-embedding-3-small",
    )


def test_plain_streamed_unicode_and_embedding_entries_round_trip_exactly(tmp_path: Path) -> None:
    entries = [
        chat_entry(),
        streamed_entry(),
        chat_entry("Grüß Gott — ¿qué tal? 你好 🎉", "Ça va très bien, merci ✨\nzweite Zeile"),
        embedding_entry(),
    ]
    path = tmp_path / "cassette.yaml"
    write_cassette(path, entries)
    assert read_cassette(path) == entries


def test_metadata_lives_in_the_response_and_auth_never_in_the_request(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    write_cassette(path, [chat_entry()])
    data = yaml.safe_load(path.read_text())
    interaction = data["interactions"][0]
    assert data["version"] == 1
    assert interaction["request"]["uri"] == "http://127.0.0.1:9/v1/chat/completions"
    assert interaction["request"]["method"] == "POST"
    assert interaction["request"]["headers"] == {"content-type": ["application/json"]}
    assert json.loads(interaction["request"]["body"]) == chat_entry().request["params"]
    meta = interaction["response"]["seedreplay"]
    assert meta["key"] == chat_entry().key and meta["recorded_at"] == 1700000000.25
    assert meta["system_fingerprint"] == "fp_abc" and meta["key_version"] == "v1"


def test_empty_upstream_defaults_to_the_openai_api() -> None:
    entry = chat_entry()
    entry.upstream = ""
    assert entry_to_interaction(entry)["request"]["uri"] == "https://api.openai.com/v1/chat/completions"


def test_plain_vcrpy_replays_our_cassette_with_default_matching(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    entry = chat_entry()
    write_cassette(path, [entry])
    with vcr.VCR(record_mode="none").use_cassette(str(path)) as cassette:
        response = httpx.post(f"{UPSTREAM}/chat/completions", json={"model": "anything"})
    assert response.status_code == 200
    assert response.json() == entry.body
    assert response.headers["x-request-id"] == "req_123"
    assert cassette.play_count == 1


def test_the_openai_sdk_streams_a_replayed_streamed_entry_through_plain_vcrpy(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    write_cassette(path, [streamed_entry()])
    client = openai.OpenAI(base_url=UPSTREAM, api_key="dummy", max_retries=0)
    with vcr.VCR(record_mode="none").use_cassette(str(path)):
        stream = client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "Count"}], seed=1, stream=True
        )
        pieces = [c.choices[0].delta.content for c in stream if c.choices and c.choices[0].delta.content]
    assert "".join(pieces) == "one, two"


def test_our_metadata_survives_vcrpy_rewriting_the_cassette(tmp_path: Path) -> None:
    async def answer(request: web.Request) -> web.Response:
        body = await request.json()
        return web.json_response({"object": "list", "data": [], "model": body["model"]})

    def make_app() -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/embeddings", answer)
        return app

    path = tmp_path / "c.yaml"
    old = chat_entry()
    with BackgroundServer(make_app) as server:
        old.upstream = server.url + "/v1"
        write_cassette(path, [old])
        # vcrpy loads our cassette, records one more interaction and saves the file itself.
        with vcr.VCR(record_mode="new_episodes").use_cassette(str(path)):
            httpx.post(f"{server.url}/v1/embeddings", json={"model": "text-embedding-3-small", "input": "x"})
    entries = read_cassette(path)
    assert len(yaml.safe_load(path.read_text())["interactions"]) == 2
    assert entries[0] == old
    assert entries[1].endpoint == "/v1/embeddings"
    assert entries[1].key == request_key("/v1/embeddings", {"model": "text-embedding-3-small", "input": "x"})


PYTEST_RECORDING_CASSETTE = """\
interactions:
- request:
    body: '{"messages":[{"role":"user","content":"Hello"}],"model":"gpt-4o-mini","seed":42,"temperature":1.0}'
    headers:
      accept:
      - application/json
      authorization:
      - DUMMY
      content-type:
      - application/json
      user-agent:
      - OpenAI/Python 1.52.0
    method: POST
    uri: https://api.openai.com/v1/chat/completions
  response:
    body:
      string: '{"id":"chatcmpl-9","object":"chat.completion","created":1,"model":"gpt-4o-mini-2024-07-18","system_fingerprint":"fp_x","choices":[{"index":0,"message":{"role":"assistant","content":"Hello!"},"finish_reason":"stop"}]}'
    headers:
      Content-Type:
      - application/json
      Set-Cookie:
      - __cf_bm=abc; path=/
      openai-organization:
      - DUMMY
      x-request-id:
      - req_9
    status:
      code: 200
      message: OK
- request:
    body: null
    headers:
      authorization:
      - DUMMY
    method: GET
    uri: https://api.openai.com/v1/models
  response:
    body:
      string: '{"object":"list","data":[]}'
    headers: {}
    status:
      code: 200
      message: OK
- request:
    body: '{"messages":[{"role":"user","content":"Hello"}],"model":"gpt-4o-mini","seed":43}'
    headers: {}
    method: POST
    uri: https://api.openai.com/v1/chat/completions
  response:
    body:
      string: '{"error":{"message":"Rate limit","type":"requests","param":null,"code":"rate_limit_exceeded"}}'
    headers: {}
    status:
      code: 429
      message: Too Many Requests
- request:
    body: '{"input":"cat","model":"text-embedding-3-small","encoding_format":"float"}'
    headers: {}
    method: POST
    uri: https://api.openai.com/v1/embeddings
  response:
    body:
      string: !!binary |
        GZIPPED
    headers:
      Content-Encoding:
      - gzip
      Content-Type:
      - application/json
    status:
      code: 200
      message: OK
version: 1
"""


def test_a_pytest_recording_cassette_imports_its_cacheable_answers(tmp_path: Path) -> None:
    embedding = {"object": "list", "data": [{"object": "embedding", "index": 0, "embedding": [0.5]}], "model": "m"}
    zipped = base64.encodebytes(gzip.compress(json.dumps(embedding).encode())).decode()
    text = PYTEST_RECORDING_CASSETTE.replace("        GZIPPED\n", "".join("        " + line + "\n" for line in zipped.split()))
    path = tmp_path / "test_hello.yaml"
    path.write_text(text)

    chat, emb = read_cassette(path)  # GET /v1/models and the 429 are not recordings

    sent = {"messages": [{"role": "user", "content": "Hello"}], "model": "gpt-4o-mini", "seed": 42}
    assert chat.key == request_key(CHAT, sent)
    assert chat.request == canonical_request(CHAT, sent)
    assert chat.body["choices"][0]["message"]["content"] == "Hello!"
    assert chat.headers == {"content-type": "application/json", "x-request-id": "req_9"}  # no cookies, no org
    assert chat.upstream == "https://api.openai.com/v1"
    assert chat.model == "gpt-4o-mini-2024-07-18" and chat.system_fingerprint == "fp_x"
    assert chat.recorded_at == pytest.approx(os.stat(path).st_mtime)
    assert emb.endpoint == "/v1/embeddings" and emb.body == embedding


def test_interaction_to_entry_ignores_non_openai_traffic() -> None:
    interaction = {
        "request": {"method": "POST", "uri": "https://example.com/upload", "body": "x", "headers": {}},
        "response": {"status": {"code": 200, "message": "OK"}, "headers": {}, "body": {"string": "ok"}},
    }
    assert interaction_to_entry(interaction) is None


def test_a_streamed_interaction_keeps_every_event() -> None:
    entry = streamed_entry()
    back = interaction_to_entry(entry_to_interaction(entry))
    assert back is not None and back.streamed
    assert back.events == entry.events == parse_sse(entry_to_interaction(entry)["response"]["body"]["string"].encode())


def test_a_missing_cassette_holds_no_entries(tmp_path: Path) -> None:
    assert read_cassette(tmp_path / "nope.yaml") == []


@pytest.mark.parametrize(
    "text, fault",
    [
        ("interactions: [\n  - {request: ", "not valid YAML at line"),
        ("- just\n- a list\n", "not a vcrpy cassette"),
        ("interactions:\n- request: !!int forty-two\n", "not valid YAML at line 2: !!int 'forty-two' is not a valid value"),
        ("interactions:\n- response: {}\n", "interaction 0: interaction has no 'request' mapping"),
        (
            "interactions:\n- request: {method: POST, uri: 'http://h/v1/chat/completions', body: 'nope', headers: {}}\n"
            "  response: {status: {code: 200, message: OK}, headers: {}, body: {string: '{}'}}\n",
            "interaction 0: request body is not JSON",
        ),
        (
            "interactions:\n- request: {method: POST, uri: 'http://h/v1/chat/completions', body: '{}', bogus: 1}\n"
            "  response: {status: {code: 200}, headers: {}, body: {string: '{}'}}\n",
            "request is not a vcrpy request",
        ),
    ],
)
def test_a_malformed_cassette_names_the_file_and_the_fault(tmp_path: Path, text: str, fault: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(CassetteError) as error:
        read_cassette(path)
    assert str(path) in str(error.value)
    assert fault in str(error.value)


def test_a_secret_refuses_the_write_and_leaves_the_old_cassette_untouched(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "dir" / "c.yaml"
    write_cassette(path, [chat_entry()])  # creates the parent directories
    before = path.read_bytes()
    leaky = chat_entry("my key is sk-proj-abcdefghijklmnopqrstuvwxyz0123", seed=2)

    with pytest.raises(SecretRefused) as error:
        write_cassette(path, [chat_entry(), leaky])

    assert str(path) in str(error.value)
    assert "interaction 1" in str(error.value) and "messages[0].content" in str(error.value)
    assert path.read_bytes() == before
    assert os.listdir(path.parent) == ["c.yaml"]


def test_a_write_that_fails_midway_leaves_the_old_file_and_no_temp_file(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "c.yaml"
    write_cassette(path, [chat_entry()])
    before = path.read_bytes()

    def disk_full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError):
        write_cassette(path, [chat_entry(), embedding_entry()])
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["c.yaml"]


def test_a_stream_cut_short_is_not_imported_as_an_answer() -> None:
    interaction = entry_to_interaction(streamed_entry())
    whole = interaction["response"]["body"]["string"]
    interaction["response"]["body"]["string"] = whole[: whole.index("data: [DONE]")]
    assert interaction_to_entry(interaction) is None


# --- cassettes are data -------------------------------------------------------------------------


def test_an_alias_bomb_cassette_is_refused_in_one_line_naming_the_file(tmp_path: Path) -> None:
    # 1 KB that yaml.safe_load "reads" as 9**9 references (27 s and 1 GB once walked).
    levels = ["a: &a [" + ", ".join(['"lol"'] * 9) + "]"]
    levels += [f"{c}: &{c} [{', '.join(['*' + p] * 9)}]" for p, c in zip("abcdefgh", "bcdefghi", strict=True)]
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(levels) + "\ninteractions: [*i]\n")

    with pytest.raises(CassetteError) as error:
        read_cassette(path)

    message = str(error.value)
    assert message.startswith(f"{path}: line 1: an anchor (&a) is not allowed")
    assert "re-record" in message and "\n" not in message


def test_a_cassette_with_a_python_tag_is_refused_and_runs_nothing(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    path = tmp_path / "evil.yaml"
    text = entry_yaml(chat_entry()).replace("    method: POST", f"    method: !!python/object/apply:os.system ['touch {marker}']")
    path.write_text(text)

    with pytest.raises(CassetteError) as error:
        read_cassette(path)

    assert str(path) in str(error.value) and "the tag !!python/object/apply:os.system is not allowed" in str(error.value)
    assert not marker.exists()


def entry_yaml(entry: Entry) -> str:
    return yaml.safe_dump({"interactions": [entry_to_interaction(entry)], "version": 1})


def test_a_br_encoded_answer_recorded_by_vcrpy_is_read(tmp_path: Path) -> None:
    brotli = pytest.importorskip("brotli")  # in the test extras; httpx asks for br only when it is installed
    embedding = {"object": "list", "data": [{"object": "embedding", "index": 0, "embedding": [0.25, -1.5]}], "model": "m"}

    async def answer(request: web.Request) -> web.Response:
        assert "br" in request.headers["Accept-Encoding"]
        return web.Response(
            body=brotli.compress(json.dumps(embedding).encode()),
            headers={"Content-Type": "application/json", "Content-Encoding": "br"},
        )

    def make_app() -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/embeddings", answer)
        return app

    path = tmp_path / "c.yaml"
    with BackgroundServer(make_app) as server:
        with vcr.VCR(record_mode="once").use_cassette(str(path)):
            got = httpx.post(f"{server.url}/v1/embeddings", json={"model": "m", "input": "x"}).json()
    assert got == embedding
    assert "!!binary" in path.read_text()  # vcrpy kept the compressed bytes

    (entry,) = read_cassette(path)
    assert entry.body == embedding
    assert entry.key == request_key("/v1/embeddings", {"model": "m", "input": "x"})


def test_a_br_body_that_does_not_decode_names_the_fault(tmp_path: Path) -> None:
    pytest.importorskip("brotli")
    interaction = entry_to_interaction(embedding_entry())
    interaction["response"]["headers"]["content-encoding"] = ["br"]
    interaction["response"]["body"]["string"] = b"not brotli"
    with pytest.raises(CassetteError, match="content-encoding br but does not decode"):
        interaction_to_entry(interaction)


def test_a_request_of_the_wrong_shape_is_named() -> None:
    interaction = entry_to_interaction(chat_entry())
    interaction["request"]["body"] = 5
    with pytest.raises(CassetteError, match="request body is neither text nor bytes"):
        interaction_to_entry(interaction)
    del interaction["request"]["headers"]
    with pytest.raises(CassetteError, match=r"request is not a vcrpy request \(missing headers\)"):
        interaction_to_entry(interaction)
