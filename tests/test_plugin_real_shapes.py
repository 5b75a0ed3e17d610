"""Patterns seen in real projects' suites (benchmarks/real_suites.py), each as a minimal sample: with
seedreplay installed and, where it says so, opted in, each must pass as it does without seedreplay.

The samples are written for this file (the shape of a project's tests, not its code)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from plugin_inner import TEST_KEY, run

CLIENT_VARS = ("OPENAI_BASE_URL", "OPENAI_API_KEY", "SEEDREPLAY_MODE", "SEEDREPLAY_UPSTREAM")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, pytester: pytest.Pytester) -> None:
    for name in CLIENT_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", TEST_KEY)
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")


# pytest 8.4's fixture manager parses every registered plugin and keeps it in a set
# (FixtureManager._holderobjseen), so an unhashable plugin object crashes every run at session start
# with `INTERNALERROR TypeError: unhashable type`, opted in or not. Seen on two real suites pinned to
# pytest 8.4 (a respx one and a pytest-httpx one); pytest 9 no longer keeps that set, so the crash only
# shows there. The sample asks the same of every registered plugin on any pytest.
HASHABLE_PLUGINS = """
def test_every_plugin_is_hashable(pytestconfig):
    plugins = pytestconfig.pluginmanager.get_plugins()
    unhashable = [type(p).__name__ for p in plugins if getattr(type(p), "__hash__", None) is None]
    assert not unhashable
    assert len(set(plugins)) == len(plugins)
"""


def test_not_opted_in_every_registered_plugin_is_hashable(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_plugins=HASHABLE_PLUGINS)
    run(pytester).assert_outcomes(passed=1)


# A CLI that posts to the OpenAI URL with httpx directly (no SDK, no OPENAI_BASE_URL), tested through
# click's runner with pytest-httpx: one response for any URL, then the URL and the key checked.
EMBEDDINGS_CLI = """
import os

import click
import httpx


@click.command()
@click.argument("text")
@click.option("--token", envvar="OPENAI_API_KEY")
def cli(text, token):
    answer = httpx.post(
        "https://api.openai.com/v1/embeddings",
        json={"model": "text-embedding-3-small", "input": [text]},
        headers={"Authorization": f"Bearer {token}"},
    )
    answer.raise_for_status()
    click.echo(len(answer.json()["data"][0]["embedding"]))
"""

EMBEDDINGS_TESTS = """
import os
from unittest import mock

from click.testing import CliRunner

from embeddings_cli import cli


@mock.patch.dict(os.environ, {"OPENAI_API_KEY": "abc"})
def test_embeddings(httpx_mock):
    httpx_mock.add_response(json={"data": [{"index": 0, "embedding": [1.5] * 8}]})
    result = CliRunner().invoke(cli, ["hello"])
    assert result.exit_code == 0, result.output
    assert result.output == "8\\n"
    (request,) = httpx_mock.get_requests()
    assert request.url == "https://api.openai.com/v1/embeddings"
    assert request.headers["authorization"] == "Bearer abc"


def test_no_call():
    assert CliRunner().invoke(cli, ["--help"]).exit_code == 0
"""


@pytest.mark.parametrize("opt_in", [None, "-o seedreplay_mode=replay", "--seedreplay=replay"])
def test_a_cli_posting_with_httpx_under_pytest_httpx(pytester: pytest.Pytester, opt_in: str | None) -> None:
    pytester.makepyfile(embeddings_cli=EMBEDDINGS_CLI, test_embeddings=EMBEDDINGS_TESTS)
    result = run(pytester, *(opt_in.split() if opt_in else []))
    result.assert_outcomes(passed=2)
    assert os.environ.get("OPENAI_BASE_URL") is None


# openai-responses' shape: a decorator (not the respx_mock fixture) starts a respx router keyed on
# https://api.openai.com/v1 around the test, and passes the test its mock as `openai_mock` (the name
# is also a fixture of that plugin, so pytest sees it among the test's fixtures).
DECORATOR_MOCK = """
import functools

import httpx
import pytest
import respx

ANSWER = {"id": "c1", "object": "chat.completion", "created": 1, "model": "gpt-4o-mini",
          "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "mocked"}}]}


class OpenAIMock:
    def __init__(self):
        self.router = respx.mock(assert_all_called=False, base_url="https://api.openai.com/v1")
        self.route = self.router.post("/chat/completions").mock(return_value=httpx.Response(200, json=ANSWER))


def mock():
    def wrap(fn):
        openai_mock = OpenAIMock()

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            kwargs["openai_mock"] = openai_mock
            with openai_mock.router:
                return fn(*args, **kwargs)

        return wrapper

    return wrap


@pytest.fixture
def openai_mock():
    return OpenAIMock()
"""

# The client reads OPENAI_BASE_URL as the SDK does, when the test builds it (respx patches httpx: the
# SDK installed here sends through its own httpx2, which respx does not see).
DECORATOR_TESTS = """
import os

import httpx

from decorator_mock import mock


def ask(text):
    base = os.environ.get("OPENAI_BASE_URL", "https://api.openai.com/v1")
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": text}]}
    answer = httpx.post(base + "/chat/completions", json=body, headers={"Authorization": "Bearer sk-fake123"})
    answer.raise_for_status()
    return answer.json()["choices"][0]["message"]["content"]


@mock()
def test_create_chat_completion(openai_mock):
    assert ask("hi") == "mocked"
    assert openai_mock.route.call_count == 1
"""


def test_a_decorator_started_respx_router_not_opted_in(pytester: pytest.Pytester) -> None:
    pytester.makeconftest("from decorator_mock import openai_mock  # noqa: F401\n")
    pytester.makepyfile(decorator_mock=DECORATOR_MOCK, test_decorated=DECORATOR_TESTS)
    run(pytester).assert_outcomes(passed=1)


def test_a_decorator_started_respx_router_opted_in(pytester: pytest.Pytester) -> None:
    pytester.makeconftest("from decorator_mock import openai_mock  # noqa: F401\n")
    pytester.makepyfile(decorator_mock=DECORATOR_MOCK, test_decorated=DECORATOR_TESTS)
    run(pytester, "-o", "seedreplay_mode=replay").assert_outcomes(passed=1)


def test_a_decorator_started_respx_router_opted_out_by_its_module(pytester: pytest.Pytester) -> None:
    """A mock seedreplay cannot see (started inside the test): the module's tests say mode="off"."""
    pytester.makeconftest("from decorator_mock import openai_mock  # noqa: F401\n")
    marked = 'import pytest\n\npytestmark = pytest.mark.seedreplay(mode="off")\n' + DECORATOR_TESTS
    pytester.makepyfile(decorator_mock=DECORATOR_MOCK, test_decorated=marked)
    run(pytester, "-o", "seedreplay_mode=replay").assert_outcomes(passed=1)


# pytest-recording's `--disable-recording` turns its cassettes off: a @pytest.mark.vcr test then fakes
# nothing, so an opted-in run should cover it like any test (datasette-query-assistant's suite run as
# `--disable-recording --seedreplay=record --seedreplay-upstream sim` sent its calls to api.openai.com).
# Without seedreplay this sample's client goes to a closed loopback port, never off the machine.
VCR_TESTS = """
import openai
import pytest


@pytest.mark.vcr
def test_chat():
    client = openai.OpenAI(max_retries=0)
    answer = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], seed=1)
    assert answer.choices[0].message.content
"""


def test_vcr_marked_test_under_disable_recording_is_covered(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, sim: Any
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")  # closed: no call leaves the machine
    pytester.makepyfile(test_vcr=VCR_TESTS)
    result = run(pytester, "--disable-recording", "--seedreplay=record", f"--seedreplay-upstream={sim.url}")
    result.assert_outcomes(passed=1)
    assert (Path(pytester.path) / "cassettes" / "test_vcr" / "test_chat.yaml").exists()


def test_a_project_names_its_own_fake_in_the_ini(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    # A home-grown fake of the API, as a fixture: listed in `seedreplay_other_fakes`, its tests keep the
    # environment they had without seedreplay; a test without it is served in the same opted-in run.
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    pytester.makeconftest(
        """
        import pytest

        @pytest.fixture
        def fake_llm():
            return "faked"
        """
    )
    pytester.makepyfile(
        test_fakes="""
        import os

        def test_faked(fake_llm):
            assert os.environ["OPENAI_BASE_URL"] == "http://127.0.0.1:9/v1"

        def test_served():
            assert os.environ["OPENAI_BASE_URL"] != "http://127.0.0.1:9/v1"
        """
    )
    run(pytester, "-o", "seedreplay_mode=replay", "-o", "seedreplay_other_fakes=fake_llm").assert_outcomes(passed=2)
    # Without the ini line the fake's test is served too (its environment points at the proxy).
    run(pytester, "-o", "seedreplay_mode=replay").assert_outcomes(passed=1, failed=1)
