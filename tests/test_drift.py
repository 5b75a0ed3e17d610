"""Drift: a live answer set against its recording (pure functions)."""

from __future__ import annotations

import base64
import struct

from pytest_seedreplay.core.entry import Entry
from pytest_seedreplay.core.key import canonical_request, key_of_canonical
from pytest_seedreplay.drift import Drift, compare, text_similarity, vector_similarity
from pytest_seedreplay.shapes import prompt_text, split, summary

CHAT = "/v1/chat/completions"
REQUEST = {
    "model": "gpt-4o-mini",
    "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
    "seed": 1,
}


def chat_body(text: str, fingerprint: str = "fp_a", finish: str = "stop", tool_calls=None) -> dict:
    message = {"role": "assistant", "content": text, "refusal": None}
    if tool_calls:
        message["tool_calls"] = tool_calls
    return {
        "id": "chatcmpl-" + text[:5],
        "object": "chat.completion",
        "created": len(text),
        "model": "gpt-4o-mini",
        "system_fingerprint": fingerprint,
        "usage": {"total_tokens": len(text)},
        "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
    }


def entry(body: dict, endpoint: str = CHAT, request: dict = REQUEST, streamed: bool = False) -> Entry:
    canonical = canonical_request(endpoint, request)
    common = {
        "key": key_of_canonical(canonical),
        "endpoint": endpoint,
        "request": canonical,
        "system_fingerprint": body.get("system_fingerprint"),
    }
    if streamed:
        return Entry(events=split(endpoint, body, include_usage=False), **common)
    return Entry(body=body, **common)


def test_same_answer_with_new_ids_is_verbatim_and_not_drift():
    recorded = chat_body("Hello there.")
    live = {**chat_body("Hello there."), "id": "chatcmpl-other", "created": 99, "usage": {"total_tokens": 1}}
    drift = compare(entry(recorded), entry(live))
    assert drift.verbatim and drift.similarity == 1.0 and not drift.drifted
    assert drift.describe().endswith("unchanged")


def test_changed_text_is_drift_with_a_similarity_between_zero_and_one():
    drift = compare(entry(chat_body("The cat sat on the mat today.")), entry(chat_body("The cat sat on a mat today.")))
    assert drift.drifted and not drift.verbatim
    assert 0.5 < drift.similarity < 1
    assert drift.recorded_text == "The cat sat on the mat today."
    assert drift.live_text == "The cat sat on a mat today."
    assert "answer drifted (similarity 0.86" in drift.describe()


def test_a_new_fingerprint_alone_is_reported_but_is_not_drift():
    drift = compare(entry(chat_body("Same.", "fp_old")), entry(chat_body("Same.", "fp_new")))
    assert drift.fingerprint_changed and not drift.drifted
    assert (drift.recorded_fingerprint, drift.live_fingerprint) == ("fp_old", "fp_new")
    assert "system_fingerprint changed" in drift.describe()


def test_a_changed_finish_reason_is_drift_even_with_the_same_text():
    drift = compare(entry(chat_body("Cut", finish="stop")), entry(chat_body("Cut", finish="length")))
    assert drift.verbatim  # same words: the finish reason alone makes it drift
    assert drift.finish_reason_changed and drift.drifted
    assert drift.verdict == "changed" and drift.differences == ["finish_reason: stop → length"]
    assert "changed: finish_reason: stop → length" in drift.describe()


def test_tool_calls_are_part_of_the_answer():
    def call(args: str) -> list[dict]:
        return [{"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": args}}]

    drift = compare(
        entry(chat_body("", tool_calls=call('{"city":"Oslo"}'))), entry(chat_body("", tool_calls=call('{"city":"Rome"}')))
    )
    assert drift.drifted
    assert drift.recorded_text == '[tool call] weather({"city":"Oslo"})'


def test_a_streamed_recording_is_compared_as_its_assembled_answer():
    recorded = entry(chat_body("Streaming words arrive one by one."), streamed=True)
    assert compare(recorded, entry(chat_body("Streaming words arrive one by one."))).verbatim
    drift = compare(recorded, entry(chat_body("Streaming words arrive two by two."), streamed=True))
    assert drift.drifted and drift.live_text == "Streaming words arrive two by two."


def b64(values: list[float]) -> str:
    return base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode()


def test_embeddings_compare_vectors_by_cosine_whatever_their_encoding():
    request = {"model": "text-embedding-3-small", "input": "alpha"}
    as_list = {"object": "list", "data": [{"index": 0, "embedding": [1.0, 0.0, 0.5]}]}
    as_b64 = {"object": "list", "data": [{"index": 0, "embedding": b64([1.0, 0.0, 0.5])}]}
    same = compare(entry(as_list, "/v1/embeddings", request), entry(as_b64, "/v1/embeddings", request))
    assert same.verbatim and same.similarity == 1.0
    turned = {"object": "list", "data": [{"index": 0, "embedding": [0.0, 1.0, 0.0]}]}
    drift = compare(entry(as_list, "/v1/embeddings", request), entry(turned, "/v1/embeddings", request))
    assert drift.drifted and drift.similarity == 0.0
    assert drift.recorded_text == "embedding[0] (3 dims): [1.000000, 0.000000, 0.500000]"


def test_responses_api_answers_compare_their_output_text():
    request = {"model": "gpt-4o-mini", "input": "Hi", "instructions": "Be kind"}

    def body(text: str) -> dict:
        return {
            "id": "resp_" + text,
            "object": "response",
            "status": "completed",
            "output": [
                {
                    "id": "msg_" + text,
                    "type": "message",
                    "role": "assistant",
                    "content": [{"type": "output_text", "text": text, "annotations": []}],
                }
            ],
        }

    assert compare(entry(body("Hello"), "/v1/responses", request), entry(body("Hello"), "/v1/responses", request)).verbatim
    drift = compare(entry(body("Hello"), "/v1/responses", request), entry(body("Howdy"), "/v1/responses", request))
    assert drift.drifted and drift.live_text == "Howdy" and drift.live_finish_reason == "completed"
    assert prompt_text(canonical_request("/v1/responses", request)) == "instructions: Be kind\ninput: Hi"


def test_a_live_answer_without_recording_is_not_counted_as_drift():
    drift = compare(None, entry(chat_body("new")))
    assert not drift.recorded and not drift.drifted and not drift.fingerprint_changed
    assert "no recording to compare with" in drift.describe()


def test_to_dict_carries_the_derived_verdicts():
    data = compare(entry(chat_body("a b", "fp_1")), entry(chat_body("a c", "fp_2"))).to_dict()
    assert data["drifted"] and data["fingerprint_changed"] and not data["finish_reason_changed"]
    assert data["similarity"] == 0.5


def test_similarity_helpers():
    assert text_similarity("same words", "same words") == 1.0
    assert text_similarity("", "something") == 0.0
    assert vector_similarity([[1.0, 0.0]], [[1.0, 0.0], [0.0, 1.0]]) == 0.0


def test_embedding_similarity_stays_a_score_between_zero_and_one():
    opposite = vector_similarity([[1.0, 0.0]], [[-1.0, 0.0]])
    nearly_orthogonal = vector_similarity([[1.0, 0.0]], [[-0.00001, 1.0]])
    assert opposite == 0.0 and nearly_orthogonal == 0.0
    assert f"{nearly_orthogonal:.2f}" == "0.00"  # never "-0.00"


def test_changes_name_only_what_changed():
    embedding = {"object": "list", "data": [{"index": 0, "embedding": [1.0, 0.0]}]}
    request = {"model": "text-embedding-3-small", "input": "a"}
    turned = {"object": "list", "data": [{"index": 0, "embedding": [0.0, 1.0]}]}
    drift = compare(entry(embedding, "/v1/embeddings", request), entry(turned, "/v1/embeddings", request))
    assert drift.changes() == ["similarity 0.00", "changed: embedding[0]: cosine 0.00 below 0.95"]
    chat = compare(entry(chat_body("a b", "fp_1", "stop")), entry(chat_body("a c", "fp_2", "length")))
    assert chat.changes() == ["similarity 0.50", "changed: finish_reason: stop → length", "system_fingerprint fp_1 → fp_2"]
    assert Drift.from_dict(chat.to_dict()) == chat


def test_a_live_answer_the_proxy_already_read_is_compared_without_reading_it_again():
    recorded = entry(chat_body("Streaming words arrive one by one."), streamed=True)
    live = entry(chat_body("Streaming words arrive two by two.", "fp_b"), streamed=True)
    read = summary(live.endpoint, events=live.events)
    assert compare(recorded, live, read) == compare(recorded, live)
    assert compare(recorded, live, read).live_fingerprint == "fp_b"
    as_read = summary(live.endpoint, body=chat_body("What the proxy read."))
    assert compare(recorded, live, as_read).live_text == "What the proxy read."  # taken as given, not read again


def calls(*pairs: tuple[str, str]) -> list[dict]:
    return [
        {"id": f"call_{n}", "type": "function", "function": {"name": name, "arguments": args}}
        for n, (name, args) in enumerate(pairs)
    ]


def test_parallel_calls_in_another_order_are_reworded_not_changed():
    first = calls(("get_weather", '{"city": "Paris"}'), ("get_time", '{"city": "Oslo"}'))
    swapped = calls(("get_time", '{"city":"Oslo"}'), ("get_weather", '{"city":"Paris"}'))
    drift = compare(
        entry(chat_body("", finish="tool_calls", tool_calls=first)), entry(chat_body("", finish="tool_calls", tool_calls=swapped))
    )
    assert (drift.verdict, drift.differences) == ("reworded", [])


def test_an_argument_value_change_is_named_with_both_values():
    old = calls(("get_weather", '{"city": "Paris", "unit": "c"}'))
    new = calls(("get_weather", '{"city": "paris", "days": 2}'))
    drift = compare(entry(chat_body("", tool_calls=old)), entry(chat_body("", tool_calls=new)))
    assert drift.verdict == "changed"
    assert drift.differences == [
        'get_weather argument city: "Paris" → "paris"',
        "get_weather argument days: added 2",
        "get_weather argument unit: missing",
    ]
    extra = compare(entry(chat_body("", tool_calls=old)), entry(chat_body("", tool_calls=old + calls(("get_time", "{}")))))
    assert extra.differences == ["tool call get_time: appeared"]


def test_a_refusal_appearing_is_changed():
    refused = chat_body("")
    refused["choices"][0]["message"].update(content=None, refusal="I can't help with that.")
    drift = compare(entry(chat_body("Here is the recipe.")), entry(refused))
    assert "refusal: appeared" in drift.differences and drift.verdict == "changed"
    assert compare(entry(refused), entry(chat_body("Here is the recipe."))).differences == ["refusal: vanished"]


def test_other_words_for_the_same_answer_are_reworded_and_unrelated_words_are_changed():
    reworded = compare(entry(chat_body("Paris is the capital of France.")), entry(chat_body("The capital of France is Paris.")))
    assert (reworded.verdict, reworded.differences) == ("reworded", [])
    assert "reworded" in reworded.describe() and f"similarity {reworded.similarity:.2f}" in reworded.describe()
    unrelated = compare(entry(chat_body("Paris is the capital of France.")), entry(chat_body("Bananas grow on large herbs.")))
    assert unrelated.verdict == "changed"
    assert unrelated.differences == ["text: similarity 0.00 below 0.10"]


def test_the_verdict_travels_as_plain_data():
    drift = compare(entry(chat_body("Cut", finish="stop")), entry(chat_body("Cut short", finish="length")))
    data = drift.to_dict()
    assert (data["verdict"], data["differences"]) == ("changed", ["finish_reason: stop → length"])
    assert Drift.from_dict(data) == drift
