"""What a replayed answer saved: tokens read from the recorded usage of every endpoint's shape (plain and
streamed), the dated price table and how a model name finds its price."""

from __future__ import annotations

import json

import pytest

from pytest_seedreplay.core.entry import Entry, SSEEvent
from pytest_seedreplay.savings import (
    DEFAULT_TABLE,
    PricesError,
    SavingsTally,
    cost_header,
    load_prices,
    saving_of,
    usage_of,
)


def entry(endpoint: str, model: str = "gpt-4o-mini", body=None, events=None) -> Entry:
    return Entry(key="v1:x", endpoint=endpoint, request={"params": {"model": model}}, body=body, events=events)


def test_usage_of_a_plain_chat_answer_and_of_its_stream():
    plain = entry("/v1/chat/completions", body={"usage": {"prompt_tokens": 12, "completion_tokens": 30, "total_tokens": 42}})
    chunks = [
        {"choices": [{"delta": {"content": "hi"}}], "usage": None},
        {"choices": [], "usage": {"prompt_tokens": 12, "completion_tokens": 30}},
    ]
    streamed = entry("/v1/chat/completions", events=[SSEEvent(json.dumps(c)) for c in chunks] + [SSEEvent("[DONE]")])
    assert usage_of(plain) == usage_of(streamed) == (12, 30)


def test_usage_of_responses_and_embeddings():
    completed = {"type": "response.completed", "response": {"usage": {"input_tokens": 7, "output_tokens": 9}}}
    responses = entry(
        "/v1/responses",
        events=[
            SSEEvent('{"type":"response.created"}', "response.created"),
            SSEEvent(json.dumps(completed), "response.completed"),
        ],
    )
    embeddings = entry(
        "/v1/embeddings", "text-embedding-3-small", body={"data": [], "usage": {"prompt_tokens": 5, "total_tokens": 5}}
    )
    assert usage_of(responses) == (7, 9) and usage_of(embeddings) == (5, 0)


def test_an_answer_without_usage_saves_nothing_counted():
    bare = entry("/v1/chat/completions", body={"choices": []})
    cut = entry("/v1/chat/completions", events=[SSEEvent('{"choices": []}')])
    assert saving_of(bare) is None and saving_of(cut) is None
    tally = SavingsTally()
    tally.add(saving_of(bare))
    assert tally.hits == 0


def test_a_model_finds_its_price_by_the_longest_listed_name():
    assert DEFAULT_TABLE.price("gpt-4o-mini-2024-07-18") == DEFAULT_TABLE.price("gpt-4o-mini")
    assert DEFAULT_TABLE.price("gpt-4o-2024-08-06") == DEFAULT_TABLE.price("gpt-4o") != DEFAULT_TABLE.price("gpt-4o-mini")
    assert DEFAULT_TABLE.price("gpt-4o-2024-05-13") == (5.0, 15.0)  # a snapshot priced apart
    assert DEFAULT_TABLE.price("o3-mini-2025-01-31") == DEFAULT_TABLE.price("o3-mini") != DEFAULT_TABLE.price("o3")
    assert DEFAULT_TABLE.price("gpt-4ox") is None and DEFAULT_TABLE.price("ft:gpt-4o-mini:org::abc") is None


def test_the_answered_model_prices_a_hit_before_the_requested_alias():
    answer = {"usage": {"prompt_tokens": 1_000_000, "completion_tokens": 0}}
    dated = entry("/v1/chat/completions", "gpt-4o", body=answer)
    dated.model = "gpt-4o-2024-05-13"
    assert saving_of(dated).cost == pytest.approx(5.0)
    unknown = entry("/v1/chat/completions", "my-own-model", body=answer)
    saved = saving_of(unknown)
    assert saved.cost is None and saved.tokens == 1_000_000
    tally = SavingsTally()
    tally.add(saved)
    tally.add(saving_of(dated))
    assert (tally.hits, tally.unpriced_hits, tally.cost) == (2, 1, pytest.approx(5.0))
    assert tally.line(DEFAULT_TABLE).startswith("2,000,000 tokens (~$5.00 at prices of ")


@pytest.mark.parametrize(
    "content, said",
    [
        ("not json", "is not JSON"),
        ('{"as_of": "x"}', 'needs a "models" object'),
        ('{"models": {"m": {"input": -1}}}', "model 'm' needs"),
    ],
)
def test_a_prices_file_that_cannot_be_used_says_why(tmp_path, content, said):
    path = tmp_path / "prices.json"
    path.write_text(content)
    with pytest.raises(PricesError, match=said) as caught:
        load_prices(path)
    assert str(path) in str(caught.value)


def test_cost_header_is_plain_decimal():
    assert cost_header(5.505e-05) == "0.00005505" and cost_header(2.0) == "2" and cost_header(0.0) == "0"
