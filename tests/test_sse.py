"""SSE: parsing in any chunking, and stream <-> plain answers shaped exactly as the openai SDK expects."""

from __future__ import annotations

import array
import base64
import copy
import json
import struct
from unittest import mock

import openai
import pydantic
import pytest
from aiohttp import web
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from openai._streaming import SSEDecoder
from openai.lib.streaming.chat import ChatCompletionStreamState
from openai.lib.streaming.responses import ResponseStreamState
from openai.types import Completion
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from openai.types.responses import Response, ResponseStreamEvent

from pytest_seedreplay.proxy.serve import BackgroundServer
from pytest_seedreplay.core.entry import SSEEvent
from pytest_seedreplay.shapes import (
    MalformedStream,
    SSEParser,
    adapt_stream,
    answer_summary,
    assemble,
    convert_embeddings,
    format_event,
    format_sse,
    parse_sse,
    split,
    stream_complete,
)

CHAT = "/v1/chat/completions"
COMPLETIONS = "/v1/completions"
RESPONSES = "/v1/responses"
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Text as models write it: any character JSON can carry, emoji, newlines, odd spaces.
TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)
WORDS = st.lists(st.sampled_from(["Hello", " world", "!", "\n", " 🌍", "é", "  ", "👩‍👩‍👧", "日本", "\t"]), max_size=8).map("".join)
ANSWER_TEXT = st.one_of(TEXT, WORDS)


def datas(events):
    return [(e.event, e.data) for e in events]


# ---------------------------------------------------------------------------------------------
# Wire format


def test_parser_reads_data_event_names_comments_and_multiline_data():
    raw = (
        b": keep-alive\n\n"
        b"event: response.created\ndata: {\"a\":1}\n\n"
        b"data: line one\ndata:line two\ndata:  leading space kept\n\n"
        b"id: 7\nretry: 1000\nunknown: field\nfieldwithoutcolon\ndata: x\n\n"
        b"data\n\n"
        b"event: only-a-name\n\n"
    )
    assert datas(parse_sse(raw)) == [
        ("response.created", '{"a":1}'),
        (None, "line one\nline two\n leading space kept"),
        (None, "x"),
        (None, ""),
    ]


def test_parser_accepts_crlf_and_bare_cr_line_ends_and_a_leading_bom():
    raw = "\ufeffdata: a\r\n\r\ndata: b\r\rdata: c\n\n".encode()
    assert datas(parse_sse(raw)) == [(None, "a"), (None, "b"), (None, "c")]


def test_parser_keeps_a_crlf_split_between_chunks_as_one_line_end():
    parser = SSEParser()
    assert parser.feed(b"data: a\r") == []
    assert datas(parser.feed(b"\n\r")) == [(None, "a")]
    assert parser.feed(b"\n") == []  # the LF after a CR ends nothing: no empty event
    assert datas(parser.feed(b"data: b\n\n")) == [(None, "b")]
    assert parser.close() == []


def test_parser_decodes_a_character_split_across_chunks():
    raw = 'data: é🌍 "日本"\n\n'.encode()
    parser = SSEParser()
    events = []
    for i in range(len(raw)):
        events += parser.feed(raw[i : i + 1])
    assert datas(events) == [(None, 'é🌍 "日本"')]


def test_close_returns_a_last_event_that_lacks_its_blank_line():
    parser = SSEParser()
    assert datas(parser.feed(b"data: 1\n\ndata: [DONE]")) == [(None, "1")]
    assert datas(parser.close()) == [(None, "[DONE]")]
    assert datas(parse_sse(b"event: x\ndata: y\n")) == [("x", "y")]
    # and the parser starts afresh afterwards
    assert datas(parser.feed(b"data: again\n\n")) == [(None, "again")]


def test_format_event_writes_name_then_one_data_line_per_line():
    assert format_event(SSEEvent(data='{"a":1}')) == b'data: {"a":1}\n\n'
    assert format_event(SSEEvent(data="a\nb", event="response.created")) == (
        b"event: response.created\ndata: a\ndata: b\n\n"
    )
    assert format_event(SSEEvent(data="")) == b"data: \n\n"
    assert format_sse([SSEEvent("1"), SSEEvent("[DONE]")]) == b"data: 1\n\ndata: [DONE]\n\n"
    with pytest.raises(ValueError, match="line break"):
        format_event(SSEEvent(data="x", event="bad\nname"))


LINE_TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"), max_size=12)


@st.composite
def sse_streams(draw):
    """(bytes, the events they carry, whether the SDK's decoder should agree): varied line ends,
    comments, unknown fields, maybe a BOM."""
    events = draw(
        st.lists(
            st.tuples(st.none() | LINE_TEXT.filter(bool), st.lists(LINE_TEXT, min_size=1, max_size=3)),
            max_size=6,
        )
    )
    out = "\ufeff" if draw(st.booleans()) else ""
    # The SDK's decoder keeps a BOM, and dispatches an empty event on a blank line once an `id` was
    # seen; the spec (and we) do neither. Compare with it only where the spec leaves no doubt.
    sdk_agrees = not out
    for name, lines in events:
        def end():
            if out.endswith("\r"):  # a LF here would join the CR into one line end
                return "\r"
            return draw(st.sampled_from(["\n", "\r\n", "\r"]))

        if draw(st.booleans()):
            out += ":" + draw(LINE_TEXT) + end()
        if draw(st.booleans()):
            out += "retry: 5" + end() + "x-unknown: y" + end()
        if draw(st.booleans()):
            out += "id: 12" + end()
            sdk_agrees = False
        if name is not None:
            out += "event: " + name + end()
        for line in lines:
            sep = ": " if line.startswith(" ") or draw(st.booleans()) else ":"
            out += "data" + sep + line + end()
        out += end() * draw(st.integers(1, 2))
    return out.encode(), [(name, "\n".join(lines)) for name, lines in events], sdk_agrees


def test_parser_strips_a_leading_bom_as_the_spec_says():
    # The SDK's own decoder keeps it (and so loses the first field); we follow the spec.
    assert datas(parse_sse("\ufeffdata: a\n\n".encode())) == [(None, "a")]
    assert datas(parse_sse("data: \ufeffa\n\n".encode())) == [(None, "\ufeffa")]


@SETTINGS
@given(sse_streams(), st.data())
def test_parser_gives_the_same_events_in_every_chunking_and_agrees_with_the_sdk(stream, data):
    raw, expected, sdk_agrees = stream
    cuts = sorted(data.draw(st.lists(st.integers(0, len(raw)), max_size=12)))
    chunks = [raw[a:b] for a, b in zip([0, *cuts], [*cuts, len(raw)])]
    parser = SSEParser()
    events = [e for chunk in chunks for e in parser.feed(chunk)] + parser.close()
    assert datas(events) == expected
    assert datas(parse_sse(raw)) == expected
    if sdk_agrees:
        sdk = [(e.event, e.data) for e in SSEDecoder().iter_bytes(iter(chunks))]
        assert sdk == expected


@SETTINGS
@given(st.lists(st.tuples(st.none() | LINE_TEXT.filter(bool), TEXT.filter(lambda t: "\r" not in t)), max_size=5))
def test_format_then_parse_gives_the_events_back(pairs):
    events = [SSEEvent(data=data, event=name) for name, data in pairs]
    assert parse_sse(format_sse(events)) == events


# ---------------------------------------------------------------------------------------------
# Chat completions: bodies the API returns, and their streams


def token_logprobs(tokens):
    return [
        {"token": t, "logprob": -0.25 * i, "bytes": list(t.encode()), "top_logprobs": []} for i, t in enumerate(tokens)
    ]


@st.composite
def chat_messages(draw):
    kind = draw(st.sampled_from(["text", "refusal", "tools", "text+tools"]))
    message = {"role": "assistant", "content": None, "refusal": None}
    logprobs = None
    if kind in ("text", "text+tools"):
        shape = draw(st.sampled_from(["tokens", "other tokens", "plain"]))
        if shape == "tokens":  # logprob tokens spell the content: one token per chunk
            tokens = draw(st.lists(TEXT.filter(bool), min_size=1, max_size=5))
            message["content"] = "".join(tokens)
            logprobs = {"content": token_logprobs(tokens), "refusal": None}
        elif shape == "other tokens":  # they do not: the logprobs ride on the last chunk
            message["content"] = draw(ANSWER_TEXT)
            logprobs = {"content": token_logprobs(draw(st.lists(TEXT, max_size=3))), "refusal": None}
        else:
            message["content"] = draw(ANSWER_TEXT)
    if kind == "refusal":
        message["refusal"] = draw(ANSWER_TEXT)
    if "tools" in kind:
        message["tool_calls"] = [
            {
                "id": f"call_{i}",
                "type": "function",
                "function": {"name": draw(st.sampled_from(["get_weather", "lookup"])), "arguments": json.dumps(args)},
            }
            for i, args in enumerate(
                draw(st.lists(st.dictionaries(st.sampled_from(["city", "n", "q"]), TEXT | st.integers()), min_size=1, max_size=3))
            )
        ]
    if draw(st.booleans()):
        message["annotations"] = []
    finish = "tool_calls" if "tools" in kind else draw(st.sampled_from(["stop", "length", "content_filter"]))
    return message, logprobs, finish


@st.composite
def chat_bodies(draw):
    choices = []
    for index in range(draw(st.integers(1, 3))):
        message, logprobs, finish = draw(chat_messages())
        choices.append({"index": index, "message": message, "logprobs": logprobs, "finish_reason": finish})
    body = {
        "id": "chatcmpl-" + draw(st.text("abcXYZ019", min_size=1, max_size=8)),
        "object": "chat.completion",
        "created": draw(st.integers(0, 2**31)),
        "model": draw(st.sampled_from(["gpt-4o-mini", "gpt-4.1"])),
        "choices": choices,
    }
    if draw(st.booleans()):
        body["usage"] = {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12}
    if draw(st.booleans()):
        body["system_fingerprint"] = "fp_" + draw(st.text("abc123", min_size=1, max_size=6))
    if draw(st.booleans()):
        body["service_tier"] = "default"
    return body


def without_usage(body):
    return {k: v for k, v in body.items() if k != "usage"}


def sdk_accumulate(events):
    """What the SDK's own accumulator makes of a stream."""
    state = ChatCompletionStreamState()
    for event in events:
        if event.data == "[DONE]":
            break
        state.handle_chunk(ChatCompletionChunk.model_validate(json.loads(event.data)))
    # (get_final_completion() refuses finish_reason length / content_filter; the snapshot is the same data)
    return state.current_completion_snapshot


def sdk_view(completion):
    """The parts of a ChatCompletion a caller reads."""
    return {
        "id": completion.id,
        "model": completion.model,
        "created": completion.created,
        "system_fingerprint": completion.system_fingerprint,
        "usage": completion.usage.model_dump() if completion.usage else None,
        "choices": [
            {
                "index": c.index,
                "content": c.message.content,
                "refusal": c.message.refusal,
                "role": c.message.role,
                "tool_calls": [(t.id, t.type, t.function.name, t.function.arguments) for t in c.message.tool_calls or []],
                "finish_reason": c.finish_reason,
                "logprobs": c.logprobs.model_dump() if c.logprobs else None,
            }
            for c in completion.choices
        ],
    }


@SETTINGS
@given(chat_bodies(), st.booleans())
def test_chat_split_then_assemble_gives_the_body_back(body, include_usage):
    events = split(CHAT, body, include_usage)
    expected = body if include_usage else without_usage(body)
    assert assemble(CHAT, events) == expected
    assert split(CHAT, assemble(CHAT, events), include_usage) == events
    assert stream_complete(CHAT, events)
    assert events[-1].data == "[DONE]" and all(e.event is None for e in events)
    assert parse_sse(format_sse(events)) == events
    ChatCompletion.model_validate(assemble(CHAT, events))


@SETTINGS
@given(chat_bodies(), st.booleans())
def test_the_sdk_accumulator_rebuilds_the_body_from_our_stream(body, include_usage):
    events = split(CHAT, body, include_usage)
    expected = body if include_usage else without_usage(body)
    assert sdk_view(sdk_accumulate(events)) == sdk_view(ChatCompletion.model_validate(expected))
    chunks = [json.loads(e.data) for e in events[:-1]]
    usage_chunks = [c for c in chunks if c["choices"] == []]
    assert len(usage_chunks) == (1 if include_usage and body.get("usage") else 0)
    if usage_chunks:
        assert chunks[-1] is usage_chunks[0]


def test_chat_stream_has_the_shape_the_api_sends():
    body = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 5,
        "model": "gpt-4o-mini",
        "system_fingerprint": "fp_x",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "Hi there", "refusal": None}, "logprobs": None, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3},
    }
    chunks = [json.loads(e.data) for e in split(CHAT, body, True)[:-1]]
    head = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 5, "model": "gpt-4o-mini", "system_fingerprint": "fp_x"}
    choice = {"index": 0, "logprobs": None, "finish_reason": None}
    assert chunks == [
        {**head, "choices": [{**choice, "delta": {"role": "assistant", "content": "", "refusal": None}}], "usage": None},
        {**head, "choices": [{**choice, "delta": {"content": "Hi "}}], "usage": None},
        {**head, "choices": [{**choice, "delta": {"content": "there"}}], "usage": None},
        {**head, "choices": [{**choice, "delta": {}, "finish_reason": "stop"}], "usage": None},
        {**head, "choices": [], "usage": body["usage"]},
    ]
    assert [list(c["choices"][0]) for c in chunks[:-1]] == [["index", "delta", "logprobs", "finish_reason"]] * 4


# A stream as the API sends it: obfuscation, n=2 interleaved, a tool call opening in the role delta,
# logprobs per token, usage chunk.
REAL_STREAM = [
    {"choices": [{"index": 0, "delta": {"role": "assistant", "content": "", "refusal": None}, "logprobs": None, "finish_reason": None}], "obfuscation": "aa"},
    {"choices": [{"index": 1, "delta": {"role": "assistant", "content": None, "tool_calls": [{"index": 0, "id": "call_a", "type": "function", "function": {"name": "f", "arguments": ""}}], "refusal": None}, "logprobs": None, "finish_reason": None}]},
    {"choices": [{"index": 0, "delta": {"content": "Hel"}, "logprobs": {"content": [{"token": "Hel", "logprob": -0.1, "bytes": [72, 101, 108], "top_logprobs": []}], "refusal": None}, "finish_reason": None}]},
    {"choices": [{"index": 1, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": "{\"x\":"}}]}, "logprobs": None, "finish_reason": None}]},
    {"choices": [{"index": 0, "delta": {"content": "lo"}, "logprobs": {"content": [{"token": "lo", "logprob": -0.2, "bytes": [108, 111], "top_logprobs": []}], "refusal": None}, "finish_reason": None}]},
    {"choices": [{"index": 1, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": " 1}"}}, {"index": 1, "id": "call_b", "type": "function", "function": {"name": "g", "arguments": "{}"}}]}, "logprobs": None, "finish_reason": None}]},
    {"choices": [{"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}]},
    {"choices": [{"index": 1, "delta": {}, "logprobs": None, "finish_reason": "tool_calls"}]},
    {"choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 13}},
]
REAL_HEAD = {"id": "chatcmpl-real", "object": "chat.completion.chunk", "created": 1700000000, "model": "gpt-4o-2024-08-06", "service_tier": "default", "system_fingerprint": "fp_abc"}


def real_events(include_usage=True):
    frames = []
    for chunk in REAL_STREAM:
        frame = {**REAL_HEAD, **chunk}
        if include_usage:
            frame.setdefault("usage", None)
        elif frame["choices"] == []:
            continue
        frames.append(SSEEvent(json.dumps(frame)))
    return frames + [SSEEvent("[DONE]")]


def test_assemble_a_real_stream_into_the_exact_chat_completion():
    assert assemble(CHAT, real_events()) == {
        "id": "chatcmpl-real",
        "object": "chat.completion",
        "created": 1700000000,
        "model": "gpt-4o-2024-08-06",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hello", "refusal": None},
                "logprobs": {
                    "content": [
                        {"token": "Hel", "logprob": -0.1, "bytes": [72, 101, 108], "top_logprobs": []},
                        {"token": "lo", "logprob": -0.2, "bytes": [108, 111], "top_logprobs": []},
                    ],
                    "refusal": None,
                },
                "finish_reason": "stop",
            },
            {
                "index": 1,
                "message": {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {"id": "call_a", "type": "function", "function": {"name": "f", "arguments": '{"x": 1}'}},
                        {"id": "call_b", "type": "function", "function": {"name": "g", "arguments": "{}"}},
                    ],
                    "refusal": None,
                },
                "logprobs": None,
                "finish_reason": "tool_calls",
            },
        ],
        "usage": {"prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 13},
        "service_tier": "default",
        "system_fingerprint": "fp_abc",
    }
    assert sdk_view(sdk_accumulate(real_events())) == sdk_view(ChatCompletion.model_validate(assemble(CHAT, real_events())))


def test_adapt_stream_drops_the_usage_chunk_for_a_request_that_did_not_ask():
    adapted = adapt_stream(CHAT, real_events(include_usage=True), include_usage=False)
    frames = [json.loads(e.data) for e in adapted[:-1]]
    assert all("usage" not in f for f in frames) and all(f["choices"] for f in frames)
    assert adapted[-1].data == "[DONE]"
    assert assemble(CHAT, adapted) == without_usage(assemble(CHAT, real_events()))
    assert sdk_accumulate(adapted).usage is None


def test_adapt_stream_leaves_a_matching_stream_as_recorded():
    assert adapt_stream(CHAT, real_events(True), True) == real_events(True)
    assert adapt_stream(CHAT, real_events(False), False) == real_events(False)
    # Asked for usage, recorded without: the token counts are unknown, nothing is made up.
    assert adapt_stream(CHAT, real_events(False), True) == real_events(False)


def test_adapt_stream_moves_usage_found_on_a_content_chunk_into_a_usage_chunk():
    events = split(CHAT, {**assemble(CHAT, real_events(False))}, False)
    last = json.loads(events[-2].data)
    last["usage"] = {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}
    events[-2] = SSEEvent(json.dumps(last))
    adapted = adapt_stream(CHAT, events, True)
    assert json.loads(adapted[-2].data)["choices"] == [] and json.loads(adapted[-2].data)["usage"]["total_tokens"] == 2
    assert adapted[-1].data == "[DONE]"


def test_adapt_stream_leaves_responses_streams_alone():
    events = split(RESPONSES, RESPONSE, False)
    assert adapt_stream(RESPONSES, events, False) == events


# Frames that read usage in every way the text shortcut must get right: a null or real usage, first
# or last, nested, inside a string, behind a \u escape, error frames, frames that are not JSON.
_USAGE_VALUE = st.sampled_from([None, {"total_tokens": 3}])
_FRAME_OBJECT = st.fixed_dictionaries(
    {"id": st.just("c1"), "choices": st.sampled_from([[], [{"index": 0, "delta": {"content": "usage"}}], [{"index": 0, "delta": {}}]])},
    optional={
        "usage": _USAGE_VALUE,
        "error": st.sampled_from([None, {"message": "boom"}]),
        "meta": st.fixed_dictionaries({"usage": _USAGE_VALUE}),
        "note": st.sampled_from(['"usage":null', "usage", "x"]),
        "obfuscation": st.just("Zm9v"),
    },
)


def _frame_text(obj, escape_usage, usage_first):
    if usage_first and "usage" in obj:
        obj = {"usage": obj["usage"], **{k: v for k, v in obj.items() if k != "usage"}}
    text = json.dumps(obj, separators=(",", ":"))
    return text.replace('"usage"', '"\\u0075sage"', 1) if escape_usage else text


_FRAME = st.one_of(
    st.builds(_frame_text, _FRAME_OBJECT, st.booleans(), st.booleans()).map(SSEEvent),
    st.builds(lambda obj: SSEEvent(json.dumps(obj, separators=(",", ":")), "error"), _FRAME_OBJECT),
    st.sampled_from([SSEEvent("not json, usage"), SSEEvent("[DONE]")]),
)


_TRICKY = [
    SSEEvent('{"id":"c1","choices":[],"meta":{"usage":null},"usage":{"total_tokens":3}}'),  # nested null, real usage
    SSEEvent('{"id":"c1","choices":[{"index":0,"delta":{}}],"usage":{"total_tokens":3}}'),  # usage on a content chunk
    SSEEvent('{"id":"c1","choices":[],"usage":null}', "error"),  # an error frame keeps its member
    SSEEvent('{"id":"c1","error":{"message":"boom"},"usage":null}'),
    SSEEvent('{"id":"c1","choices":[],"\\u0075sage":null}'),  # the key behind an escape
    SSEEvent('{"id":"c1","choices":[],"meta":{"usage":null}}'),  # only a nested one: nothing to cut
    SSEEvent('{"usage":null,"id":"c1","choices":[]}'),  # first, not last
    SSEEvent('{"id":"c1","choices":[],"usage":null}'),
]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frames=st.lists(st.one_of(_FRAME, st.sampled_from(_TRICKY)), max_size=6), include_usage=st.booleans())
@example(frames=_TRICKY, include_usage=False)
@example(frames=_TRICKY, include_usage=True)
def test_adapt_stream_reads_text_only_where_decoding_gives_the_same_frames(frames, include_usage):
    from pytest_seedreplay.shapes import sse

    fast = adapt_stream(CHAT, frames, include_usage)
    with mock.patch.object(sse, "_fit_by_text", lambda event, include_usage: None):
        decoded = adapt_stream(CHAT, frames, include_usage)

    def meaning(event):
        try:
            return event.event, json.loads(event.data)
        except ValueError:
            return event.event, event.data

    assert [meaning(e) for e in fast] == [meaning(e) for e in decoded]



# ---------------------------------------------------------------------------------------------
# Complete or not


def test_stream_complete_needs_done_and_no_error_frame():
    events = real_events()
    assert stream_complete(CHAT, events)
    assert not stream_complete(CHAT, events[:-1])  # cut before [DONE]
    assert not stream_complete(CHAT, events[:3])
    assert not stream_complete(CHAT, [])
    assert not stream_complete(CHAT, [SSEEvent("[DONE]")])  # nothing to answer with
    error = SSEEvent(json.dumps({"error": {"message": "overloaded", "type": "server_error"}}))
    assert not stream_complete(CHAT, events[:3] + [error] + events[3:])
    assert not stream_complete(CHAT, events[:3] + [SSEEvent("{not json")] + events[3:])
    assert not stream_complete(CHAT, events[:3] + [SSEEvent('{"x":1}', event="error")] + events[3:])
    assert stream_complete("/chat/completions", events)  # endpoint without /v1, as a base path gives it


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


# ---------------------------------------------------------------------------------------------
# Legacy completions


@st.composite
def completion_bodies(draw):
    choices = []
    for index in range(draw(st.integers(1, 3))):
        if draw(st.booleans()):
            tokens = draw(st.lists(TEXT.filter(bool), min_size=1, max_size=4))
            text = "".join(tokens)
            logprobs = {
                "tokens": tokens,
                "token_logprobs": [-0.5] * len(tokens),
                "top_logprobs": [{t: -0.5} for t in tokens],
                "text_offset": list(range(len(tokens))),
            }
        else:
            text, logprobs = draw(ANSWER_TEXT), None
        choices.append({"text": text, "index": index, "logprobs": logprobs, "finish_reason": draw(st.sampled_from(["stop", "length"]))})
    body = {"id": "cmpl-1", "object": "text_completion", "created": 3, "model": "gpt-3.5-turbo-instruct", "choices": choices}
    if draw(st.booleans()):
        body["usage"] = {"prompt_tokens": 2, "completion_tokens": 3, "total_tokens": 5}
    if draw(st.booleans()):
        body["system_fingerprint"] = "fp_1"
    return body


@SETTINGS
@given(completion_bodies(), st.booleans())
def test_completions_split_then_assemble_gives_the_body_back(body, include_usage):
    events = split(COMPLETIONS, body, include_usage)
    expected = body if include_usage else without_usage(body)
    assert assemble(COMPLETIONS, events) == expected
    assert split(COMPLETIONS, expected, include_usage) == events
    assert stream_complete(COMPLETIONS, events)
    frames = [json.loads(e.data) for e in events[:-1]]
    assert all(f["object"] == "text_completion" for f in frames)
    Completion.model_validate(assemble(COMPLETIONS, events))
    texts = {}
    for frame in frames:
        for choice in frame["choices"]:
            texts[choice["index"]] = texts.get(choice["index"], "") + choice["text"]
    assert texts == {c["index"]: c["text"] for c in body["choices"]}


# ---------------------------------------------------------------------------------------------
# Responses

RESPONSE = {
    "id": "resp_1",
    "object": "response",
    "created_at": 1700000000,
    "status": "completed",
    "completed_at": 1700000001,
    "error": None,
    "incomplete_details": None,
    "instructions": None,
    "model": "gpt-4.1-2025-04-14",
    "output": [
        {
            "id": "rs_1",
            "type": "reasoning",
            "summary": [{"type": "summary_text", "text": "Thinking about it."}],
        },
        {
            "id": "msg_1",
            "type": "message",
            "status": "completed",
            "role": "assistant",
            "content": [
                {
                    "type": "output_text",
                    "text": "Paris is sunny 🌞.\nSee the source.",
                    "annotations": [{"type": "url_citation", "start_index": 0, "end_index": 5, "title": "Paris", "url": "https://example.com"}],
                    "logprobs": [],
                },
                {"type": "refusal", "refusal": "I can't share more."},
            ],
        },
        {
            "id": "fc_1",
            "type": "function_call",
            "status": "completed",
            "call_id": "call_1",
            "name": "get_weather",
            "arguments": '{"city": "Paris", "unit": "c"}',
        },
    ],
    "parallel_tool_calls": True,
    "temperature": 1.0,
    "tool_choice": "auto",
    "tools": [],
    "top_p": 1.0,
    "usage": {
        "input_tokens": 10,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": 20,
        "output_tokens_details": {"reasoning_tokens": 4},
        "total_tokens": 30,
    },
}

EVENT_ADAPTER = pydantic.TypeAdapter(ResponseStreamEvent)


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
        {"id": f"msg_{i}", "type": "message", "status": "completed", "role": "assistant", "content": [{"type": "output_text", "text": t, "annotations": [], "logprobs": []}]}
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


# ---------------------------------------------------------------------------------------------
# The real SDK, over real HTTP, reads what we send


@pytest.fixture(scope="module")
def canned():
    """A loopback server answering every POST with the bytes the test set."""
    answer = {}

    async def handler(request):
        await request.read()
        answer["request"] = await request.json()
        content_type, payload = answer["reply"]
        return web.Response(body=payload, content_type=content_type)

    def factory():
        app = web.Application()
        app.router.add_post("/v1/{tail:.*}", handler)
        return app

    with BackgroundServer(factory) as server:
        client = openai.OpenAI(base_url=server.url + "/v1", api_key="test-key", max_retries=0)
        yield client, answer


def sse_reply(events):
    return ("text/event-stream", format_sse(events))


def test_sdk_chat_stream_helper_reads_a_split_body(canned):
    client, answer = canned
    body = assemble(CHAT, real_events())
    answer["reply"] = sse_reply(split(CHAT, body, True))
    with client.chat.completions.stream(
        model="gpt-4o", messages=[{"role": "user", "content": "hi"}], n=2, stream_options={"include_usage": True}
    ) as stream:
        deltas = [e.delta for e in stream if e.type == "content.delta"]
        final = stream.get_final_completion()
    assert "".join(deltas) == "Hello"
    assert sdk_view(final) == sdk_view(ChatCompletion.model_validate(body))


def test_sdk_chat_create_reads_an_assembled_stream(canned):
    client, answer = canned
    answer["reply"] = ("application/json", json.dumps(assemble(CHAT, real_events())).encode())
    completion = client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    assert completion.choices[0].message.content == "Hello"
    assert completion.choices[1].message.tool_calls[0].function.arguments == '{"x": 1}'
    assert completion.usage.total_tokens == 13


def test_sdk_completions_stream_reads_a_split_body(canned):
    client, answer = canned
    body = {
        "id": "cmpl-1", "object": "text_completion", "created": 3, "model": "gpt-3.5-turbo-instruct",
        "choices": [{"text": "One two\nthree 🌍", "index": 0, "logprobs": None, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 2, "completion_tokens": 3, "total_tokens": 5},
    }
    answer["reply"] = sse_reply(split(COMPLETIONS, body, True))
    chunks = list(client.completions.create(model="x", prompt="p", stream=True, stream_options={"include_usage": True}))
    assert "".join(c.choices[0].text for c in chunks if c.choices) == "One two\nthree 🌍"
    assert chunks[-1].usage.total_tokens == 5


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


def test_sdk_raises_on_an_error_frame_we_would_not_store(canned):
    client, answer = canned
    events = real_events()[:3] + [SSEEvent(json.dumps({"error": {"message": "upstream went away", "type": "server_error"}}))]
    assert not stream_complete(CHAT, events)
    answer["reply"] = sse_reply(events)
    with pytest.raises(openai.APIError, match="upstream went away"):
        list(client.chat.completions.create(model="x", messages=[], stream=True))


# ---------------------------------------------------------------------------------------------
# Embeddings

EMBEDDING_BODY = {
    "object": "list",
    "data": [
        {"object": "embedding", "index": 0, "embedding": [0.1, -0.25, 3.0e-5, 1.5, -0.0069292835]},
        {"object": "embedding", "index": 1, "embedding": [0.0, 1.0, -1.0, 0.33333334, 1.5e-30]},
    ],
    "model": "text-embedding-3-small",
    "usage": {"prompt_tokens": 4, "total_tokens": 4},
}


def f32(values):
    return array.array("f", values).tolist()


def test_sdk_decodes_our_base64_to_the_float32_vectors(canned):
    client, answer = canned
    answer["reply"] = ("application/json", json.dumps(convert_embeddings(EMBEDDING_BODY, "base64")).encode())
    result = client.embeddings.create(model="text-embedding-3-small", input=["a", "b"])  # the SDK asks for base64
    assert answer["request"]["encoding_format"] == "base64"
    assert [d.embedding for d in result.data] == [f32(d["embedding"]) for d in EMBEDDING_BODY["data"]]


def test_sdk_reads_floats_converted_back_from_base64(canned):
    client, answer = canned
    as_base64 = convert_embeddings(EMBEDDING_BODY, "base64")
    answer["reply"] = ("application/json", json.dumps(convert_embeddings(as_base64, "float")).encode())
    result = client.embeddings.create(model="text-embedding-3-small", input=["a", "b"], encoding_format="float")
    assert [d.embedding for d in result.data] == [d["embedding"] for d in EMBEDDING_BODY["data"]]


def test_convert_embeddings_leaves_its_input_untouched_and_knows_the_defaults():
    before = copy.deepcopy(EMBEDDING_BODY)
    encoded = convert_embeddings(EMBEDDING_BODY, "base64")
    assert EMBEDDING_BODY == before
    assert all(isinstance(d["embedding"], str) for d in encoded["data"])
    assert {k: v for k, v in encoded.items() if k != "data"} == {k: v for k, v in before.items() if k != "data"}
    snapshot = copy.deepcopy(encoded)
    assert convert_embeddings(encoded, None) == convert_embeddings(encoded, "float")
    assert encoded == snapshot
    assert convert_embeddings(EMBEDDING_BODY, "float") == EMBEDDING_BODY
    assert convert_embeddings(encoded, "base64") == encoded
    raw = base64.b64decode(encoded["data"][0]["embedding"])
    assert struct.unpack("<5f", raw) == tuple(f32(EMBEDDING_BODY["data"][0]["embedding"]))
    with pytest.raises(ValueError, match="encoding_format"):
        convert_embeddings(EMBEDDING_BODY, "int8")


@SETTINGS
@given(st.lists(st.floats(width=32, allow_nan=False, allow_infinity=False), max_size=50))
def test_embeddings_base64_and_float_agree_to_float32_precision(values):
    body = {"object": "list", "data": [{"object": "embedding", "index": 0, "embedding": values}], "model": "m"}
    encoded = convert_embeddings(body, "base64")["data"][0]["embedding"]
    sdk_decoded = array.array("f", base64.b64decode(encoded)).tolist()  # what the SDK does without numpy
    assert sdk_decoded == values
    back = convert_embeddings({"data": [{"embedding": encoded}]}, "float")["data"][0]["embedding"]
    assert f32(back) == values  # the same float32 numbers...
    assert all(len(repr(b)) <= len(repr(v)) for b, v in zip(back, values))  # ...written no longer than needed


def test_base64_to_float_prints_the_short_decimal_the_api_prints():
    encoded = convert_embeddings({"data": [{"embedding": [0.1, -0.0069292835, 0.33333334]}]}, "base64")
    assert convert_embeddings(encoded, "float")["data"][0]["embedding"] == [0.1, -0.0069292835, 0.33333334]


def test_convert_embeddings_rejects_a_broken_vector():
    with pytest.raises(ValueError):
        convert_embeddings({"data": [{"embedding": "not base64!"}]}, "float")
    with pytest.raises(ValueError, match="float32"):
        convert_embeddings({"data": [{"embedding": base64.b64encode(b"abc").decode()}]}, "float")


# ---------------------------------------------------------------------------------------------


def test_answer_summary_names_model_and_fingerprint():
    assert answer_summary(CHAT, assemble(CHAT, real_events())) == ("gpt-4o-2024-08-06", "fp_abc")
    assert answer_summary(RESPONSES, RESPONSE) == ("gpt-4.1-2025-04-14", None)
    assert answer_summary("/v1/embeddings", EMBEDDING_BODY) == ("text-embedding-3-small", None)
    assert answer_summary(CHAT, []) == (None, None)


# ---------------------------------------------------------------------------------------------
# Odd but real inputs


def test_parser_takes_bytearray_and_memoryview_chunks():
    parser = SSEParser()
    assert datas(parser.feed(bytearray(b"data: a\n"))) == []
    assert datas(parser.feed(memoryview(b"\ndata: b\r"))) == [(None, "a")]
    assert datas(parser.feed(memoryview(b"\n\r\n"))) == [(None, "b")]


@SETTINGS
@given(chat_bodies(), st.booleans(), st.data())
def test_only_the_whole_stream_is_complete_and_a_complete_stream_always_assembles(body, include_usage, data):
    events = split(CHAT, body, include_usage)
    cut = data.draw(st.integers(0, len(events) - 1))
    assert not stream_complete(CHAT, events[:cut])
    at = data.draw(st.integers(0, len(events) - 1))
    error = SSEEvent(json.dumps({"error": {"message": "boom", "type": "server_error", "param": None, "code": None}}))
    assert not stream_complete(CHAT, events[:at] + [error] + events[at:])
    assert stream_complete(CHAT, events)
    assemble(CHAT, events)


def test_frames_that_are_json_but_not_objects_make_a_stream_incomplete():
    events = real_events()
    assert not stream_complete(CHAT, events[:2] + [SSEEvent("5")] + events[2:])
    responses = split(RESPONSES, RESPONSE, False)
    broken_end = SSEEvent(json.dumps({"type": "response.completed", "sequence_number": 99}), "response.completed")
    assert not stream_complete(RESPONSES, responses[:-1] + [broken_end])
    with pytest.raises(MalformedStream):
        assemble(RESPONSES, responses[:-1] + [broken_end])


def test_assemble_takes_the_filter_preamble_some_upstreams_send_first():
    # Azure OpenAI opens with a chunk of no choices, empty id/model and prompt_filter_results.
    preamble = {"id": "", "object": "", "created": 0, "model": "", "choices": [], "prompt_filter_results": [{"prompt_index": 0}]}
    body = assemble(CHAT, [SSEEvent(json.dumps(preamble))] + real_events())
    assert (body["id"], body["model"], body["created"]) == ("chatcmpl-real", "gpt-4o-2024-08-06", 1700000000)
    assert body["prompt_filter_results"] == [{"prompt_index": 0}]
    assert body["choices"][0]["message"]["content"] == "Hello"
    assert stream_complete(CHAT, [SSEEvent(json.dumps(preamble))] + real_events())


def test_assemble_keeps_a_tool_call_id_when_a_later_piece_repeats_or_nulls_it():
    frames = [
        {**REAL_HEAD, "choices": [{"index": 0, "delta": {"role": "assistant", "tool_calls": [{"index": 0, "id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{"}}]}, "finish_reason": None}]},
        {**REAL_HEAD, "choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "id": "call_1", "function": {"arguments": "}"}}]}, "finish_reason": None}]},
        {**REAL_HEAD, "choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "id": None, "type": None, "function": {"arguments": ""}}]}, "finish_reason": "tool_calls"}]},
    ]
    body = assemble(CHAT, [SSEEvent(json.dumps(f)) for f in frames] + [SSEEvent("[DONE]")])
    assert body["choices"][0]["message"]["tool_calls"] == [{"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]


def test_responses_text_with_logprobs_streams_one_token_per_delta():
    body = copy.deepcopy(RESPONSE)
    tokens = ["Par", "is", " 🌞"]
    part = {"type": "output_text", "text": "".join(tokens), "annotations": [], "logprobs": [{"token": t, "bytes": list(t.encode()), "logprob": -0.1, "top_logprobs": []} for t in tokens]}
    body["output"] = [{"id": "msg_1", "type": "message", "status": "completed", "role": "assistant", "content": [part]}]
    events = split(RESPONSES, body, False)
    deltas = [json.loads(e.data) for e in events if e.event == "response.output_text.delta"]
    assert [d["delta"] for d in deltas] == tokens
    assert [d["logprobs"][0]["token"] for d in deltas] == tokens
    for event in events:
        EVENT_ADAPTER.validate_python(json.loads(event.data))
    assert assemble(RESPONSES, events) == body


def test_answer_summary_of_an_assembled_stream_and_a_split_body_agree():
    body = assemble(CHAT, real_events())
    assert answer_summary(CHAT, assemble(CHAT, split(CHAT, body, False))) == answer_summary(CHAT, body)


@pytest.mark.parametrize(
    "choices",
    [[{"index": "0", "delta": {}}], [{"index": 0, "delta": "text"}], ["not a choice"], {"index": 0}],
)
def test_assemble_names_a_malformed_chunk_instead_of_crashing(choices):
    events = [SSEEvent(json.dumps({**REAL_HEAD, "choices": choices})), SSEEvent("[DONE]")]
    with pytest.raises(MalformedStream):
        assemble(CHAT, events)
    assert not stream_complete(CHAT, events)


def test_ends_stream_names_the_last_word_of_every_stream_kind():
    from pytest_seedreplay.shapes import ends_stream

    assert ends_stream([SSEEvent(data='{"choices":[]}'), SSEEvent(data="[DONE]")])
    assert ends_stream([SSEEvent(data="{}", event="response.completed")])
    assert ends_stream([SSEEvent(data="{}", event="response.incomplete")])
    assert ends_stream([SSEEvent(data="{}", event="response.failed")])
    assert not ends_stream([SSEEvent(data='{"choices":[{"delta":{"content":"DONE"}}]}')])
    assert not ends_stream([SSEEvent(data="{}", event="response.output_text.delta")])
    assert not ends_stream([])
