"""The store: round trips, secret refusal, format errors, real concurrent and killed processes, Redis."""

from __future__ import annotations

import base64
import dataclasses
import inspect
import itertools
import os
import random
import shutil
import signal
import socket
import sqlite3
import struct
import subprocess
import sys
import time
import tracemalloc
import uuid
import zlib
from pathlib import Path

import diskcache
import pytest

from pytest_seedreplay.core.constants import ENTRY_FORMAT, ENV_STORE
from pytest_seedreplay.core.entry import Entry, SSEEvent
from pytest_seedreplay.core.key import canonical_request, key_of_canonical
from pytest_seedreplay.core.redact import SecretRefused
from pytest_seedreplay.store import (
    DiskStore,
    EntryFormatError,
    StoreError,
    display_location,
    open_store,
    store_at,
)
from pytest_seedreplay.store.codec import pack_entry, pack_head

TESTS = Path(__file__).parent
ENDPOINT = "/v1/chat/completions"
FAKE_KEY = "sk-proj-" + "A1b2C3d4E5f6G7h8I9j0" * 2
BIG = 4_600_000  # random bytes of answer: compresses to more than the 4 MiB that go to a file


# ---------------------------------------------------------------- entries whose content proves the key


def answer_text(seed: int, size: int) -> str:
    """Incompressible, reproducible text: a reader can regenerate it from the request alone."""
    return base64.b64encode(random.Random(seed).randbytes(size)).decode()


def make_entry(seed: int, size: int = 600, streamed: bool = False) -> Entry:
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": f"question {seed}"}], "seed": seed}
    if size != 600:
        body["max_tokens"] = size  # keys the answer size, so the content check can regenerate it
    request = canonical_request(ENDPOINT, body)
    text = answer_text(seed, size)
    common = dict(
        key=key_of_canonical(request),
        endpoint=ENDPOINT,
        request=request,
        headers={"content-type": "text/event-stream" if streamed else "application/json", "x-request-id": f"req_{seed}"},
        upstream="https://api.openai.com/v1",
        model="gpt-4o-mini-2024-07-18",
        system_fingerprint="fp_44709d6fcb",
    )
    if streamed:
        chunks = [text[i : i + 100] for i in range(0, len(text), 100)]
        events = [SSEEvent(data=f'{{"delta":"{c}"}}') for c in chunks] + [SSEEvent(data="[DONE]")]
        return Entry(**common, events=events)
    return Entry(**common, body={"id": f"chatcmpl-{seed}", "choices": [{"message": {"content": text}}]})


def assert_intact(entry: Entry) -> None:
    """Complete and consistent: the key is the request's, the answer is the one made for that request."""
    assert entry.key == key_of_canonical(entry.request)
    params = entry.request["params"]
    expected = make_entry(params["seed"], params.get("max_tokens", 600), streamed=entry.streamed)
    assert entry == dataclass_with(expected, recorded_at=entry.recorded_at)


def dataclass_with(entry: Entry, **changes) -> Entry:
    return dataclasses.replace(entry, **changes)


def write_loop(target: str, start: int, count: int, big_every: int = 0, wait_for_go: bool = False) -> None:
    """Child process body: put entries, acknowledging each committed key on stdout."""
    store = store_at(target)
    if wait_for_go:
        print("ready", flush=True)
        sys.stdin.readline()
    seeds = range(start, start + count) if count >= 0 else itertools.count(start)  # count < 0: until killed
    for n, seed in enumerate(seeds):
        big = big_every and n % big_every == big_every - 1
        entry = make_entry(seed, size=BIG if big else 600, streamed=seed % 3 == 0)
        store.put(entry)
        print(entry.key, flush=True)
    store.close()


def spawn_writer(target: str, start: int, count: int, big_every: int = 0, wait_for_go: bool = False):
    code = (
        f"import sys; sys.path.insert(0, {str(TESTS)!r}); from test_store import write_loop; "
        f"write_loop({target!r}, {start}, {count}, {big_every}, {wait_for_go})"
    )
    return subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


@pytest.fixture
def writers():
    """Start writer processes; any still running when the test ends (it failed) is killed."""
    started: list[subprocess.Popen] = []

    def start(*args, **kwargs) -> subprocess.Popen:
        started.append(spawn_writer(*args, **kwargs))
        return started[-1]

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


def finish(proc: subprocess.Popen, timeout: float = 30) -> list[str]:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err
    return out.split()


# ---------------------------------------------------------------- stores under test


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory):
    """A real redis-server on a free loopback port, or a skip saying why not."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server) - Redis store tests skipped")
    pytest.importorskip("redis", reason="the redis package is not installed (pip install 'pytest-seedreplay[redis]')")
    import redis

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    workdir = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(workdir)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"redis-server did not start on port {port}")
    client.close()
    yield url
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture(params=["disk", "redis", "redis-cluster"])
def target(request, tmp_path) -> str:
    """Where a store lives: a fresh directory, or a fresh key prefix on the test Redis or Redis Cluster."""
    if request.param == "disk":
        return str(tmp_path / "store")
    if request.param == "redis-cluster":
        return request.getfixturevalue("shared_redis_cluster").url + f"?prefix=t{uuid.uuid4().hex[:12]}:"
    return request.getfixturevalue("redis_url") + f"?prefix=t{uuid.uuid4().hex[:12]}:"


def on_redis(target: str) -> bool:
    return target.startswith(("redis://", "redis+cluster://"))


@pytest.fixture
def store(target):
    with store_at(target) as opened:
        yield opened


# ---------------------------------------------------------------- round trips


def test_plain_and_streamed_entries_round_trip(store):
    plain, streamed = make_entry(1), make_entry(2, streamed=True)
    store.put(plain)
    store.put(streamed)

    assert store.get(plain.key) == plain
    again = store.get(streamed.key)
    assert again == streamed and again.streamed and again.events[-1] == SSEEvent(data="[DONE]")
    assert store.get("v1:" + "0" * 64) is None
    assert len(store) == 2 and plain.key in store and "v1:nope" not in store


def test_unicode_small_and_empty_answers_round_trip(store):
    entry = make_entry(5)
    entry.body = {"choices": [{"message": {"content": "héllo ✓ 🌍 \u0000 end"}}], "n": 1.5, "none": None}
    tiny = dataclass_with(make_entry(6), body=None, status=204, model=None, system_fingerprint=None)
    named = dataclass_with(make_entry(7), body=None, events=[SSEEvent(data="{}", event="response.created")])
    for each in (entry, tiny, named):
        store.put(each)
        assert store.get(each.key) == each


def test_put_overwrites_and_delete_removes(store):
    entry = make_entry(3)
    store.put(entry)
    newer = dataclass_with(entry, body={"id": "second", "choices": []}, recorded_at=entry.recorded_at + 1)
    store.put(newer)
    assert store.get(entry.key) == newer and len(store) == 1

    assert store.delete(entry.key) is True
    assert store.delete(entry.key) is False
    assert store.get(entry.key) is None and len(store) == 0 and list(store.iter_keys()) == []


def test_iteration_lists_every_entry_once_in_key_order(store):
    entries = [make_entry(seed, streamed=seed % 2 == 0) for seed in range(230)]
    assert store.put_many(entries) == 230

    keys = list(store.iter_keys())
    assert keys == sorted(e.key for e in entries)
    assert [e.key for e in store.iter_entries()] == keys
    requests = dict(store.iter_requests())
    assert requests == {e.key: e.request for e in entries}


def test_stats_count_entries_and_bytes(store, target):
    empty = store.stats()
    assert empty.entries == 0 and empty.location in target

    store.put_many(make_entry(seed) for seed in range(50))
    stats = store.stats()
    assert stats.entries == 50 == len(store)
    # The answers are incompressible ~800-char strings: at least that much must be accounted for.
    assert stats.bytes > empty.bytes + 50 * 800


# ---------------------------------------------------------------- refusals and format errors


@pytest.mark.parametrize(
    "change, where",
    [
        (
            lambda e: e.request["params"]["messages"][0].update(content=f"my key is {FAKE_KEY}"),
            "entry.request.params.messages[0].content",
        ),
        (lambda e: e.headers.update({"x-request-id": f"Bearer {FAKE_KEY[3:]}"}), "entry.headers.x-request-id"),
        (lambda e: e.body.update(echo=FAKE_KEY), "entry.body.echo"),
        (lambda e: e.__setattr__("upstream", f"https://user:{FAKE_KEY}@example.com/v1"), "entry.upstream"),
    ],
)
def test_a_write_carrying_an_api_key_is_refused_naming_the_field(store, change, where):
    entry = make_entry(8)
    change(entry)
    with pytest.raises(SecretRefused) as refused:
        store.put(entry)
    assert refused.value.where == where and where in str(refused.value)
    assert store.get(entry.key) is None and len(store) == 0


def test_a_secret_in_a_streamed_event_refuses_the_whole_batch(store):
    bad = make_entry(9, streamed=True)
    bad.events[1] = SSEEvent(data=f'{{"delta":"{FAKE_KEY}"}}')
    with pytest.raises(SecretRefused, match=r"entry\.events\[1\]\.data"):
        store.put_many([make_entry(10), bad])
    assert len(store) == 0 and list(store.iter_keys()) == []


def _plant(target: str, key: str, blob_or_parts) -> None:
    """Write raw bytes under a key, as another (newer, or foreign) program would."""
    if on_redis(target):
        head, tail = blob_or_parts
        # The store's own client and key names: on a cluster they carry the bucket's hash tag.
        with store_at(target) as store:
            store._redis.hset(store._entry_key(key), mapping={"head": head, "tail": tail})
            store._redis.zadd(f"{store._bucket(key)}keys", {key: 0})
    else:
        with diskcache.Cache(target) as cache:
            cache.set(key, blob_or_parts if isinstance(blob_or_parts, bytes) else b"".join(blob_or_parts))


def test_an_entry_from_a_newer_seedreplay_names_its_format_and_says_upgrade(store, target):
    entry = make_entry(11)
    head = bytearray(pack_head(entry))
    head[3] = ENTRY_FORMAT + 1
    if on_redis(target):
        _plant(target, entry.key, (bytes(head), b"j{}"))
    else:
        blob = bytearray(pack_entry(entry))
        blob[7] = ENTRY_FORMAT + 1
        _plant(target, entry.key, bytes(blob))

    for read in (lambda: store.get(entry.key), lambda: list(store.iter_entries()), lambda: list(store.iter_requests())):
        with pytest.raises(EntryFormatError) as error:
            read()
        message = str(error.value)
        assert f"entry format {ENTRY_FORMAT + 1}" in message and entry.key in message
        assert "pip install -U pytest-seedreplay" in message


def test_bytes_seedreplay_never_wrote_are_reported_not_misread(store, target):
    _plant(target, "v1:foreign", (b"hello", b"world") if on_redis(target) else b"hello world")
    with pytest.raises(EntryFormatError, match="v1:foreign.*not a seedreplay entry"):
        store.get("v1:foreign")


def test_a_damaged_entry_is_reported_not_misread(store, target):
    entry = make_entry(13)
    head, tail = pack_head(entry), b"z" + b"\x78\x9c not zlib at all"
    if on_redis(target):
        _plant(target, entry.key, (head, tail))
    else:
        _plant(target, entry.key, struct.pack(">I", len(head)) + head + tail)
    with pytest.raises(EntryFormatError, match=f"{entry.key}.*is damaged.*record it again"):
        store.get(entry.key)
    assert [key for key, _ in store.iter_requests()] == [entry.key]  # the intact request is still listed


def test_an_answer_that_inflates_past_the_bound_is_corrupt_on_every_backend(store, target):
    from pytest_seedreplay.store import CorruptEntry
    from pytest_seedreplay.store.codec import MAX_INFLATED_BYTES

    entry = make_entry(14)
    deflater = zlib.compressobj(9)
    chunk = b"a" * 2**20
    parts = [deflater.compress(b'{"body":"')] + [deflater.compress(chunk) for _ in range(MAX_INFLATED_BYTES // len(chunk) + 1)]
    tail = b"z" + b"".join([*parts, deflater.compress(b'"}'), deflater.flush()])  # valid JSON once inflated
    head = pack_head(entry)
    if on_redis(target):
        _plant(target, entry.key, (head, tail))
    else:
        _plant(target, entry.key, struct.pack(">I", len(head)) + head + tail)
    with pytest.raises(CorruptEntry, match=f"{entry.key}.*inflates past {MAX_INFLATED_BYTES // 2**20} MiB"):
        store.get(entry.key)


def test_a_pickled_value_from_plain_diskcache_is_reported(tmp_path):
    with diskcache.Cache(str(tmp_path)) as cache:
        cache.set("v1:old", {"key": "v1:old"})
    with DiskStore(tmp_path) as store, pytest.raises(EntryFormatError, match="not a seedreplay entry"):
        store.get("v1:old")


def test_an_entry_claiming_an_unknown_format_is_not_written(store):
    entry = dataclass_with(make_entry(12), format=ENTRY_FORMAT + 1)
    with pytest.raises(EntryFormatError, match=f"format {ENTRY_FORMAT + 1}"):
        store.put(entry)
    assert len(store) == 0


# ---------------------------------------------------------------- laziness and bounded memory


def _peak_bytes(consume) -> int:
    tracemalloc.start()
    try:
        consume()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_iteration_streams_in_bounded_memory(store):
    entries = [make_entry(seed, size=3000) for seed in range(800)]  # ~3.2 MB of answers in all
    store.put_many(entries)
    total = sum(len(e.body["choices"][0]["message"]["content"]) for e in entries)

    assert inspect.isgenerator(store.iter_entries()) and inspect.isgenerator(store.iter_requests())
    seen = []
    peak = _peak_bytes(lambda: seen.extend(e.key for e in store.iter_entries()))
    assert len(seen) == 800
    assert peak < total / 3, f"iterating held {peak} bytes for {total} bytes of answers"


def test_iter_requests_does_not_read_answer_bodies(store):
    store.put_many([make_entry(seed, size=BIG) for seed in (21, 22, 23)])  # ~6 MB answers each
    requests = []
    peak = _peak_bytes(lambda: requests.extend(store.iter_requests()))
    assert sorted(r["params"]["seed"] for _, r in requests) == [21, 22, 23]
    assert peak < 1_000_000, f"listing requests held {peak} bytes: answer bodies were read"


def test_an_iteration_sees_deletions_made_after_it_started(target, store):
    store.put_many(make_entry(seed) for seed in range(250))
    iterator = store.iter_entries()
    first = next(iterator)
    with store_at(target) as other:
        for key in list(other.iter_keys()):
            if key != first.key:
                other.delete(key)
    # Entries are fetched as the iteration reaches them, so at most the page already fetched remains.
    assert len(list(iterator)) < 100


# ---------------------------------------------------------------- real processes


def test_concurrent_writers_from_several_processes_all_land_intact(target, writers):
    # Each of 4 processes writes 200 keys of its own plus 20 keys every process writes.
    own = [writers(target, 1000 * (p + 1), 200) for p in range(4)]
    shared = [writers(target, 0, 20) for _ in range(4)]
    acknowledged = set()
    for proc in own + shared:
        acknowledged.update(finish(proc))

    with store_at(target) as store:
        entries = list(store.iter_entries())
        assert len(entries) == len(store) == 820 == len(acknowledged)
        assert {e.key for e in entries} == acknowledged
        for entry in entries:
            assert_intact(entry)


def test_a_reader_sees_only_whole_entries_while_a_writer_writes(target, writers):
    writer = writers(target, 5000, 600, wait_for_go=True)
    assert writer.stdout.readline().strip() == "ready"
    with store_at(target) as store:
        writer.stdin.write("go\n")
        writer.stdin.flush()
        counts = []
        while writer.poll() is None:
            keys = []
            for entry in store.iter_entries():
                assert_intact(entry)
                keys.append(entry.key)
            for key in keys[-5:]:
                assert_intact(store.get(key))
            counts.append(len(keys))
        assert len(finish(writer)) == 600
        assert counts == sorted(counts), "a reader saw entries disappear"
        assert any(0 < c < 600 for c in counts), f"no read overlapped the writes: {counts}"
        assert len(list(store.iter_entries())) == 600


def _answer_files(target: str) -> set[str]:
    return {str(p) for p in Path(target).rglob("*.val")}


def _kill_writer(writer: subprocess.Popen, acknowledged: set[str]) -> None:
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait(timeout=10)
    assert writer.returncode == -signal.SIGKILL
    acknowledged.update(writer.stdout.read().split())  # acknowledged before the signal landed


def _read_acks(writer: subprocess.Popen, count: int, acknowledged: set[str]) -> None:
    for _ in range(count):
        line = writer.stdout.readline()
        assert line, writer.stderr.read()
        acknowledged.add(line.strip())


def test_a_writer_killed_mid_write_leaves_no_readable_partial_entry(target, writers):
    acknowledged: set[str] = set()
    disk = not on_redis(target)
    # Small writes only: the kill lands among serialisation, the SQLite commit / MULTI-EXEC and its fsync.
    writer = writers(target, 10_000, -1)
    _read_acks(writer, 40, acknowledged)
    _kill_writer(writer, acknowledged)
    # Every 3rd write is a ~6 MB answer: the kill lands while it is being prepared.
    writer = writers(target, 20_000, -1, big_every=3)
    _read_acks(writer, 2, acknowledged)
    _kill_writer(writer, acknowledged)
    if disk:
        # Kill the moment a big answer's file appears: diskcache writes it before the row commits.
        files_before = _answer_files(target)
        writer = writers(target, 30_000, -1, big_every=1)
        deadline = time.monotonic() + 20
        while not _answer_files(target) - files_before:
            assert writer.poll() is None and time.monotonic() < deadline, "no answer file was ever written"
        _kill_writer(writer, acknowledged)

    with store_at(target) as store:
        keys = list(store.iter_keys())
        assert acknowledged <= set(keys), "a committed write was lost"
        assert len(keys) - len(acknowledged) <= 3  # at most one unacknowledged commit per killed writer
        for key in keys:
            entry = store.get(key)
            assert entry is not None and entry.key == key
            assert_intact(entry)
        assert len(store) == len(keys) == len(list(store.iter_requests()))
        store.put(make_entry(99))  # and the store still takes writes
        assert_intact(store.get(make_entry(99).key))
    if disk:
        with sqlite3.connect(os.path.join(target, "cache.db")) as db:
            assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)


# ---------------------------------------------------------------- choosing a store


def test_open_store_prefers_store_url_then_cache_dir_then_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV_STORE, str(tmp_path / "from-env"))
    with open_store() as store:
        assert store.location == str(tmp_path / "from-env")
    with open_store(cache_dir=str(tmp_path / "dir")) as store:
        assert store.location == str(tmp_path / "dir")
    with open_store(cache_dir=str(tmp_path / "dir"), store_url=f"file://{tmp_path}/url") as store:
        assert store.location == f"{tmp_path}/url"
        store.put(make_entry(1))
    with DiskStore(tmp_path / "url") as again:
        assert_intact(again.get(make_entry(1).key))


def test_open_store_defaults_to_the_project_cache_dir(tmp_path, monkeypatch):
    monkeypatch.delenv(ENV_STORE, raising=False)
    monkeypatch.chdir(tmp_path)
    with open_store() as store:
        store.put(make_entry(1))
    assert (tmp_path / ".seedreplay" / "cache" / "cache.db").is_file()


def test_environment_can_name_a_redis_store(redis_url, monkeypatch):
    monkeypatch.setenv(ENV_STORE, redis_url + "?prefix=env-test:")
    with open_store() as store:
        assert type(store).__name__ == "RedisStore" and store.prefix == "env-test:"


def test_an_unknown_scheme_is_refused_naming_the_value_and_what_is_accepted():
    with pytest.raises(ValueError) as error:
        open_store(store_url="memcached://127.0.0.1:11211")
    message = str(error.value)
    assert "memcached://127.0.0.1:11211" in message and "redis://" in message and "directory" in message


def test_a_path_that_is_a_file_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ValueError, match=r"notes\.txt.*not a directory"):
        open_store(cache_dir=str(tmp_path / "notes.txt"))


def test_a_directory_holding_a_non_database_is_refused(tmp_path):
    (tmp_path / "cache.db").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(ValueError, match="cannot open the store at .*not a database"):
        open_store(cache_dir=str(tmp_path))


def test_a_redis_url_without_the_redis_package_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "redis", None)  # the import fails as if the package were absent
    with pytest.raises(ValueError, match=r"pip install 'pytest-seedreplay\[redis\]'"):
        open_store(store_url="redis://127.0.0.1:1/0")


def test_an_unreachable_redis_is_a_clear_error_without_the_password():
    pytest.importorskip("redis")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    with pytest.raises(StoreError) as error:
        open_store(store_url=f"redis://:hunter2secret@127.0.0.1:{port}/0")
    message = str(error.value)
    assert f"redis://:***@127.0.0.1:{port}/0" in message and "hunter2secret" not in message


def test_display_location_hides_only_the_password():
    assert display_location("redis://alice:pw@host:6380/2?prefix=x:") == "redis://alice:***@host:6380/2?prefix=x:"
    assert display_location("redis://host/0") == "redis://host/0"
    assert display_location("/some/dir") == "/some/dir"


def test_a_redis_server_that_evicts_keys_is_refused(redis_url):
    import redis

    with redis.Redis.from_url(redis_url) as admin:
        admin.config_set("maxmemory-policy", "allkeys-lru")
        try:
            with pytest.raises(StoreError, match="allkeys-lru.*noeviction"):
                open_store(store_url=redis_url)
        finally:
            admin.config_set("maxmemory-policy", "noeviction")
    with open_store(store_url=redis_url + "?prefix=after:") as store:
        assert len(store) == 0


def test_redis_prefixes_keep_stores_apart(redis_url):
    with store_at(redis_url + "?prefix=a:") as a, store_at(redis_url + "?prefix=b:") as b:
        a.put(make_entry(1))
        assert make_entry(1).key in a and make_entry(1).key not in b and len(b) == 0
