"""Anthropic's Messages answers: a plain `message` split into the stream the API sends and assembled back
exactly (text, tool input JSON, thinking and its signature, citations), streams whole or not, the
event names kept on the wire, and the usage a streamed recording saved."""

from __future__ import annotations

import json

from pytest_seedreplay.core.entry import Entry, SSEEvent
from pytest_seedreplay.savings import usage_of
from pytest_seedreplay.shapes import (
    answer_parts,
    assemble,
    ends_stream,
    error_event,
    finish_reason,
    format_sse,
    parse_sse,
    reply_text,
    split,
    stream_complete,
    summary,
)

MESSAGES = "/v1/messages"


def message(content: list, stop_reason: str = "end_turn", **usage: int) -> dict:
    return {
        "id": "msg_01",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5",
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": {"input_tokens": 12, "cache_read_input_tokens": 3, "output_tokens": 9, **usage},
    }


TOOL_INPUT = {"city": "Zürich", "days": [1, 2.5, None], "nested": {"ok": True, "note": 'a "quoted" {brace}'}}
FULL = message(
    [
        {"type": "thinking", "thinking": "The user wants the weather.", "signature": "EqQBCgIYAh=="},
        {"type": "text", "text": "Let me look that up for you."},
        {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": TOOL_INPUT},
    ],
    stop_reason="tool_use",
)


def over_the_wire(events: list[SSEEvent]) -> list[SSEEvent]:
    return parse_sse(format_sse(events))


def test_a_plain_answer_streams_as_anthropic_does_and_assembles_back_exactly():
    events = over_the_wire(split(MESSAGES, FULL, include_usage=False))
    names = [e.event for e in events]
    assert names[:2] == ["message_start", "ping"]
    assert names[-2:] == ["message_delta", "message_stop"]
    assert names.count("content_block_start") == names.count("content_block_stop") == 3
    # Each frame's type is its event's name, as the SDK's stream reader checks.
    assert all(json.loads(e.data)["type"] == e.event for e in events)
    deltas = {json.loads(e.data)["delta"]["type"] for e in events if e.event == "content_block_delta"}
    assert deltas == {"thinking_delta", "signature_delta", "text_delta", "input_json_delta"}
    back = assemble(MESSAGES, events)
    assert back == FULL
    assert list(back) == list(FULL)  # the same field order, too
    assert back["content"][2]["input"] == TOOL_INPUT
    assert stream_complete(MESSAGES, events) and ends_stream(events)


def test_citations_ride_as_citations_deltas():
    cited = message([{"type": "text", "text": "Paris.", "citations": [{"type": "char_location", "cited_text": "Paris"}]}])
    events = split(MESSAGES, cited, include_usage=True)
    assert any('"citations_delta"' in e.data for e in events)
    assert assemble(MESSAGES, events) == cited


def test_a_stream_without_message_stop_or_with_an_error_event_is_not_a_whole_answer():
    events = split(MESSAGES, FULL, include_usage=True)
    cut = events[:-1]
    read = summary(MESSAGES, events=cut)
    assert not read.complete and "message_stop" in (read.problem or "")
    failed = events[:3] + [
        SSEEvent(json.dumps({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}), "error")
    ]
    read = summary(MESSAGES, events=failed)
    assert not read.complete and "Overloaded" in (read.problem or "")


def test_the_proxys_error_frame_on_messages_is_anthropics():
    frame = error_event(MESSAGES, {"message": "the stream was cut", "type": "seedreplay_error", "code": "upstream_stream_cut"})
    assert frame.event == "error"
    assert json.loads(frame.data) == {"type": "error", "error": {"type": "seedreplay_error", "message": "the stream was cut"}}


def test_a_long_stream_assembles_to_its_text():
    text = "word " * 20_000
    events = split(MESSAGES, message([{"type": "text", "text": text}]), include_usage=True)
    assert len(events) < 100  # split cuts a long text in deltas of a few KB, not a word each
    assert assemble(MESSAGES, events)["content"][0]["text"] == text
    # The API's own stream of it: a word a delta, 20,000 of them.
    word = SSEEvent(
        json.dumps({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "word "}}),
        "content_block_delta",
    )
    empty = split(MESSAGES, message([{"type": "text", "text": ""}]), include_usage=True)
    stop = next(at for at, event in enumerate(empty) if event.event == "content_block_stop")
    assert assemble(MESSAGES, empty[:stop] + [word] * 20_000 + empty[stop:])["content"][0]["text"] == text


def test_what_an_answer_says():
    assert reply_text(MESSAGES, FULL) == "Let me look that up for you."
    assert finish_reason(MESSAGES, FULL) == "tool_use"
    read = summary(MESSAGES, body=FULL)
    assert read.model == "claude-sonnet-4-5"
    assert "[tool call] get_weather(" in read.text and "Zürich" in read.text
    assert answer_parts(MESSAGES, FULL)[1] == ["text", "Let me look that up for you."]
    assert reply_text(MESSAGES, message([{"type": "tool_use", "id": "t", "name": "f", "input": {}}])) is None


def entry(**answer) -> Entry:
    return Entry(
        key="v1:x",
        endpoint=MESSAGES,
        request={"endpoint": MESSAGES, "params": {"model": "claude-sonnet-4-5"}},
        status=200,
        **answer,
    )


def test_savings_read_anthropics_usage_plain_and_streamed():
    # Input counts the prompt read from Anthropic's cache too; output is message_delta's final count.
    assert usage_of(entry(body=FULL)) == (15, 9)
    streamed = split(MESSAGES, FULL, include_usage=True)
    assert usage_of(entry(events=streamed)) == (15, 9)
    # As the API streams it: message_start says 1 output token so far, message_delta the final count.
    start = json.loads(streamed[0].data)
    start["message"]["usage"]["output_tokens"] = 1
    as_sent = [SSEEvent(json.dumps(start), "message_start"), *streamed[1:]]
    assert usage_of(entry(events=as_sent)) == (15, 9)
    assert assemble(MESSAGES, as_sent)["usage"]["output_tokens"] == 9
