"""The simulator's chat completions, driven by the real openai SDK (sync and async)."""

from __future__ import annotations

import json
import urllib.request

import openai
import pytest

from proxy.sim import SimConfig, running_sim
from proxy.sim.model import count_tokens, pieces

MESSAGES = [{"role": "user", "content": "How do I bake good bread at home?"}]


@pytest.fixture
def client(sim):
    return openai.OpenAI(base_url=sim.url, api_key="sk-test", max_retries=0)


def ask(client, **params):
    params.setdefault("model", "gpt-4o-mini")
    params.setdefault("messages", MESSAGES)
    return client.chat.completions.create(**params)


def test_same_seed_gives_same_text_and_other_seed_differs(client):
    first = ask(client, seed=7)
    again = ask(client, seed=7)
    other = ask(client, seed=8)
    assert first.choices[0].message.content == again.choices[0].message.content
    assert first.choices[0].message.content != other.choices[0].message.content
    assert first.choices[0].finish_reason == "stop"
    assert first.object == "chat.completion" and first.id.startswith("chatcmpl-")


def test_no_seed_varies_between_calls(client):
    texts = {ask(client).choices[0].message.content for _ in range(4)}
    assert len(texts) > 1


def test_temperature_zero_is_deterministic_without_seed(client):
    texts = {ask(client, temperature=0).choices[0].message.content for _ in range(3)}
    assert len(texts) == 1


def test_other_parameters_change_the_seeded_text(client):
    base = ask(client, seed=1).choices[0].message.content
    assert ask(client, seed=1, temperature=0.5).choices[0].message.content != base
    assert ask(client, seed=1, model="gpt-4o").choices[0].message.content != base


def test_usage_counts_match_the_text(client):
    answer = ask(client, seed=3)
    usage = answer.usage
    assert usage.completion_tokens == count_tokens(answer.choices[0].message.content)
    assert usage.prompt_tokens == 3 + 3 + count_tokens(MESSAGES[0]["content"])
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


def test_max_tokens_cuts_with_finish_reason_length(client):
    full = ask(client, seed=5).choices[0].message.content
    for param in ("max_tokens", "max_completion_tokens"):
        short = ask(client, seed=5, **{param: 4})
        assert short.choices[0].finish_reason == "length"
        assert short.usage.completion_tokens == 4
        assert short.choices[0].message.content == "".join(pieces(full)[:4])


def test_stop_sequence_ends_the_text_before_it(client):
    full = ask(client, seed=5).choices[0].message.content
    word = pieces(full)[2].strip()
    answer = ask(client, seed=5, stop=[word])
    assert answer.choices[0].message.content == full[: full.find(word)]
    assert answer.choices[0].finish_reason == "stop"


def test_n_returns_distinct_choices(client):
    answer = ask(client, seed=9, n=3)
    assert [c.index for c in answer.choices] == [0, 1, 2]
    assert len({c.message.content for c in answer.choices}) == 3
    assert answer.choices[0].message.content == ask(client, seed=9).choices[0].message.content


def test_fingerprint_is_per_model_and_changed_by_drift(sim_factory):
    plain = openai.OpenAI(base_url=sim_factory().url, api_key="sk-test", max_retries=0)
    drifted = openai.OpenAI(base_url=sim_factory(drift="2026-11").url, api_key="sk-test", max_retries=0)
    a, b = ask(plain, seed=1), ask(plain, seed=1, model="gpt-4o")
    assert a.system_fingerprint.startswith("fp_") and a.system_fingerprint != b.system_fingerprint
    d = ask(drifted, seed=1)
    assert d.system_fingerprint != a.system_fingerprint
    assert d.choices[0].message.content != a.choices[0].message.content


def test_stream_carries_role_deltas_finish_usage_and_same_text(client):
    plain = ask(client, seed=11)
    chunks = list(ask(client, seed=11, stream=True, stream_options={"include_usage": True}))
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == plain.choices[0].message.content
    finish = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    assert len(finish) == 1 and finish[0].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens == plain.usage.total_tokens
    assert all(c.object == "chat.completion.chunk" and c.system_fingerprint == plain.system_fingerprint for c in chunks)


def test_raw_stream_ends_with_done(sim):
    request = urllib.request.Request(
        f"{sim.url}/chat/completions",
        data=json.dumps({"model": "gpt-4o-mini", "messages": MESSAGES, "stream": True, "seed": 1}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert answer.headers["Content-Type"].startswith("text/event-stream")
        frames = [f for f in answer.read().decode().split("\n\n") if f]
    assert frames[-1] == "data: [DONE]"
    assert all(f.startswith("data: ") for f in frames)


async def test_async_client_and_running_sim_agree_with_each_other():
    async with running_sim(SimConfig()) as url:
        assert url.endswith("/v1")
        client = openai.AsyncOpenAI(base_url=url, api_key="sk-test", max_retries=0)
        plain = await client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, seed=21)
        stream = await client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, seed=21, stream=True)
        text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
        await client.close()
    assert text == plain.choices[0].message.content


def test_models_list_and_retrieve(client):
    ids = {m.id for m in client.models.list()}
    assert {"gpt-4o-mini", "text-embedding-3-small"} <= ids
    assert client.models.retrieve("gpt-4o").id == "gpt-4o"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("no-such-model")


def test_stats_count_requests_per_route(sim, client):
    ask(client, seed=1)
    ask(client, seed=2)
    client.models.list()
    stats = sim.stats()
    assert stats["requests"] == {"POST /v1/chat/completions": 2, "GET /v1/models": 1}
    assert stats["total"] == 3


def test_healthz(sim):
    with urllib.request.urlopen(f"{sim.root}/healthz", timeout=5) as answer:
        assert json.loads(answer.read()) == {"status": "ok"}
