"""The pytest summary says what the replayed answers saved: their recorded tokens, and dollars at the
dated built-in prices or at those of the table the run names (--seedreplay-prices, the ini's
seedreplay_prices, $SEEDREPLAY_PRICES)."""

from __future__ import annotations

import json

import pytest

from pytest_seedreplay.savings import DEFAULT_TABLE

from plugin_inner import APP_TESTS, INI, TEST_KEY, run, setup_project


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
    # A few hundred tokens of gpt-4o-mini: a fraction of a cent, shown as such (never ~$0.00).
    replayed.stdout.fnmatch_lines([f"saved: * tokens (~$0.0* at {DEFAULT_TABLE.describe()}) in 1 answer(s) from recordings"])

    prices = project.path / "prices.json"
    prices.write_text(json.dumps({"as_of": "2031-01-01", "models": {"gpt-4o-mini": {"input": 1000000, "output": 1000000}}}))
    monkeypatch.setenv("SEEDREPLAY_PRICES", str(prices))
    tokens, line = _priced_line(run(project, "-k", "test_chat"))
    assert tokens > 0 and f"(~${tokens:,.2f} at {_file_prices('2031-01-01', prices)})" in line  # a dollar a token


def _file_prices(as_of: str, path) -> str:
    """How the summary names a prices file: genai-prices prices the rest where it installs (3.11+)."""
    own = f"prices of {as_of} from {path}"
    return f"{own}, else {DEFAULT_TABLE.library}" if DEFAULT_TABLE.library else own


def _priced_line(result: pytest.RunResult) -> tuple[int, str]:
    line = next(text for text in result.outlines if text.startswith("saved: "))
    return int(line.split()[1].replace(",", "")), line


def test_the_prices_can_be_named_by_flag_or_ini_and_the_flag_wins(project, sim, monkeypatch):
    run(project, "--seedreplay=record", f"--seedreplay-upstream={sim.url}", "-k", "test_chat").assert_outcomes(
        passed=1, deselected=7
    )
    for name, as_of, dollars in (("env.json", "2030-01-01", 1), ("ini.json", "2031-01-01", 2), ("flag.json", "2032-01-01", 3)):
        table = {"as_of": as_of, "models": {"gpt-4o-mini": {"input": dollars * 1e6, "output": dollars * 1e6}}}
        (project.path / name).write_text(json.dumps(table))
    monkeypatch.setenv("SEEDREPLAY_PRICES", str(project.path / "env.json"))
    project.makeini(INI + "seedreplay_prices = ini.json\n")

    tokens, line = _priced_line(run(project, "-k", "test_chat"))
    assert f"(~${2 * tokens:,.2f} at {_file_prices('2031-01-01', project.path / 'ini.json')})" in line
    tokens, line = _priced_line(run(project, "-k", "test_chat", "--seedreplay-prices", "flag.json"))
    assert f"(~${3 * tokens:,.2f} at {_file_prices('2032-01-01', project.path / 'flag.json')})" in line
    # Across xdist workers too: each worker's tests are priced with the run's table.
    tokens, line = _priced_line(run(project, "-k", "test_chat", "-n", "2", "--seedreplay-prices", "flag.json"))
    assert tokens > 0 and "at prices of 2032-01-01" in line


@pytest.mark.parametrize(
    "how, says",
    [
        ("env", "$SEEDREPLAY_PRICES: cannot read the prices file *missing.json*"),
        ("ini", "seedreplay_prices (ini): cannot read the prices file *missing.json*"),
        ("flag", "--seedreplay-prices: cannot read the prices file *missing.json*"),
    ],
)
def test_an_unreadable_prices_file_is_a_usage_error_naming_where_it_was_named(project, monkeypatch, how, says):
    args = ["-k", "test_chat"]
    if how == "env":
        monkeypatch.setenv("SEEDREPLAY_PRICES", str(project.path / "missing.json"))
    elif how == "ini":
        project.makeini(INI + "seedreplay_prices = missing.json\n")
    else:
        args += ["--seedreplay-prices", "missing.json"]
    result = run(project, *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{says}"])
    assert "Traceback" not in result.stderr.str()
