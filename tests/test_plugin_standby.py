"""The plugin on standby: a run whose tests make no OpenAI call loads neither the proxy nor the clients,
and a test that turns out to need the proxy (a client connecting, a transport imported late) is still
served its own cassette and guarded, as if the proxy had been there all along.

The runs that check what is imported are subprocesses with only this plugin loaded (as in a project
that installs pytest and seedreplay alone): an in-process inner session shares this process's modules."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_seedreplay.core.constants import GUARDED_TRANSPORTS
from pytest_seedreplay.guard import POOLS
from pytest_seedreplay.recorder import TestRecording
from pytest_seedreplay.report import build_report
from pytest_seedreplay.summary import Tally

from plugin_inner import TEST_KEY, cassette_dir, run, setup_project

# What a run with no OpenAI call must not load: the proxy, the cassettes, the guard, the clients.
HEAVY = (
    "pytest_seedreplay.wording",
    "pytest_seedreplay.proxy",
    "pytest_seedreplay.store",
    "pytest_seedreplay.guard",
    "pytest_seedreplay.summary",
    "aiohttp",
    "openai",
    "httpx",  # and httpx2
    "httpcore",  # and httpcore2
)

LOADED = """
import json
import sys

def pytest_sessionfinish(session):
    heavy = {heavy!r}
    loaded = sorted(m for m in sys.modules if m.startswith(heavy))
    with open("loaded.json", "w") as f:
        json.dump(loaded, f)
"""


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", TEST_KEY)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.delenv("SEEDREPLAY_UPSTREAM", raising=False)


def only_this_plugin(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, *args: str) -> pytest.RunResult:
    """A subprocess session with no other installed plugin (several import aiohttp or httpx themselves)."""
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    return pytester.runpytest_subprocess("-p", "pytest_seedreplay.plugin", "-p", "no:cacheprovider", *args)


def loaded(pytester: pytest.Pytester) -> list[str]:
    return json.loads((Path(pytester.path) / "loaded.json").read_text())


def test_a_run_whose_tests_make_no_openai_call_loads_neither_the_proxy_nor_the_clients(pytester, monkeypatch):
    pytester.makeini("[pytest]\nseedreplay_mode = replay\n")
    pytester.makeconftest(LOADED.format(heavy=HEAVY))
    pytester.makepyfile(
        test_plain="""
            import os

            def test_sum():
                assert sum(range(4)) == 6

            def test_the_environment_already_points_at_the_proxy():
                assert os.environ["OPENAI_BASE_URL"].startswith("http://127.0.0.1:")
                assert os.environ["OPENAI_API_KEY"]
        """
    )
    result = only_this_plugin(pytester, monkeypatch)
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["seedreplay: mode=replay, *", "*seedreplay (replay)*", "no OpenAI requests in this run"])
    assert loaded(pytester) == []


def test_a_project_not_opted_in_loads_nothing_and_sets_nothing(pytester, monkeypatch):
    pytester.makeini("[pytest]\n")
    pytester.makeconftest(LOADED.format(heavy=HEAVY))
    pytester.makepyfile(
        test_plain="""
            import os

            def test_untouched():
                assert "OPENAI_BASE_URL" not in os.environ
                assert "SEEDREPLAY_PLUGIN_PROXY" not in os.environ
        """
    )
    result = only_this_plugin(pytester, monkeypatch)
    result.assert_outcomes(passed=1)
    assert "seedreplay (" not in result.stdout.str() and "seedreplay: mode=" not in result.stdout.str()
    assert loaded(pytester) == []


def test_a_transport_a_test_imports_is_guarded_then(pytester, monkeypatch):
    pytester.makeini("[pytest]\nseedreplay_mode = replay\n")
    pytester.makeconftest(LOADED.format(heavy=HEAVY))
    pytester.makepyfile(
        test_late="""
            def test_quiet():
                pass

            def test_bypasses_the_proxy():
                # Nothing imported a transport before this test: the guard starts now.
                try:
                    import httpx2 as httpx
                except ImportError:
                    import httpx

                try:
                    httpx.post("https://api.openai.com/v1/chat/completions", json={})
                except httpx.ConnectError:
                    pass  # swallowed by the code under test: the test must still fail
        """
    )
    result = only_this_plugin(pytester, monkeypatch, "--tb=short")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        ["*seedreplay: blocked network access in replay mode:*", "*POST https://api.openai.com/v1/chat/completions*"]
    )
    assert "pytest_seedreplay.guard" in loaded(pytester)


def test_a_client_that_connects_in_a_test_with_no_fixture_is_served_that_tests_cassette(pytester, sim):
    setup_project(
        pytester,
        test_module_client="""
            import openai

            client = openai.OpenAI(max_retries=0)  # built at collection: OPENAI_BASE_URL is the reserved port

            def ask(text):
                reply = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": text}], seed=1)
                return reply.choices[0].message.content

            def test_quiet():
                pass

            def test_asks():
                assert ask("first")

            def test_asks_something_else():
                assert ask("second")
        """,
    )
    run(pytester, "--seedreplay=record", f"--seedreplay-upstream={sim.url}").assert_outcomes(passed=3)
    written = sorted(p.name for p in (cassette_dir(pytester) / "test_module_client").iterdir())
    assert written == ["test_asks.yaml", "test_asks_something_else.yaml"]
    sim.stop()
    run(pytester).assert_outcomes(passed=3)

    # A test with no cassette yet, whose client connects first in the run: a miss naming its own cassette.
    (cassette_dir(pytester) / "test_module_client" / "test_asks.yaml").unlink()
    result = run(pytester, "--tb=short", "-k", "test_asks and not else")
    result.assert_outcomes(failed=1, deselected=2)
    result.stdout.fnmatch_lines(
        ["*seedreplay: no recording in cassette *test_asks.yaml (mode replay)*", "*pytest --seedreplay=record*test_asks*"]
    )


def test_a_quiet_tests_figures_add_up_as_those_of_a_recording_that_heard_nothing(tmp_path):
    cassette = tmp_path / "test_x.yaml"
    quiet, heard_nothing = (
        TestRecording("test_x.py::test_x", cassette, "replay"),
        TestRecording("test_x.py::test_x", cassette, "replay"),
    )
    heard_nothing.serve()
    for turn in (quiet, heard_nothing):
        turn.complete()
    tallies = []
    for turn in (quiet, heard_nothing):
        tally = Tally()
        tally.add(turn.payload())
        tallies.append(tally)
    a, b = tallies
    assert a.counts == b.counts and a.written == b.written == []
    assert a.summary_lines("replay", tmp_path) == b.summary_lines("replay", tmp_path) == ["no OpenAI requests in this run"]
    assert a.used_by_cassette() == b.used_by_cassette() and a.fully_run({}) == b.fully_run({}) == [str(cassette)]
    reports = [build_report("replay", "https://api.openai.com/v1", t.counts, t.tests)["tests"] for t in tallies]
    assert reports[0] == reports[1]


def test_the_transports_the_guard_hooks_are_the_ones_the_standby_waits_for():
    assert {module for module, *_ in POOLS} == set(GUARDED_TRANSPORTS)
