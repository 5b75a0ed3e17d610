"""Embeddings: float lists and base64 float32, as the API sends them and the SDK decodes them."""

from __future__ import annotations

import array
import base64
import copy
import json
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st
from shapes_support import EMBEDDING_BODY, SETTINGS, f32

from pytest_seedreplay.shapes import (
    convert_embeddings,
    embeddings,
)


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


def test_embeddings_read_as_float_vectors_whatever_the_encoding():
    as_base64 = convert_embeddings(EMBEDDING_BODY, "base64")
    floats = [f32(d["embedding"]) for d in EMBEDDING_BODY["data"]]
    assert [f32(v) for v in embeddings.vectors(as_base64)] == floats
    assert embeddings.vectors({"data": [{"embedding": "not base64!"}]}) == []
    assert embeddings.answer_parts(EMBEDDING_BODY) == embeddings.vectors(EMBEDDING_BODY)


def test_embeddings_text_names_each_vector_its_size_and_first_values():
    assert embeddings.answer_text(EMBEDDING_BODY).splitlines() == [
        "embedding[0] (5 dims): [0.100000, -0.250000, 0.000030, 1.500000, …]",
        "embedding[1] (5 dims): [0.000000, 1.000000, -1.000000, 0.333333, …]",
    ]
    assert embeddings.reply_text(EMBEDDING_BODY) is None and embeddings.finish_reason(EMBEDDING_BODY) is None
