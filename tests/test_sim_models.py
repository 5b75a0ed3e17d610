"""Which model names the simulator answers, and how a model's family shapes the answer."""

from __future__ import annotations

import openai
import pytest

from pytest_seedreplay.proxy.sim.models import family_of

HELLO = [{"role": "user", "content": "How do I bake good bread at home?"}]
NAMES_FROM_REAL_SUITES = [
    "gpt-5.5",
    "gpt-5.4-mini",
    "o3-mini",
    "o1-mini",
    "gpt-4-1106-preview",
    "gpt-4.5-preview",
    "gpt-4o-search-preview",
]


@pytest.fixture
def client(sim):
    return openai.OpenAI(base_url=sim.url, api_key="sk-test", max_retries=0)


@pytest.mark.parametrize("name", NAMES_FROM_REAL_SUITES)
def test_any_model_name_answers_deterministically_by_default(client, name):
    first = client.chat.completions.create(model=name, messages=HELLO, seed=5)
    again = client.chat.completions.create(model=name, messages=HELLO, seed=5)
    assert first.model == name and first.choices[0].message.content
    assert first.choices[0].message.content == again.choices[0].message.content
    assert client.models.retrieve(name).id == name
    answer = client.responses.create(model=name, input="How do I bake good bread at home?")
    assert answer.output_text


def test_model_names_change_the_answer(client):
    texts = {
        client.chat.completions.create(model=m, messages=HELLO, seed=5).choices[0].message.content for m in NAMES_FROM_REAL_SUITES
    }
    assert len(texts) == len(NAMES_FROM_REAL_SUITES)


def test_an_unknown_fine_tune_and_an_embedding_model_on_chat_are_still_404(client):
    for name in ("ft:gpt-4o-mini-2024-07-18:org:nothing:abc123", "text-embedding-3-small"):
        with pytest.raises(openai.NotFoundError) as caught:
            client.chat.completions.create(model=name, messages=HELLO)
        assert caught.value.code == "model_not_found"


def test_strict_models_answers_only_the_catalogue(sim_factory):
    client = openai.OpenAI(base_url=sim_factory(strict_models=True).url, api_key="sk-test", max_retries=0)
    assert client.chat.completions.create(model="gpt-4o-mini", messages=HELLO, seed=1).choices[0].message.content
    for ask in (
        lambda: client.chat.completions.create(model="gpt-5.5", messages=HELLO),
        lambda: client.responses.create(model="o3-mini", input="hi"),
        lambda: client.models.retrieve("gpt-5.5"),
    ):
        with pytest.raises(openai.NotFoundError) as caught:
            ask()
        assert caught.value.code == "model_not_found"


def test_families_of_names():
    assert all(family_of(n).reasoning for n in ("o1", "o1-mini", "o3-mini", "o4-mini", "gpt-5", "gpt-5.4-mini", "gpt-5.5"))
    assert not any(family_of(n).reasoning for n in ("gpt-4o", "gpt-4.5-preview", "gpt-5-chat-latest", "omni-moderation-latest"))
    assert family_of("ft:o4-mini-2025-04-16:org:x:abc").reasoning
    assert family_of("gpt-4o-search-preview").search and not family_of("gpt-4o").search


def test_reasoning_models_report_reasoning_tokens_by_effort(client):
    plain = client.chat.completions.create(model="gpt-4o-mini", messages=HELLO, seed=1)
    assert plain.usage.completion_tokens_details.reasoning_tokens == 0
    low = client.chat.completions.create(model="o3-mini", messages=HELLO, seed=1, reasoning_effort="low")
    high = client.chat.completions.create(model="o3-mini", messages=HELLO, seed=1, reasoning_effort="high")
    default = client.chat.completions.create(model="o3-mini", messages=HELLO, seed=1)
    spent = [a.usage.completion_tokens_details.reasoning_tokens for a in (low, default, high)]
    assert 0 < spent[0] < spent[1] < spent[2]
    visible = client.chat.completions.create(model="gpt-4o-mini", messages=HELLO, seed=1)
    assert visible.usage.completion_tokens < high.usage.completion_tokens
    assert high.usage.total_tokens == high.usage.prompt_tokens + high.usage.completion_tokens
    streamed = list(
        client.chat.completions.create(
            model="o3-mini", messages=HELLO, seed=1, reasoning_effort="high", stream=True, stream_options={"include_usage": True}
        )
    )
    assert streamed[-1].usage.completion_tokens_details.reasoning_tokens == spent[2]
    response = client.responses.create(model="gpt-5.4-mini", input="hi", reasoning={"effort": "low"})
    assert response.usage.output_tokens_details.reasoning_tokens == spent[0]
    assert response.usage.output_tokens > spent[0]


def test_reasoning_models_refuse_a_temperature_other_than_one_as_the_api_does(client):
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="gpt-5.5", messages=HELLO, temperature=0)
    assert caught.value.code == "unsupported_value" and caught.value.param == "temperature"
    assert "'temperature' does not support 0 with this model. Only the default (1) value is supported." in caught.value.message
    with pytest.raises(openai.BadRequestError, match="does not support 0.2"):
        client.responses.create(model="o4-mini", input="hi", temperature=0.2)
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="o1-mini", messages=HELLO, max_tokens=50)
    assert caught.value.code == "unsupported_parameter" and "max_completion_tokens" in caught.value.message
    ok = client.chat.completions.create(model="o1-mini", messages=HELLO, temperature=1, max_completion_tokens=50, seed=1)
    assert ok.choices[0].message.content
    assert client.chat.completions.create(model="gpt-4.5-preview", messages=HELLO, temperature=0).choices[0].message.content


def test_a_reasoning_models_response_opens_with_its_reasoning_item(client):
    answer = client.responses.create(model="o4-mini", input="How do I bake good bread at home?")
    assert [item.type for item in answer.output] == ["reasoning", "message"] and answer.output_text
    assert answer.reasoning.effort == "medium"
    follow = client.responses.create(model="o4-mini", input="And rye?", previous_response_id=answer.id)
    assert follow.output_text
    streamed = list(client.responses.create(model="o4-mini", input="How do I bake good bread at home?", stream=True))
    added = [e.item.type for e in streamed if e.type == "response.output_item.added"]
    assert added == ["reasoning", "message"] and streamed[-1].response.output_text
    plain = client.responses.create(model="gpt-4.1-mini", input="How do I bake good bread at home?")
    assert [item.type for item in plain.output] == ["message"] and plain.reasoning.effort is None
