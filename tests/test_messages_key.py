"""The key of Anthropic's Messages API (/v1/messages): equivalent spellings key the same, everything
that can change the answer (the anthropic-version / anthropic-beta headers too) keys apart."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from pytest_seedreplay.cli import main
from pytest_seedreplay.core.key import canonical_request, closest_recording, describe_miss, key_of_canonical

MESSAGES = "/v1/messages"
VERSION = {"anthropic-version": "2023-06-01"}
BASE = {"model": "claude-sonnet-4-5", "max_tokens": 100, "messages": [{"role": "user", "content": "Hello"}]}


def _key(body: dict, headers: dict | list | None) -> str:
    """The key of `body` posted to /v1/messages with `headers` (the SDK's anthropic-version when None)."""
    return key_of_canonical(canonical_request(MESSAGES, body, VERSION if headers is None else headers))


@pytest.mark.parametrize(
    "variant",
    [{**BASE, "system": "Be brief."}, {**BASE, "system": [{"type": "text", "text": "Be brief."}]}],
)
def test_a_system_string_and_its_one_text_block_key_the_same(variant):
    other = {**BASE, "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}]}
    assert _key(variant, None) == _key(other, None)


def test_a_content_string_is_one_text_block_and_cache_markers_are_ignored():
    as_string = BASE
    as_block = {**BASE, "messages": [{"role": "user", "content": [{"type": "text", "text": "Hello"}]}]}
    marked = {
        **BASE,
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Hello", "cache_control": {"type": "ephemeral"}}]}],
    }
    assert _key(as_string, None) == _key(as_block, None) == _key(marked, None)
    two_blocks = {
        **BASE,
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Hel"}, {"type": "text", "text": "lo"}]}],
    }
    assert _key(two_blocks, None) != _key(as_string, None)


def test_stream_metadata_and_documented_defaults_are_not_in_the_key():
    plain = _key(BASE, None)
    assert _key({**BASE, "stream": True, "metadata": {"user_id": "u-1"}, "temperature": 1.0}, None) == plain
    assert _key({**BASE, "temperature": 0.5}, None) != plain


def test_cache_markers_on_tools_and_tool_results_are_ignored_and_auto_tool_choice_is_the_default():
    tool = {"name": "get_weather", "description": "Weather", "input_schema": {"type": "object", "properties": {}}}
    result = {"type": "tool_result", "tool_use_id": "toolu_1", "content": [{"type": "text", "text": "sunny"}]}
    turns = [
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}}]},
        {"role": "user", "content": [result]},
    ]
    plain = {**BASE, "tools": [tool], "messages": turns}
    marked_result = {**result, "content": [{"type": "text", "text": "sunny", "cache_control": {"type": "ephemeral"}}]}
    marked = {
        **BASE,
        "tools": [{**tool, "cache_control": {"type": "ephemeral"}}],
        "messages": [*turns[:2], {"role": "user", "content": [{**marked_result, "cache_control": {"type": "ephemeral"}}]}],
        "tool_choice": {"type": "auto", "disable_parallel_tool_use": False},
    }
    assert _key(plain, None) == _key(marked, None)
    assert _key({**plain, "tool_choice": {"type": "any"}}, None) != _key(plain, None)
    assert _key({**plain, "tool_choice": {"type": "auto", "disable_parallel_tool_use": True}}, None) != _key(plain, None)


@pytest.mark.parametrize(
    "change",
    [
        {"model": "claude-opus-4-1"},
        {"max_tokens": 101},
        {"temperature": 0},
        {"top_p": 0.9},
        {"top_k": 5},
        {"stop_sequences": ["\n\n"]},
        {"thinking": {"type": "enabled", "budget_tokens": 2048}},
        {"system": "Be brief."},
        {"tools": [{"name": "t", "input_schema": {"type": "object"}}]},
    ],
)
def test_every_parameter_that_changes_the_answer_is_in_the_key(change):
    assert _key({**BASE, **change}, None) != _key(BASE, None)


def test_the_version_and_beta_headers_are_in_the_key_and_the_betas_are_a_set():
    plain = _key(BASE, None)
    assert _key(BASE, {"anthropic-version": "2024-01-01"}) != plain
    betas = _key(BASE, {**VERSION, "anthropic-beta": "b-2025, a-2024"})
    assert betas != plain
    assert _key(BASE, [("anthropic-version", "2023-06-01"), ("anthropic-beta", "a-2024"), ("anthropic-beta", "b-2025")]) == betas
    # Headers that say nothing of the answer's shape stay out; so do all headers on OpenAI's endpoints.
    assert _key(BASE, {**VERSION, "x-api-key": "k", "user-agent": "x"}) == plain
    chat = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
    assert canonical_request("/v1/chat/completions", chat, VERSION) == canonical_request("/v1/chat/completions", chat)


def test_a_miss_names_the_header_that_differs():
    recorded = canonical_request(MESSAGES, BASE, VERSION)
    wanted = canonical_request(MESSAGES, BASE, {**VERSION, "anthropic-beta": "tools-2024"})
    closest = closest_recording(wanted, [("v1:old", recorded)])
    assert closest is not None
    message = describe_miss("v1:new", wanted, closest)
    assert 'headers["anthropic-beta"]: (absent) → ["tools-2024"]' in message


def test_seedreplay_key_shows_a_messages_key_with_its_headers(tmp_path):
    body = tmp_path / "request.json"
    body.write_text(json.dumps({**BASE, "system": [{"type": "text", "text": "S"}]}))
    runner = CliRunner()
    shown = runner.invoke(main, ["key", "--path", MESSAGES, "--header", "anthropic-version: 2023-06-01", str(body)])
    assert shown.exit_code == 0, shown.output
    key_line, canonical_line = shown.output.splitlines()
    canonical = json.loads(canonical_line)
    assert canonical["headers"] == {"anthropic-version": "2023-06-01"}
    assert canonical["params"]["system"] == "S"
    assert key_line == _key({**BASE, "system": "S"}, None)
    bad = runner.invoke(main, ["key", "--path", MESSAGES, "--header", "no-colon", str(body)])
    assert bad.exit_code == 2 and "Invalid value for --header: 'no-colon' is not NAME:VALUE" in bad.output


@given(text=st.text(max_size=40), system=st.text(max_size=40), ttl=st.sampled_from(["5m", "1h"]))
def test_any_text_keys_the_same_in_either_spelling(text, system, ttl):
    marker = {"type": "ephemeral", "ttl": ttl}
    plain = {**BASE, "system": system, "messages": [{"role": "user", "content": text}]}
    blocks = {
        **BASE,
        "system": [{"type": "text", "text": system, "cache_control": marker}],
        "messages": [{"role": "user", "content": [{"type": "text", "text": text, "cache_control": marker}]}],
    }
    assert _key(plain, None) == _key(blocks, None)
