"""Installed is not active: the plugin changes nothing until a project opts in (flag, ini, env: the
whole session; the marker or one of its fixtures: that test), and inside an opted-in project it leaves
alone the tests that fake OpenAI another way (pytest-httpx, respx, pytest-recording, mode="off")."""

from __future__ import annotations

import json
import os
import shlex
from pathlib import Path
from typing import Any

import pytest

from plugin_inner import TEST_KEY, run

# The variables the plugin may set; each inner test writes what it saw of them.
CLIENT_VARS = (
    "OPENAI_BASE_URL",
    "OPENAI_API_KEY",
    "AZURE_OPENAI_ENDPOINT",
    "AZURE_OPENAI_API_KEY",
    "NO_PROXY",
    "no_proxy",
    "SEEDREPLAY_PLUGIN_PROXY",
    "ANTHROPIC_BASE_URL",
    "ANTHROPIC_API_KEY",
)

SEEN = f"""
import json
import os

CLIENT_VARS = {CLIENT_VARS!r}


def seen(name):
    import httpcore2  # the network guard wraps its pool while it runs

    guarded = hasattr(httpcore2.ConnectionPool.handle_request, "__wrapped__")
    env = {{k: os.environ.get(k) for k in CLIENT_VARS}}
    with open("seen.jsonl", "a", encoding="utf-8") as f:
        f.write(json.dumps({{"test": name, "env": env, "guarded": guarded}}) + "\\n")
"""

ENV_TESTS = """
import pytest

from seen import seen

seen("import")


def test_plain():
    seen("plain")


@pytest.mark.seedreplay
def test_marked():
    seen("marked")


def test_proxy_fixture(seedreplay_proxy):
    seen("fixture")


@pytest.mark.seedreplay(mode="off")
def test_off():
    seen("off")


def test_plain_after():
    seen("plain after")
"""

# A project's own OpenAI tests, faked three ways. Its thin client reads OPENAI_BASE_URL as the SDK does;
# the mocks and the vcrpy cassette are keyed on https://api.openai.com.
THEIR_CLIENT = """
import os

import httpx

ANSWER = {"id": "c1", "object": "chat.completion", "created": 1, "model": "gpt-4o-mini",
          "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "mocked"}}]}


def ask(text):
    base = os.environ.get("OPENAI_BASE_URL", "https://api.openai.com/v1")
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": text}]}
    answer = httpx.post(base + "/chat/completions", json=body, headers={"Authorization": "Bearer sk-theirs"})
    answer.raise_for_status()
    return answer.json()["choices"][0]["message"]["content"]
"""

THEIR_TESTS = """
import httpx
import openai
import pytest

from their_client import ANSWER, ask
from seen import seen


def test_with_pytest_httpx(httpx_mock):
    httpx_mock.add_response(url="https://api.openai.com/v1/chat/completions", json=ANSWER)
    seen("httpx_mock")
    assert ask("hello") == "mocked"


def test_with_respx(respx_mock):
    respx_mock.post("https://api.openai.com/v1/chat/completions").mock(return_value=httpx.Response(200, json=ANSWER))
    seen("respx_mock")
    assert ask("hello") == "mocked"


@pytest.mark.vcr
def test_with_vcr():
    seen("vcr")
    client = openai.OpenAI(api_key="sk-theirs", max_retries=0)
    answer = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    assert answer.choices[0].message.content == "from vcr"
"""

VCR_CASSETTE = """interactions:
- request:
    body: '{"messages":[{"role":"user","content":"hi"}],"model":"gpt-4o-mini"}'
    headers: {}
    method: POST
    uri: https://api.openai.com/v1/chat/completions
  response:
    body:
      string: '{"id":"c2","object":"chat.completion","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"finish_reason":"stop","message":{"role":"assistant","content":"from vcr"}}]}'
    headers:
      Content-Type:
      - application/json
    status:
      code: 200
      message: OK
version: 1
"""

# The project's own seedreplay tests, added once it opts in: a client built at import time and one
# from the fixture.
OUR_TESTS = """
import openai

import pytest

MODULE_CLIENT = openai.OpenAI(max_retries=0)


def ask(client, text):
    answer = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": text}], seed=1)
    return answer.choices[0].message.content


def test_module_client(seedreplay):
    assert ask(MODULE_CLIENT, "from the module")
    assert len(seedreplay.interactions) == 1


def test_fixture_client(openai_client):
    assert ask(openai_client, "from the fixture")
"""


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (*CLIENT_VARS, "SEEDREPLAY_MODE", "SEEDREPLAY_UPSTREAM"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", TEST_KEY)


def seen(pytester: pytest.Pytester, guarded: tuple[str, ...] = ()) -> dict[str, dict[str, Any]]:
    """What each inner test saw of the client environment; the network guard ran in `guarded` only."""
    path = Path(pytester.path) / "seen.jsonl"
    found = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        item = json.loads(line)
        found[item["test"]] = item["env"]
        if item["test"] != "import":
            assert item["guarded"] == (item["test"] in guarded), item["test"]
    path.unlink()
    return found


def untouched() -> dict[str, str | None]:
    return {name: os.environ.get(name) for name in CLIENT_VARS}


def assert_silent(result: pytest.RunResult) -> None:
    """No header line, no summary section (the plugins line lists us: we are installed)."""
    out = result.stdout.str()
    assert "seedreplay: mode=" not in out and "seedreplay (" not in out


def project(pytester: pytest.Pytester, ini: str = "", **modules: str) -> None:
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n" + ini)
    pytester.makepyfile(seen=SEEN, **modules)


def test_not_opted_in_changes_nothing(pytester: pytest.Pytester) -> None:
    project(pytester, test_env=ENV_TESTS.replace("@pytest.mark.seedreplay\n", "").replace("seedreplay_proxy", "tmp_path"))
    result = run(pytester, "-v")
    result.assert_outcomes(passed=5)
    assert all(env == untouched() for env in seen(pytester).values())
    assert_silent(result)


@pytest.mark.parametrize("opt_in", ["flag", "ini", "env"])
def test_session_wide_opt_in(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, opt_in: str) -> None:
    project(pytester, ini="seedreplay_mode = replay\n" if opt_in == "ini" else "", test_env=ENV_TESTS)
    if opt_in == "env":
        monkeypatch.setenv("SEEDREPLAY_MODE", "replay")
    result = run(pytester, *(["--seedreplay=replay"] if opt_in == "flag" else []))
    result.assert_outcomes(passed=5)
    envs = seen(pytester, guarded=("plain", "marked", "fixture", "plain after"))
    proxy = envs["import"]["OPENAI_BASE_URL"]
    assert proxy.startswith("http://127.0.0.1:") and proxy.endswith("/v1")  # import time is covered
    assert envs["import"]["ANTHROPIC_BASE_URL"] == proxy.removesuffix("/v1")  # Anthropic clients too
    for name in ("plain", "marked", "fixture", "plain after"):
        assert envs[name]["OPENAI_BASE_URL"] == proxy
    assert envs["off"] == untouched()  # mode="off" is left alone
    result.stdout.fnmatch_lines(["seedreplay: mode=replay, *", "*- seedreplay (replay) -*"])


def test_per_test_opt_in(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY")
    project(pytester, test_env=ENV_TESTS)
    result = run(pytester)
    result.assert_outcomes(passed=5)
    envs = seen(pytester, guarded=("marked", "fixture"))
    for name in ("import", "plain", "off", "plain after"):
        assert envs[name] == untouched(), name
    marked, fixture = envs["marked"], envs["fixture"]
    assert marked["OPENAI_BASE_URL"].startswith("http://127.0.0.1:")
    assert fixture["OPENAI_BASE_URL"] == marked["OPENAI_BASE_URL"]
    assert marked["OPENAI_API_KEY"] and marked["OPENAI_API_KEY"] != TEST_KEY  # replay lends a dummy
    assert marked["ANTHROPIC_BASE_URL"] == marked["OPENAI_BASE_URL"].removesuffix("/v1")
    assert marked["ANTHROPIC_API_KEY"] == marked["OPENAI_API_KEY"]  # a dummy for Anthropic clients too
    assert "seedreplay: mode=" not in result.stdout.str()  # no session-wide header
    result.stdout.fnmatch_lines(["*- seedreplay (replay) -*"])


def test_explicit_off_does_nothing(pytester: pytest.Pytester) -> None:
    project(pytester, ini="seedreplay_mode = replay\n", test_env=ENV_TESTS.replace("seedreplay_proxy", "tmp_path"))
    result = run(pytester, "--seedreplay=off")
    result.assert_outcomes(passed=5)
    assert all(env == untouched() for env in seen(pytester).values())
    assert_silent(result)


def test_a_project_faking_openai_its_own_way(pytester: pytest.Pytester, sim: Any) -> None:
    """pytest-httpx, respx and pytest-recording tests pass unchanged installed and not opted in, and
    opted in (with pytest-recording's --block-network) while the project's own seedreplay tests record
    and replay."""
    project(pytester, their_client=THEIR_CLIENT, test_theirs=THEIR_TESTS)
    vcr_file = Path(pytester.path) / "cassettes" / "test_theirs" / "test_with_vcr.yaml"
    vcr_file.parent.mkdir(parents=True)
    vcr_file.write_text(VCR_CASSETTE, encoding="utf-8")

    run(pytester, "-p", "no:seedreplay").assert_outcomes(passed=3)
    seen(pytester)
    result = run(pytester)
    result.assert_outcomes(passed=3)
    assert all(env == untouched() for env in seen(pytester).values())
    assert_silent(result)

    pytester.makepyfile(test_ours=OUR_TESTS)
    recorded = run(pytester, "--seedreplay=record", f"--seedreplay-upstream={sim.url}", "--block-network")
    recorded.assert_outcomes(passed=5)
    recorded.stdout.fnmatch_lines(["recorded: 2 interaction(s)"])
    assert all(env == untouched() for env in seen(pytester).values())  # theirs: as without seedreplay
    assert (Path(pytester.path) / "cassettes" / "test_ours" / "test_module_client.yaml").exists()

    replayed = run(pytester, "--seedreplay=replay", "--block-network")
    replayed.assert_outcomes(passed=5)
    replayed.stdout.fnmatch_lines(["replayed: 2 interaction(s)"])


CONFIGURE_CONFTEST = """
def pytest_seedreplay_configure(config, settings):
    settings.cassette_dir = config.rootpath / "elsewhere"
    with open("configured.txt", "a") as f:
        f.write(settings.mode + "\\n")
"""


def test_configure_hook_from_a_conftest(pytester: pytest.Pytester, sim: Any) -> None:
    project(pytester, ini="seedreplay_mode = record\n", test_ours=OUR_TESTS)
    pytester.makeconftest(CONFIGURE_CONFTEST)
    run(pytester, f"--seedreplay-upstream={sim.url}").assert_outcomes(passed=2)
    assert (Path(pytester.path) / "configured.txt").read_text() == "record\n"
    assert (Path(pytester.path) / "elsewhere" / "test_ours" / "test_fixture_client.yaml").exists()
    assert not (Path(pytester.path) / "cassettes").exists()


def test_sim_needs_no_key(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """Record, rewrite and live from the built-in simulator: a client built with no key works."""
    monkeypatch.delenv("OPENAI_API_KEY")
    project(pytester, test_ours=OUR_TESTS)
    for mode in ("record", "rewrite", "live"):
        run(pytester, f"--seedreplay={mode}", "--seedreplay-upstream", "sim").assert_outcomes(passed=2)
    assert "OPENAI_API_KEY" not in os.environ


MISSING = """
import openai


def test_new_question():
    client = openai.OpenAI(max_retries=0)
    client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "new"}], seed=3)
"""


def test_printed_record_command_records_the_same_way(pytester: pytest.Pytester) -> None:
    project(pytester, ini="seedreplay_mode = replay\n", test_new=MISSING)
    options = ["--seedreplay-upstream", "sim", "-o", "seedreplay_cassette_dir=kept here"]
    missed = run(pytester, *options)
    missed.assert_outcomes(failed=1)
    out = missed.stdout.str()
    command = "pytest --seedreplay=record --seedreplay-upstream sim -o 'seedreplay_cassette_dir=kept here' test_new.py::test_new_question"
    assert command in out
    assert "(record them: pytest --seedreplay=record --seedreplay-upstream sim -o 'seedreplay_cassette_dir=kept here')" in out
    run(pytester, *shlex.split(command)[1:]).assert_outcomes(passed=1)
    assert (Path(pytester.path) / "kept here" / "test_new" / "test_new_question.yaml").exists()
    run(pytester, *options).assert_outcomes(passed=1)


def test_the_cassette_dir_flag_wins_over_the_ini_and_the_record_command_repeats_it(pytester: pytest.Pytester) -> None:
    project(pytester, ini="seedreplay_mode = replay\nseedreplay_cassette_dir = from ini\n", test_new=MISSING)
    options = ["--seedreplay-upstream", "sim", "--seedreplay-cassette-dir", "my tapes"]
    missed = run(pytester, *options)
    missed.assert_outcomes(failed=1)
    command = (
        "pytest --seedreplay=record --seedreplay-upstream sim --seedreplay-cassette-dir 'my tapes' test_new.py::test_new_question"
    )
    assert command in missed.stdout.str()
    run(pytester, *shlex.split(command)[1:]).assert_outcomes(passed=1)
    assert (Path(pytester.path) / "my tapes" / "test_new" / "test_new_question.yaml").exists()
    assert not (Path(pytester.path) / "from ini").exists()
    run(pytester, *options).assert_outcomes(passed=1)


# A blocking-call detector around every test, as real projects' suites run blockbuster: a blocking
# call (os.write, a file read, a thread's start) on the test's event loop raises BlockingError.
BLOCKBUSTER_CONFTEST = """
import pytest
from blockbuster import blockbuster_ctx


@pytest.fixture(autouse=True)
def blockbuster():
    with blockbuster_ctx() as detector:
        yield detector
"""

ASYNC_TESTS = """
import openai
import pytest


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.mark.anyio
async def test_bypasses_the_proxy():  # first: the session starts from the guard's stop
    client = openai.AsyncOpenAI(base_url="https://api.openai.com/v1", api_key="sk-none", max_retries=0)
    with pytest.raises(openai.APIConnectionError):  # the code under test swallows it: the guard still tells
        await client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])


@pytest.mark.anyio
async def test_replays(async_openai_client):
    answer = await async_openai_client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "async hello"}], seed=1)
    assert answer.choices[0].message.content
"""


def test_async_replay_blocks_no_event_loop(pytester: pytest.Pytester, sim: Any) -> None:
    project(pytester, ini="seedreplay_mode = replay\n", test_async=ASYNC_TESTS)
    run(pytester, "--seedreplay=record", f"--seedreplay-upstream={sim.url}", "-k", "replays").assert_outcomes(passed=1)
    pytester.makeconftest(BLOCKBUSTER_CONFTEST)
    result = run(pytester)
    result.assert_outcomes(passed=1, failed=1)
    out = result.stdout.str()
    assert "BlockingError" not in out
    result.stdout.fnmatch_lines(["*seedreplay: blocked *", "*POST https://api.openai.com/v1/chat/completions*"])
    result.stdout.fnmatch_lines(["replayed: 1 interaction(s)"])


def test_per_test_opt_in_replays_what_a_session_wide_run_recorded(pytester: pytest.Pytester, sim: Any) -> None:
    """Gradual adoption: record once opted in, then a plain `pytest` replays the tests that ask for the
    plugin's fixtures; a client built at import time is not covered (only a session-wide opt-in is early
    enough), so the guard stops it and says so."""
    project(pytester, test_ours=OUR_TESTS)
    run(pytester, "--seedreplay=record", f"--seedreplay-upstream={sim.url}").assert_outcomes(passed=2)
    result = run(pytester)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*seedreplay: blocked network access in replay mode:*",
            "*POST https://api.openai.com/v1/chat/completions*",
            "*- seedreplay (replay) -*",
            "replayed: 1 interaction(s)",
        ]
    )
    assert "OPENAI_BASE_URL" not in os.environ
