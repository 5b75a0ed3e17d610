"""Anthropic clients in opted-in tests (the real `anthropic` SDK, sync, async and streaming): the plugin
points ANTHROPIC_BASE_URL at its proxy and lends a dummy key, `--seedreplay-upstream sim` records
them offline, replay serves them with no network, a miss names the closest recording and the
difference, live compares Messages answers, and the guard stops a call that bypasses the proxy."""

from __future__ import annotations

import json
import os
from pathlib import Path

# Imported once here, not by every inner session: pytester forgets modules an inner run imported.
import anthropic  # noqa: F401
import pytest
import yaml

from pytest_seedreplay.core.environ import recording_anthropic_upstream

from plugin_inner import answers, cassette_dir, run

INI = """
[pytest]
asyncio_mode = auto
asyncio_default_fixture_loop_scope = function
"""

CLAUDE_TESTS = r"""
import json
import os

import anthropic

MODEL = "claude-sonnet-4-5"
PROMPT = os.environ.get("CLAUDE_PROMPT", "Tell me about bread.")


def note(name, value):
    with open("answers.jsonl", "a", encoding="utf-8") as f:
        f.write(json.dumps({"test": name, "value": value}) + "\n")


def ask(text):
    return [{"role": "user", "content": text}]


def test_sync(seedreplay):
    with anthropic.Anthropic(max_retries=0) as client:  # base URL and key from the environment
        answer = client.messages.create(model=MODEL, max_tokens=60, messages=ask(PROMPT))
    note("sync", answer.content[0].text)
    note("sync drift", [[d.endpoint, d.recorded, d.verbatim] for d in seedreplay.drift])


def test_stream():
    with anthropic.Anthropic(max_retries=0) as client:
        with client.messages.stream(model=MODEL, max_tokens=60, messages=ask("Stream a poem.")) as stream:
            note("stream", stream.get_final_message().content[0].text)


async def test_async():
    client = anthropic.AsyncAnthropic(max_retries=0)
    answer = await client.messages.create(model=MODEL, max_tokens=60, messages=ask("Async hello."))
    stream = await client.messages.create(model=MODEL, max_tokens=60, messages=ask("Async stream."), stream=True)
    text = "".join([e.delta.text async for e in stream if e.type == "content_block_delta"])
    await client.close()
    note("async", [answer.content[0].text, text])
"""


@pytest.fixture(autouse=True)
def no_anthropic_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "SEEDREPLAY_ANTHROPIC_UPSTREAM", "SEEDREPLAY_UPSTREAM"):
        monkeypatch.delenv(name, raising=False)


def project(pytester: pytest.Pytester, **modules: str) -> None:
    pytester.makeini(INI)
    pytester.makepyfile(**modules)


def recorded_uris(pytester: pytest.Pytester) -> list[str]:
    uris = []
    for path in sorted(cassette_dir(pytester).rglob("*.yaml")):
        uris += [i["request"]["uri"] for i in yaml.safe_load(path.read_text())["interactions"]]
    return uris


def test_recorded_on_the_simulator_with_no_key_then_replayed_offline(pytester: pytest.Pytester) -> None:
    project(pytester, test_claude=CLAUDE_TESTS)
    run(pytester, "--seedreplay=record", "--seedreplay-upstream", "sim").assert_outcomes(passed=3)
    recorded = answers(pytester)
    assert recorded["sync"] and recorded["stream"] and all(recorded["async"])
    assert recorded_uris(pytester) == ["http://seedreplay-sim.invalid/v1/messages"] * 4
    assert "ANTHROPIC_BASE_URL" not in os.environ  # put back after the run

    result = run(pytester, "--seedreplay=replay")
    result.assert_outcomes(passed=3)
    assert answers(pytester) == recorded  # every answer as recorded, streams and async included
    result.stdout.fnmatch_lines(["replayed: 4 interaction(s)"])


def test_a_per_test_opt_in_covers_anthropic_clients_too(pytester: pytest.Pytester) -> None:
    project(pytester, test_claude=CLAUDE_TESTS.replace("def test_sync(seedreplay)", "def test_sync(seedreplay, request)"))
    # The marker opts each test in; no session-wide mode.
    pytester.makeconftest(
        "import pytest\n\ndef pytest_collection_modifyitems(items):\n"
        "    for item in items:\n        item.add_marker(pytest.mark.seedreplay(mode='record'))\n"
    )
    run(pytester, "--seedreplay-upstream", "sim").assert_outcomes(passed=3)
    assert len(recorded_uris(pytester)) == 4


def test_a_changed_prompt_names_the_closest_recording_and_the_difference(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    project(pytester, test_claude=CLAUDE_TESTS)
    run(pytester, "--seedreplay=record", "--seedreplay-upstream", "sim", "-k", "test_sync").assert_outcomes(passed=1)
    monkeypatch.setenv("CLAUDE_PROMPT", "Tell me about cheese.")
    result = run(pytester, "--seedreplay=replay", "-k", "test_sync")
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "no recording in cassette" in out and "closest" in out
    assert "bread" in out and "cheese" in out  # the difference, both sides
    assert "pytest --seedreplay=record" in out


def test_live_compares_messages_answers(pytester: pytest.Pytester) -> None:
    project(pytester, test_claude=CLAUDE_TESTS)
    run(pytester, "--seedreplay=record", "--seedreplay-upstream", "sim", "-k", "test_sync").assert_outcomes(passed=1)
    answers(pytester)
    run(pytester, "--seedreplay=live", "--seedreplay-upstream", "sim", "-k", "test_sync").assert_outcomes(passed=1)
    assert answers(pytester)["sync drift"] == [["/v1/messages", True, True]]  # the simulator answers alike

    # The recording says something else: live mode reports the drift of a Messages answer.
    path = cassette_dir(pytester) / "test_claude" / "test_sync.yaml"
    data = yaml.safe_load(path.read_text())
    body = data["interactions"][0]["response"]["body"]
    answer = json.loads(body["string"])
    answer["content"][0]["text"] = "Something else entirely."
    body["string"] = json.dumps(answer)
    path.write_text(yaml.safe_dump(data))
    result = run(pytester, "--seedreplay=live", "--seedreplay-upstream", "sim", "--seedreplay-drift=fail", "-k", "test_sync")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*live answers drifted*", "*recorded: Something else entirely.*"])


BYPASS = """
import anthropic
import pytest


def test_bypass():
    client = anthropic.Anthropic(base_url="https://api.anthropic.com", max_retries=0)
    with pytest.raises(anthropic.APIConnectionError):
        client.messages.create(model="claude-sonnet-4-5", max_tokens=10, messages=[{"role": "user", "content": "hi"}])
"""


@pytest.mark.parametrize("mode", ["replay", "record"])
def test_a_call_that_bypasses_the_proxy_fails_loudly(pytester: pytest.Pytester, mode: str) -> None:
    project(pytester, test_bypass=BYPASS)
    result = run(pytester, f"--seedreplay={mode}", "--seedreplay-upstream", "sim")
    result.assert_outcomes(failed=1)  # even though the code under test caught the error
    result.stdout.fnmatch_lines(["*POST https://api.anthropic.com/v1/messages*", "*ANTHROPIC_BASE_URL points there too*"])


def test_the_anthropic_upstream_follows_the_openai_one() -> None:
    ours = {"SEEDREPLAY_PLUGIN_PROXY": "http://127.0.0.1:5/v1", "ANTHROPIC_BASE_URL": "http://127.0.0.1:5"}
    assert recording_anthropic_upstream("http://given", "sim", {"SEEDREPLAY_ANTHROPIC_UPSTREAM": "http://env"}) == "http://given"
    assert recording_anthropic_upstream(None, "sim", {"SEEDREPLAY_ANTHROPIC_UPSTREAM": "http://env"}) == "sim"
    assert recording_anthropic_upstream(None, "https://x/v1", {"SEEDREPLAY_ANTHROPIC_UPSTREAM": "http://env"}) == "http://env"
    assert recording_anthropic_upstream(None, "https://x/v1", {"ANTHROPIC_BASE_URL": "http://mine/"}) == "http://mine"
    assert recording_anthropic_upstream(None, "https://x/v1", ours) == "https://api.anthropic.com"  # never our own proxy
    assert recording_anthropic_upstream(None, "https://x/v1", {}) == "https://api.anthropic.com"


def test_the_flag_and_the_ini_name_the_anthropic_upstream(pytester: pytest.Pytester) -> None:
    project(pytester, test_claude=CLAUDE_TESTS)
    flag = run(pytester, "--seedreplay=record", "--seedreplay-anthropic-upstream", "sim", "-k", "test_sync")
    flag.assert_outcomes(passed=1)
    assert recorded_uris(pytester) == ["http://seedreplay-sim.invalid/v1/messages"]
    assert answers(pytester)["sync"]
    pytester.makeini(INI + "seedreplay_anthropic_upstream = not a url\n")
    bad = run(pytester, "--seedreplay=record", "-k", "test_sync")
    assert bad.ret != 0
    assert "the Anthropic upstream 'not a url' is not an http(s) URL" in bad.stderr.str()
    assert not Path(pytester.path, "answers.jsonl").exists()
