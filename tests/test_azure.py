"""Azure OpenAI: the real `AzureOpenAI` / `AsyncAzureOpenAI` clients (deployment paths with
`?api-version=`, the `/openai/v1/` surface, the `api-key` header) record and replay through the proxy
and the plugin, against the simulator serving Azure's paths."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import openai
import pytest
import yaml

from pytest_seedreplay import request_key
from pytest_seedreplay.core.environ import choose_upstream
from pytest_seedreplay.core.key import canonical_request, deployment_of, normalize_endpoint
from pytest_seedreplay.core.urls import join_upstream, recorded_url
from pytest_seedreplay.store.cassette import read_cassette

from plugin_inner import answers, cassette_text, run, setup_project
from proxy_support import http, raw_request

API_VERSION = "2024-10-21"
# An Azure key is 32 hex characters: nothing like OpenAI's `sk-`, so only the header tells it is one.
AZURE_KEY = "0123456789abcdef" * 2
OTHER_KEY = "fedcba9876543210" * 2
DEPLOYMENT = "gpt-4o-mini"  # the simulator's deployments are its models
INSTRUCT = "gpt-3.5-turbo-instruct"  # a completions deployment
HELLO = [{"role": "user", "content": "Say hello"}]


def azure(proxy, **options) -> openai.AzureOpenAI:
    options.setdefault("api_key", AZURE_KEY)
    return openai.AzureOpenAI(azure_endpoint=proxy.root, api_version=API_VERSION, max_retries=0, **options)


# --- the key ------------------------------------------------------------------------------------


def test_azure_paths_normalize_to_the_openai_endpoint():
    for path in (
        "/openai/deployments/my-gpt/chat/completions?api-version=2024-10-21",
        "https://r.openai.azure.com/openai/deployments/v1/chat/completions",
        "/openai/v1/chat/completions",
        "/gateway/openai/deployments/x/chat/completions/",
    ):
        assert normalize_endpoint(path) == "/v1/chat/completions", path
    assert normalize_endpoint("/openai/responses?api-version=preview") == "/v1/responses"
    assert normalize_endpoint("/openai/deployments/e/embeddings") == "/v1/embeddings"
    assert deployment_of("/openai/deployments/my%20gpt/completions") == "my gpt"
    assert deployment_of("/openai/v1/chat/completions") is None and deployment_of("/v1/chat/completions") is None


def test_the_deployment_keys_as_the_model_and_the_api_version_does_not():
    body = {"model": "anything the body says", "messages": HELLO, "seed": 1}
    as_openai = request_key("/v1/chat/completions", {**body, "model": "my-gpt"})
    assert request_key("/openai/deployments/my-gpt/chat/completions?api-version=2024-10-21", body) == as_openai
    assert request_key("/openai/deployments/my-gpt/chat/completions?api-version=2025-04-01-preview", body) == as_openai
    assert request_key("/openai/deployments/other-gpt/chat/completions", body) != as_openai
    embedding = canonical_request("/openai/deployments/my-gpt/embeddings", {"input": "x"})
    assert embedding["params"] == {"input": "x", "model": "my-gpt"}


def test_a_deployment_is_decoded_once_alike_for_the_key_and_the_upstream(recorder, proxy_factory):
    # `%252D` is `%2D` to a server that decodes once (Azure): the key must name that deployment too,
    # never `gpt-4o-mini`, whose recordings a request for another deployment would otherwise get.
    seen, upstream = recorder
    proxy = proxy_factory(upstream.url + "/v1")
    path = f"/openai/deployments/gpt-4o%252Dmini/chat/completions?api-version={API_VERSION}"
    status, headers, _ = raw_request(proxy.root, "POST", path, json.dumps({"messages": HELLO}).encode(), {"api-key": AZURE_KEY})
    assert status == 200 and headers["x-seedreplay-cache"] == "miss"
    assert seen.seen[-1].path == path  # the upstream got the bytes as sent
    (entry,) = proxy.store.iter_entries()
    assert entry.request["params"]["model"] == "gpt-4o%2Dmini"
    plain = request_key(f"/openai/deployments/{DEPLOYMENT}/chat/completions", {"messages": HELLO})
    assert headers["x-seedreplay-key"] != plain


def test_upstream_urls_of_azure_paths_keep_the_query_and_recorded_urls_only_the_api_version():
    assert join_upstream("https://r.openai.azure.com/openai/v1", "/openai/deployments/d/chat/completions?api-version=1") == (
        "https://r.openai.azure.com/openai/deployments/d/chat/completions?api-version=1"
    )
    resource = "https://r.openai.azure.com"
    assert join_upstream(f"{resource}/openai/v1", "/v1/chat/completions") == f"{resource}/openai/v1/chat/completions"
    assert (
        join_upstream("http://127.0.0.1:9/v1", "/openai/responses?api-version=1")
        == "http://127.0.0.1:9/openai/responses?api-version=1"
    )
    assert join_upstream("https://gw.example/azure", "/openai/v1/embeddings") == "https://gw.example/azure/openai/v1/embeddings"
    assert recorded_url("https://u:p@gw.example/openai/deployments/d/completions?subscription-key=s3cret&api-version=2") == (
        "https://gw.example/openai/deployments/d/completions?api-version=2"
    )


def test_the_plugin_records_from_the_azure_endpoint_it_replaces():
    azure = {"AZURE_OPENAI_ENDPOINT": "https://r.openai.azure.com/"}
    assert choose_upstream(None, azure) == "https://r.openai.azure.com/openai/v1"
    both = {"AZURE_OPENAI_ENDPOINT": "https://r.openai.azure.com", "OPENAI_BASE_URL": "http://base/v1"}
    assert choose_upstream(None, both) == "http://base/v1"
    nested = {"AZURE_OPENAI_ENDPOINT": "http://127.0.0.1:5", "SEEDREPLAY_PLUGIN_PROXY": "http://127.0.0.1:5/v1"}
    assert choose_upstream(None, nested) == "https://api.openai.com/v1"


# --- the simulator ------------------------------------------------------------------------------


def test_the_simulator_serves_azure_paths_and_wants_their_api_version(sim):
    client = openai.AzureOpenAI(azure_endpoint=sim.root, api_version=API_VERSION, api_key=AZURE_KEY, max_retries=0)
    answer = client.chat.completions.create(model=DEPLOYMENT, messages=HELLO, seed=1)
    assert answer.model == DEPLOYMENT and answer.choices[0].message.content
    named = openai.AzureOpenAI(azure_endpoint=sim.root, azure_deployment=DEPLOYMENT, api_version=API_VERSION, api_key=AZURE_KEY)
    # The deployment is the model, whatever the body says: the same seeded answer.
    again = named.chat.completions.create(model="ignored", messages=HELLO, seed=1)
    assert again.choices[0].message.content == answer.choices[0].message.content
    assert sim.stats()["requests"]["POST /openai/deployments/{deployment}/chat/completions"] == 2

    unversioned = http(f"{sim.root}/openai/deployments/{DEPLOYMENT}/chat/completions", body={"messages": HELLO})
    assert unversioned.status == 400 and unversioned.json()["error"]["code"] == "missing_api_version"
    v1 = http(f"{sim.root}/openai/v1/chat/completions", body={"model": DEPLOYMENT, "messages": HELLO})
    assert v1.status == 200


def test_the_simulator_takes_azures_api_key_header_when_it_requires_auth(sim_factory):
    sim = sim_factory(require_auth=True)
    path = f"{sim.root}/openai/deployments/{DEPLOYMENT}/chat/completions?api-version={API_VERSION}"
    assert http(path, body={"messages": HELLO}).status == 401
    assert http(path, body={"messages": HELLO}, headers={"api-key": AZURE_KEY}).status == 200


# --- through the proxy --------------------------------------------------------------------------


def test_azure_client_records_and_replays_every_endpoint_through_the_proxy(sim, proxy_factory):
    recording = proxy_factory(sim.url)
    client = azure(recording)
    plain = client.chat.completions.with_raw_response.create(model=DEPLOYMENT, messages=HELLO, seed=1)
    poem = [{"role": "user", "content": "a poem"}]
    streamed = list(client.chat.completions.create(model=DEPLOYMENT, messages=poem, seed=2, stream=True))
    legacy = client.completions.create(model=INSTRUCT, prompt="Once upon", seed=3)
    vectors = client.embeddings.create(model="text-embedding-3-small", input=["alpha"])
    response = client.responses.create(model=DEPLOYMENT, input="Say hi")
    assert plain.headers["x-seedreplay-cache"] == "miss"
    assert "api-version=" + API_VERSION in str(plain.http_request.url)
    calls = sim.stats()["total"]

    # Replay with no upstream at all: a replay proxy over the same cache, the simulator stopped.
    sim.stop()
    replaying = proxy_factory("http://127.0.0.1:9/v1", cache_dir=recording.cache_dir, mode="replay")
    again = azure(replaying)
    hit = again.chat.completions.with_raw_response.create(model=DEPLOYMENT, messages=HELLO, seed=1)
    assert hit.headers["x-seedreplay-cache"] == "hit"
    assert hit.parse().choices[0].message.content == plain.parse().choices[0].message.content
    text = "".join(
        c.choices[0].delta.content or ""
        for c in again.chat.completions.create(model=DEPLOYMENT, messages=poem, seed=2, stream=True)
        if c.choices
    )
    assert text == "".join(c.choices[0].delta.content or "" for c in streamed if c.choices)
    assert again.completions.create(model=INSTRUCT, prompt="Once upon", seed=3).choices[0].text == legacy.choices[0].text
    assert again.embeddings.create(model="text-embedding-3-small", input=["alpha"]).data[0].embedding == vectors.data[0].embedding
    assert again.responses.create(model=DEPLOYMENT, input="Say hi").output_text == response.output_text
    # A deployment client (the deployment in its base URL, any model in the body) and the /openai/v1
    # surface ask the same requests: the same recordings answer.
    named = azure(replaying, azure_deployment=DEPLOYMENT)
    said = hit.parse().choices[0].message.content
    assert named.chat.completions.create(model="whatever", messages=HELLO, seed=1).choices[0].message.content == said
    v1 = openai.OpenAI(base_url=replaying.root + "/openai/v1", api_key=AZURE_KEY, max_retries=0)
    assert v1.chat.completions.create(model=DEPLOYMENT, messages=HELLO, seed=1).choices[0].message.content == said
    assert replaying.stats()["hits"] == 7 and calls == 5


async def test_async_azure_client_records_and_hits_through_the_proxy(sim, proxy_factory):
    proxy = proxy_factory(sim.url)
    client = openai.AsyncAzureOpenAI(azure_endpoint=proxy.root, api_version=API_VERSION, api_key=AZURE_KEY, max_retries=0)
    first = await client.chat.completions.with_raw_response.create(model=DEPLOYMENT, messages=HELLO, seed=4)
    second = await client.chat.completions.with_raw_response.create(model=DEPLOYMENT, messages=HELLO, seed=4)
    await client.close()
    assert (first.headers["x-seedreplay-cache"], second.headers["x-seedreplay-cache"]) == ("miss", "hit")
    assert first.parse().choices[0].message.content == second.parse().choices[0].message.content


def test_query_strings_reach_the_upstream_and_passed_through_azure_paths_too(sim, proxy_factory):
    proxy = proxy_factory(sim.url)
    # The simulator refuses Azure's dated API without its api-version: a 200 means the query arrived.
    path = f"{proxy.root}/openai/deployments/{DEPLOYMENT}/chat/completions"
    cached = http(f"{path}?api-version={API_VERSION}", body={"messages": HELLO}, headers={"api-key": AZURE_KEY})
    assert cached.status == 200 and cached.headers["x-seedreplay-cache"] == "miss"
    assert azure(proxy).models.list().data  # GET /openai/models?api-version=...: passed through
    lost = http(path, body={"messages": HELLO, "seed": 9}, headers={"api-key": AZURE_KEY})
    assert lost.status == 400 and lost.json()["error"]["code"] == "missing_api_version"  # the upstream's own answer
    assert proxy.stats()["stored"] == 1


def test_the_recorded_url_is_the_azure_one_with_its_api_version_only(sim, proxy_factory):
    proxy = proxy_factory(sim.url)
    path = f"/openai/deployments/{DEPLOYMENT}/chat/completions?api-version={API_VERSION}&subscription-key=s3cret-value"
    assert http(proxy.root + path, body={"messages": HELLO}, headers={"api-key": AZURE_KEY}).status == 200
    [entry] = list(proxy.store.iter_entries())
    assert entry.url == f"{sim.root}/openai/deployments/{DEPLOYMENT}/chat/completions?api-version={API_VERSION}"
    assert entry.request["params"]["model"] == DEPLOYMENT


def test_the_api_key_header_is_a_secret_never_stored_nor_logged_and_isolated_by_auth(sim, proxy_factory, caplog):
    caplog.set_level(logging.DEBUG)
    proxy = proxy_factory(sim.url, isolate_by_auth=True)
    mine = azure(proxy).chat.completions.with_raw_response.create(model=DEPLOYMENT, messages=HELLO, seed=5)
    theirs = azure(proxy, api_key=OTHER_KEY).chat.completions.with_raw_response.create(model=DEPLOYMENT, messages=HELLO, seed=5)
    again = azure(proxy).chat.completions.with_raw_response.create(model=DEPLOYMENT, messages=HELLO, seed=5)
    assert mine.headers["x-seedreplay-key"] != theirs.headers["x-seedreplay-key"]
    assert (theirs.headers["x-seedreplay-cache"], again.headers["x-seedreplay-cache"]) == ("miss", "hit")
    proxy.settle()
    stored = b"".join(p.read_bytes() for p in Path(proxy.cache_dir).rglob("*") if p.is_file())
    assert AZURE_KEY.encode() not in stored and OTHER_KEY.encode() not in stored
    assert AZURE_KEY not in caplog.text and OTHER_KEY not in caplog.text
    assert "cache=hit" in caplog.text  # the proxy did log its requests

    # A replay miss under another key neither shows nor confirms the other caller's recording.
    replaying = proxy_factory(sim.url, cache_dir=proxy.cache_dir, mode="replay", isolate_by_auth=True)
    with pytest.raises(openai.NotFoundError) as caught:
        azure(replaying, api_key="a" * 32).chat.completions.create(model=DEPLOYMENT, messages=HELLO, seed=5)
    assert "nothing is recorded yet" in str(caught.value)


# --- through the plugin -------------------------------------------------------------------------

AZURE_TESTS = """
import json

import openai

API_VERSION = "2024-10-21"


def note(name, value):
    with open("answers.jsonl", "a", encoding="utf-8") as f:
        f.write(json.dumps({"test": name, "value": value}) + "\\n")


def test_azure_from_the_environment():
    # Built as in an app: AZURE_OPENAI_ENDPOINT and the key from the environment, which the plugin set.
    client = openai.AzureOpenAI(api_version=API_VERSION, max_retries=0)
    chat = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "Hi Azure"}])
    vectors = client.embeddings.create(model="text-embedding-3-small", input="beta")
    note("sync", [chat.choices[0].message.content, vectors.data[0].embedding[:3]])


async def test_async_azure_deployment(seedreplay_proxy):
    client = openai.AsyncAzureOpenAI(azure_endpoint=seedreplay_proxy.root, azure_deployment="gpt-4o-mini",
                                     api_version=API_VERSION, max_retries=0)
    stream = await client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "Stream"}],
                                                  seed=3, stream=True)
    note("async", "".join([c.choices[0].delta.content or "" async for c in stream if c.choices]))
    await client.close()
"""


def test_the_plugin_records_azure_clients_on_the_simulator_and_replays_them_offline(pytester, monkeypatch, sim):
    for name in ("OPENAI_BASE_URL", "SEEDREPLAY_UPSTREAM", "OPENAI_API_KEY", "AZURE_OPENAI_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", AZURE_KEY)
    setup_project(pytester, test_azure_app=AZURE_TESTS)
    run(pytester, "--seedreplay=record", f"--seedreplay-upstream={sim.url}").assert_outcomes(passed=2)
    recorded = answers(pytester)
    text = cassette_text(pytester)
    assert f"/openai/deployments/gpt-4o-mini/chat/completions?api-version={API_VERSION}" in text
    assert AZURE_KEY not in text and "api-key" not in text
    cassette = pytester.path / "cassettes" / "test_azure_app" / "test_azure_from_the_environment.yaml"
    assert [e.request["params"]["model"] for e in read_cassette(cassette)] == ["gpt-4o-mini", "text-embedding-3-small"]
    uris = [i["request"]["uri"] for i in yaml.safe_load(cassette.read_text())["interactions"]]
    assert uris[0] == f"{sim.root}/openai/deployments/gpt-4o-mini/chat/completions?api-version={API_VERSION}"

    # Replay: no simulator, no key; the plugin lends AZURE_OPENAI_API_KEY and points the endpoint at its proxy.
    sim.stop()
    monkeypatch.delenv("AZURE_OPENAI_API_KEY")
    run(pytester).assert_outcomes(passed=2)
    assert answers(pytester) == recorded


OWN_ENDPOINT = """
import openai


def test_own_endpoint():
    client = openai.AzureOpenAI(azure_endpoint="https://my-resource.openai.azure.com", api_version="2024-10-21",
                                api_key="unused", max_retries=0)
    client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
"""


def test_an_azure_client_with_its_own_endpoint_is_stopped_and_told_what_to_do(pytester, monkeypatch):
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    setup_project(pytester, test_own_endpoint=OWN_ENDPOINT)
    result = run(pytester)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*seedreplay: blocked network access in replay mode:*",
            "*POST https://my-resource.openai.azure.com/openai/deployments/gpt-4o-mini/chat/completions?api-version=2024-10-21*",
            "*an Azure client: leave azure_endpoint unset, AZURE_OPENAI_ENDPOINT points there too*",
        ]
    )
