"""The plugin's building blocks without pytest: the per-test cassette store, naming, merging,
locked writes, orphans and the report page."""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path

import pytest

from pytest_seedreplay.cassettes import Heard
from pytest_seedreplay.core.entry import Entry
from pytest_seedreplay.core.environ import choose_upstream
from pytest_seedreplay.core.key import canonical_request, key_of_canonical
from pytest_seedreplay.core.redact import SecretRefused
from pytest_seedreplay.recorder import RunRegistry, SeedreplayError, cassette_path, file_safe, marker_options
from pytest_seedreplay.report import build_report, highlight, html_path, render_html
from pytest_seedreplay.store.cassette import read_cassette, write_cassette
from pytest_seedreplay.store.cassette_store import CassetteStore, merge
from pytest_seedreplay.summary import find_orphans

CHAT = "/v1/chat/completions"


def make_entry(text: str, answer: str = "ok", seed: int | None = None) -> Entry:
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": text}]}
    if seed is not None:
        body["seed"] = seed
    canonical = canonical_request(CHAT, body)
    return Entry(
        key=key_of_canonical(canonical),
        endpoint=CHAT,
        request=canonical,
        upstream="http://127.0.0.1:1/v1",
        body={
            "id": "c",
            "object": "chat.completion",
            "model": "gpt-4o-mini",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": answer}, "finish_reason": "stop"}],
        },
    )


# --- naming ---


def test_cassette_path_follows_module_path_and_test_name(tmp_path):
    assert cassette_path(tmp_path, "tests/api/test_chat.py::test_hello") == tmp_path / "tests/api/test_chat/test_hello.yaml"
    assert cassette_path(tmp_path, "tests/test_c.py::TestChat::test_x") == tmp_path / "tests/test_c/TestChat.test_x.yaml"


def test_parametrized_ids_become_file_safe_names(tmp_path):
    path = cassette_path(tmp_path, "test_p.py::test_q[gpt-4o/mini-What is 2+2?]")
    assert path.name == "test_q[gpt-4o_mini-What_is_2_2_].yaml"
    long = file_safe("test_" + "x" * 400)
    assert len(long) < 150 and long != file_safe("test_" + "x" * 399)


def test_a_marker_cassette_name_is_shared_at_the_top_of_the_cassette_dir(tmp_path):
    assert cassette_path(tmp_path, "a/test_m.py::test_one", "shared") == tmp_path / "shared.yaml"
    assert cassette_path(tmp_path, "b/test_n.py::test_two", "sub/common.yml") == tmp_path / "sub/common.yml"
    assert cassette_path(tmp_path, "x.py::t", str(tmp_path / "abs")) == tmp_path / "abs.yaml"
    assert cassette_path(tmp_path, "x.py::t", "./sub/./x") == tmp_path / "sub/x.yaml"


@pytest.mark.parametrize("name", ["../../../tmp/x", "..", "sub/../../x", "sub/../x", "ok/../../{dir}/x"])
def test_a_marker_cassette_name_cannot_climb_out_of_the_cassette_dir(tmp_path, name):
    cassettes = tmp_path / "cassettes"
    name = name.format(dir="cassettes")
    with pytest.raises(SeedreplayError) as error:
        cassette_path(cassettes, "x.py::t", name)
    assert str(error.value) == (
        f"@pytest.mark.seedreplay(cassette={name!r}): a cassette name must stay inside the cassette dir {cassettes}; "
        "drop the '..' parts, or move the cassette dir with the ini option seedreplay_cassette_dir"
    )


def test_an_absolute_cassette_path_must_name_a_file_under_the_cassette_dir(tmp_path):
    cassettes = tmp_path / "cassettes"
    assert cassette_path(cassettes, "x.py::t", str(cassettes / "sub" / "shared")) == cassettes / "sub" / "shared.yaml"
    for outside in (tmp_path / "elsewhere", tmp_path / "cassettes-2" / "x", Path("/tmp/x")):
        with pytest.raises(SeedreplayError, match="must stay inside the cassette dir .*; give a name relative to it"):
            cassette_path(cassettes, "x.py::t", str(outside))


@pytest.mark.parametrize("name", [".", "./", "a\0b"])
def test_a_marker_cassette_name_that_names_no_file_is_refused(tmp_path, name):
    with pytest.raises(SeedreplayError, match="give a cassette name such as 'shared_answers'"):
        cassette_path(tmp_path, "x.py::t", name)
    with pytest.raises(SeedreplayError, match="give a cassette name"):
        cassette_path(tmp_path, "x.py::t", str(tmp_path))


# --- the cassette store and what a test heard ---


def test_replay_plays_repeats_in_order_then_repeats_the_last():
    first, second = make_entry("q", "one"), make_entry("q", "two")
    store = CassetteStore(None, [first, second], repeat_last=True)
    assert [store.get(first.key).body["choices"][0]["message"]["content"] for _ in range(3)] == ["one", "two", "two"]
    assert store.get("v1:unknown") is None
    heard = Heard("replay", store)
    for entry in (first, second, second):
        heard.served(first.key, entry)
    assert [(i.occurrence, i.source) for i in heard.interactions] == [(0, "replayed"), (1, "replayed"), (1, "replayed")]
    assert heard.count("replayed") == 3


def test_record_replays_what_exists_and_records_the_next_occurrence(tmp_path):
    old = make_entry("q", "old")
    store = CassetteStore(tmp_path / "c.yaml", [old], repeat_last=False)
    assert store.get(old.key) is old
    assert store.get(old.key) is None  # exhausted: a miss, to be recorded as occurrence 1
    new = make_entry("q", "new")
    store.put(new)
    assert store.recorded == [(1, new)]
    assert store.save()
    assert [e.body["choices"][0]["message"]["content"] for e in read_cassette(tmp_path / "c.yaml")] == ["new"]


def test_a_put_without_a_read_takes_the_next_place_and_replaces_what_was_there(tmp_path):
    store = CassetteStore(tmp_path / "c.yaml", [make_entry("q", "old")], repeat_last=False)
    store.put(make_entry("q", "refreshed"))  # Cache-Control: no-cache: no read first
    store.put(make_entry("q", "second"))
    assert [place for place, _ in store.recorded] == [0, 1] and store.overwrote
    assert store.save()
    assert [e.body["choices"][0]["message"]["content"] for e in read_cassette(tmp_path / "c.yaml")] == ["refreshed", "second"]


def test_saving_with_nothing_recorded_writes_nothing(tmp_path):
    path = tmp_path / "c.yaml"
    assert not CassetteStore(path, [], repeat_last=False).save()
    assert not path.exists()


def test_live_compares_each_occurrence_with_its_recording():
    store = CassetteStore(None, [make_entry("q", "same"), make_entry("q", "before")], repeat_last=True)
    heard = Heard("live", store)
    key = make_entry("q").key
    heard.compared(key, store.get(key), make_entry("q", "same"))
    heard.compared(key, store.get(key), make_entry("q", "after"))
    assert [d.drifted for d in heard.drift] == [False, True]
    assert [(i.occurrence, i.source) for i in heard.interactions] == [(0, "live"), (1, "live")]
    assert store.recorded == []


def test_put_refuses_a_secret_and_keeps_nothing():
    store = CassetteStore(None, [], repeat_last=False)
    with pytest.raises(SecretRefused, match="API-key-shaped"):
        store.put(make_entry("my key is sk-" + "A" * 30))
    assert store.recorded == [] and len(store) == 0


def test_iter_requests_lists_the_recordings_for_the_closest_diff():
    a, b = make_entry("a", seed=1), make_entry("b")
    store = CassetteStore(None, [a, b])
    assert dict(store.iter_requests()) == {a.key: a.request, b.key: b.request}
    assert store.stats().entries == 2


# --- merging and shared cassettes ---


def test_merge_appends_new_occurrences_and_keeps_what_another_worker_recorded_first():
    a1, a2, b = make_entry("a", "1"), make_entry("a", "2"), make_entry("b")
    other_a2 = make_entry("a", "other")
    assert merge([a1], [(1, a2), (0, b)], replace=False) == [a1, a2, b]
    assert merge([a1, other_a2], [(1, a2)], replace=False) == [a1, other_a2]
    assert merge([a1, other_a2], [(1, a2)], replace=True) == [a1, a2]


def test_rewrite_of_a_shared_cassette_resets_it_once_per_run_then_merges(tmp_path):
    path = tmp_path / "shared.yaml"
    write_cassette(path, [make_entry("stale")])
    registry = RunRegistry("rw-" + tmp_path.name)
    try:
        first = CassetteStore.load(path, empty=True)
        first.put(make_entry("one"))
        assert first.save(replace=True, start_fresh=registry.first_rewrite)
        second = CassetteStore.load(path, empty=True)
        second.put(make_entry("two"))
        assert second.save(replace=True, start_fresh=registry.first_rewrite)
        texts = [e.request["params"]["messages"][0]["content"] for e in read_cassette(path)]
        assert texts == ["one", "two"]  # "stale" was dropped by the first rewrite of this run
    finally:
        registry.remove()
    assert not registry.folder.exists()


def _record_in_process(path: str, texts: list[str], run_id: str) -> None:
    store = CassetteStore.load(Path(path), repeat_last=False)
    for text in texts:
        entry = make_entry(text)
        if store.get(entry.key) is None:  # as the proxy does: only a miss is recorded
            store.put(entry)
    store.save()


def test_concurrent_processes_recording_into_one_cassette_lose_nothing(tmp_path):
    path = tmp_path / "shared.yaml"
    context = multiprocessing.get_context("spawn")
    workers = [
        context.Process(target=_record_in_process, args=(str(path), [f"w{n}-{i}" for i in range(5)] + ["common"], "mp"))
        for n in range(3)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    texts = sorted(e.request["params"]["messages"][0]["content"] for e in read_cassette(path))
    assert texts == sorted([f"w{n}-{i}" for n in range(3) for i in range(5)] + ["common"])


# --- orphans ---


def test_find_orphans_lists_unused_files_and_unused_recordings(tmp_path):
    used_file, unused_file = tmp_path / "m" / "test_a.yaml", tmp_path / "m" / "test_gone.yaml"
    a, b = make_entry("a"), make_entry("b")
    write_cassette(used_file, [a, b])
    write_cassette(unused_file, [a])
    files, unused = find_orphans(tmp_path, {str(used_file): {(a.key, 0)}})
    assert files == [unused_file]
    assert [(p, e.key) for p, e in unused] == [(used_file, b.key)]
    # A collected (e.g. deselected) test owns its file; a cassette not judged keeps its recordings.
    files, unused = find_orphans(tmp_path, {str(used_file): {(a.key, 0)}}, known=[str(unused_file)], judged=[])
    assert files == [] and unused == []


# --- options ---


def test_marker_options_are_checked_with_a_clear_message():
    assert marker_options({"cassette": "shared", "mode": "record", "seed": 7}) == ("record", "shared", 7, None)
    assert marker_options({"finetune": "v2"}).finetune == "v2" and marker_options({"finetune": False}).finetune is False
    with pytest.raises(SeedreplayError, match="name a manifest version"):
        marker_options({"finetune": ""})
    with pytest.raises(SeedreplayError, match="mode must be one of replay, record"):
        marker_options({"mode": "recrod"})
    with pytest.raises(SeedreplayError, match="seed must be an integer"):
        marker_options({"seed": "42"})
    with pytest.raises(SeedreplayError, match="only keyword arguments cassette, mode, seed, finetune, drift; got casette"):
        marker_options({"casette": "x"})


def test_upstream_choice_prefers_the_option_then_env_then_previous_base_url():
    env = {"SEEDREPLAY_UPSTREAM": "http://env/v1", "OPENAI_BASE_URL": "http://base/v1"}
    assert choose_upstream("http://opt/v1", env) == "http://opt/v1"
    assert choose_upstream(None, env) == "http://env/v1"
    assert choose_upstream(None, {"OPENAI_BASE_URL": "http://base/v1"}) == "http://base/v1"
    # A parent session's seedreplay proxy is never chained into.
    assert (
        choose_upstream(None, {"OPENAI_BASE_URL": "http://p/v1", "SEEDREPLAY_PLUGIN_PROXY": "http://p/v1"})
        == "https://api.openai.com/v1"
    )


# --- report ---


def test_the_html_report_escapes_everything_and_highlights_differences(tmp_path):
    drift = {
        "key": "v1:k",
        "endpoint": CHAT,
        "prompt": "user: <script>alert(1)</script>",
        "recorded_text": "The <b>cat</b> sat",
        "live_text": "The <b>dog</b> sat",
        "verbatim": False,
        "similarity": 0.5,
        "recorded_fingerprint": "fp_<1>",
        "live_fingerprint": "fp_2",
        "recorded_finish_reason": "stop",
        "live_finish_reason": "stop",
        "recorded": True,
        "drifted": True,
        "fingerprint_changed": True,
        "finish_reason_changed": False,
    }
    test = {"nodeid": "t.py::test_<x>", "cassette": "c.yaml", "mode": "live", "drift": [drift], "misses": []}
    page = render_html(build_report("live", "http://up/v1", {"drifted": 1}, [test]))
    assert "<script>" not in page and "&lt;script&gt;" in page and "test_&lt;x&gt;" in page and "fp_&lt;1&gt;" in page
    assert "<del>&lt;b&gt;cat&lt;/b&gt; </del>" in page and "<ins>&lt;b&gt;dog&lt;/b&gt; </ins>" in page
    assert html_path(tmp_path / "r.json") == tmp_path / "r.html"
    assert html_path(tmp_path / "report") == tmp_path / "report.html"


def test_highlight_marks_only_the_changed_words():
    old, new = highlight("a b c", "a x c")
    assert old == "a <del>b </del>c" and new == "a <ins>x </ins>c"


def test_the_json_report_is_sorted_and_skips_tests_with_the_plugin_off():
    tests = [
        {"nodeid": "b", "cassette": "b.yaml", "mode": "live", "failed": True},
        {"nodeid": "a", "cassette": "a.yaml", "mode": "replay", "replayed": 2},
        {"nodeid": "c", "cassette": "c.yaml", "mode": "off"},
    ]
    report = json.loads(json.dumps(build_report("replay", "u", {"replayed": 2}, tests)))
    assert [(t["nodeid"], t["outcome"]) for t in report["tests"]] == [("a", "passed"), ("b", "failed")]


def test_the_html_report_indexes_tests_and_shows_only_what_means_something(tmp_path):
    def drift(**changes):
        base = {
            "key": "v1:k",
            "endpoint": CHAT,
            "prompt": "user: hi",
            "recorded_text": "a",
            "live_text": "a",
            "verbatim": True,
            "similarity": 1.0,
            "recorded_fingerprint": "fp_1",
            "live_fingerprint": "fp_1",
            "recorded_finish_reason": "stop",
            "live_finish_reason": "stop",
            "recorded": True,
            "drifted": False,
            "fingerprint_changed": False,
            "finish_reason_changed": False,
        }
        return {**base, **changes}

    embedding = drift(
        endpoint="/v1/embeddings",
        recorded_fingerprint=None,
        live_fingerprint=None,
        recorded_finish_reason=None,
        live_finish_reason=None,
        verbatim=False,
        similarity=0.1,
        drifted=True,
    )
    tests = [
        {
            "nodeid": "t.py::test_same",
            "cassette": str(tmp_path / "cassettes/t/test_same.yaml"),
            "mode": "live",
            "drift": [drift()],
        },
        {
            "nodeid": "t.py::test_vec",
            "cassette": str(tmp_path / "cassettes/t/test_vec.yaml"),
            "mode": "live",
            "drift": [embedding],
        },
        {
            "nodeid": "t.py::test_fp",
            "cassette": str(tmp_path / "cassettes/t/test_fp.yaml"),
            "mode": "live",
            "drift": [drift(live_fingerprint="fp_2", fingerprint_changed=True)],
        },
    ]
    report = build_report("live", "http://up/v1", {"drifted": 1, "live_compared": 3, "unsaved": 0}, tests, root=tmp_path)
    assert report["rootdir"] == str(tmp_path)
    page = render_html(report)
    assert "<td>live-compared</td><td><b>3</b>" in page and "<td>not saved</td>" in page
    index = page[page.index("<table class=index>") : page.index("</table>", page.index("<table class=index>"))]
    # The index links every test, drifted ones first, with the lowest similarity of each.
    assert index.index("t.py::test_vec") < index.index("t.py::test_fp") < index.index("t.py::test_same")
    assert '<a href="#test-0">t.py::test_vec</a>' in index and "0.10" in index and "<h2 id=test-0>t.py::test_vec" in page
    assert "cassette cassettes/t/test_same.yaml" in page and str(tmp_path) + "/cassettes" not in page
    assert "None" not in page  # an embedding has neither fingerprint nor finish_reason: nothing is shown
    assert "system_fingerprint fp_1 ·" in page or "system_fingerprint fp_1<" in page  # unchanged: said once
    assert "fp_1 → fp_2 (changed)" in page and "stop → stop" not in page


def test_no_proxy_gains_the_plugin_host_and_keeps_the_users_entries():
    from pytest_seedreplay.core.environ import with_no_proxy

    assert with_no_proxy(None, "127.0.0.1") == "127.0.0.1"
    assert with_no_proxy(" corp.example , .internal", "127.0.0.1") == "corp.example,.internal,127.0.0.1"
    assert with_no_proxy("127.0.0.1", "127.0.0.1") == "127.0.0.1" and with_no_proxy("*", "127.0.0.1") == "*"
