"""Logprobs from the simulator: chat `logprobs` / `top_logprobs` and the Responses API's
`include=["message.output_text.logprobs"]`, plain and streamed, with the real openai SDK."""

from __future__ import annotations

import math

import openai
import pytest

HELLO = [{"role": "user", "content": "How do I bake good bread at home?"}]


@pytest.fixture
def client(sim):
    return openai.OpenAI(base_url=sim.url, api_key="sk-test", max_retries=0)


def check_entries(entries, text, top):
    """Well formed: one entry per token, adding up to the text; bytes are the token's UTF-8; the
    alternatives are distinct, most likely first, and their probabilities add up to at most 1."""
    assert "".join(e.token for e in entries) == text
    for entry in entries:
        assert entry.logprob < 0 and entry.bytes == list(entry.token.encode("utf-8"))
        assert len(entry.top_logprobs) == top
        figures = [t.logprob for t in entry.top_logprobs]
        assert figures == sorted(figures, reverse=True)
        assert len({t.token for t in entry.top_logprobs}) == top
        assert sum(math.exp(f) for f in figures) <= 1.0 + 1e-9
        if top:
            assert entry.top_logprobs[0].token == entry.token and entry.top_logprobs[0].logprob == entry.logprob


def test_chat_logprobs_with_top_alternatives_are_well_formed_and_deterministic(client):
    answer = client.chat.completions.create(model="gpt-4o-mini", messages=HELLO, seed=4, logprobs=True, top_logprobs=3)
    choice = answer.choices[0]
    check_entries(choice.logprobs.content, choice.message.content, 3)
    again = client.chat.completions.create(model="gpt-4o-mini", messages=HELLO, seed=4, logprobs=True, top_logprobs=3)
    assert again.choices[0].logprobs == choice.logprobs
    other = client.chat.completions.create(model="gpt-4o-mini", messages=HELLO, seed=5, logprobs=True, top_logprobs=3)
    assert other.choices[0].logprobs != choice.logprobs
    bare = client.chat.completions.create(model="gpt-4o-mini", messages=HELLO, seed=4, logprobs=True)
    check_entries(bare.choices[0].logprobs.content, choice.message.content, 0)
    assert client.chat.completions.create(model="gpt-4o-mini", messages=HELLO, seed=4).choices[0].logprobs is None


def test_streamed_chat_logprobs_match_the_plain_answer(client):
    plain = client.chat.completions.create(model="gpt-4o-mini", messages=HELLO, seed=4, logprobs=True, top_logprobs=2, n=2)
    stream = client.chat.completions.create(
        model="gpt-4o-mini", messages=HELLO, seed=4, logprobs=True, top_logprobs=2, n=2, stream=True
    )
    streamed: dict[int, list] = {0: [], 1: []}
    for chunk in stream:
        for choice in chunk.choices:
            if choice.logprobs is not None:
                assert len(choice.logprobs.content) == 1 and choice.logprobs.content[0].token == choice.delta.content
                streamed[choice.index] += choice.logprobs.content
    for choice in plain.choices:
        assert streamed[choice.index] == choice.logprobs.content


def test_chat_logprobs_bad_values_are_400s(client):
    with pytest.raises(openai.BadRequestError, match="top_logprobs"):
        client.chat.completions.create(model="gpt-4o-mini", messages=HELLO, logprobs=True, top_logprobs=21)
    with pytest.raises(openai.BadRequestError, match="'logprobs' must be set to true"):
        client.chat.completions.create(model="gpt-4o-mini", messages=HELLO, top_logprobs=2)


def test_responses_include_logprobs_plain_and_streamed(client):
    params = {"model": "gpt-4.1-mini", "input": "How do I bake good bread at home?", "temperature": 0}
    answer = client.responses.create(**params, include=["message.output_text.logprobs"], top_logprobs=4)
    part = answer.output[0].content[0]
    check_entries(part.logprobs, part.text, 4)
    assert (
        client.responses.create(**params, include=["message.output_text.logprobs"], top_logprobs=4).output[0].content[0].logprobs
        == part.logprobs
    )
    assert client.responses.create(**params).output[0].content[0].logprobs == []

    deltas, done = [], None
    for event in client.responses.create(**params, include=["message.output_text.logprobs"], top_logprobs=4, stream=True):
        if event.type == "response.output_text.delta":
            assert [e.token for e in event.logprobs] == [event.delta]
            deltas += event.logprobs
        elif event.type == "response.output_text.done":
            done = event.logprobs
    assert [d.model_dump() for d in deltas] == [d.model_dump() for d in done] == [p.model_dump() for p in part.logprobs]
