"""The store on a Redis Cluster (three real redis-server primaries on loopback, see redis_support):
where keys land, the polling wake-up of an older cluster, the `cache` commands, one node down.

The verbs every store offers run on the cluster too: test_store.py and test_store_team.py are
parametrised over disk, one Redis and the cluster."""

from __future__ import annotations

import json
import re
import signal
import threading
import time
import uuid

import pytest
from click.testing import CliRunner

from pytest_seedreplay.cli import main
from pytest_seedreplay.store import StoreError, StoreUnavailable, store_at
from pytest_seedreplay.store.shared import FAILED, FREE

from test_store_team import entry


@pytest.fixture
def url(shared_redis_cluster) -> str:
    return shared_redis_cluster.url + f"?prefix=c{uuid.uuid4().hex[:10]}:"


def slot_of(cluster, name: str) -> int:
    with cluster_client(cluster) as client:
        return int(client.cluster("keyslot", name))


def cluster_client(cluster):
    import redis

    return redis.Redis(port=cluster.ports[0])


# --- where keys land -------------------------------------------------------------------------------


def test_an_entry_and_its_index_share_a_slot_and_a_namespace_spreads_over_every_node(shared_redis_cluster, url):
    with store_at(url, namespace="team-a") as store:
        entries = [entry(n) for n in range(60)]
        store.put_many(entries)
        for recorded in entries[:10]:
            bucket = store._bucket(recorded.key)
            slots = {
                slot_of(shared_redis_cluster, name)
                for name in (store._entry_key(recorded.key), f"{bucket}keys", f"{bucket}expiry")
            }
            assert len(slots) == 1, "a write's keys must share a slot for its MULTI/EXEC"
            assert "ns:team-a:" in store._entry_key(recorded.key)
        nodes = {shared_redis_cluster.node_of(store._entry_key(e.key)) for e in entries}
        assert nodes == {0, 1, 2}  # not one slot per namespace: every node holds some of its entries
        assert len(store) == 60 and list(store.iter_keys()) == sorted(e.key for e in entries)


def test_a_keys_flight_lock_and_failure_share_the_keys_own_slot(shared_redis_cluster, url):
    with store_at(url) as store:
        slots = {slot_of(shared_redis_cluster, store._flight(f"v1:{n}")) for n in range(20)}
        assert len(slots) > 10  # locks spread with their keys
        assert slot_of(shared_redis_cluster, store._flight("v1:x")) == slot_of(shared_redis_cluster, store._failed("v1:x"))


def test_a_cluster_url_names_no_other_database_and_a_prefix_keeps_clear_of_hash_tags(shared_redis_cluster):
    with pytest.raises(StoreError, match=r"^cannot use redis\+cluster://.*only database 0.*'/3'") as wrong:
        store_at(shared_redis_cluster.url + "/3")
    assert "is redis-server running" not in str(wrong.value)  # the URL is wrong, not the server
    with pytest.raises(StoreError, match=r"must not hold '\{'"):
        store_at(shared_redis_cluster.url + "?prefix=a{b}:")
    with store_at(shared_redis_cluster.url + "/0?prefix=zero:") as store:
        assert store.cluster and len(store) == 0


# --- waking the waiting ----------------------------------------------------------------------------


def test_a_cluster_without_sharded_pubsub_wakes_the_waiting_by_polling(url):
    with store_at(url) as first, store_at(url) as second:
        assert first._publish == "SPUBLISH"  # Redis 7 here: the older cluster's path is taken by hand
        first._publish = second._publish = ""
        token = first.claim("v1:poll", 10)
        releasing = threading.Timer(0.1, first.release, ("v1:poll", token))
        releasing.start()
        started = time.monotonic()
        assert second.wait_for("v1:poll", 10).state == FREE
        assert time.monotonic() - started < 5
        releasing.join(10)
        token = second.claim("v1:poll", 10)
        second.release("v1:poll", token, {"status": 500})
        waited = first.wait_for("v1:poll", 1)
        assert waited.state == FAILED and waited.failure == {"status": 500}


# --- the cache commands ----------------------------------------------------------------------------


def cache(*args: str, code: int = 0) -> str:
    result = CliRunner().invoke(main, ["cache", *args])
    assert result.exit_code == code, result.output
    return result.output


def test_the_cache_commands_work_on_a_cluster(url, tmp_path):
    entries = [entry(n) for n in range(30)]
    with store_at(url, namespace="ci") as store:
        store.put_many(entries)
        store.put(entry(99, expires_at=time.time() - 1))
    listed = json.loads(cache("ls", "--json", "--store", url, "--namespace", "ci"))
    assert sorted(row["key"] for row in listed) == sorted(e.key for e in entries)
    assert cache("ls", "--json", "--store", url) == "[]\n"  # another namespace: nothing
    assert entries[3].key in cache("show", entries[3].key, "--store", url, "--namespace", "ci")
    assert json.loads(cache("stats", "--json", "--store", url, "--namespace", "ci"))["entries"] == 30
    exported = tmp_path / "all.jsonl"
    cache("export", "-o", str(exported), "--store", url, "--namespace", "ci")
    assert len(exported.read_text().splitlines()) == 30
    assert "imported 30" in cache("import", str(exported), "--store", url, "--namespace", "copy")
    assert "removed 0 entries and 1 past their TTL, 30 left" in cache("prune", "--expired", "--store", url, "--namespace", "ci")
    assert "removed 30 entries" in cache("clear", "--yes", "--store", url, "--namespace", "ci")
    with store_at(url, namespace="ci") as emptied, store_at(url, namespace="copy") as copy:
        assert len(emptied) == 0 and list(emptied.iter_keys()) == []
        assert sorted(copy.iter_keys()) == sorted(e.key for e in entries)


# --- one node down ---------------------------------------------------------------------------------


def test_one_node_down_fails_only_its_keys_and_they_answer_again_when_it_is_back(redis_cluster, tmp_path):
    url = redis_cluster.url
    store = store_at(url)
    entries = [entry(n) for n in range(40)]
    store.put_many(entries)
    on = {e.key: redis_cluster.node_of(store._entry_key(e.key)) for e in entries}
    locks_on = {e.key: redis_cluster.node_of(store._flight(e.key)) for e in entries}
    redis_cluster.stop_node(1)
    started = time.monotonic()
    for recorded in entries:
        if on[recorded.key] == 1:
            with pytest.raises(StoreUnavailable, match=re.escape(f"a node of the Redis Cluster at {url}")) as down:
                store.get(recorded.key)
            assert f"127.0.0.1:{redis_cluster.ports[1]}" in str(down.value)  # which node: where to look
            assert down.value.partial  # the rest of the store answers: the proxy does not call it all down
        else:
            assert store.get(recorded.key) == recorded
        if locks_on[recorded.key] == 1:  # a lock lives in its key's own slot, maybe on another node
            with pytest.raises(StoreUnavailable):
                store.claim(recorded.key, 1)
        else:
            store.release(recorded.key, store.claim(recorded.key, 1))
    assert time.monotonic() - started < 10  # refused connections fail fast, no wait for a timeout per key
    result = CliRunner().invoke(main, ["cache", "ls", "--store", url])
    assert result.exit_code == 1 and "does not answer" in result.output and "Traceback" not in result.output
    redis_cluster.start_node(1)  # back on its port with its slots, and empty (no persistence)
    redis_cluster.wait_ok()
    lost = [e for e in entries if on[e.key] == 1]
    assert store.get(lost[0].key) is None  # the same client object: no reopening
    store.put(lost[0])
    assert store.get(lost[0].key) == lost[0]
    store.close()


def test_a_hung_node_fails_its_keys_within_the_read_timeout_and_a_store_opens_with_a_node_down(redis_cluster):
    url = redis_cluster.url + "?socket_timeout=0.5"
    store = store_at(url)
    entries = [entry(n) for n in range(20)]
    store.put_many(entries)
    on = {e.key: redis_cluster.node_of(store._entry_key(e.key)) for e in entries}
    hung = next(e for e in entries if on[e.key] == 2)
    redis_cluster.procs[2].send_signal(signal.SIGSTOP)  # holds its connections, answers nothing
    try:
        started = time.monotonic()
        with pytest.raises(StoreUnavailable, match="Timeout") as down:
            store.get(hung.key)
        assert down.value.partial and time.monotonic() - started < 3  # one read timeout, not one per retry
        assert all(store.get(e.key) == e for e in entries if on[e.key] != 2)
    finally:
        redis_cluster.procs[2].send_signal(signal.SIGCONT)
    assert store.get(hung.key) == hung
    store.close()
    redis_cluster.stop_node(2)
    with store_at(url) as opened:  # a proxy started while a node is away serves the rest
        assert all(opened.get(e.key) == e for e in entries if on[e.key] != 2)
        assert opened._publish == "SPUBLISH"  # learned from the nodes that answer: no fall back to polling


def test_an_unreachable_cluster_is_a_clear_error_without_the_password():
    pytest.importorskip("redis")
    from redis_support import free_port

    port = free_port()  # closed again: nothing listens there
    with pytest.raises(StoreError) as error:
        store_at(f"redis+cluster://:hunter2secret@127.0.0.1:{port}")
    message = str(error.value)
    assert f"redis+cluster://:***@127.0.0.1:{port}" in message and "hunter2secret" not in message
    assert "expected redis+cluster://" in message


def test_a_cluster_with_a_node_that_evicts_keys_is_refused(shared_redis_cluster):
    import redis

    with redis.Redis(port=shared_redis_cluster.ports[2]) as node:
        node.config_set("maxmemory-policy", "allkeys-lru")
        try:
            with pytest.raises(StoreError, match="allkeys-lru.*noeviction"):
                store_at(shared_redis_cluster.url)
        finally:
            node.config_set("maxmemory-policy", "noeviction")


def test_every_node_down_is_the_whole_store_down_and_back_when_they_return(redis_cluster):
    store = store_at(redis_cluster.url)
    store.put(entry(1))
    redis_cluster.stop()

    def whole_outage() -> bool:
        with pytest.raises(StoreUnavailable) as down:
            store.get(entry(1).key)
        return not down.value.partial  # first a node's refusal; once a topology refresh reached none, all

    deadline = time.monotonic() + 10
    while not whole_outage():
        assert time.monotonic() < deadline, "every node away never counted as the store being down"
    with pytest.raises(StoreUnavailable, match=re.escape(f"the Redis Cluster at {redis_cluster.url} does not answer")):
        store.get(entry(1).key)
    for index in range(len(redis_cluster.ports)):
        redis_cluster.start_node(index)
    redis_cluster.wait_ok()
    assert "seedreplay:probe" not in store  # what the proxy's probe asks: answered again, same client
    store.close()
