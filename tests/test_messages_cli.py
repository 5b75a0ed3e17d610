"""`seedreplay proxy` fronting OpenAI and Anthropic at once, as users run it: the Anthropic upstream
option, the line that tells Anthropic clients where to go, and its errors."""

from __future__ import annotations

import anthropic
import openai
import pytest
from click.testing import CliRunner

from pytest_seedreplay.cli import main

from test_proxy_cli import ProxyProcess, _wait_for

KEY = "sk-ant-api03-cliTEST0123456789abcdefABCDEFghijkl"


@pytest.fixture
def started():
    processes: list[ProxyProcess] = []
    yield processes
    for process in processes:
        process.stop()


def anthropic_line(proxy: ProxyProcess) -> str:
    """The line (on stderr) that tells Anthropic clients where to go."""
    _wait_for(lambda: any(line.startswith("Anthropic clients: ") for line in proxy.stderr), what="the Anthropic line")
    return next(line for line in proxy.stderr if line.startswith("Anthropic clients: "))


def test_one_proxy_records_both_apis_from_the_simulator(tmp_path, started):
    proxy = ProxyProcess("--upstream", "sim", "--cache-dir", str(tmp_path / "cache"), env={"SEEDREPLAY_ANTHROPIC_UPSTREAM": ""})
    started.append(proxy)
    assert anthropic_line(proxy) == f"Anthropic clients: ANTHROPIC_BASE_URL={proxy.root} (upstream=sim)"
    with anthropic.Anthropic(base_url=proxy.root, api_key=KEY, max_retries=0) as claude:
        answers = [
            claude.messages.with_raw_response.create(
                model="claude-haiku-4-5", max_tokens=30, messages=[{"role": "user", "content": "hi"}]
            )
            for _ in range(2)
        ]
    assert [a.headers["x-seedreplay-cache"] for a in answers] == ["miss", "hit"]
    with openai.OpenAI(base_url=proxy.url, api_key="sk-test", max_retries=0) as gpt:
        chat = gpt.chat.completions.with_raw_response.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], seed=1
        )
    assert chat.headers["x-seedreplay-cache"] == "miss"
    assert proxy.stop() == 0
    assert KEY not in "\n".join(proxy.stderr)
    files = b"".join(p.read_bytes() for p in (tmp_path / "cache").rglob("*") if p.is_file())
    assert KEY.encode() not in files


def test_the_anthropic_upstream_comes_from_the_option_or_the_environment(tmp_path, started):
    given = ProxyProcess("--cache-dir", str(tmp_path / "a"), "--anthropic-upstream", "http://127.0.0.1:9/")
    started.append(given)
    assert anthropic_line(given).endswith("(upstream=http://127.0.0.1:9)")  # the trailing slash goes
    from_env = ProxyProcess("--cache-dir", str(tmp_path / "b"), env={"SEEDREPLAY_ANTHROPIC_UPSTREAM": "http://127.0.0.1:10"})
    started.append(from_env)
    assert anthropic_line(from_env).endswith("(upstream=http://127.0.0.1:10)")
    default = ProxyProcess("--cache-dir", str(tmp_path / "c"), env={"SEEDREPLAY_ANTHROPIC_UPSTREAM": ""})
    started.append(default)
    assert anthropic_line(default).endswith("(upstream=https://api.anthropic.com)")
    # An unreachable Anthropic upstream is a 502 the SDK raises, Anthropic-shaped.
    with anthropic.Anthropic(base_url=given.root, api_key=KEY, max_retries=0) as claude:
        with pytest.raises(anthropic.APIStatusError) as failed:
            claude.messages.create(model="claude-haiku-4-5", max_tokens=30, messages=[{"role": "user", "content": "hi"}])
    assert failed.value.status_code == 502 and failed.value.body["type"] == "error"


def test_a_bad_anthropic_upstream_is_named():
    result = CliRunner().invoke(main, ["proxy", "--anthropic-upstream", "api.anthropic.com"])
    assert result.exit_code == 2
    assert "--anthropic-upstream" in result.output and "https://api.anthropic.com" in result.output
    assert "Traceback" not in result.output
