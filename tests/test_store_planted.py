"""Rows planted in a store by whoever can write its directory or its Redis: they are reported and
skipped, never executed, never followed out of the cache, never inflated without bound."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import pickle
import sqlite3
import struct
import zlib
from pathlib import Path

import pytest
from click.testing import CliRunner

from pytest_seedreplay.cli import main
from pytest_seedreplay.core.constants import HEADER_KEY
from pytest_seedreplay.store import CorruptEntry, DiskStore
from pytest_seedreplay.store.codec import MAX_INFLATED_BYTES, pack_head, unpack_tail

from proxy_support import CHAT, MODEL, messages
from test_store import make_entry

pytestmark = pytest.mark.timeout(120)


class Payload:
    """Unpickling this makes a directory: the proof that a row's pickle ran."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def _sql(directory: Path, statement: str, args: tuple = ()) -> None:
    with sqlite3.connect(directory / "cache.db") as db:
        db.execute(statement, args)


def plant_pickled_key(directory: Path, marker: Path) -> None:
    _sql(
        directory,
        "INSERT INTO Cache (key, raw, store_time, expire_time, access_time, access_count, tag, size, mode, filename, value)"
        " VALUES (?, 0, 0, NULL, 0, 0, NULL, 0, 1, NULL, ?)",
        (sqlite3.Binary(pickle.dumps(Payload(marker), protocol=0)), sqlite3.Binary(b"x")),
    )


def plant_pickled_value(directory: Path, key: str, marker: Path) -> None:
    _sql(directory, "UPDATE Cache SET mode = 4, value = ? WHERE key = ?", (sqlite3.Binary(pickle.dumps(Payload(marker))), key))


def plant_file_row(directory: Path, key: str, filename: str) -> None:
    _sql(directory, "UPDATE Cache SET mode = 2, value = NULL, filename = ? WHERE key = ?", (filename, key))


def plant_blob(directory: Path, key: str, blob: bytes) -> None:
    _sql(directory, "UPDATE Cache SET mode = 1, filename = NULL, value = ? WHERE key = ?", (sqlite3.Binary(blob), key))


@pytest.fixture
def recorded(tmp_path: Path) -> tuple[Path, list[str]]:
    """A disk store with three good entries; (its directory, their keys)."""
    directory = tmp_path / "cache"
    entries = [make_entry(seed) for seed in (1, 2, 3)]
    with DiskStore(directory) as store:
        store.put_many(entries)
    return directory, [e.key for e in entries]


def cache_cli(*args: str):
    return CliRunner().invoke(main, ["cache", *args])


# ---------------------------------------------------------------- pickled keys and values never run


def test_a_pickled_key_is_skipped_by_every_listing_and_never_unpickled(recorded, tmp_path):
    directory, keys = recorded
    marker = tmp_path / "ran"
    plant_pickled_key(directory, marker)
    with DiskStore(directory) as store:
        assert list(store.iter_keys()) == sorted(keys)
        assert [e.key for e in store.iter_entries()] == sorted(keys)
        assert [k for k, _ in store.iter_requests()] == sorted(keys)  # what --similar reads at start
        assert store.foreign >= 1
    listed = cache_cli("ls", "--cache-dir", str(directory), "--json")
    assert listed.exit_code == 0, listed.output
    assert sorted(row["key"] for row in json.loads(listed.stdout)) == sorted(keys)
    assert not marker.exists()


def plant_key(directory: Path, key: object, raw: int, expire_time: float | None = None) -> None:
    _sql(
        directory,
        "INSERT INTO Cache (key, raw, store_time, expire_time, access_time, access_count, tag, size, mode, filename, value)"
        " VALUES (?, ?, 0, ?, 0, 0, NULL, 0, 1, NULL, ?)",
        (key, raw, expire_time, sqlite3.Binary(b"x")),
    )


def test_the_count_of_entries_leaves_out_the_planted_keys_the_listings_skip(recorded, tmp_path):
    directory, keys = recorded
    marker = tmp_path / "ran"
    plant_pickled_key(directory, marker)
    plant_key(directory, sqlite3.Binary(b"raw bytes"), 1)  # a bytes key: a BLOB too
    plant_key(directory, 7, 1)  # numbers sort before text, at the index's other end
    plant_key(directory, 2.5, 1)
    plant_key(directory, sqlite3.Binary(b"expired and planted"), 1, expire_time=1.0)  # not left out twice
    with DiskStore(directory) as store:
        assert list(store.iter_keys()) == sorted(keys)
        assert len(store) == len(keys) == store.stats().entries
        store.put(make_entry(4))  # a live entry still counts, and one past its TTL still does not
        store.put(dataclasses.replace(make_entry(5), expires_at=1.0))
        assert len(store) == len(keys) + 1 == len(list(store.iter_entries()))
    stats = cache_cli("stats", "--cache-dir", str(directory), "--json")
    assert stats.exit_code == 0, stats.output
    report = json.loads(stats.stdout)
    assert report["entries"] == len(keys) + 1 == sum(report["by_endpoint"].values())
    assert not marker.exists()


def test_a_pickled_value_is_a_corrupt_entry_not_code(recorded, tmp_path):
    directory, keys = recorded
    marker = tmp_path / "ran"
    plant_pickled_value(directory, keys[0], marker)
    with DiskStore(directory) as store:
        with pytest.raises(CorruptEntry, match=f"{keys[0]}.*not a seedreplay entry"):
            store.get(keys[0])
        assert sorted(e.key for e in store.iter_entries()) == sorted(keys[1:])  # skipped, the rest listed
    shown = cache_cli("show", keys[0], "--cache-dir", str(directory))
    assert shown.exit_code == 1 and "not a seedreplay entry" in shown.output
    assert "Traceback" not in shown.output and len(shown.output.strip().splitlines()) == 1
    assert not marker.exists()


def test_read_or_claim_on_a_pickled_value_is_a_corrupt_entry_and_claims_nothing(recorded, tmp_path):
    directory, keys = recorded
    marker = tmp_path / "ran"
    plant_pickled_value(directory, keys[0], marker)
    with DiskStore(directory) as store:
        with pytest.raises(CorruptEntry, match=f"{keys[0]}.*not a seedreplay entry"):
            store.read_or_claim(keys[0], 30)
        with pytest.raises(CorruptEntry, match=f"{keys[0]}.*not a seedreplay entry"):
            store.read_or_claim_now(keys[0], 30)
        assert store.claim(keys[0], 30) is not None  # neither read claimed the key
    assert not marker.exists()


def test_a_proxy_hit_on_a_pickled_value_answers_5xx_without_running_it(sim, proxy_factory, tmp_path, caplog):
    proxy = proxy_factory(sim.url, memory_cache=0)
    body = {"model": MODEL, "messages": messages("planted"), "seed": 1}
    key = proxy.post(CHAT, body).headers[HEADER_KEY.lower()]
    proxy.settle()
    marker = tmp_path / "ran"
    plant_pickled_value(proxy.cache_dir, key, marker)
    caplog.set_level(logging.WARNING)
    answer = proxy.post(CHAT, body)
    assert answer.status == 503, answer.body
    assert answer.json()["error"]["code"] == "store_unavailable"
    assert "not a seedreplay entry" in answer.json()["error"]["message"]
    assert not marker.exists()
    assert proxy.stats()["errors"] >= 1
    assert not [r for r in caplog.records if r.exc_info]


def test_planted_shared_rows_are_dropped_not_unpickled(recorded, tmp_path):
    directory, keys = recorded
    marker = tmp_path / "ran"
    with DiskStore(directory) as store:
        token = store.claim(keys[0], 30)
        assert token is not None
        store.release(keys[0], token)
        shared = directory / "shared"
        # A pickled value where the lock of keys[0] would be: the shared rows' keys are pickled by us.
        lock = sqlite3.Binary(pickletools_key(("lock", keys[0])))
        _sql(
            shared,
            "INSERT INTO Cache (key, raw, store_time, expire_time, access_time, access_count, tag, size, mode, filename, value)"
            " VALUES (?, 0, 0, NULL, 0, 0, NULL, 0, 4, NULL, ?)",
            (lock, sqlite3.Binary(pickle.dumps(Payload(marker)))),
        )
        assert store.wait_for(keys[0], 1).state == "free"
        assert store.claim(keys[0], 30) is not None
    assert not marker.exists()


def pickletools_key(key: tuple[str, str]) -> bytes:
    """The bytes diskcache stores for a tuple key, as its Disk.put makes them (Cache's default protocol)."""
    import diskcache

    db_key, raw = diskcache.Disk("/nonexistent", pickle_protocol=pickle.HIGHEST_PROTOCOL).put(key)
    assert raw is False
    return bytes(db_key)


# ---------------------------------------------------------------- file rows stay inside the cache


@pytest.mark.parametrize("how", ["absolute", "dotdot"])
def test_a_row_naming_a_file_outside_the_cache_never_deletes_it(recorded, tmp_path, how):
    directory, keys = recorded
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    filename = str(victim) if how == "absolute" else os.path.join("..", "victim.txt")
    plant_file_row(directory, keys[0], filename)
    plant_file_row(directory, keys[1], filename)
    with DiskStore(directory) as store:
        with pytest.raises(CorruptEntry):
            store.get(keys[0])
        store.put(make_entry(1))  # an overwrite (a Cache-Control: no-cache answer) drops the old row's file
        assert store.delete(keys[1])
        assert store.get(keys[0]) is not None
    assert victim.read_text() == "precious"


def test_a_linked_folder_does_not_lead_a_file_row_out_of_the_cache(recorded, tmp_path):
    directory, keys = recorded
    outside = tmp_path / "outside" / "cd"
    outside.mkdir(parents=True)
    victim = outside / ("e" * 28 + ".val")
    victim.write_bytes(b"precious")
    (directory / "ab").symlink_to(tmp_path / "outside")
    plant_file_row(directory, keys[0], os.path.join("ab", "cd", "e" * 28 + ".val"))
    with DiskStore(directory) as store:
        with pytest.raises(CorruptEntry):
            store.get(keys[0])
        assert store.delete(keys[0])
    assert victim.read_bytes() == b"precious"


def test_a_no_cache_request_over_a_planted_file_row_leaves_the_file(sim, proxy_factory, tmp_path):
    proxy = proxy_factory(sim.url, memory_cache=0)
    body = {"model": MODEL, "messages": messages("file row"), "seed": 2}
    key = proxy.post(CHAT, body).headers[HEADER_KEY.lower()]
    proxy.settle()
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    plant_file_row(proxy.cache_dir, key, str(victim))
    refreshed = proxy.post(CHAT, body, headers={"Cache-Control": "no-cache"})
    assert refreshed.status == 200
    proxy.settle()
    assert victim.read_text() == "precious"
    assert proxy.store.get(key) is not None  # the new answer replaced the planted row


def test_big_answers_still_go_to_files_and_read_back(tmp_path):
    big = make_entry(7, size=4_600_000)
    with DiskStore(tmp_path / "big") as store:
        store.put(big)
        files = [p for p in (tmp_path / "big").rglob("*.val")]
        assert len(files) == 1  # the value went to a file diskcache named
        assert store.get(big.key) == big
        assert store.delete(big.key)
        assert not files[0].exists()


# ---------------------------------------------------------------- inflation has a bound


def _bomb(size: int) -> bytes:
    """zlib of `{"body": "aaa…"}` inflating to `size` bytes, made without holding them."""
    deflater = zlib.compressobj(9)
    parts = [deflater.compress(b'{"body":"')]
    chunk = b"a" * 2**20
    for _ in range(size // len(chunk)):
        parts.append(deflater.compress(chunk))
    parts.append(deflater.compress(b'"}'))
    parts.append(deflater.flush())
    return b"z" + b"".join(parts)


def test_an_answer_inflating_past_the_bound_is_corrupt(recorded):
    directory, keys = recorded
    tail = _bomb(MAX_INFLATED_BYTES + 2**20)
    assert len(tail) < 2**20  # a small stored value
    head = pack_head(make_entry(1))
    plant_blob(directory, keys[0], struct.pack(">I", len(head)) + head + tail)
    with DiskStore(directory) as store:
        with pytest.raises(CorruptEntry, match=f"inflates past {MAX_INFLATED_BYTES // 2**20} MiB"):
            store.get(keys[0])


def test_an_answer_within_the_bound_inflates_whole():
    assert unpack_tail(_bomb(2**22), "entry x") == {"body": "a" * 2**22}


# ---------------------------------------------------------------- entries of the wrong shape


def _hostile(entry_dict: dict) -> bytes:
    head = b"SRE\x01" + json.dumps({k: v for k, v in entry_dict.items() if k not in ("body", "events")}).encode()
    tail = b"j" + json.dumps({"body": entry_dict.get("body")}).encode()
    return struct.pack(">I", len(head)) + head + tail


HOSTILE = {
    "status 99999": {"status": 99999},
    "status as text": {"status": "200"},
    "CR/LF in a header": {"headers": {"x-a": "1\r\nSet-Cookie: b=2"}},
    "a header name with a space": {"headers": {"x a": "1"}},
    "a header value not text": {"headers": {"x-a": 5}},
    "headers as a list": {"headers": [["x-a", "1"]]},
    "request as a list": {"request": ["gpt"]},
    "key as a number": {"key": 5},
    "recorded_at as text": {"recorded_at": "yesterday"},
}


@pytest.mark.parametrize("change", HOSTILE.values(), ids=HOSTILE.keys())
def test_an_entry_of_the_wrong_shape_is_corrupt(recorded, change):
    directory, keys = recorded
    good = make_entry(1).to_dict()
    plant_blob(directory, keys[0], _hostile({**good, **change}))
    with DiskStore(directory) as store:
        with pytest.raises(CorruptEntry, match="is damaged"):
            store.get(keys[0])
        assert len(list(store.iter_entries())) == 2


@pytest.mark.parametrize("change", [HOSTILE["status 99999"], HOSTILE["CR/LF in a header"], HOSTILE["headers as a list"]])
def test_a_proxy_hit_on_a_hostile_entry_is_an_openai_5xx(sim, proxy_factory, caplog, change):
    proxy = proxy_factory(sim.url, memory_cache=0)
    body = {"model": MODEL, "messages": messages("hostile"), "seed": 3}
    key = proxy.post(CHAT, body).headers[HEADER_KEY.lower()]
    stored = proxy.store.get(key)
    assert stored is not None
    plant_blob(proxy.cache_dir, key, _hostile({**stored.to_dict(), **change}))
    caplog.set_level(logging.WARNING)
    answer = proxy.post(CHAT, body)
    assert answer.status == 503
    error = answer.json()["error"]
    assert error["code"] == "store_unavailable" and "is damaged" in error["message"]
    assert "set-cookie" not in answer.headers
    assert proxy.stats()["errors"] >= 1
    assert not [r for r in caplog.records if r.exc_info]


@pytest.mark.parametrize("change", [{"status": 99999}, {"headers": {"x-a": "1\r\nSet-Cookie: b=2"}}, {"headers": {"x a": "1"}}])
def test_an_entry_no_store_checked_is_not_sent_with_a_bad_status_or_header(change):
    # A cassette's entry (or any built in code) reaches the proxy without Entry.from_dict's checks.
    from pytest_seedreplay.proxy.answers import serve_entry
    from pytest_seedreplay.proxy.errors import APIError
    from pytest_seedreplay.proxy.flight import Shape

    entry = dataclasses.replace(make_entry(4), **change)
    with pytest.raises(APIError) as refused:
        serve_entry(entry, Shape(), {})
    assert refused.value.status == 500 and "cannot be served" in str(refused.value)


def test_planted_savings_tallies_read_as_none_and_are_replaced(recorded):
    import diskcache

    directory, _ = recorded
    with DiskStore(directory) as store:
        store.add_savings({"hits": 1, "input_tokens": 10, "output_tokens": 5, "cost": 0.001})
    with diskcache.Cache(str(directory / "shared")) as shared:  # what another program could write there
        shared.set(("savings", "hits"), "lots")
        shared.set(("savings", "since"), "yesterday")
    with DiskStore(directory) as store:
        assert store.savings()["hits"] == 0 and store.savings()["since"] is None
        store.add_savings({"hits": 2, "input_tokens": 1, "output_tokens": 1, "cost": 0.0})
        totals = store.savings()
        assert totals["hits"] == 2 and totals["input_tokens"] == 11 and isinstance(totals["since"], float)
