"""Non-cacheable paths (files, fine-tuning, models...) pass through the proxy unchanged, streamed
both ways; credentials go upstream, the proxy's own headers do not."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import time

import pytest
from aiohttp import web

from pytest_seedreplay.proxy.serve import BackgroundServer

from proxy_support import API_KEY, MODEL, http

BIG = 6 * 1024 * 1024


def training_file(examples: int = 10) -> bytes:
    lines = [
        {"messages": [{"role": "user", "content": f"question {i}"}, {"role": "assistant", "content": f"answer number {i}"}]}
        for i in range(examples)
    ]
    return "".join(json.dumps(line) + "\n" for line in lines).encode()


def test_files_and_fine_tuning_work_through_the_proxy(sim_factory, proxy_factory):
    sim = sim_factory(job_seconds=0.3)
    proxy = proxy_factory(sim.url)
    client = proxy.client()
    data = training_file()
    uploaded = client.files.with_raw_response.create(file=("train.jsonl", io.BytesIO(data)), purpose="fine-tune")
    assert uploaded.headers["x-seedreplay-cache"] == "bypass"
    file = uploaded.parse()
    assert file.bytes == len(data) and file.filename == "train.jsonl"
    assert client.files.content(file.id).read() == data
    job = client.fine_tuning.jobs.create(model=MODEL, training_file=file.id, seed=42, suffix="proxied")
    deadline = time.monotonic() + 15
    while job.status not in ("succeeded", "failed") and time.monotonic() < deadline:
        time.sleep(0.05)
        job = client.fine_tuning.jobs.retrieve(job.id)
    assert job.status == "succeeded" and job.seed == 42 and job.fine_tuned_model
    events = client.fine_tuning.jobs.list_events(job.id)
    assert events.data
    assert [j.id for j in client.fine_tuning.jobs.list()] == [job.id]
    # The fine-tuned model answers through the proxy, and that answer is cached like any other.
    asked = dict(model=job.fine_tuned_model, messages=[{"role": "user", "content": "question 3"}], seed=42)
    first = client.chat.completions.create(**asked)
    second = client.chat.completions.with_raw_response.create(**asked)
    assert second.headers["x-seedreplay-cache"] == "hit"
    assert second.parse().choices[0].message.content == first.choices[0].message.content == "answer number 3"
    assert len(proxy.store) == 1  # only the chat answer: files and jobs are never stored
    assert proxy.stats()["bypasses"] >= 5


async def test_async_sdk_lists_models_through_the_proxy(sim, proxy_factory):
    proxy = proxy_factory(sim.url)
    client = proxy.async_client()
    models = await client.models.list()
    retrieved = await client.models.retrieve(MODEL)
    await client.close()
    assert MODEL in [m.id for m in models.data] and retrieved.id == MODEL


# --- an upstream that shows what it received --------------------------------------------------


def make_echo_app() -> web.Application:
    seen: list[dict] = []

    async def upload(request: web.Request) -> web.Response:
        digest, size = hashlib.sha256(), 0
        async for chunk in request.content.iter_any():
            digest.update(chunk)
            size += len(chunk)
        seen.append({"headers": dict(request.headers), "path": request.path_qs})
        return web.json_response(
            {"sha256": digest.hexdigest(), "bytes": size, "headers": dict(request.headers), "path_qs": request.raw_path}
        )

    async def download(request: web.Request) -> web.StreamResponse:
        body = bytes(range(256)) * (BIG // 256)
        if request.query.get("gzip"):
            return web.Response(
                body=gzip.compress(body), headers={"Content-Encoding": "gzip", "Content-Type": "application/octet-stream"}
            )
        response = web.StreamResponse(headers={"Content-Type": "application/octet-stream", "X-Upstream": "yes"})
        response.content_length = len(body)
        await response.prepare(request)
        for at in range(0, len(body), 65536):
            await response.write(body[at : at + 65536])
        return response

    async def teapot(request: web.Request) -> web.Response:
        return web.json_response(
            {"error": {"message": "nope", "type": "x", "param": None, "code": "teapot"}},
            status=418,
            headers={"x-should-retry": "false"},
        )

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_route("*", "/v1/files{tail:.*}", upload)
    app.router.add_get("/v1/big", download)
    app.router.add_get("/v1/teapot", teapot)
    return app


@pytest.fixture
def echo():
    with BackgroundServer(make_echo_app) as server:
        yield server


def test_large_upload_passes_through_byte_exact_beyond_max_body(echo, proxy_factory):
    proxy = proxy_factory(f"{echo.url}/v1", max_body=1024)  # --max-body is for JSON bodies only
    payload = bytes(range(256)) * (BIG // 256)
    reply = http(
        f"{proxy.url}/files?purpose=fine-tune&x=%2F",
        "POST",
        payload,
        {
            "Content-Type": "application/octet-stream",
            "Authorization": f"Bearer {API_KEY}",
            "X-Seedreplay-Token": "t",
            "X-Seedreplay-Mode": "record",
        },
    )
    assert reply.status == 200 and reply.headers["x-seedreplay-cache"] == "bypass"
    seen = reply.json()
    assert seen["bytes"] == len(payload) and seen["sha256"] == hashlib.sha256(payload).hexdigest()
    assert seen["path_qs"] == "/v1/files?purpose=fine-tune&x=%2F"
    assert seen["headers"]["Authorization"] == f"Bearer {API_KEY}"
    assert not any(name.lower().startswith("x-seedreplay") for name in seen["headers"])
    assert len(proxy.store) == 0


def test_multipart_upload_through_the_sdk_reaches_the_upstream_intact(echo, proxy_factory):
    proxy = proxy_factory(f"{echo.url}/v1")
    data = training_file(50)
    raw = proxy.client().files.with_raw_response.create(file=("train.jsonl", io.BytesIO(data)), purpose="fine-tune")
    seen = json.loads(raw.http_response.content)
    assert seen["headers"]["Content-Type"].startswith("multipart/form-data; boundary=")
    assert seen["bytes"] > len(data)


def test_download_is_relayed_with_its_length_and_encoding(echo, proxy_factory):
    proxy = proxy_factory(f"{echo.url}/v1")
    expected = bytes(range(256)) * (BIG // 256)
    plain = http(f"{proxy.url}/big", "GET")
    assert plain.status == 200 and plain.body == expected
    assert plain.headers["content-length"] == str(len(expected)) and plain.headers["x-upstream"] == "yes"
    packed = http(f"{proxy.url}/big?gzip=1", "GET", headers={"Accept-Encoding": "gzip"})
    assert packed.headers["content-encoding"] == "gzip"
    assert gzip.decompress(packed.body) == expected


def test_upstream_errors_on_other_paths_pass_through(echo, proxy_factory):
    proxy = proxy_factory(f"{echo.url}/v1")
    reply = http(f"{proxy.url}/teapot", "GET")
    assert reply.status == 418 and reply.headers["x-should-retry"] == "false"
    assert reply.json()["error"]["code"] == "teapot"
