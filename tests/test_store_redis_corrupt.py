"""A damaged or planted entry in a Redis store (one server or a cluster) is skipped by every listing,
counted and said in one line, as the disk store does: `cache ls`, `export`, the similar index's
`iter_requests` and `iter_entries` go on past it instead of ending with one error line."""

from __future__ import annotations

import json
import logging
import struct
import uuid

import pytest
from click.testing import CliRunner

from pytest_seedreplay.cli import main
from pytest_seedreplay.store import CorruptEntry, store_at

from test_store_team import entry

GARBLED = {
    "an answer that is not JSON": ("tail", b"j{not json"),
    "a head seedreplay never wrote": ("head", b"<?php system($_GET['c']); ?>"),
    "a head holding a list": ("head", b"SRE\x01[1, 2]"),
}


@pytest.fixture(params=["redis", "redis-cluster"])
def url(request) -> str:
    server = request.getfixturevalue("shared_redis_cluster" if request.param == "redis-cluster" else "shared_redis")
    return server.url + f"?prefix=k{uuid.uuid4().hex[:10]}:"


@pytest.mark.parametrize("field, value", GARBLED.values(), ids=GARBLED.keys())
def test_a_listing_skips_a_corrupt_entry_counts_it_and_goes_on(url, caplog, tmp_path, field, value):
    entries = [entry(n) for n in range(5)]
    with store_at(url) as store:
        store.put_many(entries)
        bad = sorted(e.key for e in entries)[1]  # not the last: the listing must go on past it
        store._redis.hset(store._entry_key(bad), field, value)  # what anyone who can write the Redis could do
    good = sorted(e.key for e in entries if e.key != bad)
    caplog.set_level(logging.WARNING)
    with store_at(url) as store:
        assert [e.key for e in store.iter_entries()] == good
        requests = [key for key, _ in store.iter_requests()]  # what --similar's index reads
        assert requests == (good if field == "head" else sorted(e.key for e in entries))
        assert store.skipped == (2 if field == "head" else 1)
    said = [r.getMessage() for r in caplog.records if r.getMessage().startswith("skipped: ")]
    assert said and all(bad in line and "\n" not in line for line in said)
    listed = CliRunner().invoke(main, ["cache", "ls", "--store", url, "--json"])
    assert listed.exit_code == 0, listed.output
    assert sorted(row["key"] for row in json.loads(listed.stdout)) == good
    out = tmp_path / "export.jsonl"
    exported = CliRunner().invoke(main, ["cache", "export", "--store", url, "-o", str(out)])
    assert exported.exit_code == 0, exported.output
    assert sorted(json.loads(line)["key"] for line in out.read_text().splitlines()) == good


@pytest.mark.parametrize("field, value", GARBLED.values(), ids=GARBLED.keys())
def test_read_or_claim_on_a_corrupt_entry_raises_and_claims_nothing(url, field, value):
    planted = entry(7)
    with store_at(url) as store:
        store.put(planted)
        store._redis.hset(store._entry_key(planted.key), field, value)
        with pytest.raises(CorruptEntry):
            store.read_or_claim(planted.key, 30)
        assert store.claim(planted.key, 30) is not None  # the read left the key free


def test_a_head_or_answer_that_is_json_but_no_object_is_a_corrupt_entry_on_disk_too(tmp_path):
    from pytest_seedreplay.store import CorruptEntry, DiskStore

    from test_store_planted import plant_blob

    entries = [entry(n) for n in range(3)]
    with DiskStore(tmp_path) as store:
        store.put_many(entries)
    bad, other = sorted(e.key for e in entries)[:2]
    plant_blob(tmp_path, bad, struct.pack(">I", 8) + b"SRE\x01[12]" + b'j{"body": 1}')
    plant_blob(tmp_path, other, struct.pack(">I", 6) + b"SRE\x01{}" + b"j[1, 2]")
    with DiskStore(tmp_path) as store:
        for key in (bad, other):
            with pytest.raises(CorruptEntry, match="is not a JSON object"):
                store.get(key)
        assert [e.key for e in store.iter_entries()] == sorted(e.key for e in entries)[2:]
