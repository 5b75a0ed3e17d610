"""Chat completions: a body and its stream of deltas, shaped exactly as the API sends them and the openai SDK reads them."""

from __future__ import annotations

import json
from unittest import mock

import openai
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from openai.types.chat import ChatCompletion
from shapes_support import CHAT, REAL_HEAD, SETTINGS, chat_bodies, real_events, sdk_accumulate, sdk_view, sse_reply, without_usage

from pytest_seedreplay.core.entry import SSEEvent
from pytest_seedreplay.shapes import (
    MalformedStream,
    adapt_stream,
    assemble,
    chat,
    format_sse,
    parse_sse,
    split,
    stream_complete,
)


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
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hi there", "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3},
    }
    chunks = [json.loads(e.data) for e in split(CHAT, body, True)[:-1]]
    head = {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 5,
        "model": "gpt-4o-mini",
        "system_fingerprint": "fp_x",
    }
    choice = {"index": 0, "logprobs": None, "finish_reason": None}
    assert chunks == [
        {**head, "choices": [{**choice, "delta": {"role": "assistant", "content": "", "refusal": None}}], "usage": None},
        {**head, "choices": [{**choice, "delta": {"content": "Hi "}}], "usage": None},
        {**head, "choices": [{**choice, "delta": {"content": "there"}}], "usage": None},
        {**head, "choices": [{**choice, "delta": {}, "finish_reason": "stop"}], "usage": None},
        {**head, "choices": [], "usage": body["usage"]},
    ]
    assert [list(c["choices"][0]) for c in chunks[:-1]] == [["index", "delta", "logprobs", "finish_reason"]] * 4


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


# Frames that read usage in every way the text shortcut must get right: a null or real usage, first
# or last, nested, inside a string, behind a \u escape, error frames, frames that are not JSON.
_USAGE_VALUE = st.sampled_from([None, {"total_tokens": 3}])
_FRAME_OBJECT = st.fixed_dictionaries(
    {
        "id": st.just("c1"),
        "choices": st.sampled_from([[], [{"index": 0, "delta": {"content": "usage"}}], [{"index": 0, "delta": {}}]]),
    },
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
    from pytest_seedreplay.shapes import chunks as sse

    fast = adapt_stream(CHAT, frames, include_usage)
    with mock.patch.object(sse, "_fit_by_text", lambda event, include_usage: None):
        decoded = adapt_stream(CHAT, frames, include_usage)

    def meaning(event):
        try:
            return event.event, json.loads(event.data)
        except ValueError:
            return event.event, event.data

    assert [meaning(e) for e in fast] == [meaning(e) for e in decoded]


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
        {
            **REAL_HEAD,
            "choices": [
                {
                    "index": 0,
                    "delta": {
                        "role": "assistant",
                        "tool_calls": [
                            {"index": 0, "id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{"}}
                        ],
                    },
                    "finish_reason": None,
                }
            ],
        },
        {
            **REAL_HEAD,
            "choices": [
                {
                    "index": 0,
                    "delta": {"tool_calls": [{"index": 0, "id": "call_1", "function": {"arguments": "}"}}]},
                    "finish_reason": None,
                }
            ],
        },
        {
            **REAL_HEAD,
            "choices": [
                {
                    "index": 0,
                    "delta": {"tool_calls": [{"index": 0, "id": None, "type": None, "function": {"arguments": ""}}]},
                    "finish_reason": "tool_calls",
                }
            ],
        },
    ]
    body = assemble(CHAT, [SSEEvent(json.dumps(f)) for f in frames] + [SSEEvent("[DONE]")])
    assert body["choices"][0]["message"]["tool_calls"] == [
        {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    ]


@pytest.mark.parametrize(
    "choices",
    [[{"index": "0", "delta": {}}], [{"index": 0, "delta": "text"}], ["not a choice"], {"index": 0}],
)
def test_assemble_names_a_malformed_chunk_instead_of_crashing(choices):
    events = [SSEEvent(json.dumps({**REAL_HEAD, "choices": choices})), SSEEvent("[DONE]")]
    with pytest.raises(MalformedStream):
        assemble(CHAT, events)
    assert not stream_complete(CHAT, events)


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


def test_sdk_raises_on_an_error_frame_we_would_not_store(canned):
    client, answer = canned
    events = real_events()[:3] + [SSEEvent(json.dumps({"error": {"message": "upstream went away", "type": "server_error"}}))]
    assert not stream_complete(CHAT, events)
    answer["reply"] = sse_reply(events)
    with pytest.raises(openai.APIError, match="upstream went away"):
        list(client.chat.completions.create(model="x", messages=[], stream=True))


# ---------------------------------------------------------------------------------------------
# What a chat answer says


def _chat_answer(*messages, finish="stop"):
    return {"choices": [{"index": i, "message": m, "finish_reason": finish} for i, m in enumerate(messages)]}


def test_chat_text_shows_content_refusal_and_tool_calls_and_separates_choices():
    call = {"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": '{"city":"Oslo"}'}}
    body = _chat_answer({"content": "Sunny."}, {"content": None, "refusal": "I can't."}, {"content": None, "tool_calls": [call]})
    assert chat.answer_text(body) == 'Sunny.\n---\nI can\'t.\n---\n[tool call] weather({"city":"Oslo"})'
    assert chat.finish_reason(body) == "stop,stop,stop"
    assert chat.answer_parts(body) == [["Sunny.", None, []], [None, "I can't.", []], [None, None, ['weather({"city":"Oslo"})']]]


def test_chat_reply_is_the_first_choice_content_and_none_without_one():
    assert chat.reply_text(_chat_answer({"content": "Paris."}, {"content": "Lyon."})) == "Paris."
    assert chat.reply_text(_chat_answer({"content": None, "tool_calls": []})) is None
    assert chat.reply_text(_chat_answer({"content": ""})) is None
    assert chat.reply_text({"choices": "not a list"}) is None and chat.answer_text(None) == ""
    assert chat.finish_reason({}) is None
