"""The request key: what it covers, what it ignores, and the diff a replay miss shows."""

from __future__ import annotations

import copy
import hashlib
import json
import random
import re

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from pytest_seedreplay.core.constants import (
    DEFAULTS_BY_ENDPOINT,
    IGNORED_PARAMS,
    KEY_VERSION,
)
from pytest_seedreplay.core.key import (
    Closest,
    UnkeyableRequest,
    canonical_json,
    canonical_request,
    closest_recording,
    describe_miss,
    diff_requests,
    key_of_canonical,
    normalize_endpoint,
    request_key,
)

CHAT = "/v1/chat/completions"
EMBED = "/v1/embeddings"
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def chat(**params):
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Say hi"}], "seed": 7}
    body.update(params)
    return body


# --- strategies ---------------------------------------------------------------------------------

names = st.text(st.characters(min_codepoint=97, max_codepoint=122), min_size=1, max_size=8)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.floats(allow_nan=False, allow_infinity=False, width=64)
    | st.text(max_size=30)
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(names, inner, max_size=4),
    max_leaves=12,
)
# Values that survive canonicalisation as themselves-or-equivalent (no nulls to drop at top level).
present_values = json_values.filter(lambda v: v is not None)
messages = st.lists(
    st.fixed_dictionaries(
        {"role": st.sampled_from(["system", "user", "assistant"]), "content": st.text(min_size=1, max_size=60)}
    ),
    min_size=1,
    max_size=5,
)
# Output-changing parameters with non-default values, plus one the key has never heard of.
output_params = st.fixed_dictionaries(
    {},
    optional={
        "seed": st.integers(0, 2**31 - 1),
        "temperature": st.floats(0, 2).filter(lambda t: t != 1),
        "max_tokens": st.integers(1, 4096),
        "stop": st.lists(st.text(min_size=1, max_size=5), max_size=4),
        "response_format": st.just({"type": "json_object"}),
        "logit_bias": st.dictionaries(st.integers(0, 100_000).map(str), st.integers(-100, 100), max_size=3),
        "reasoning_effort": st.sampled_from(["low", "high"]),
        "future_knob": present_values,
    },
)


@st.composite
def chat_bodies(draw):
    body = {"model": draw(st.sampled_from(["gpt-4o-mini", "gpt-5", "o3"])), "messages": draw(messages)}
    body.update(draw(output_params))
    return body


def shuffled(value, rng: random.Random):
    """The same JSON with every object's key order permuted."""
    if isinstance(value, dict):
        items = list(value.items())
        rng.shuffle(items)
        return {k: shuffled(v, rng) for k, v in items}
    if isinstance(value, list):
        return [shuffled(v, rng) for v in value]
    return value


def other_number_form(value):
    """Integers as floats and integral floats as integers, everywhere (bools left alone)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and abs(value) < 2**53:
        return float(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: other_number_form(v) for k, v in value.items()}
    if isinstance(value, list):
        return [other_number_form(v) for v in value]
    return value


# --- properties: what must key the same ---------------------------------------------------------


@SETTINGS
@given(chat_bodies(), st.randoms(use_true_random=False))
def test_key_order_at_every_level_does_not_matter(body, rng):
    assert request_key(CHAT, shuffled(body, rng)) == request_key(CHAT, body)


@SETTINGS
@given(chat_bodies())
def test_int_and_float_forms_of_a_number_key_the_same(body):
    assert request_key(CHAT, other_number_form(body)) == request_key(CHAT, body)


@SETTINGS
@given(chat_bodies(), st.dictionaries(st.sampled_from(sorted(IGNORED_PARAMS)), json_values))
def test_ignored_fields_do_not_change_the_key(body, extras):
    assert request_key(CHAT, {**body, **extras}) == request_key(CHAT, body)


@SETTINGS
@given(chat_bodies(), st.data())
def test_params_at_their_documented_defaults_key_as_omitted(body, data):
    defaults = {k: v for k, v in DEFAULTS_BY_ENDPOINT[CHAT].items() if k not in body}
    chosen = data.draw(st.lists(st.sampled_from(sorted(defaults)), unique=True)) if defaults else []
    as_floats = data.draw(st.booleans())
    added = {k: other_number_form(defaults[k]) if as_floats else defaults[k] for k in chosen}
    assert request_key(CHAT, {**body, **added}) == request_key(CHAT, body)


@SETTINGS
@given(chat_bodies(), st.lists(names, max_size=5))
def test_null_params_key_as_omitted(body, null_names):
    nulls = {name: None for name in null_names if name not in body}
    assert request_key(CHAT, {**body, **nulls}) == request_key(CHAT, body)


# --- properties: what must key differently ------------------------------------------------------


@SETTINGS
@given(
    chat_bodies(),
    st.sampled_from(["model", "seed", "temperature", "top_p", "n", "max_tokens", "stop", "tools", "future_knob"]),
    present_values,
    present_values,
)
def test_changing_an_output_changing_field_changes_the_key(body, name, first, second):
    a, b = {**body, name: first}, {**body, name: second}
    ca, cb = canonical_request(CHAT, a)["params"], canonical_request(CHAT, b)["params"]
    # Values that canonicalise alike (1 vs 1.0, a documented default vs absent) are the same request.
    assume(canonical_json(ca.get(name)) != canonical_json(cb.get(name)))
    assert request_key(CHAT, a) != request_key(CHAT, b)


@SETTINGS
@given(chat_bodies(), st.data())
def test_message_order_matters(body, data):
    msgs = body["messages"]
    assume(len({canonical_json(m) for m in msgs}) > 1)
    reordered = data.draw(st.permutations(msgs))
    assume([canonical_json(m) for m in reordered] != [canonical_json(m) for m in msgs])
    assert request_key(CHAT, {**body, "messages": reordered}) != request_key(CHAT, body)


@SETTINGS
@given(chat_bodies(), st.data(), st.text(min_size=1, max_size=60))
def test_message_content_matters(body, data, new_text):
    index = data.draw(st.integers(0, len(body["messages"]) - 1))
    assume(body["messages"][index]["content"] != new_text)
    changed = copy.deepcopy(body)
    changed["messages"][index]["content"] = new_text
    assert request_key(CHAT, changed) != request_key(CHAT, body)


# --- concrete cases -----------------------------------------------------------------------------


IGNORED_ROWS = {
    "stream": True,
    "stream_options": {"include_usage": True},
    "user": "user-1234",
    "metadata": {"run": "nightly"},
    "store": True,
    "service_tier": "flex",
    "safety_identifier": "hash-of-user",
    "prompt_cache_key": "my-cache-key",
    "prompt_cache_retention": "24h",
}


def test_every_ignored_param_has_a_row():
    assert set(IGNORED_ROWS) == set(IGNORED_PARAMS)


@pytest.mark.parametrize("name,value", sorted(IGNORED_ROWS.items()))
@pytest.mark.parametrize("path", [CHAT, "/v1/completions", EMBED, "/v1/responses"])
def test_ignored_param_keys_the_same(path, name, value):
    base = {"model": "m", "input": "hello"}
    assert request_key(path, {**base, name: value}) == request_key(path, base)


DEFAULT_ROWS = [(path, name, value) for path, table in DEFAULTS_BY_ENDPOINT.items() for name, value in table.items()]


@pytest.mark.parametrize("path,name,value", DEFAULT_ROWS, ids=[f"{p}:{n}" for p, n, _ in DEFAULT_ROWS])
def test_documented_default_keys_as_omitted(path, name, value):
    base = {"model": "m", "messages": [{"role": "user", "content": "x"}]}
    assert request_key(path, {**base, name: value}) == request_key(path, base)
    assert request_key(path, {**base, name: other_number_form(value)}) == request_key(path, base)


@pytest.mark.parametrize(
    "name,value",
    [
        ("temperature", 0.7),
        ("top_p", 0.5),
        ("n", 2),
        ("frequency_penalty", 0.1),
        ("presence_penalty", -0.5),
        ("logprobs", True),
        ("parallel_tool_calls", False),
        ("modalities", ["text", "audio"]),
        ("verbosity", "low"),
    ],
)
def test_a_non_default_value_is_keyed(name, value):
    assert request_key(CHAT, chat(**{name: value})) != request_key(CHAT, chat())


@pytest.mark.parametrize(
    "name,value",
    [
        ("max_tokens", 50),
        ("max_completion_tokens", 50),
        ("stop", ["\n"]),
        ("tool_choice", "required"),
        ("response_format", {"type": "json_object"}),
        ("logit_bias", {"50256": -100}),
        ("reasoning_effort", "low"),
        ("top_logprobs", 3),
        ("prediction", {"type": "content", "content": "x"}),
        ("a_param_from_2030", 1),
    ],
)
def test_output_changing_and_unknown_params_are_keyed(name, value):
    assert request_key(CHAT, chat(**{name: value})) != request_key(CHAT, chat())


def test_seed_and_model_are_keyed():
    assert request_key(CHAT, chat(seed=1)) != request_key(CHAT, chat(seed=2))
    assert request_key(CHAT, chat(model="gpt-4o")) != request_key(CHAT, chat(model="gpt-4o-mini"))


def test_true_is_not_one():
    assert request_key(CHAT, chat(future=True)) != request_key(CHAT, chat(future=1))
    assert request_key(CHAT, chat(logprobs=True)) != request_key(CHAT, chat(logprobs=1))


def test_one_and_one_point_zero_are_equal_deep_inside_a_tool_schema():
    def tools(minimum):
        schema = {"type": "object", "properties": {"n": {"type": "integer", "minimum": minimum}}}
        return [{"type": "function", "function": {"name": "count", "parameters": schema}}]

    assert request_key(CHAT, chat(tools=tools(1))) == request_key(CHAT, chat(tools=tools(1.0)))
    assert request_key(CHAT, chat(tools=tools(1))) != request_key(CHAT, chat(tools=tools(2)))


def test_null_inside_a_schema_is_kept():
    # Only top-level params and message fields treat null as "not given"; in a schema it means something.
    with_null = {"type": "json_schema", "json_schema": {"name": "s", "schema": {"default": None}}}
    without = {"type": "json_schema", "json_schema": {"name": "s", "schema": {}}}
    assert request_key(CHAT, chat(response_format=with_null)) != request_key(CHAT, chat(response_format=without))


def test_null_message_fields_key_as_omitted():
    echoed = {"role": "assistant", "content": "hi", "refusal": None, "tool_calls": None, "function_call": None}
    body = chat(messages=[{"role": "user", "content": "Say hi"}, echoed])
    plain = chat(messages=[{"role": "user", "content": "Say hi"}, {"role": "assistant", "content": "hi"}])
    assert request_key(CHAT, body) == request_key(CHAT, plain)


def test_single_text_part_equals_plain_string_content():
    parts = chat(messages=[{"role": "user", "content": [{"type": "text", "text": "Say hi"}]}])
    assert request_key(CHAT, parts) == request_key(CHAT, chat())


def test_several_parts_or_an_image_stay_a_list():
    two = chat(messages=[{"role": "user", "content": [{"type": "text", "text": "Say "}, {"type": "text", "text": "hi"}]}])
    image = {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}
    pic = chat(messages=[{"role": "user", "content": [image]}])
    assert request_key(CHAT, two) != request_key(CHAT, chat())
    assert canonical_request(CHAT, pic)["params"]["messages"][0]["content"] == [image]


def test_tool_choice_at_its_conditional_default():
    tool = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    assert request_key(CHAT, chat(tools=tool, tool_choice="auto")) == request_key(CHAT, chat(tools=tool))
    assert request_key(CHAT, chat(tool_choice="none")) == request_key(CHAT, chat())
    assert request_key(CHAT, chat(tools=tool, tool_choice="none")) != request_key(CHAT, chat(tools=tool))
    assert request_key(CHAT, chat(tool_choice="auto")) != request_key(CHAT, chat())


def test_legacy_completions_logprobs_zero_is_a_real_request():
    base = {"model": "gpt-3.5-turbo-instruct", "prompt": "Once"}
    assert request_key("/v1/completions", {**base, "logprobs": 0}) != request_key("/v1/completions", base)
    assert request_key("/v1/completions", {**base, "max_tokens": 16}) == request_key("/v1/completions", base)


@pytest.mark.parametrize("fmt", ["float", "base64"])
def test_embeddings_encoding_format_does_not_matter(fmt):
    base = {"model": "text-embedding-3-small", "input": ["a", "b"]}
    assert request_key(EMBED, {**base, "encoding_format": fmt}) == request_key(EMBED, base)
    assert request_key(EMBED, {**base, "dimensions": 256}) != request_key(EMBED, base)


def test_encoding_format_is_only_ignored_for_embeddings():
    assert request_key(CHAT, chat(encoding_format="base64")) != request_key(CHAT, chat())


def test_each_endpoint_keys_apart():
    body = {"model": "m", "input": "hello"}
    keys = {request_key(p, body) for p in [CHAT, "/v1/completions", EMBED, "/v1/responses"]}
    assert len(keys) == 4


@pytest.mark.parametrize(
    "path",
    [
        "/v1/chat/completions",
        "/v1/chat/completions/",
        "chat/completions",
        "/openai/v1/chat/completions?x=1",
        "http://127.0.0.1:8787/v1/chat/completions",
        "/v1//chat/completions",
    ],
)
def test_endpoint_spellings_normalise(path):
    assert normalize_endpoint(path) == CHAT
    assert request_key(path, chat()) == request_key(CHAT, chat())


def test_bare_v1_stays_v1():
    assert normalize_endpoint("/v1") == "/v1"


def test_responses_api_covers_input_and_instructions():
    base = {"model": "gpt-5", "input": "hi", "instructions": "Be brief."}
    path = "/v1/responses"
    assert request_key(path, {**base, "instructions": "Be long."}) != request_key(path, base)
    assert request_key(path, {**base, "input": "hello"}) != request_key(path, base)
    assert request_key(path, {**base, "truncation": "disabled", "store": False}) == request_key(path, base)


def test_key_is_versioned_sha256_of_the_canonical_json():
    canonical = canonical_request(CHAT, chat())
    key = request_key(CHAT, chat())
    assert re.fullmatch(rf"{KEY_VERSION}:[0-9a-f]{{64}}", key)
    assert key == f"{KEY_VERSION}:" + hashlib.sha256(canonical_json(canonical).encode()).hexdigest()
    assert key == key_of_canonical(canonical)


def test_key_scheme_is_pinned():
    # Changing the canonical form changes every stored key: bump KEY_VERSION when this breaks.
    assert canonical_json(canonical_request(CHAT, chat(temperature=0.5))) == (
        '{"endpoint":"/v1/chat/completions","params":{"messages":[{"content":"Say hi","role":"user"}],'
        '"model":"gpt-4o-mini","seed":7,"temperature":0.5}}'
    )
    assert request_key(CHAT, chat(temperature=0.5)) == (
        "v1:"
        + hashlib.sha256(
            b'{"endpoint":"/v1/chat/completions","params":{"messages":[{"content":"Say hi","role":"user"}],'
            b'"model":"gpt-4o-mini","seed":7,"temperature":0.5}}'
        ).hexdigest()
    )


def test_whitespace_and_escapes_of_the_json_text_do_not_matter():
    compact = json.loads('{"model":"m","messages":[{"role":"user","content":"caf\\u00e9"}]}')
    pretty = json.loads('{\n  "messages": [ {"content": "café", "role": "user"} ],\n  "model": "m"\n}')
    assert request_key(CHAT, compact) == request_key(CHAT, pretty)


def test_namespace_isolates():
    plain = request_key(CHAT, chat())
    alice, bob = request_key(CHAT, chat(), namespace="alice"), request_key(CHAT, chat(), namespace="bob")
    assert len({plain, alice, bob}) == 3
    assert request_key(CHAT, chat(), namespace=None) == plain
    assert alice == request_key(CHAT, chat(), namespace="alice")


def test_lone_surrogate_is_keyable():
    body = json.loads('{"model": "m", "input": "\\ud800"}')
    assert request_key(EMBED, body).startswith("v1:")


def test_python_tuples_key_like_lists():
    assert request_key(CHAT, chat(stop=("a", "b"))) == request_key(CHAT, chat(stop=["a", "b"]))


@pytest.mark.parametrize("body,kind", [([1], "an array"), ("x", "a string"), (3, "a number"), (None, "null")])
def test_non_object_body_is_unkeyable(body, kind):
    with pytest.raises(UnkeyableRequest, match=f"must be a JSON object.*got {kind}"):
        request_key(CHAT, body)


# --- diff, closest recording, miss message ------------------------------------------------------


def canon(**params):
    return canonical_request(CHAT, chat(**params))


def test_diff_names_a_changed_scalar_recorded_to_wanted():
    assert diff_requests(canon(seed=2), canon(seed=1)) == ["params.seed: 1 → 2"]


def test_diff_names_a_changed_message_by_index():
    wanted = canon(messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello"}])
    recorded = canon(messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}])
    assert diff_requests(wanted, recorded) == ['params.messages[1].content: "Hi" → "Hello"']


def test_diff_of_long_text_shows_where_it_first_differs():
    start = "You are a meticulous assistant who always answers in the voice of "
    wanted = canon(messages=[{"role": "user", "content": start + "a pirate."}])
    recorded = canon(messages=[{"role": "user", "content": start + "a poet."}])
    (line,) = diff_requests(wanted, recorded)
    assert line.startswith(f"params.messages[0].content differs at character {len(start) + 3}")
    assert "(length 73 → 75)" in line
    assert line.endswith(': …"the voice of a poet." → …"the voice of a pirate."')
    assert len(line) < 160


def test_diff_of_text_that_only_grew_points_at_the_end():
    base = "Summarise the following report in three bullet points please"
    (line,) = diff_requests(canon(stop=[base + " now"]), canon(stop=[base]))
    assert line.startswith(f"params.stop[0] differs at character {len(base)} (length {len(base)} → {len(base) + 4})")
    assert line.endswith(': …"et points please" → …"et points please now"')


def test_diff_reports_absent_fields_both_ways():
    assert diff_requests(canon(temperature=0.5), canon()) == ["params.temperature: (absent) → 0.5"]
    assert diff_requests(canon(), canon(temperature=0.5)) == ["params.temperature: 0.5 → (absent)"]


def test_diff_reports_extra_and_missing_messages():
    two = [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]
    diff = diff_requests(canon(messages=two), canon(messages=two[:1]))
    assert diff == ['params.messages[1]: (absent) → {"content": "b", "role": "user"}']


def test_diff_uses_brackets_for_keys_that_are_not_names():
    diff = diff_requests(canon(logit_bias={"50256": -100}), canon(logit_bias={"50256": 100}))
    assert diff == ['params.logit_bias["50256"]: 100 → -100']


def test_diff_sees_true_versus_one():
    assert diff_requests({"x": True}, {"x": 1}) == ["x: 1 → true"]


def test_identical_requests_have_no_diff():
    assert diff_requests(canon(), canon()) == []


def test_closest_prefers_same_endpoint_and_model_then_fewest_differences():
    wanted = canon(seed=1, temperature=0.3)
    other_model = canon(model="gpt-4o", seed=1, temperature=0.3)  # one difference, wrong model
    other_endpoint = canonical_request(EMBED, chat(seed=1, temperature=0.3))
    two_off = canon(seed=2, temperature=0.9)
    one_off = canon(seed=2, temperature=0.3)
    recorded = [("k-model", other_model), ("k-endpoint", other_endpoint), ("k-two", two_off), ("k-one", one_off)]
    best = closest_recording(wanted, recorded)
    assert isinstance(best, Closest)
    assert best.key == "k-one"
    assert best.differences == ["params.seed: 2 → 1"]


def test_closest_falls_back_to_another_model_when_nothing_else_exists():
    best = closest_recording(canon(), [("k-endpoint", canonical_request(EMBED, chat())), ("k-model", canon(model="x"))])
    assert best is not None and best.key == "k-model"


def test_closest_of_nothing_is_none():
    assert closest_recording(canon(), []) is None
    assert closest_recording(canon(), iter([("bad", "not a dict")])) is None


def test_miss_message_names_keys_and_fields_in_request_terms():
    wanted = canon(seed=2)
    key = request_key(CHAT, chat(seed=2))
    closest = closest_recording(wanted, [("v1:recorded", canon(seed=1))])
    message = describe_miss(key, wanted, closest)
    assert key in message and "v1:recorded" in message
    assert "seed: 1 → 2" in message and "params." not in message
    assert '/v1/chat/completions, model "gpt-4o-mini"' in message
    assert closest is not None and closest.describe() == "closest recording v1:recorded differs in: seed: 1 → 2"


def test_miss_message_when_nothing_is_recorded():
    assert describe_miss("v1:abc", canon(), None).endswith("nothing is recorded yet")


def test_miss_message_lists_at_most_eight_differences():
    wanted = canon(stop=[str(i) for i in range(12)])
    closest = closest_recording(wanted, [("v1:r", canon(stop=[str(i + 100) for i in range(12)]))])
    message = describe_miss("v1:w", wanted, closest)
    assert "stop[7]" in message and "stop[8]" not in message
    assert message.endswith("and 4 more")


def test_miss_message_for_the_same_request_under_another_namespace():
    wanted = canon()
    closest = closest_recording(wanted, [(request_key(CHAT, chat(), namespace="other"), canon())])
    message = describe_miss(request_key(CHAT, chat(), namespace="mine"), wanted, closest)
    assert "same request but another key" in message and "namespace" in message
