"""The Responses API: a response object and its stream of named, numbered events."""

from __future__ import annotations

import copy
import json

import openai
from hypothesis import given
from hypothesis import strategies as st
from openai.lib.streaming.responses import ResponseStreamState
from openai.types.responses import Response
from shapes_support import ANSWER_TEXT, EVENT_ADAPTER, RESPONSE, RESPONSES, SETTINGS, TEXT, sse_reply

from pytest_seedreplay.core.entry import SSEEvent
from pytest_seedreplay.shapes import (
    adapt_stream,
    assemble,
    responses,
    split,
    stream_complete,
)


def test_responses_split_gives_events_the_sdk_validates_and_accumulates():
    events = split(RESPONSES, RESPONSE, include_usage=False)
    parsed = [EVENT_ADAPTER.validate_python(json.loads(e.data)) for e in events]
    assert [p.type for p in parsed] == [e.event for e in events]
    assert [p.sequence_number for p in parsed] == list(range(len(events)))
    assert all(e.data != "[DONE]" for e in events)
    kinds = [p.type for p in parsed]
    assert kinds[:3] == ["response.created", "response.in_progress", "response.output_item.added"]
    assert kinds[-1] == "response.completed"
    for needed in (
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.annotation.added",
        "response.output_text.done",
        "response.refusal.delta",
        "response.refusal.done",
        "response.content_part.done",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
    ):
        assert needed in kinds
    assert parsed[0].response.status == "in_progress" and parsed[0].response.output == []

    state = ResponseStreamState(input_tools=openai.omit, text_format=openai.omit)
    text = ""
    for p in parsed:
        for out in state.handle_event(p):
            if out.type == "response.output_text.delta":
                text = out.snapshot
            if out.type == "response.completed":
                final = out.response
    assert text == RESPONSE["output"][1]["content"][0]["text"]
    assert final.output_text == RESPONSE["output"][1]["content"][0]["text"]
    assert final.model_dump(exclude_unset=True, exclude={"output"}) == Response.model_validate(RESPONSE).model_dump(
        exclude_unset=True, exclude={"output"}
    )
    assert assemble(RESPONSES, events) == RESPONSE
    assert split(RESPONSES, assemble(RESPONSES, events), False) == events


@SETTINGS
@given(st.lists(ANSWER_TEXT, min_size=1, max_size=3), TEXT)
def test_responses_round_trip_any_text(texts, arguments):
    body = copy.deepcopy(RESPONSE)
    body["output"] = [
        {
            "id": f"msg_{i}",
            "type": "message",
            "status": "completed",
            "role": "assistant",
            "content": [{"type": "output_text", "text": t, "annotations": [], "logprobs": []}],
        }
        for i, t in enumerate(texts)
    ] + [{"type": "function_call", "call_id": "c", "name": "f", "arguments": arguments, "id": "fc", "status": "completed"}]
    events = split(RESPONSES, body, True)
    assert assemble(RESPONSES, events) == body
    state = ResponseStreamState(input_tools=openai.omit, text_format=openai.omit)
    for event in events:
        for out in state.handle_event(EVENT_ADAPTER.validate_python(json.loads(event.data))):
            if out.type == "response.completed":
                assert out.response.output_text == "".join(texts)
    deltas = "".join(json.loads(e.data)["delta"] for e in events if e.event == "response.function_call_arguments.delta")
    assert deltas == arguments


def test_responses_assemble_rebuilds_output_when_the_completed_event_omits_it():
    events = split(RESPONSES, RESPONSE, False)
    last = json.loads(events[-1].data)
    del last["response"]["output"]
    events[-1] = SSEEvent(json.dumps(last), "response.completed")
    assert assemble(RESPONSES, events)["output"] == RESPONSE["output"]


def test_responses_text_with_logprobs_streams_one_token_per_delta():
    body = copy.deepcopy(RESPONSE)
    tokens = ["Par", "is", " 🌞"]
    part = {
        "type": "output_text",
        "text": "".join(tokens),
        "annotations": [],
        "logprobs": [{"token": t, "bytes": list(t.encode()), "logprob": -0.1, "top_logprobs": []} for t in tokens],
    }
    body["output"] = [{"id": "msg_1", "type": "message", "status": "completed", "role": "assistant", "content": [part]}]
    events = split(RESPONSES, body, False)
    deltas = [json.loads(e.data) for e in events if e.event == "response.output_text.delta"]
    assert [d["delta"] for d in deltas] == tokens
    assert [d["logprobs"][0]["token"] for d in deltas] == tokens
    for event in events:
        EVENT_ADAPTER.validate_python(json.loads(event.data))
    assert assemble(RESPONSES, events) == body


def test_stream_complete_for_responses_needs_a_completed_event():
    events = split(RESPONSES, RESPONSE, False)
    assert stream_complete(RESPONSES, events)
    assert not stream_complete(RESPONSES, events[:-1])
    error = SSEEvent(json.dumps({"type": "error", "sequence_number": 3, "message": "boom", "code": None, "param": None}), "error")
    assert not stream_complete(RESPONSES, events[:3] + [error] + events[3:])
    failed = {**RESPONSE, "status": "failed", "error": {"code": "server_error", "message": "boom"}}
    assert not stream_complete(RESPONSES, split(RESPONSES, failed, False))
    incomplete = {**RESPONSE, "status": "incomplete", "incomplete_details": {"reason": "max_output_tokens"}}
    assert stream_complete(RESPONSES, split(RESPONSES, incomplete, False))
    assert assemble(RESPONSES, split(RESPONSES, incomplete, False)) == incomplete
    assert not stream_complete(RESPONSES, events[:-1] + [SSEEvent("[DONE]")])


def test_adapt_stream_leaves_responses_streams_alone():
    events = split(RESPONSES, RESPONSE, False)
    assert adapt_stream(RESPONSES, events, False) == events


def test_sdk_responses_stream_helper_reads_a_split_body(canned):
    client, answer = canned
    answer["reply"] = sse_reply(split(RESPONSES, RESPONSE, False))
    with client.responses.stream(model="gpt-4.1", input="hi") as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_response()
    assert kinds[-1] == "response.completed"
    assert final.output_text == RESPONSE["output"][1]["content"][0]["text"]
    assert final.usage.total_tokens == 30
    raw = list(client.responses.create(model="gpt-4.1", input="hi", stream=True))
    assert [e.sequence_number for e in raw] == list(range(len(raw)))
    assert raw[-1].response.id == "resp_1"


def test_responses_text_reads_every_message_part_and_function_call():
    assert responses.answer_text(RESPONSE) == (
        'Paris is sunny 🌞.\nSee the source.\n\n[tool call] get_weather({"city": "Paris", "unit": "c"})'
    )  # the refusal part has no text: an empty line
    assert responses.reply_text(RESPONSE) == "Paris is sunny 🌞.\nSee the source."
    assert responses.reply_text({"output": [{"type": "function_call", "name": "f"}]}) is None
    parts = responses.answer_parts(RESPONSE)
    assert parts[2] == {
        "type": "function_call",
        "status": "completed",
        "name": "get_weather",
        "arguments": '{"city": "Paris", "unit": "c"}',
    }


def test_responses_finish_reason_is_the_incomplete_reason_else_the_status():
    assert responses.finish_reason(RESPONSE) == "completed"
    incomplete = {**RESPONSE, "status": "incomplete", "incomplete_details": {"reason": "max_output_tokens"}}
    assert responses.finish_reason(incomplete) == "max_output_tokens"
    assert responses.finish_reason(None) is None
