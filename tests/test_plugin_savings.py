"""The pytest summary says what the replayed answers saved: their recorded tokens, and dollars at the
dated built-in prices or at those of $SEEDREPLAY_PRICES."""

from __future__ import annotations

import json

import pytest

from pytest_seedreplay.savings import PRICES_AS_OF

from plugin_inner import APP_TESTS, TEST_KEY, run, setup_project


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    monkeypatch.setenv("OPENAI_API_KEY", TEST_KEY)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.delenv("SEEDREPLAY_UPSTREAM", raising=False)
    monkeypatch.delenv("SEEDREPLAY_PRICES", raising=False)
    setup_project(pytester, test_app=APP_TESTS)
    return pytester


def test_the_summary_totals_the_tokens_and_dollars_replays_saved(project, sim, monkeypatch):
    recorded = run(project, "--seedreplay=record", f"--seedreplay-upstream={sim.url}", "-k", "test_chat")
    recorded.assert_outcomes(passed=1, deselected=7)
    assert "saved:" not in recorded.stdout.str()  # nothing was replayed yet
    replayed = run(project, "-k", "test_chat")
    replayed.assert_outcomes(passed=1, deselected=7)
    replayed.stdout.fnmatch_lines([f"saved: * tokens (~$0.00 at prices of {PRICES_AS_OF}) in 1 answer(s) from recordings"])

    prices = project.path / "prices.json"
    prices.write_text(json.dumps({"as_of": "2031-01-01", "models": {"gpt-4o-mini": {"input": 1000000, "output": 1000000}}}))
    monkeypatch.setenv("SEEDREPLAY_PRICES", str(prices))
    priced = run(project, "-k", "test_chat")
    line = next(text for text in priced.outlines if text.startswith("saved: "))
    tokens = int(line.split()[1].replace(",", ""))
    assert tokens > 0 and f"(~${tokens:,.2f} at prices of 2031-01-01 from {prices})" in line  # a dollar a token


def test_an_unreadable_prices_file_is_a_usage_error(project, monkeypatch):
    monkeypatch.setenv("SEEDREPLAY_PRICES", str(project.path / "missing.json"))
    result = run(project, "-k", "test_chat")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*cannot read the prices file *missing.json*"])
