"""The chat parameters the simulator answers, and the unknown ones it refuses as the API does."""

from __future__ import annotations

import openai
import pytest

HELLO = [{"role": "user", "content": "How do I bake good bread at home?"}]


@pytest.fixture
def client(sim):
    return openai.OpenAI(base_url=sim.url, api_key="sk-test", max_retries=0)


def ask(client, **params):
    return client.chat.completions.create(model="gpt-4o-mini", messages=HELLO, seed=1, **params)


def test_an_unknown_parameter_is_refused_naming_it(client):
    with pytest.raises(openai.BadRequestError) as caught:
        ask(client, extra_body={"moderation": True})
    assert caught.value.body["message"] == "Unrecognized request argument supplied: moderation"
    assert caught.value.code == "unrecognized_request_argument" and caught.value.param == "moderation"


def test_every_documented_parameter_is_accepted(client):
    answer = ask(
        client,
        metadata={"suite": "x"},
        store=False,
        user="u1",
        safety_identifier="s1",
        prompt_cache_key="k",
        logit_bias={"50256": -100},
        prediction={"type": "content", "content": "Bread"},
        verbosity="low",
        web_search_options={},
        modalities=["text"],
        presence_penalty=0.1,
        frequency_penalty=0.1,
    )
    assert answer.choices[0].message.content


def test_service_tier_is_answered_as_asked(client):
    assert ask(client).service_tier == "default"
    assert ask(client, service_tier="auto").service_tier == "default"
    assert ask(client, service_tier="flex").service_tier == "flex"
    with pytest.raises(openai.BadRequestError, match="service_tier"):
        ask(client, extra_body={"service_tier": "gold"})


def test_audio_output_is_refused_not_faked(client):
    with pytest.raises(openai.BadRequestError, match="text only"):
        ask(client, modalities=["text", "audio"], audio={"voice": "alloy", "format": "wav"})


def test_search_models_cite_a_source(client):
    answer = client.chat.completions.create(model="gpt-4o-search-preview", messages=HELLO, web_search_options={})
    message = answer.choices[0].message
    citation = message.annotations[0].url_citation
    assert message.annotations[0].type == "url_citation" and citation.url.startswith("https://example.com/")
    assert message.content[citation.start_index : citation.end_index] == message.content
    assert ask(client).choices[0].message.annotations == []


def test_a_prediction_is_counted_as_accepted_and_rejected_tokens(client):
    text = ask(client).choices[0].message.content
    reused = ask(client, prediction={"type": "content", "content": text + " Nothing else here"})
    details = reused.usage.completion_tokens_details
    assert details.accepted_prediction_tokens >= len(text.split()) and details.rejected_prediction_tokens >= 3
    assert reused.usage.completion_tokens == ask(client).usage.completion_tokens + details.rejected_prediction_tokens
    plain = ask(client).usage.completion_tokens_details
    assert plain.accepted_prediction_tokens == plain.rejected_prediction_tokens == 0


def test_enum_parameters_name_their_values(client):
    with pytest.raises(openai.BadRequestError, match="reasoning_effort"):
        client.chat.completions.create(model="o3-mini", messages=HELLO, extra_body={"reasoning_effort": "huge"})
    with pytest.raises(openai.BadRequestError, match="'low', 'medium', 'high'"):
        ask(client, extra_body={"verbosity": "loud"})
