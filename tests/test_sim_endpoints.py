"""Embeddings (float and base64), legacy completions and the Responses API on the simulator."""

from __future__ import annotations

import json
import math
import urllib.request

import openai
import pytest
from pydantic import BaseModel


@pytest.fixture
def client(sim):
    return openai.OpenAI(base_url=sim.url, api_key="sk-test", max_retries=0)


def cosine(a, b):
    return sum(x * y for x, y in zip(a, b)) / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))


def test_embeddings_base64_default_and_float_are_the_same_vectors(client):
    as_base64 = client.embeddings.create(model="text-embedding-3-small", input="the weather is mild")
    as_float = client.embeddings.create(model="text-embedding-3-small", input="the weather is mild", encoding_format="float")
    a, b = as_base64.data[0].embedding, as_float.data[0].embedding
    assert len(a) == len(b) == 1536
    assert max(abs(x - y) for x, y in zip(a, b)) < 1e-6
    assert abs(math.fsum(x * x for x in b) - 1.0) < 1e-6
    assert as_float.usage.prompt_tokens == 4


def test_embeddings_are_deterministic_and_similar_texts_are_closer(client):
    texts = ["how do I bake bread", "how can I bake bread at home", "thunderstorms in the afternoon"]
    first = [
        d.embedding for d in client.embeddings.create(model="text-embedding-3-small", input=texts, encoding_format="float").data
    ]
    again = client.embeddings.create(model="text-embedding-3-small", input=texts[0], encoding_format="float").data[0].embedding
    assert first[0] == again
    assert cosine(first[0], first[1]) > cosine(first[0], first[2]) + 0.2


def test_embeddings_dimensions_and_model_checks(client):
    short = client.embeddings.create(model="text-embedding-3-large", input="x", dimensions=256)
    assert len(short.data[0].embedding) == 256
    with pytest.raises(openai.BadRequestError):
        client.embeddings.create(model="text-embedding-ada-002", input="x", dimensions=256)
    with pytest.raises(openai.NotFoundError):
        client.embeddings.create(model="gpt-4o-mini", input="x")
    with pytest.raises(openai.BadRequestError):
        client.embeddings.create(model="text-embedding-3-small", input="")
    with pytest.raises(openai.BadRequestError, match="input"):
        client.embeddings.create(model="text-embedding-3-small", input=[["not", "token", "ids"]])
    tokens = client.embeddings.create(model="text-embedding-3-small", input=[[1, 2], [3]], encoding_format="float")
    assert len(tokens.data) == 2 and tokens.usage.prompt_tokens == 3


def test_legacy_completions_plain_stream_and_default_length(client):
    plain = client.completions.create(model="gpt-3.5-turbo-instruct", prompt="Cooking is", seed=2, max_tokens=50)
    streamed = client.completions.create(model="gpt-3.5-turbo-instruct", prompt="Cooking is", seed=2, max_tokens=50, stream=True)
    assert "".join(c.choices[0].text for c in streamed if c.choices) == plain.choices[0].text
    assert plain.object == "text_completion" and plain.usage.completion_tokens > 0
    default = client.completions.create(model="gpt-3.5-turbo-instruct", prompt="Cooking is", seed=2)
    assert default.usage.completion_tokens <= 16
    with pytest.raises(openai.NotFoundError):
        client.completions.create(model="gpt-4o-mini", prompt="x")


def test_responses_string_and_message_input(client):
    plain = client.responses.create(model="gpt-4o-mini", input="Describe the weather", temperature=0)
    assert plain.object == "response" and plain.status == "completed"
    assert plain.output_text and plain.output[0].content[0].type == "output_text"
    assert plain.usage.output_tokens > 0
    as_messages = client.responses.create(
        model="gpt-4o-mini", input=[{"role": "user", "content": "Describe the weather"}], temperature=0
    )
    assert as_messages.output_text == plain.output_text


def test_responses_stream_named_events_end_in_completed(client):
    events = list(client.responses.create(model="gpt-4o-mini", input="Tell me about music", temperature=0, stream=True))
    kinds = [e.type for e in events]
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == events[-1].response.output_text
    assert [e.sequence_number for e in events] == list(range(len(events)))


def test_responses_max_output_tokens_is_incomplete(client):
    whole = client.responses.create(model="gpt-4o-mini", input="Tell me about music", temperature=0)
    assert whole.usage.output_tokens > 16
    answer = client.responses.create(model="gpt-4o-mini", input="Tell me about music", max_output_tokens=16, temperature=0)
    assert answer.status == "incomplete"
    assert answer.incomplete_details.reason == "max_output_tokens"
    assert answer.usage.output_tokens == 16


def test_responses_require_input(client):
    with pytest.raises(openai.BadRequestError, match="input"):
        client.responses.create(model="gpt-4o-mini", input=None)
    with pytest.raises(openai.BadRequestError, match=r"input\[0\]\.content"):
        client.responses.create(model="gpt-4o-mini", input=[{"type": "message", "role": "user"}])


class Review(BaseModel):
    title: str
    score: float
    tags: list[str]


def test_responses_parse_and_stream_helpers_fill_a_pydantic_model(client):
    parsed = client.responses.parse(model="gpt-4o-mini", input="Review the new cafe", text_format=Review, temperature=0)
    assert isinstance(parsed.output_parsed, Review) and parsed.output_parsed.tags
    with client.responses.stream(model="gpt-4o-mini", input="Review the new cafe", text_format=Review, temperature=0) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_response()
    assert kinds[-1] == "response.completed" and "response.output_text.delta" in kinds
    assert final.output_parsed == parsed.output_parsed


def test_responses_raw_stream_names_each_event_and_sends_no_done(sim):
    request = urllib.request.Request(
        f"{sim.url}/responses",
        data=json.dumps({"model": "gpt-4o-mini", "input": "hi", "stream": True}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        frames = [f for f in answer.read().decode().split("\n\n") if f]
    for frame in frames:
        event_line, data_line = frame.split("\n")
        assert event_line == f"event: {json.loads(data_line.removeprefix('data: '))['type']}"
    assert frames[-1].startswith("event: response.completed\n") and "[DONE]" not in frames[-1]


def test_responses_bad_text_format_is_a_400_naming_it(client):
    with pytest.raises(openai.BadRequestError, match="text.format.name"):
        client.responses.create(model="gpt-4o-mini", input="hi", text={"format": {"type": "json_schema", "schema": {}}})
    with pytest.raises(openai.BadRequestError, match="text.format.type"):
        client.responses.create(model="gpt-4o-mini", input="hi", text={"format": {"type": "yaml"}})
