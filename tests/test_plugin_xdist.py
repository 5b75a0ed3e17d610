"""pytest-xdist: every worker runs its own proxy; cassettes stay consistent and the controller
prints the totals of all workers."""

from __future__ import annotations

import json
import re

import pytest
import yaml

from plugin_inner import INI, TEST_KEY, cassette_dir

MODULE = """
import pytest

def ask(client, text):
    client.chat.completions.create(model="gpt-4o-mini", messages=[{{"role": "user", "content": text}}], seed=1)

@pytest.mark.seedreplay(cassette="shared")
@pytest.mark.parametrize("n", range(4))
def test_shared_{name}(openai_client, n):
    ask(openai_client, "common")
    ask(openai_client, "{name}-%d" % n)

@pytest.mark.parametrize("n", range(3))
def test_own_{name}(openai_client, n):
    ask(openai_client, "own {name}-%d" % n)
"""

# Per run: 2 modules x (4 shared tests x 2 requests + 3 own tests x 1 request).
REQUESTS = 2 * (4 * 2 + 3)


def count(result: pytest.RunResult, name: str) -> int:
    match = re.search(rf"^{name}: (\d+) interaction", result.stdout.str(), re.MULTILINE)
    assert match, result.stdout.str()
    return int(match.group(1))


def shared_texts(pytester: pytest.Pytester) -> list[str]:
    data = yaml.safe_load((cassette_dir(pytester) / "shared.yaml").read_text())
    return sorted(json.loads(i["request"]["body"])["messages"][0]["content"] for i in data["interactions"])


def test_two_workers_record_replay_and_rewrite_consistent_cassettes(pytester, sim, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", TEST_KEY)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    # When this suite itself runs under xdist, the inner pytest must still start as a top-level controller.
    for name in ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT", "PYTEST_XDIST_TESTRUNUID"):
        monkeypatch.delenv(name, raising=False)
    pytester.makeini(INI)
    pytester.makepyfile(test_x=MODULE.format(name="x"), test_y=MODULE.format(name="y"))
    xdist = ("-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-n", "2")

    recorded = pytester.runpytest_subprocess(*xdist, "--seedreplay=record", f"--seedreplay-upstream={sim.url}")
    recorded.assert_outcomes(passed=14)
    # Whichever worker recorded "common" first, the others replayed it: nothing is lost or doubled.
    assert count(recorded, "recorded") + count(recorded, "replayed") == REQUESTS
    expected = sorted(["common"] + [f"{m}-{n}" for m in "xy" for n in range(4)])
    assert shared_texts(pytester) == expected
    own = sorted(p.name for p in (cassette_dir(pytester) / "test_x").iterdir())
    assert own == ["test_own_x[0].yaml", "test_own_x[1].yaml", "test_own_x[2].yaml"]

    before = sim.stats()["total"]
    replayed = pytester.runpytest_subprocess(*xdist, "--seedreplay-orphans", "-k", "not own_y")
    replayed.assert_outcomes(passed=11)
    assert (count(replayed, "replayed"), count(replayed, "recorded"), count(replayed, "missing")) == (REQUESTS - 3, 0, 0)
    assert sim.stats()["total"] == before
    # The workers tell the controller what they collected: deselected tests keep their cassettes.
    replayed.stdout.fnmatch_lines(["orphan cassettes (no collected test uses them): 0", "orphan interactions*: 0"])

    # Rewrite with fewer shared tests: the shared cassette keeps exactly what this run used.
    pytester.makepyfile(test_y=MODULE.format(name="y").replace("range(4)", "range(2)"))
    rewritten = pytester.runpytest_subprocess(*xdist, "--seedreplay=rewrite", f"--seedreplay-upstream={sim.url}")
    rewritten.assert_outcomes(passed=12)
    assert shared_texts(pytester) == sorted(["common"] + [f"x-{n}" for n in range(4)] + ["y-0", "y-1"])


def test_replay_under_xdist_needs_no_key_even_for_clients_built_by_conftest(pytester, monkeypatch):
    # The xdist controller imports conftest.py too (it runs no test, so it starts no proxy).
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    for name in ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT", "PYTEST_XDIST_TESTRUNUID"):
        monkeypatch.delenv(name, raising=False)
    pytester.makeini(INI)
    pytester.makepyfile(myapp="import openai\nclient = openai.OpenAI()\n", test_app="def test_x():\n    pass\n")
    pytester.makeconftest("import myapp")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-n", "2")
    result.assert_outcomes(passed=1)
