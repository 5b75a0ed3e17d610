"""The story every framework test tells, with the real framework and the real plugin and proxy:

1. record: an inner pytest session (`--seedreplay=record`) calls the framework against the simulator;
2. replay: the same session with the simulator stopped and no API key answers the same, offline;
3. a changed prompt fails its test with the seedreplay miss (closest recording, what differs, the
   command that records it), whatever exception the framework wraps the SDK's in; and a miss the code
   under test swallows (it catches the framework's exception and carries on) still fails its test: the
   proxy told the plugin about the miss, whatever the test saw;
4. proxy: the same calls through a real seedreplay proxy (plugin off), all hits on the second pass.

Each inner test notes what the framework returned (`note(name, value)`), so a replay is checked to
give exactly what was recorded. The frameworks are imported by the outer test modules: pytester
forgets the modules an inner session imports, and importing them once per session is slow."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pytest_seedreplay import use_cassette

from plugin_inner import INI, TEST_KEY, cassette_dir, run

# Anthropic's model for the tests (4-5 warns it is deprecated; LangChain will not force a tool on 5-5).
CLAUDE = "claude-sonnet-4-6"
# Shaped like a real key, so a leak into a cassette would be caught.
ANTHROPIC_KEY = "sk-ant-api03-frameworkTEST" + "Zq7" * 10
# What would point an Anthropic client elsewhere (or record from elsewhere): unset while a test sets its own.
ANTHROPIC_ENV = (
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_BASE_URL",
    "ANTHROPIC_API_URL",  # LangChain reads it before ANTHROPIC_BASE_URL
    "ANTHROPIC_AUTH_TOKEN",
    "SEEDREPLAY_ANTHROPIC_UPSTREAM",
)

SKIP_REASON = "{name} is not installed: the framework tests run in tox's `frameworks` env (tox -e frameworks)"

# Prepended to every inner test module.
NOTE = """
import json

MODEL = "gpt-4o-mini"
CLAUDE = "claude-sonnet-4-6"


def note(name, value):
    with open("notes.jsonl", "a", encoding="utf-8") as f:
        f.write(json.dumps([name, value], default=str) + "\\n")
"""


def notes(pytester: pytest.Pytester) -> dict[str, Any]:
    """What the inner tests noted, by name (the file is cleared for the next session)."""
    path = Path(pytester.path) / "notes.jsonl"
    found = dict(json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()) if path.exists() else {}
    path.unlink(missing_ok=True)
    return found


def write_app(pytester: pytest.Pytester, app: str) -> None:
    pytester.makeini(INI)
    pytester.makepyfile(test_app=NOTE + app)


def no_reset() -> None:
    pass


# Appended to the app in step 3: code under test that calls one of the app's tests and swallows what
# the framework raises. It has no cassette, so its call misses.
SWALLOWED = """

def test_swallowed_miss():
    try:
        {call}()
    except Exception as exc:
        note("swallowed", type(exc).__module__.split(".")[0] + "." + type(exc).__qualname__)
"""


def record_replay_and_miss(
    pytester: pytest.Pytester,
    sim_factory: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
    app: str,
    changed: tuple[str, str],
    changed_test: str,
    wrapped: str,
    swallowed: str = "",
    reset: Callable[[], None] = no_reset,
    anthropic: bool = False,
) -> dict[str, Any]:
    """Steps 1-3. `changed`: (text, replacement) in `app`, which makes `changed_test` ask another prompt.
    `wrapped`: the exception the framework raises for the miss in `swallowed` (a sync test of `app`,
    default `changed_test`), which the code under test catches.
    `reset` runs before each inner session: what a framework caches per process (its HTTP clients)
    must not outlive the session, as it would not outlive a real pytest run. `anthropic`: the app calls
    Anthropic's API (its key set, its upstream the simulator too). Returns what the recorded session
    noted."""
    monkeypatch.setenv("OPENAI_API_KEY", TEST_KEY)
    for name in ("OPENAI_BASE_URL", "SEEDREPLAY_UPSTREAM", *ANTHROPIC_ENV):
        monkeypatch.delenv(name, raising=False)
    if anthropic:
        monkeypatch.setenv("ANTHROPIC_API_KEY", ANTHROPIC_KEY)
    write_app(pytester, app)
    tests = app.count("\ndef test_") + app.count("\nasync def test_")
    sim = sim_factory()
    upstreams = [f"--seedreplay-upstream={sim.url}"]
    if anthropic:
        upstreams.append(f"--seedreplay-anthropic-upstream={sim.root}")

    reset()
    recorded_run = run(pytester, "--seedreplay=record", *upstreams)
    recorded_run.assert_outcomes(passed=tests)
    recorded = notes(pytester)
    assert len(recorded) >= tests, recorded
    assert len(list(cassette_dir(pytester).rglob("*.yaml"))) == tests
    calls = sim.stats()["total"]
    assert calls >= tests
    sim.stop()

    monkeypatch.delenv("OPENAI_API_KEY")  # replay needs no key and no simulator
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    reset()
    run(pytester).assert_outcomes(passed=tests)
    assert notes(pytester) == recorded

    old, new = changed
    assert old in app
    write_app(pytester, app.replace(old, new) + SWALLOWED.format(call=swallowed or changed_test))
    reset()
    missed = run(pytester, "--tb=short")
    missed.assert_outcomes(passed=tests - 1, failed=2)
    missed.stdout.fnmatch_lines(
        [
            f"*seedreplay: no recording in cassette cassettes/test_app/{changed_test}.yaml (mode replay)*",
            "*closest recording v1:* differs in: *",
            f"*pytest --seedreplay=record *test_app.py::{changed_test}*",
        ]
    )
    assert new in missed.stdout.str()
    # The swallowed miss: the test saw no error at all, and fails with the miss as its failure.
    swallowed_type = notes(pytester)["swallowed"]
    assert swallowed_type == wrapped, swallowed_type
    missed.stdout.fnmatch_lines(
        [
            "*_ test_swallowed_miss _*",
            "*seedreplay: no recording in cassette cassettes/test_app/test_swallowed_miss.yaml (mode replay)",
            "*no recording for key v1:*; nothing is recorded yet",
            "*pytest --seedreplay=record *test_app.py::test_swallowed_miss*",
        ]
    )
    return recorded


def through_the_proxy(
    pytester: pytest.Pytester,
    sim: Any,
    proxy: Any,
    monkeypatch: pytest.MonkeyPatch,
    app: str,
    reset: Callable[[], None] = no_reset,
) -> None:
    """Step 4: the plugin off, the framework pointed at a real seedreplay proxy (Anthropic clients at
    its root); the second pass is all hits."""
    monkeypatch.setenv("OPENAI_API_KEY", TEST_KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", proxy.url)
    monkeypatch.setenv("ANTHROPIC_API_KEY", ANTHROPIC_KEY)
    monkeypatch.setenv("ANTHROPIC_BASE_URL", proxy.root)
    write_app(pytester, app)
    tests = app.count("\ndef test_") + app.count("\nasync def test_")

    reset()
    run(pytester, "--seedreplay=off").assert_outcomes(passed=tests)
    first = notes(pytester)
    before = proxy.stats()
    upstream = sim.stats()["total"]
    assert before["misses"] > 0 and upstream > 0

    reset()
    run(pytester, "--seedreplay=off").assert_outcomes(passed=tests)
    after = proxy.stats()
    assert notes(pytester) == first
    assert after["misses"] == before["misses"] and sim.stats()["total"] == upstream, (before, after)  # nothing new upstream
    # Every request of the second pass was a hit. (Not always as many as in the first pass: the Agents
    # SDK shares one client between event loops, and a request on a connection of the previous loop
    # is retried, sometimes.)
    assert after["hits"] - before["hits"] == after["requests"] - before["requests"] > 0, (before, after)


# The story every Anthropic framework test tells at the Python API's level (`use_cassette`, the plugin
# not involved), with the real framework, a real simulator and a real proxy:
#
# 1. record: the framework's calls through a `use_cassette` block whose Anthropic upstream is the simulator;
# 2. replay: the same calls with the simulator stopped and no API key answer the same, offline;
# 3. a changed prompt fails with the seedreplay miss (closest recording, what differs), whatever exception
#    the framework wraps the SDK's in, and the block lists the miss;
# 4. proxy: the same calls through a real seedreplay proxy, all hits on the second pass.
#
# `calls(root, key)` runs the framework against an Anthropic base URL (the proxy's root: the SDKs append
# `/v1/messages`) and returns what it answered, so a replay is checked to give exactly what was recorded.


Calls = Callable[[str, str], dict[str, Any]]


def messages_calls(sim: Any) -> int:
    return sim.stats()["requests"].get("POST /v1/messages", 0)


def cassette_record_replay_and_miss(
    tmp_path: Path,
    sim: Any,
    monkeypatch: pytest.MonkeyPatch,
    calls: Calls,
    changed: Callable[[str, str], Any],
    difference: str,
) -> dict[str, Any]:
    """Steps 1-3. `changed(root, key)` makes one call with a prompt the recording lacks; `difference`
    is what the miss must name. Returns what the recorded calls answered."""
    for name in ("SEEDREPLAY_UPSTREAM", *ANTHROPIC_ENV):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SEEDREPLAY_ANTHROPIC_UPSTREAM", sim.root)
    path = tmp_path / "anthropic.yaml"

    with use_cassette(path, upstream=sim.url) as use:
        recorded = calls(use.proxy.root, ANTHROPIC_KEY)
    upstream = messages_calls(sim)
    assert upstream > 0 and use.recorded == upstream, (upstream, use.recorded)
    text = path.read_text(encoding="utf-8")
    assert ANTHROPIC_KEY not in text and "frameworkTEST" not in text
    sim.stop()

    with use_cassette(path, mode="replay") as use:
        assert calls(use.proxy.root, "unused") == recorded
    assert use.misses == []

    with use_cassette(path, mode="replay") as use:
        with pytest.raises(Exception) as raised:
            changed(use.proxy.root, "unused")
    # The framework's exception carries the proxy's message (through however many wrappers).
    message = "".join(str(e) for e in chain(raised.value))
    assert "seedreplay" in message and "closest recording" in message and difference in message, message
    (miss,) = use.misses
    assert miss.endpoint == "/v1/messages" and miss.closest is not None and difference in miss.message, miss
    return recorded


def chain(exc: BaseException | None) -> list[BaseException]:
    """The exception and those it was raised from or during."""
    seen: list[BaseException] = []
    while exc is not None and exc not in seen:
        seen.append(exc)
        exc = exc.__cause__ or exc.__context__
    return seen


def anthropic_through_the_proxy(sim: Any, proxy: Any, calls: Calls) -> None:
    """Step 4: the framework pointed at a real seedreplay proxy; the second pass is all hits."""
    first = calls(proxy.root, ANTHROPIC_KEY)
    proxy.settle()
    before, upstream = proxy.stats(), messages_calls(sim)
    assert before["misses"] > 0 and upstream > 0

    assert calls(proxy.root, ANTHROPIC_KEY) == first
    proxy.settle()
    after = proxy.stats()
    assert after["misses"] == before["misses"] and messages_calls(sim) == upstream, (before, after)
    assert after["hits"] - before["hits"] == after["requests"] - before["requests"] > 0, (before, after)
