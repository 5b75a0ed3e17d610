"""The dispatch by endpoint: one call for every endpoint, and one read (Summary) of an answer, plain or streamed."""

from __future__ import annotations

import json

import pytest
from shapes_support import CHAT, EMBEDDING_BODY, RESPONSE, RESPONSES, real_events

from pytest_seedreplay.core.constants import CACHEABLE_ENDPOINTS
from pytest_seedreplay.core.entry import Entry, SSEEvent
from pytest_seedreplay.shapes import (
    MalformedStream,
    UnstreamableAnswer,
    answer_body,
    answer_events,
    answer_summary,
    answer_text,
    assemble,
    entry_summary,
    error_event,
    finish_reason,
    split,
    stream_complete,
    streams,
    summary,
)

EMBEDDINGS = "/v1/embeddings"


def test_assemble_refuses_streams_that_cannot_make_an_answer():
    error = SSEEvent(json.dumps({"error": {"message": "rate limited"}}))
    with pytest.raises(MalformedStream, match="rate limited"):
        assemble(CHAT, real_events()[:2] + [error])
    with pytest.raises(MalformedStream, match="not JSON"):
        assemble(CHAT, [SSEEvent("{oops")])
    with pytest.raises(MalformedStream, match="no frame"):
        assemble(CHAT, [SSEEvent("[DONE]")])
    with pytest.raises(MalformedStream, match="cut short"):
        assemble(RESPONSES, split(RESPONSES, RESPONSE, False)[:-1])
    with pytest.raises(ValueError, match="does not stream"):
        assemble("/v1/embeddings", real_events())
    with pytest.raises(ValueError, match="does not stream"):
        split("/v1/embeddings", {"data": []}, False)


def test_frames_that_are_json_but_not_objects_make_a_stream_incomplete():
    events = real_events()
    assert not stream_complete(CHAT, events[:2] + [SSEEvent("5")] + events[2:])
    responses = split(RESPONSES, RESPONSE, False)
    broken_end = SSEEvent(json.dumps({"type": "response.completed", "sequence_number": 99}), "response.completed")
    assert not stream_complete(RESPONSES, responses[:-1] + [broken_end])
    with pytest.raises(MalformedStream):
        assemble(RESPONSES, responses[:-1] + [broken_end])


def test_answer_summary_names_model_and_fingerprint():
    assert answer_summary(CHAT, assemble(CHAT, real_events())) == ("gpt-4o-2024-08-06", "fp_abc")
    assert answer_summary(RESPONSES, RESPONSE) == ("gpt-4.1-2025-04-14", None)
    assert answer_summary("/v1/embeddings", EMBEDDING_BODY) == ("text-embedding-3-small", None)
    assert answer_summary(CHAT, []) == (None, None)


def test_answer_summary_of_an_assembled_stream_and_a_split_body_agree():
    body = assemble(CHAT, real_events())
    assert answer_summary(CHAT, assemble(CHAT, split(CHAT, body, False))) == answer_summary(CHAT, body)


# ---------------------------------------------------------------------------------------------
# One read of an answer: Summary


def test_a_stream_and_its_plain_answer_read_the_same():
    streamed = summary(CHAT, events=real_events())
    plain = summary(CHAT, body=assemble(CHAT, real_events()))
    assert streamed.complete and streamed.problem is None
    assert streamed.events == real_events() and plain.events is None
    assert streamed.body == plain.body
    assert (
        (streamed.model, streamed.system_fingerprint)
        == (plain.model, plain.system_fingerprint)
        == ("gpt-4o-2024-08-06", "fp_abc")
    )
    assert streamed.finish_reason == plain.finish_reason == "stop,tool_calls"
    assert streamed.text == plain.text == 'Hello\n---\n[tool call] f({"x": 1})\n[tool call] g({})'


def test_a_cut_stream_is_not_complete_but_still_reads():
    cut = summary(CHAT, events=real_events()[:-1])  # everything but [DONE]
    assert not cut.complete and "[DONE]" in cut.problem
    assert cut.body["choices"][0]["message"]["content"] == "Hello"
    assert stream_complete(CHAT, real_events()) and not stream_complete(CHAT, real_events()[:-1])


def test_a_stream_with_an_error_frame_has_no_body_and_says_why():
    error = SSEEvent(json.dumps({"error": {"message": "overloaded"}}))
    broken = summary(CHAT, events=real_events()[:3] + [error])
    assert not broken.complete and broken.body is None and "overloaded" in broken.problem
    assert (broken.model, broken.finish_reason, broken.text) == (None, None, "")
    embeddings = summary("/v1/embeddings", events=real_events())
    assert not embeddings.complete and "does not stream" in embeddings.problem


def test_an_entry_reads_with_its_recorded_model_and_fingerprint_first():
    body = assemble(CHAT, real_events())
    entry = Entry(key="k", endpoint=CHAT, request={}, events=real_events(), model="pinned", system_fingerprint=None)
    read = entry_summary(entry)
    assert (read.model, read.system_fingerprint) == ("pinned", "fp_abc")
    assert read.body == body and read.complete


def test_the_endpoint_is_read_whatever_base_path_the_client_used():
    assert summary("/chat/completions", events=real_events()).complete
    assert answer_text("https://example.com/openai/v1/responses", RESPONSE).startswith("Paris is sunny")
    assert streams("/v1/chat/completions") and streams("/v1/responses") and not streams("/v1/embeddings")
    assert answer_text("/v1/models", {"data": []}) == "" and finish_reason("/v1/models", {}) is None


# ---------------------------------------------------------------------------------------------
# An entry in the shape a request asks for


def _entry(endpoint, body=None, events=None):
    return Entry(key="k", endpoint=endpoint, request={}, body=body, events=events)


def test_answer_body_assembles_a_stream_and_encodes_embeddings_as_asked():
    assert answer_body(_entry(CHAT, events=real_events())) == assemble(CHAT, real_events())
    as_base64 = answer_body(_entry(EMBEDDINGS, body=EMBEDDING_BODY), "base64")
    assert all(isinstance(d["embedding"], str) for d in as_base64["data"])
    assert answer_body(_entry(EMBEDDINGS, body=as_base64)) == EMBEDDING_BODY  # float, the default
    with pytest.raises(MalformedStream):
        answer_body(_entry(CHAT, events=[SSEEvent("[DONE]")]))


def test_answer_events_fits_a_stream_or_splits_a_plain_answer():
    body = assemble(CHAT, real_events())
    recorded = answer_events(_entry(CHAT, events=real_events()), include_usage=False)
    assert all("usage" not in json.loads(e.data) for e in recorded[:-1])
    assert answer_events(_entry(CHAT, body=body), include_usage=True) == split(CHAT, body, True)
    with pytest.raises(ValueError, match="does not stream"):
        answer_events(_entry(EMBEDDINGS, body=EMBEDDING_BODY), include_usage=False)
    with pytest.raises(UnstreamableAnswer, match="JSON object"):
        split(CHAT, ["not", "an", "object"], False)


def test_every_endpoint_module_answers_the_same_questions():
    from pytest_seedreplay import shapes

    readers = ("answer_text", "reply_text", "answer_parts", "finish_reason")
    for endpoint, module in shapes._ANSWERS.items():
        assert all(callable(getattr(module, name, None)) for name in readers), endpoint
    for endpoint, module in shapes._STREAMING.items():
        assert all(callable(getattr(module, name, None)) for name in ("assemble", "split", "adapt_stream", "read_stream")), (
            endpoint
        )
    assert set(shapes._ANSWERS) == set(CACHEABLE_ENDPOINTS)  # every endpoint the cache keeps has its module


def test_the_error_event_ends_each_kind_of_stream_as_its_api_does():
    error = {"message": "the upstream went away", "type": "seedreplay_error", "param": None, "code": "upstream_cut"}
    chat_frame = error_event(CHAT, error)
    assert chat_frame.event is None and json.loads(chat_frame.data) == {"error": error}
    response_frame = error_event(RESPONSES, error)
    assert response_frame.event == "error"
    assert json.loads(response_frame.data) == {
        "type": "error",
        "code": "upstream_cut",
        "message": "the upstream went away",
        "param": None,
        "error": error,
    }
    for endpoint, events in ((CHAT, real_events()[:3]), (RESPONSES, split(RESPONSES, RESPONSE, False)[:4])):
        read = summary(endpoint, events=[*events, error_event(endpoint, error)])
        assert not read.complete and "the upstream went away" in read.problem
