"""`response_format: json_object` with a JSON schema written in the prompt (pydantic-ai's
`PromptedOutput`, instructor's JSON mode): the simulator answers an object valid against it."""

from __future__ import annotations

import json
from typing import Literal

import openai
import pytest
from pydantic import BaseModel

from pytest_seedreplay.proxy.sim.structured import schema_in_prompt


class City(BaseModel):
    name: str
    population: int
    country: str


class Trip(BaseModel):
    destination: City
    stops: list[City]
    season: Literal["spring", "summer", "autumn", "winter"]
    budget: float | None


# The instruction pydantic-ai's PromptedOutput sends, with the output type's schema in it.
TEMPLATE = "Always respond with a JSON object that's compatible with this schema:\n\n{schema}\n\nDon't include any text or Markdown fencing before or after."


@pytest.fixture
def client(sim):
    return openai.OpenAI(base_url=sim.url, api_key="sk-test", max_retries=0)


def prompted(client, messages, **params):
    return client.chat.completions.create(
        model="gpt-4o-mini", messages=messages, response_format={"type": "json_object"}, **params
    )


def test_a_schema_in_the_system_message_shapes_the_json_object(client):
    messages = [
        {"role": "system", "content": TEMPLATE.format(schema=json.dumps(Trip.model_json_schema()))},
        {"role": "user", "content": "Plan a trip to Rome in spring."},
    ]
    content = prompted(client, messages, seed=3).choices[0].message.content
    trip = Trip.model_validate_json(content)  # raises if the object is not valid against the schema
    assert trip.season in ("spring", "summer", "autumn", "winter") and trip.stops
    assert prompted(client, messages, seed=3).choices[0].message.content == content


def test_a_schema_in_a_user_message_and_in_the_responses_api(client):
    instruction = TEMPLATE.format(schema=json.dumps(City.model_json_schema()))
    parts = [{"type": "text", "text": "Name a big city."}, {"type": "text", "text": instruction}]
    City.model_validate_json(prompted(client, [{"role": "user", "content": parts}], seed=1).choices[0].message.content)
    answer = client.responses.create(
        model="gpt-4.1-mini", instructions=instruction, input="Name a big city.", text={"format": {"type": "json_object"}}
    )
    City.model_validate_json(answer.output_text)


def test_without_a_schema_json_object_still_answers_an_answer_field(client):
    messages = [{"role": "user", "content": 'Reply in JSON. For example {"a": 1} would do.'}]
    document = json.loads(prompted(client, messages, seed=2).choices[0].message.content)
    assert list(document) == ["answer"] and isinstance(document["answer"], str)


def test_schema_detection_skips_examples_and_broken_json():
    schema = {"type": "object", "properties": {"x": {"type": "integer"}}}
    text = 'Not this {broken, nor this {"a": 1}, but this: ' + json.dumps(schema) + " thanks"
    assert schema_in_prompt([{"role": "user", "content": text}]) == schema
    assert schema_in_prompt([{"role": "assistant", "content": json.dumps(schema)}]) is None
    assert schema_in_prompt([{"role": "user", "content": '{"a": 1} {"b": {"c": 2}}'}]) is None
