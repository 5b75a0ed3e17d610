"""What a replayed answer saved: tokens read from the recorded usage of every endpoint's shape (plain and
streamed), genai-prices' prices (offline), our dated fallback table, and how a model name finds its price."""

from __future__ import annotations

import json
from importlib import metadata

import pytest

from pytest_seedreplay import savings
from pytest_seedreplay.core.entry import Entry, SSEEvent
from pytest_seedreplay.savings import (
    DEFAULT_PRICES,
    DEFAULT_TABLE,
    PRICES_AS_OF,
    PricesError,
    PriceTable,
    SavingsTally,
    cost_header,
    dollars,
    load_prices,
    saving_of,
    usage_of,
)

FALLBACK = PriceTable(DEFAULT_PRICES, PRICES_AS_OF)  # what prices where genai-prices is not installed (3.10)


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


@pytest.mark.parametrize("table", [DEFAULT_TABLE, FALLBACK], ids=["genai-prices", "fallback"])
def test_a_model_finds_its_price_by_the_longest_listed_name(table):
    assert table.price("gpt-4o-mini-2024-07-18") == table.price("gpt-4o-mini") == pytest.approx((0.15, 0.60))
    assert table.price("gpt-4o-2024-08-06") == table.price("gpt-4o") != table.price("gpt-4o-mini")
    assert table.price("gpt-4o-2024-05-13") == pytest.approx((5.0, 15.0))  # a snapshot priced apart
    assert table.price("o3-mini-2025-01-31") == table.price("o3-mini") != table.price("o3")
    assert table.price("gpt-4ox") is None and table.price("my-own-model") is None


# genai-prices requires Python 3.11+; on 3.10 the dated built-in table prices (FALLBACK, tested above).
needs_genai_prices = pytest.mark.skipif(DEFAULT_TABLE.library is None, reason="genai-prices installs on Python 3.11+ only")


@needs_genai_prices
def test_genai_prices_prices_by_default_and_says_its_version():
    version = metadata.version("genai-prices")
    assert DEFAULT_TABLE.describe() == f"genai-prices {version}" and DEFAULT_TABLE.models == {}
    # It knows what our own table never did: a fine-tune's price (twice its base model's).
    assert DEFAULT_TABLE.price("ft:gpt-4o-mini-2024-07-18:org::abc") == pytest.approx((0.30, 1.20))
    assert FALLBACK.price("ft:gpt-4o-mini-2024-07-18:org::abc") is None
    assert FALLBACK.describe() == f"prices of {PRICES_AS_OF} (built in)"


@needs_genai_prices
def test_pricing_never_touches_the_network(monkeypatch):
    # genai-prices can update its data over HTTP (UpdatePrices); we read only the data it ships.
    # No real part can stand in for "no network here", so every new connection is refused.
    import socket

    def refuse(*args, **kwargs):
        raise AssertionError("pricing opened a connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    savings.library_price.cache_clear()
    savings._snapshot.cache_clear()
    assert DEFAULT_TABLE.cost("gpt-4o-mini", 1_000_000, 1_000_000) == pytest.approx(0.75)
    assert savings._snapshot().from_auto_update is False


@needs_genai_prices
def test_a_prices_file_overrides_the_models_it_names_and_genai_prices_the_rest(tmp_path):
    path = tmp_path / "prices.json"
    path.write_text(json.dumps({"as_of": "2031-01-01", "models": {"gpt-4o-mini": {"input": 1, "output": 2}}}))
    table = load_prices(path)
    assert table.price("gpt-4o-mini-2024-07-18") == (1.0, 2.0) and table.price("gpt-4o") == DEFAULT_TABLE.price("gpt-4o")
    assert table.describe() == f"prices of 2031-01-01 from {path}, else {DEFAULT_TABLE.library}"


@pytest.mark.parametrize(
    "cost, shown",
    [
        (0.0, "$0"),
        (0.0000004, "< $0.000001"),
        (0.0000216, "~$0.000022"),
        (0.000426, "~$0.00043"),
        (0.0099, "~$0.0099"),
        (0.42, "~$0.42"),
        (1234.5, "~$1,234.50"),
    ],
)
def test_small_sums_never_read_as_nothing(cost, shown):
    assert dollars(cost) == shown


@needs_genai_prices
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
    assert tally.line(DEFAULT_TABLE).startswith(f"2,000,000 tokens (~$5.00 at {DEFAULT_TABLE.library}; 1 answer(s) of unpriced")


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
