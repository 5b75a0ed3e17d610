"""Secrets never touch disk: the catalogue of credential shapes, the one check every write passes,
and refusals that say where a credential was without ever saying what it was."""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path

import pytest

from pytest_seedreplay.core.entry import Entry, SSEEvent
from pytest_seedreplay.core.key import canonical_request, key_of_canonical
from pytest_seedreplay.core.redact import (
    EventScan,
    SecretRefused,
    catalogue,
    refuse_secrets,
    required_literals,
    secret_in,
    shape_of,
    vouch_events,
    vouch_request,
)
from pytest_seedreplay.store import DiskStore
from pytest_seedreplay.store.cassette import write_cassette
from pytest_seedreplay.store.redis import RedisStore

from proxy_support import CHAT, MODEL, messages

ENDPOINT = "/v1/chat/completions"
# Shapes the check before missed (issue 10, defect 6), each as a user would paste it in a prompt.
MISSED_BEFORE = {
    "an OpenAI key glued to a name": "OPENAI_KEY_sk-proj-Zq3x9Lm2Vb7Nc4Ka1Pd8Rt5Yw0",
    "a 32-hex Azure OpenAI key": "AZURE_OPENAI_API_KEY=4f1c2a9be07d4c3f8a6b5e2d1c0f9a8b",
    "a short Bearer token": "curl -H 'Authorization: Bearer tok_9f8e7d'",
    "a GitHub token": "token ghp_16C7e42F292c6912E7710c838347Ae178B4a",
    "an AWS access key id": "aws_access_key_id = AKIAIOSFODNN7EXAMPLE",
}
# What must never be refused: our own keys and ids, and prose that merely resembles a credential.
NOT_SECRETS = [
    "v1:" + "0123456789abcdef" * 4,  # a request key: 64 hex digits
    "req_4c5b1b0d5c3f4c4f9e8d1a2b3c4d5e6f",  # an x-request-id
    "fp_44709d6fcb",
    "The bearer of bad news came at 9.",
    'curl -H "Authorization: Bearer $OPENAI_API_KEY"',
    "Bearer YOUR_API_KEY",
    "a risk-assessment-for-the-project-team meeting",
    "postgres://user:password@localhost:5432/app",
    "pip install scikit-learn-intelex-and-friends",
]


def entry_with(content: str = "hello", **fields) -> Entry:
    request = canonical_request(ENDPOINT, {"model": MODEL, "messages": messages(content), "seed": 1})
    body = fields.pop("body", {"id": "chatcmpl-1", "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}}]})
    return Entry(key=key_of_canonical(request), endpoint=ENDPOINT, request=request, body=body, **fields)


def stored_bytes(directory: Path) -> bytes:
    return b"".join(p.read_bytes() for p in directory.rglob("*") if p.is_file())


@pytest.mark.parametrize("case", sorted(MISSED_BEFORE))
def test_each_shape_the_old_check_missed_is_refused_and_never_stored(tmp_path: Path, case: str) -> None:
    text = MISSED_BEFORE[case]
    store = DiskStore(tmp_path / "cache")
    with pytest.raises(SecretRefused) as refused:
        store.put(entry_with(f"please use {text} for me"))
    assert refused.value.where == "entry.request.params.messages[0].content"
    assert refused.value.kind  # the shape is named...
    secret = text.split()[-1].split("=")[-1].strip("'")
    assert secret not in str(refused.value)  # ...never the string
    assert len(store) == 0 and secret.encode() not in stored_bytes(tmp_path / "cache")
    store.close()


@pytest.mark.parametrize("text", NOT_SECRETS)
def test_our_keys_ids_and_look_alike_prose_are_not_refused(text: str) -> None:
    assert shape_of(text) is None, text


def test_32_hex_digits_are_an_id_in_id_fields_and_a_key_elsewhere() -> None:
    hex32 = "4f1c2a9be07d4c3f8a6b5e2d1c0f9a8b"
    answer = {"id": hex32, "choices": [{"index": 0, "message": {"content": "ok", "tool_call_id": hex32}}]}
    clean = entry_with(body=answer, headers={"x-request-id": hex32}, system_fingerprint=hex32)
    assert secret_in(clean) is None
    leaked = entry_with(body={**answer, "choices": [{"index": 0, "message": {"content": f"your key: {hex32}"}}]})
    assert secret_in(leaked) == "entry.body.choices[0].message.content"


def test_a_credential_used_as_a_field_name_is_named_by_position_never_echoed() -> None:
    key = "sk-proj-Zq3x9Lm2Vb7Nc4Ka1Pd8Rt5Yw0"
    request = canonical_request(ENDPOINT, {"model": MODEL, "messages": messages("hi"), key: True})
    entry = Entry(key=key_of_canonical(request), endpoint=ENDPOINT, request=request, body={"choices": []})
    with pytest.raises(SecretRefused) as refused:
        refuse_secrets(entry)
    assert key not in str(refused.value) and "sk-proj" not in str(refused.value)
    assert refused.value.where.startswith("entry.request.params.<field ") and "(its name)" in refused.value.where


def test_a_key_streamed_in_pieces_is_found_in_the_text_the_stream_spells() -> None:
    pieces = ["Here: ", "sk-", "proj-Zq3x9Lm2V", "b7Nc4Ka1Pd8Rt5", "Yw0", " done"]
    events = [SSEEvent(json.dumps({"id": "c", "choices": [{"index": 0, "delta": {"content": p}}]})) for p in pieces]
    entry = entry_with(body=None, events=[*events, SSEEvent("[DONE]")])
    assert secret_in(entry) == "entry.events (the text streamed at choices[index=0].delta.content)"
    # Two choices interleaved: each choice's own text is put together, not a mix of both.
    mixed = []
    for p in pieces:
        mixed.append(SSEEvent(json.dumps({"choices": [{"index": 0, "delta": {"content": p}}]})))
        mixed.append(SSEEvent(json.dumps({"choices": [{"index": 1, "delta": {"content": "word "}}]})))
    assert secret_in(entry_with(body=None, events=mixed)) == "entry.events (the text streamed at choices[index=0].delta.content)"


def test_a_key_inside_one_event_names_that_event() -> None:
    events = [SSEEvent(json.dumps({"choices": [{"index": 0, "delta": {"content": t}}]})) for t in ("a", "ghp_" + "A1" * 18, "b")]
    assert secret_in(entry_with(body=None, events=events)) == "entry.events[1].data.choices[0].delta.content"


def test_a_text_every_event_repeats_is_searched_once_and_still_found() -> None:
    # A stream repeats its id and model in every event; each distinct text is searched once, so a
    # key there is named at the first event holding it, and one that turns up late is still seen.
    key = "ghp_" + "A1" * 18
    same = [SSEEvent(json.dumps({"id": key, "choices": [{"index": 0, "delta": {"content": t}}]})) for t in "abc"]
    assert secret_in(entry_with(body=None, events=same)) == "entry.events[0].data.id"
    late = [SSEEvent(json.dumps({"model": m, "choices": [{"index": 0, "delta": {"content": "x"}}]})) for m in ("m", "m", key)]
    assert secret_in(entry_with(body=None, events=late)) == "entry.events[2].data.model"
    clean = [SSEEvent(json.dumps({"id": "chatcmpl-1", "choices": [{"index": 0, "delta": {"content": "y"}}]}))] * 50
    assert secret_in(entry_with(body=None, events=clean)) is None


def test_an_entry_found_clean_is_searched_again_only_where_a_part_was_replaced(tmp_path: Path) -> None:
    # The proxy checks a plain answer before it leaves and the store checks it again as it writes:
    # the second check passes what the first searched, and searches any part replaced since.
    key = "ghp_" + "A1" * 18
    entry = entry_with("fine")
    refuse_secrets(entry)
    entry.body = {"id": "chatcmpl-1", "choices": [{"index": 0, "message": {"role": "assistant", "content": key}}]}
    with pytest.raises(SecretRefused) as refused:
        refuse_secrets(entry)
    assert refused.value.where == "entry.body.choices[0].message.content"
    entry.model = key
    assert secret_in(entry) == "entry.model"
    # A copy made with dataclasses.replace is a new entry: searched whole, whatever its original passed.
    clean = entry_with("fine")
    refuse_secrets(clean)
    with pytest.raises(SecretRefused):
        refuse_secrets(dataclasses.replace(clean, headers={"x-note": key}))
    store = DiskStore(tmp_path / "cache")
    with pytest.raises(SecretRefused):
        store.put(dataclasses.replace(clean, system_fingerprint=key))
    store.put(clean)
    assert store.get(clean.key) == clean and len(store) == 1
    store.close()


def test_a_vouched_request_is_not_searched_again_but_the_rest_of_the_entry_is() -> None:
    key = "ghp_" + "A1" * 18
    entry = entry_with(key)
    assert secret_in(entry.request, "entry.request") is not None
    vouch_request(entry)  # (what the proxy says only of a request its own search found clean)
    assert secret_in(entry) is None
    entry.request = dict(entry.request)  # another object: no longer the one vouched for
    assert secret_in(entry) == "entry.request.params.messages[0].content"
    answer = entry_with("fine", body={"choices": [{"index": 0, "message": {"content": key}}]})
    vouch_request(answer)
    assert secret_in(answer) == "entry.body.choices[0].message.content"


def test_a_stream_searched_as_it_comes_decides_as_the_whole_search_does() -> None:
    key = "ghp_" + "A1" * 18

    def chunk(content: str, **more) -> SSEEvent:
        return SSEEvent(json.dumps({"id": "c1", "choices": [{"index": 0, "delta": {"content": content}}], **more}))

    words = [chunk(w) for w in "the moon is far away".split()]
    streams = {
        "clean": [*words, SSEEvent("[DONE]")],
        "spelled across deltas": [chunk("key: sk-"), chunk("proj-Zq3x9Lm2V"), chunk("b7Nc4Ka1Pd8Rt5Yw0"), *words],
        "in one event": [*words, chunk(key)],
        "as an event name": [*words, SSEEvent('{"type": "x"}', event=key)],
        "as a field name": [*words, SSEEvent(json.dumps({key: 1}))],
        "in data that is not JSON": [*words, SSEEvent(f"note {key}")],
    }
    for name, events in streams.items():
        fed: list[SSEEvent] = []
        scan = EventScan()
        for event in events:  # as the proxy feeds it: the list grows, the scan catches up
            fed.append(event)
            scan.catch_up(fed)
        assert scan.clean(fed) == (secret_in(entry_with(body=None, events=events)) is None) == (name == "clean"), name
        entry = entry_with(body=None, events=fed)
        vouch_events(entry, scan)
        assert (secret_in(entry) is None) == (name == "clean"), name  # vouched only when clean
        if name != "clean":
            with pytest.raises(SecretRefused):
                refuse_secrets(entry)


def test_a_key_past_the_first_search_window_is_found(tmp_path: Path) -> None:
    # Long texts are searched in overlapping windows; a key across a window boundary is still whole.
    for at in (65_536 - 20, 65_536 + 4_096 - 10, 300_000):
        text = "lorem ipsum " * (at // 12) + " AKIAIOSFODNN7EXAMPLE " + "dolor " * 20_000
        assert shape_of(text) == "AWS Access Key", at
    assert shape_of("x " * 40_000 + "0123456789abcdef" * 4 + " y" * 40_000) is None  # 64 hex: a hash


def test_every_write_path_refuses_through_the_one_check(tmp_path: Path) -> None:
    # One choke point: the backends inherit put/put_many and only implement the raw write.
    for backend in (DiskStore, RedisStore):
        assert "put" not in vars(backend) and "put_many" not in vars(backend), backend
    leaky = entry_with(MISSED_BEFORE["a GitHub token"])
    store = DiskStore(tmp_path / "cache")
    for write in (store.put, lambda e: store.put_many([entry_with("fine"), e])):
        with pytest.raises(SecretRefused):
            write(leaky)
    assert len(store) == 0
    store.close()
    cassette = tmp_path / "c.yaml"
    with pytest.raises(SecretRefused) as refused:
        write_cassette(cassette, [entry_with("fine"), leaky])
    assert refused.value.where.startswith(f"{cassette}: interaction 1 (key ") and not cassette.exists()


def test_the_catalogue_reads_its_literals_from_the_regexes() -> None:
    import re

    assert required_literals(re.compile(r"(ghp|gho)_[A-Za-z0-9_]{36}")) == {"ghp_", "gho_"}
    assert required_literals(re.compile(r"(?:r|s)k_live_[0-9a-zA-Z]{24}")) == {"rk_live_", "sk_live_"}
    assert required_literals(re.compile(r"(?i)xox(?:a|b)-\d+")) == {"xoxa-", "xoxb-"}
    assert required_literals(re.compile(r"[0-9a-f]{32}")) is None  # always run, never skipped
    kinds = {shape.kind for shape in catalogue().shapes}
    assert {"AWS Access Key", "GitHub Token", "JSON Web Token", "Private Key", "Slack Token"} <= kinds  # detect-secrets'


def test_the_proxy_says_where_without_the_secret_in_header_or_log(sim, proxy_factory, caplog) -> None:
    caplog.set_level(logging.INFO)
    proxy = proxy_factory(sim.url)
    key = "sk-proj-Zq3x9Lm2Vb7Nc4Ka1Pd8Rt5Yw0"
    # A credential as a JSON field name (the simulator, like the API, refuses unknown parameters:
    # it names a property of the answer's schema instead).
    schema = {"type": "object", "properties": {key: {"type": "string"}}, "required": [key]}
    response_format = {"type": "json_schema", "json_schema": {"name": "answer", "schema": schema}}
    as_name = proxy.post(CHAT, {"model": MODEL, "messages": messages("hi"), "seed": 1, "response_format": response_format})
    azure = proxy.post(CHAT, {"model": MODEL, "messages": messages(MISSED_BEFORE["a 32-hex Azure OpenAI key"]), "seed": 2})
    for reply in (as_name, azure):
        assert reply.status == 200, reply.body
        assert "refused to store" in reply.headers["x-seedreplay-store-error"]
    assert "<field " in as_name.headers["x-seedreplay-store-error"]
    assert "messages[0].content" in azure.headers["x-seedreplay-store-error"]
    assert key not in as_name.headers["x-seedreplay-store-error"] and key not in caplog.text
    assert "4f1c2a9be07d4c3f8a6b5e2d1c0f9a8b" not in caplog.text
    assert len(proxy.store) == 0
    assert b"4f1c2a9b" not in stored_bytes(proxy.cache_dir) and b"Zq3x9Lm2" not in stored_bytes(proxy.cache_dir)
