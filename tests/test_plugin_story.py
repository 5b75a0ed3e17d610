"""The pytest plugin's story, each step a real inner pytest session against the simulator:
record -> replay offline -> miss -> live drift -> rewrite."""

from __future__ import annotations

import json

import pytest
import yaml

from plugin_inner import APP_CASSETTES, APP_TESTS, TEST_KEY, answers, cassette_dir, cassette_text, run, setup_project


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    monkeypatch.setenv("OPENAI_API_KEY", TEST_KEY)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.delenv("SEEDREPLAY_UPSTREAM", raising=False)
    setup_project(pytester, test_app=APP_TESTS)
    return pytester


def record(pytester: pytest.Pytester, upstream: str, *args: str) -> pytest.RunResult:
    return run(pytester, "--seedreplay=record", f"--seedreplay-upstream={upstream}", *args)


def test_record_writes_one_secret_free_cassette_per_test_then_replays_offline(project, sim, monkeypatch):
    recorded = record(project, sim.url)
    recorded.assert_outcomes(passed=8)
    recorded.stdout.fnmatch_lines(
        ["*seedreplay (record)*", "recorded: 10 interaction(s)", "cassettes written: 8 under cassettes"]
    )
    files = sorted(p.name for p in (cassette_dir(project) / "test_app").iterdir())
    assert files == sorted(APP_CASSETTES)
    text = cassette_text(project)
    assert TEST_KEY not in text and "sk-test" not in text and "authorization" not in text.lower()
    first = answers(project)
    assert first["repeat"][0] != first["repeat"][1]  # unseeded: the upstream answered twice, differently

    # Replay needs no key and no network: the simulator sees no request, answers are identical.
    monkeypatch.delenv("OPENAI_API_KEY")
    before = sim.stats()["total"]
    replayed = run(project)
    replayed.assert_outcomes(passed=8)
    replayed.stdout.fnmatch_lines(["*seedreplay (replay)*", "replayed: 10 interaction(s)", "missing: 0 interaction(s)"])
    assert sim.stats()["total"] == before
    assert answers(project) == first

    sim.stop()
    run(project).assert_outcomes(passed=8)
    assert answers(project) == first


def test_unrecorded_request_fails_naming_cassette_closest_diff_and_record_command(project, sim):
    record(project, sim.url, "-k", "test_chat").assert_outcomes(passed=1, deselected=7)
    project.makepyfile(test_app=APP_TESTS.replace('"Say hello", seed=1', '"Say hello", seed=2'))

    result = run(project, "-k", "test_chat")
    result.assert_outcomes(failed=1, deselected=7)
    result.stdout.fnmatch_lines(
        [
            "*seedreplay replay miss*",
            "seedreplay: no recording in cassette cassettes/test_app/test_chat.yaml (mode replay)",
            "*closest recording v1:*differs in: seed: 1 → 2",
            "To record it, run:",
            "  pytest --seedreplay=record test_app.py::test_chat",
            "missing: 1 interaction(s)*",
        ]
    )
    # The traceback stops at the app's own call: the SDK's internals would only bury the message.
    assert "_base_client.py" not in result.stdout.str()
    result.stdout.fnmatch_lines(
        [
            '>*answer = ask(openai_client, "Say hello", seed=2)',
            "E *openai.NotFoundError: Error code: 404 - *no recording for key v1:*",
            "test_app.py:19: NotFoundError",
        ]
    )
    assert "_base_client.py" in run(project, "-k", "test_chat", "--fulltrace").stdout.str()  # asked for: all of it

    # The command it names records the request, after which replay passes.
    record(project, sim.url, "test_app.py::test_chat").assert_outcomes(passed=1)
    run(project, "-k", "test_chat").assert_outcomes(passed=1, deselected=7)


def test_a_swallowed_miss_still_fails_the_test(pytester, sim):
    setup_project(
        pytester,
        test_swallow="""
            import openai

            def test_app_hides_errors(openai_client):
                try:
                    openai_client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}])
                except openai.NotFoundError:
                    pass  # the code under test falls back silently
        """,
    )
    result = run(pytester)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*no recording for key v1:*nothing is recorded yet*",
            "*pytest --seedreplay=record test_swallow.py::test_app_hides_errors*",
        ]
    )


def test_live_compares_with_recordings_and_reports_drift(project, sim, sim_factory, tmp_path):
    record(project, sim.url).assert_outcomes(passed=8)
    before = cassette_text(project)

    same = run(project, "--seedreplay=live", f"--seedreplay-upstream={sim.url}")
    same.assert_outcomes(passed=8)
    # Seeded answers come back verbatim; the unseeded repeats legitimately differ.
    same.stdout.fnmatch_lines(["live-compared: 10 interaction(s)", "drifted: 2 interaction(s)"])

    drifting = sim_factory(drift="salt")
    report = tmp_path / "out" / "drift.json"
    warned = run(project, "--seedreplay=live", f"--seedreplay-upstream={drifting.url}", f"--seedreplay-report={report}")
    warned.assert_outcomes(passed=8, warnings=8)
    warned.stdout.fnmatch_lines(
        [
            "*SeedreplayDriftWarning*",
            "live-compared: 10 interaction(s)",
            "drifted: 10 interaction(s)",
            "cassettes written: none (live mode writes nothing)",
            "drift: test_app.py::test_async: /v1/chat/completions similarity *, system_fingerprint fp_* → fp_*",
            "drift: test_app.py::test_embeddings: /v1/embeddings similarity *",
        ]
    )
    assert "None → None" not in warned.stdout.str() and "similarity -" not in warned.stdout.str()
    assert cassette_text(project) == before  # live writes nothing

    data = json.loads(report.read_text())
    assert data["mode"] == "live" and data["summary"]["drifted"] == 10
    chat = next(t for t in data["tests"] if t["nodeid"] == "test_app.py::test_chat")
    drift = chat["drift"][0]
    assert drift["prompt"] == "user: Say hello"
    assert drift["fingerprint_changed"] and not drift["verbatim"] and 0 <= drift["similarity"] < 1
    page = report.with_suffix(".html").read_text()
    assert "test_app.py::test_chat" in page and "<del>" in page and "<ins>" in page and drift["live_fingerprint"] in page

    failed = run(
        project, "--seedreplay=live", f"--seedreplay-upstream={drifting.url}", "--seedreplay-drift=fail", "-k", "chat or stream"
    )
    failed.assert_outcomes(failed=2, deselected=6)
    failed.stdout.fnmatch_lines(
        [
            "*seedreplay: live answers drifted from cassette cassettes/test_app/test_chat.yaml*",
            "  /v1/chat/completions v1:*: answer drifted (similarity *",
            "    recorded: *",
            "    live:     *",
            "*pytest --seedreplay=rewrite test_app.py::test_chat*",
        ]
    )
    # Said once per test: the failure is the drift itself, not a section repeating it.
    assert failed.stdout.str().count("live answers drifted from cassette cassettes/test_app/test_chat.yaml") == 1


def test_the_seedreplay_fixture_exposes_drift_to_the_test(pytester, sim, sim_factory):
    setup_project(
        pytester,
        test_stability="""
            def test_answer_is_stable(openai_client, seedreplay):
                openai_client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "q"}], seed=9)
                if seedreplay.mode == "live":
                    (drift,) = seedreplay.drift
                    assert drift.drifted and drift.fingerprint_changed and not drift.finish_reason_changed
                    assert seedreplay.interactions[0].source == "live"
        """,
    )
    run(pytester, "--seedreplay=record", f"--seedreplay-upstream={sim.url}").assert_outcomes(passed=1)
    run(pytester, "--seedreplay=live", f"--seedreplay-upstream={sim_factory(drift='salt').url}").assert_outcomes(
        passed=1, warnings=1
    )


def test_rewrite_keeps_exactly_the_interactions_used(pytester, sim):
    two_calls = """
        def test_two(openai_client):
            for text in ("first", "second"):
                openai_client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": text}], seed=1)
    """
    setup_project(pytester, test_rw=two_calls)
    run(pytester, "--seedreplay=record", f"--seedreplay-upstream={sim.url}").assert_outcomes(passed=1)
    pytester.makepyfile(test_rw=two_calls.replace('("first", "second")', '("second",)'))

    orphans = run(pytester, "--seedreplay-orphans")
    orphans.assert_outcomes(passed=1)
    orphans.stdout.fnmatch_lines(
        [
            "orphan interactions (recorded, never requested by tests that ran to the end): 1",
            "*test_rw/test_two.yaml: v1:* /v1/chat/completions model gpt-4o-mini",
        ]
    )

    before = sim.stats()["total"]
    rewritten = run(pytester, "--seedreplay=rewrite", f"--seedreplay-upstream={sim.url}")
    rewritten.assert_outcomes(passed=1)
    rewritten.stdout.fnmatch_lines(["recorded: 1 interaction(s)", "cassettes written: 1 under cassettes"])
    assert sim.stats()["total"] == before + 1  # rewrite asks the upstream again
    data = yaml.safe_load((cassette_dir(pytester) / "test_rw" / "test_two.yaml").read_text())
    assert [json.loads(i["request"]["body"])["messages"][0]["content"] for i in data["interactions"]] == ["second"]
    run(pytester).assert_outcomes(passed=1)


def test_record_saves_nothing_for_a_failing_test_unless_keep_failed(pytester, sim):
    setup_project(
        pytester,
        test_fail="""
            def test_fails_after_the_call(openai_client):
                openai_client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "q"}])
                assert False, "the app misbehaved"
        """,
    )
    target = cassette_dir(pytester) / "test_fail" / "test_fails_after_the_call.yaml"
    result = run(pytester, "--seedreplay=record", f"--seedreplay-upstream={sim.url}")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "recorded: 1 interaction(s)",
            "not saved: 1 interaction(s) of failing tests (--seedreplay-keep-failed saves them)",
            "cassettes written: none*",
        ]
    )
    assert not target.exists()
    kept = run(pytester, "--seedreplay=record", f"--seedreplay-upstream={sim.url}", "--seedreplay-keep-failed")
    kept.assert_outcomes(failed=1)
    assert target.exists() and "not saved" not in kept.stdout.str()


def test_rewrite_re_records_streams_async_and_embeddings_which_then_replay(project, sim, sim_factory):
    record(project, sim.url).assert_outcomes(passed=8)
    first = answers(project)
    drifting = sim_factory(drift="new model")
    rewritten = run(project, "--seedreplay=rewrite", f"--seedreplay-upstream={drifting.url}")
    rewritten.assert_outcomes(passed=8)
    rewritten.stdout.fnmatch_lines(
        ["replayed: 0 interaction(s)", "recorded: 10 interaction(s)", "cassettes written: 8 under cassettes"]
    )
    second = answers(project)
    assert all(second[name] != first[name] for name in ("chat", "stream", "async", "embeddings", "module"))
    drifting.stop()
    sim.stop()
    run(project).assert_outcomes(passed=8)
    assert answers(project) == second
