"""Quiet re-recording: an answer recorded again but unchanged leaves its cassette byte-identical;
cassette files follow the umask; our writer writes the bytes vcrpy's serializer would."""

from __future__ import annotations

import dataclasses
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import openai
import yaml
from vcr.request import Request
from vcr.serialize import serialize
from vcr.serializers import yamlserializer

from pytest_seedreplay import Proxy, use_cassette
from pytest_seedreplay.core.atomic import write_atomically
from pytest_seedreplay.core.entry import SSEEvent
from pytest_seedreplay.store.cassette import cassette_text, entry_to_interaction, read_cassette, write_cassette
from pytest_seedreplay.store.cassette_store import CassetteStore
from pytest_seedreplay.store.volatile import same_answer

from test_cassette import chat_entry, embedding_entry, streamed_entry

QUESTION = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Name a colour."}], "seed": 3}
T = TypeVar("T")
OTHER = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Name a fruit."}], "seed": 3}


def ask_all(base_url: str) -> list[str]:
    """A plain call, a streamed call and an embedding, as a test suite would make them."""
    client = openai.OpenAI(base_url=base_url, api_key="sk-test-x", max_retries=0)
    plain = client.chat.completions.create(**QUESTION).choices[0].message.content
    stream = client.chat.completions.create(**OTHER, stream=True)
    streamed = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    embedded = client.embeddings.create(model="text-embedding-3-small", input="colour")
    client.close()
    return [plain, streamed, str(embedded.data[0].embedding[:3])]


def test_a_rewrite_of_unchanged_answers_leaves_the_cassette_byte_identical(tmp_path: Path, sim) -> None:
    path = tmp_path / "cassettes" / "colours.yaml"
    with use_cassette(path, mode="record", upstream=sim.url) as cassette:
        first = ask_all(cassette.url)
    before, written = path.read_bytes(), path.stat().st_mtime_ns

    again = rewrite(path, sim.url, ask_all)

    assert again == first
    assert sim.stats()["total"] == 6  # the rewrite asked the upstream anew: new ids, times, request ids
    assert path.read_bytes() == before
    assert path.stat().st_mtime_ns == written  # not even rewritten with the same bytes


def test_a_rewrite_where_one_answer_changed_changes_only_that_interaction(tmp_path: Path, sim) -> None:
    path = tmp_path / "two.yaml"
    with use_cassette(path, mode="record", upstream=sim.url) as cassette:
        ask(cassette.url, QUESTION, OTHER)
    before = path.read_text(encoding="utf-8")

    def first_same_then_changed(url: str) -> None:
        ask(url, QUESTION)
        sim.config.drift = "new weights"  # the model behind the same URL changes its answers
        ask(url, OTHER)

    rewrite(path, sim.url, first_same_then_changed)

    after = path.read_text(encoding="utf-8")
    old, new = yaml.safe_load(before)["interactions"], yaml.safe_load(after)["interactions"]
    assert new[0] == old[0]
    assert new[1]["request"] == old[1]["request"]
    assert new[1]["response"]["body"] != old[1]["response"]["body"]
    second = before.index("\n- request:", before.index("- request:") + 1)
    assert after[:second] == before[:second]  # the text of the unchanged interaction, to the byte


def rewrite(path: Path, upstream: str, calls: Callable[[str], T]) -> T:
    """What `--seedreplay=rewrite` does with a test's cassette: start from no recordings, send every
    call upstream (the proxy's refresh), save over the file."""
    store = CassetteStore.load(path, repeat_last=False, empty=True)
    with Proxy(upstream, store=store, mode="refresh", durable=True) as proxy:
        result = calls(proxy.url)
        assert proxy.settle()
    assert store.recorded
    store.save(replace=True, start_fresh=lambda _: True)
    return result


def ask(base_url: str, *questions: dict) -> None:
    client = openai.OpenAI(base_url=base_url, api_key="sk-test-x", max_retries=0)
    for question in questions:
        client.chat.completions.create(**question)
    client.close()


def test_an_overwrite_in_record_mode_with_the_same_answer_keeps_the_file(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    write_cassette(path, [chat_entry(), streamed_entry()])
    before = path.read_bytes()
    store = CassetteStore.load(path)
    store.put(fresh_ids(chat_entry()))  # a put without a read: the next place of its key, the loaded one

    assert store.overwrote
    store.save()
    assert path.read_bytes() == before


def fresh_ids(entry):
    """The same answer as a second call would bring it: new id, created, request id, time, fingerprint."""
    body = {**entry.body, "id": "chatcmpl-new", "created": entry.body["created"] + 60, "system_fingerprint": "fp_new"}
    headers = {**entry.headers, "x-request-id": "req_new", "openai-processing-ms": "412"}
    return dataclasses.replace(entry, body=body, headers=headers, recorded_at=entry.recorded_at + 60, system_fingerprint="fp_new")


def test_same_answer_ignores_the_volatile_fields_only() -> None:
    old = chat_entry()
    assert same_answer(old, fresh_ids(old))
    cached = {**old.body, "usage": {**old.body["usage"], "prompt_tokens_details": {"cached_tokens": 1024}}}
    uncached = {**old.body, "usage": {**old.body["usage"], "prompt_tokens_details": {"cached_tokens": 0}}}
    assert same_answer(dataclasses.replace(old, body=uncached), dataclasses.replace(old, body=cached))
    assert not same_answer(old, chat_entry(answer="Hello!"))
    assert not same_answer(
        old, dataclasses.replace(old, body={**old.body, "usage": {**old.body["usage"], "completion_tokens": 4}})
    )
    assert not same_answer(old, dataclasses.replace(old, status=201))
    assert not same_answer(old, dataclasses.replace(old, model="gpt-4o-2024-08-06"))
    assert not same_answer(old, dataclasses.replace(old, headers={**old.headers, "openai-version": "2020-10-01"}))


def test_a_stream_is_compared_by_its_assembled_answer() -> None:
    old = streamed_entry()
    events = old.events or []
    rechunked = [
        events[0],
        SSEEvent(events[1].data.replace('"one, "', '"one"')),
        SSEEvent(events[1].data.replace('"one, "', '", "')),
        *events[2:],
    ]
    assert same_answer(old, dataclasses.replace(old, events=rechunked))
    changed = [events[0], SSEEvent(events[1].data.replace("one", "three")), *events[2:]]
    assert not same_answer(old, dataclasses.replace(old, events=changed))


def test_a_read_and_rewritten_cassette_is_byte_identical(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    write_cassette(path, [chat_entry(), streamed_entry(), chat_entry("Grüß Gott 🎉", "Ça va ✨\nzwei"), embedding_entry()])
    copy = tmp_path / "copy.yaml"
    write_cassette(copy, read_cassette(path))
    assert copy.read_bytes() == path.read_bytes()


def test_our_writer_writes_what_vcrpys_serializer_writes() -> None:
    entries = [chat_entry(), streamed_entry(), chat_entry("Grüß Gott — 你好 🎉", "Ça va ✨\nzweite Zeile"), embedding_entry()]
    interactions = [entry_to_interaction(entry) for entry in entries]
    theirs = serialize(
        {
            "requests": [Request._from_dict(i["request"]) for i in interactions],
            "responses": [i["response"] for i in interactions],
        },
        yamlserializer,
    )
    assert cassette_text(entries) == theirs


def test_a_new_file_follows_the_umask_and_a_replaced_one_keeps_its_mode(tmp_path: Path) -> None:
    previous = os.umask(0o022)
    try:
        write_cassette(tmp_path / "shared.yaml", [chat_entry()])
        write_atomically(tmp_path / "report.json", b"{}")
        os.umask(0o077)
        write_atomically(tmp_path / "private.json", b"{}")
    finally:
        os.umask(previous)
    assert mode_of(tmp_path / "shared.yaml") == 0o644
    assert mode_of(tmp_path / "report.json") == 0o644
    assert mode_of(tmp_path / "private.json") == 0o600

    (tmp_path / "shared.yaml").chmod(0o640)
    write_cassette(tmp_path / "shared.yaml", [chat_entry(), embedding_entry()])
    assert mode_of(tmp_path / "shared.yaml") == 0o640
    assert sorted(os.listdir(tmp_path)) == ["private.json", "report.json", "shared.yaml"]  # no temp file left


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)
