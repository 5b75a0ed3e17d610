"""What stores shared by a team offer, on both backends: namespaces, TTL, the flight lock (claim, renew,
release, wait) across store objects and processes, the savings ledger, and Redis outages as a clear error."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import uuid

import pytest

from pytest_seedreplay.core.entry import Entry
from pytest_seedreplay.core.key import canonical_request, key_of_canonical
from pytest_seedreplay.store import DiskStore, StoreError, StoreUnavailable, open_store, store_at
from pytest_seedreplay.store.shared import FAILED, FREE, HELD, SavingsLedger, SharedFlights

CHAT = "/v1/chat/completions"


def entry(n: int, **fields) -> Entry:
    request = canonical_request(CHAT, {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": f"q{n}"}]})
    body = {"choices": [{"message": {"content": f"a{n}"}}], "usage": {"prompt_tokens": 10, "completion_tokens": 5}}
    return Entry(key=key_of_canonical(request), endpoint=CHAT, request=request, body=body, **fields)


@pytest.fixture(params=["disk", "redis", "redis-cluster"])
def target(request, tmp_path) -> str:
    if request.param == "disk":
        return str(tmp_path / "store")
    server = request.getfixturevalue("shared_redis_cluster" if request.param == "redis-cluster" else "shared_redis")
    return server.url + f"?prefix=t{uuid.uuid4().hex[:12]}:"


@pytest.fixture
def two(target):
    """Two store objects on one location, as two proxies have."""
    first, second = store_at(target), store_at(target)
    yield first, second
    first.close()
    second.close()


def test_both_stores_offer_shared_flights_and_a_savings_ledger(two):
    store, _ = two
    assert isinstance(store, SharedFlights) and isinstance(store, SavingsLedger)


# --- namespaces ------------------------------------------------------------------------------------


def test_namespaces_on_one_location_hold_apart_recordings(target):
    recorded = entry(1)
    with store_at(target, namespace="team-a") as a, store_at(target, namespace="team-b") as b, store_at(target) as plain:
        a.put(recorded)
        assert a.get(recorded.key) is not None and len(a) == 1
        assert b.get(recorded.key) is None and len(b) == 0 and list(b.iter_keys()) == []
        assert plain.get(recorded.key) is None and len(plain) == 0
        assert a.location != b.location and "team-a" in a.location


def test_a_url_names_its_namespace_and_a_flag_wins_over_it(target, tmp_path):
    url = target if "://" in target else f"file://{target}"
    joiner = "&" if "?" in url else "?"
    recorded = entry(2)
    with store_at(url + joiner + "namespace=ci") as by_url:
        by_url.put(recorded)
    with store_at(target, namespace="ci") as by_flag, store_at(url + joiner + "namespace=ci", namespace="dev") as overridden:
        assert by_flag.get(recorded.key) is not None
        assert overridden.get(recorded.key) is None


@pytest.mark.parametrize("name", ["", "a b", "../up", "x" * 65, "-lead", "a/b"])
def test_a_namespace_that_cannot_name_one_is_refused(tmp_path, name):
    with pytest.raises(StoreError, match="cannot name a namespace"):
        open_store(cache_dir=str(tmp_path), namespace=name or " ")


# --- TTL -------------------------------------------------------------------------------------------


def test_an_entry_past_its_ttl_is_gone_and_prune_frees_it(target):
    with store_at(target) as store:
        kept, dead = entry(3, expires_at=time.time() + 3600), entry(4, expires_at=time.time() - 1)
        forever = entry(5)
        store.put_many([kept, dead, forever])
        assert store.get(dead.key) is None and dead.key not in store
        assert store.get(kept.key).expires_at == pytest.approx(kept.expires_at)
        assert {e.key for e in store.iter_entries()} == {kept.key, forever.key}
        assert len(store) == 2 and store.stats().entries == 2
        assert store.purge_expired() == 1
        assert store.purge_expired() == 0
        assert sorted(store.iter_keys()) == sorted([kept.key, forever.key])


def test_rewriting_an_entry_without_ttl_keeps_it_for_ever(target):
    with store_at(target) as store:
        store.put(entry(6, expires_at=time.time() + 3600))
        store.put(entry(6))
        assert store.get(entry(6).key).expires_at is None
        assert store.purge_expired() == 0 and len(store) == 1


# --- the flight lock -------------------------------------------------------------------------------


def test_one_claim_wins_until_released_and_a_release_wakes_the_waiting(two):
    first, second = two
    token = first.claim("v1:k", 10)
    assert token is not None and second.claim("v1:k", 10) is None
    assert second.wait_for("v1:k", 0.05).state == HELD
    releasing = threading.Timer(0.1, first.release, ("v1:k", token))
    releasing.start()
    started = time.monotonic()
    assert second.wait_for("v1:k", 10).state == FREE
    assert time.monotonic() - started < 5  # woken by the release, not by the timeout
    # The wait ends once the release took effect, maybe before the release call returned: the store
    # stays open until it has (closing it under the call failed the Timer's thread).
    releasing.join(10)
    assert second.claim("v1:k", 10) is not None


def test_a_failure_is_left_for_the_waiting_and_cleared_by_the_next_success(two):
    first, second = two
    token = first.claim("v1:f", 10)
    first.release("v1:f", token, {"status": 429, "body": "c2xvdyBkb3du"})
    waited = second.wait_for("v1:f", 1)
    assert waited.state == FAILED and waited.failure == {"status": 429, "body": "c2xvdyBkb3du"}
    again = second.claim("v1:f", 10)
    assert first.wait_for("v1:f", 0.01).state == HELD  # a new holder: the old failure is not its
    second.release("v1:f", again)
    assert first.wait_for("v1:f", 1).state == FREE


def test_an_expired_claim_is_taken_over_and_its_late_release_changes_nothing(two):
    first, second = two
    dead = first.claim("v1:e", 0.2)
    deadline = time.monotonic() + 10
    while (token := second.claim("v1:e", 10)) is None:  # the first holder "died": no renewal
        assert time.monotonic() < deadline, "an expired claim was never free again"
    first.release("v1:e", dead, {"broke": "too late"})
    assert not first.renew("v1:e", dead, 10)
    assert first.wait_for("v1:e", 0.01).state == HELD  # still the second holder's
    assert second.renew("v1:e", token, 10)


def test_a_claim_holds_across_processes(target):
    """A proxy in another process (here: a child python) sees the key held, and free once released."""
    with store_at(target) as store:
        token = store.claim("v1:p", 30)
        code = (
            "from pytest_seedreplay.store import store_at\n"
            f"s = store_at({target!r})\n"
            "print(s.claim('v1:p', 30) is None, flush=True)\n"
            "print(s.wait_for('v1:p', 30).state, flush=True)\n"
        )
        child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
        try:
            assert child.stdout.readline().split() == ["True"]  # held here, so refused there
            store.release("v1:p", token)  # and the release wakes its wait
            assert child.stdout.readline().split() == ["free"]
            assert child.wait(timeout=60) == 0
        finally:
            child.kill()


def test_the_disk_store_claims_at_once_or_says_busy_without_waiting(tmp_path):
    """`claim_now` (a proxy's claim on its loop) is a claim like `claim`, but while another connection
    writes the side cache it says StoreBusy at once instead of waiting for the lock."""
    import diskcache

    from pytest_seedreplay.store import StoreBusy

    with DiskStore(tmp_path / "store") as store, DiskStore(tmp_path / "store") as other:
        with pytest.raises(StoreBusy):
            store.claim_now("v1:n", 30)  # the side cache is opened from a thread first (by `claim`)
        assert store.wait_for("v1:n", 0).state == FREE
        token = store.claim_now("v1:n", 30)
        assert token and store.claim_now("v1:n", 30) is None and other.claim("v1:n", 30) is None
        store.release("v1:n", token)
        writer = diskcache.Cache(str(tmp_path / "store" / "shared"))
        try:
            with writer.transact():  # another process's write, under way
                started = time.monotonic()
                with pytest.raises(StoreBusy):
                    store.claim_now("v1:m", 30)
                assert time.monotonic() - started < 10  # not the 60 s a waiting writer would take
            assert store.claim_now("v1:m", 30)  # free again once that write is done
            assert other.claim("v1:m", 30) is None
        finally:
            writer.close()


# --- the read that finds a miss and the claim, in one step (read_or_claim) ---------------------------


def test_read_or_claim_answers_a_stored_entry_and_claims_nothing(two):
    first, second = two
    stored = entry(20)
    first.put(stored)
    found, token = second.read_or_claim(stored.key, 10)
    assert token is None and found is not None and (found.key, found.body) == (stored.key, stored.body)
    assert first.claim(stored.key, 10) is not None  # the read left the key free


def test_read_or_claim_claims_a_missing_key_for_one_caller_until_its_answer_lands(two):
    first, second = two
    missing = entry(21)
    found, token = first.read_or_claim(missing.key, 10)
    assert found is None and token is not None
    assert second.read_or_claim(missing.key, 10) == (None, None)  # held: neither an entry nor a claim
    other = entry(25).key
    held = second.claim(other, 10)  # a claim made by `claim` holds against read_or_claim too
    assert first.read_or_claim(other, 10) == (None, None)
    second.release(other, held)
    assert second.claim(missing.key, 10) is None and second.wait_for(missing.key, 0.01).state == HELD
    first.put(missing)
    first.release(missing.key, token)
    assert second.wait_for(missing.key, 10).state == FREE
    found, again = second.read_or_claim(missing.key, 10)
    assert again is None and found is not None and found.key == missing.key


def _child(code: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


def test_read_or_claim_gives_the_key_to_one_of_several_processes_asking_at_once(target):
    """Four processes read a key nobody stored, at once: one of them claims it, the others see it held;
    once its answer is stored and the claim let go, each of them reads the answer."""
    recorded = entry(22)
    code = (
        "import sys\n"
        "from pytest_seedreplay.store import store_at\n"
        f"s = store_at({target!r})\n"
        "s.wait_for('v1:open', 0)\n"  # opens what claims need before the race
        "print('ready', flush=True)\n"
        "sys.stdin.readline()\n"
        f"found, token = s.read_or_claim({recorded.key!r}, 30)\n"
        "print('found' if found else token or 'held', flush=True)\n"
        f"print(s.wait_for({recorded.key!r}, 30).state, flush=True)\n"
        f"found, token = s.read_or_claim({recorded.key!r}, 30)\n"
        "print('found' if found and not token else 'missing', flush=True)\n"
    )
    children = [_child(code) for _ in range(4)]
    try:
        assert [child.stdout.readline().strip() for child in children] == ["ready"] * 4
        for child in children:
            child.stdin.write("go\n")
            child.stdin.flush()
        said = [child.stdout.readline().strip() for child in children]
        tokens = [word for word in said if word != "held"]
        assert len(tokens) == 1 and said.count("held") == 3, said
        with store_at(target) as store:
            store.put(recorded)
            store.release(recorded.key, tokens[0])
        assert [child.stdout.readline().strip() for child in children] == ["free"] * 4
        assert [child.stdout.readline().strip() for child in children] == ["found"] * 4
        assert [child.wait(timeout=60) for child in children] == [0] * 4
    finally:
        for child in children:
            child.kill()


def test_a_key_read_or_claim_took_is_free_again_once_its_process_dies(target):
    key = entry(23).key
    code = (
        "import sys\n"
        "from pytest_seedreplay.store import store_at\n"
        f"s = store_at({target!r})\n"
        f"print(s.read_or_claim({key!r}, 1.0)[1] is not None, flush=True)\n"
        "sys.stdin.readline()\n"  # holds the key, never renewing it, until killed
    )
    child = _child(code)
    try:
        assert child.stdout.readline().split() == ["True"]
        with store_at(target) as store:
            assert store.read_or_claim(key, 10) == (None, None)
            child.kill()
            child.wait(timeout=60)
            assert store.wait_for(key, 30).state == FREE  # its claim expired: no one renews it
            found, token = store.read_or_claim(key, 10)
            assert found is None and token is not None
    finally:
        child.kill()


def test_the_disk_store_reads_or_claims_at_once_or_says_busy_without_waiting(tmp_path):
    import diskcache

    from pytest_seedreplay.store import StoreBusy

    stored = entry(24)
    with DiskStore(tmp_path / "store") as store:
        store.put(stored)
        with pytest.raises(StoreBusy):
            store.read_or_claim_now("v1:r", 30)  # the side cache is opened from a thread first
        assert store.wait_for("v1:r", 0).state == FREE
        assert store.read_or_claim_now("v1:q", 30)[1]  # (as the proxy's warm-up does, off its loop)
        writer = diskcache.Cache(str(tmp_path / "store" / "shared"))
        try:
            with writer.transact():  # another process's write, under way
                started = time.monotonic()
                with pytest.raises(StoreBusy):
                    store.read_or_claim_now("v1:r", 30)
                assert time.monotonic() - started < 10  # not the 60 s a waiting writer would take
        finally:
            writer.close()
        found, token = store.read_or_claim_now("v1:r", 30)
        assert found is None and token and store.claim("v1:r", 30) is None
        found, token = store.read_or_claim_now(stored.key, 30)
        assert token is None and found is not None and found.key == stored.key


# --- the savings ledger ----------------------------------------------------------------------------


def test_the_ledger_adds_up_what_every_store_object_adds(two):
    first, second = two
    assert first.savings()["hits"] == 0 and first.savings()["since"] is None
    first.add_savings({"hits": 2, "input_tokens": 20, "output_tokens": 10, "cost": 0.0001, "unpriced_hits": 0})
    second.add_savings({"hits": 1, "input_tokens": 5, "output_tokens": 1, "cost": 0.00025, "unpriced_hits": 1})
    totals = second.savings()
    assert (totals["hits"], totals["tokens"], totals["unpriced_hits"]) == (3, 36, 1)
    assert totals["cost"] == pytest.approx(0.00035) and totals["since"] <= time.time()


# --- Redis outages ---------------------------------------------------------------------------------


def test_a_redis_that_goes_away_is_store_unavailable_fast_and_back_when_it_returns(redis_server):
    store = open_store(store_url=redis_server.url)
    recorded = entry(7)
    store.put(recorded)
    redis_server.stop()
    started = time.monotonic()
    for call in (
        lambda: store.get(recorded.key),
        lambda: store.put(entry(8)),
        lambda: store.claim("v1:x", 1),
        lambda: len(store),
    ):
        with pytest.raises(StoreUnavailable, match=f"127.0.0.1:{redis_server.port}"):
            call()
    assert time.monotonic() - started < 5  # refused connections: no wait for a timeout
    redis_server.start()
    store.put(recorded)  # the client reconnects by itself
    assert store.get(recorded.key) is not None
    store.close()


def test_a_redis_that_hangs_is_store_unavailable_within_its_read_timeout(redis_server):
    store = open_store(store_url=redis_server.url + "?socket_timeout=0.5")
    assert store.get("v1:none") is None
    redis_server.proc.send_signal(19)  # SIGSTOP: the server holds the connection and never answers
    try:
        started = time.monotonic()
        with pytest.raises(StoreUnavailable):
            store.get("v1:none")
        assert time.monotonic() - started < 3
    finally:
        redis_server.proc.send_signal(18)  # SIGCONT
    store.close()


def test_the_disk_store_says_it_keeps_namespaces_under_its_directory(tmp_path):
    with DiskStore(tmp_path, namespace="ci") as store:
        store.put(entry(9))
    assert (tmp_path / "namespaces" / "ci").is_dir()


def test_cache_commands_read_a_namespace_and_name_those_a_directory_holds(tmp_path):
    from click.testing import CliRunner

    from pytest_seedreplay.cli import main

    with DiskStore(tmp_path, namespace="ci") as store:
        store.put(entry(10))
    listed = CliRunner().invoke(main, ["cache", "ls", "--json", "--cache-dir", str(tmp_path), "--namespace", "ci"])
    assert listed.exit_code == 0 and [row["key"] for row in json.loads(listed.output)] == [entry(10).key]
    missing = CliRunner().invoke(main, ["cache", "stats", "--cache-dir", str(tmp_path), "--namespace", "dev"])
    assert missing.exit_code == 1 and "no namespace 'dev' in the cache at" in missing.output and "there: ci" in missing.output
    assert not (tmp_path / "namespaces" / "dev").exists()  # a read-only command creates nothing
