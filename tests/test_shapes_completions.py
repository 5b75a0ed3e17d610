"""Legacy completions: a text_completion body and its stream of text pieces."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st
from openai.types import Completion
from shapes_support import ANSWER_TEXT, COMPLETIONS, SETTINGS, TEXT, sse_reply, without_usage

from pytest_seedreplay.shapes import (
    assemble,
    completions,
    split,
    stream_complete,
)


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
        choices.append(
            {"text": text, "index": index, "logprobs": logprobs, "finish_reason": draw(st.sampled_from(["stop", "length"]))}
        )
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


def test_sdk_completions_stream_reads_a_split_body(canned):
    client, answer = canned
    body = {
        "id": "cmpl-1",
        "object": "text_completion",
        "created": 3,
        "model": "gpt-3.5-turbo-instruct",
        "choices": [{"text": "One two\nthree 🌍", "index": 0, "logprobs": None, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 2, "completion_tokens": 3, "total_tokens": 5},
    }
    answer["reply"] = sse_reply(split(COMPLETIONS, body, True))
    chunks = list(client.completions.create(model="x", prompt="p", stream=True, stream_options={"include_usage": True}))
    assert "".join(c.choices[0].text for c in chunks if c.choices) == "One two\nthree 🌍"
    assert chunks[-1].usage.total_tokens == 5


def test_completions_text_reply_and_finish_reason():
    body = {
        "choices": [{"index": 0, "text": "One", "finish_reason": "stop"}, {"index": 1, "text": "Two", "finish_reason": "length"}]
    }
    assert completions.answer_text(body) == "One\n---\nTwo"
    assert completions.reply_text(body) == "One" and completions.reply_text({"choices": [{"text": ""}]}) is None
    assert completions.answer_parts(body) == [["One"], ["Two"]]
    assert completions.finish_reason(body) == "stop,length"
