"""The proxy's token from the environment or a file, so it is not on the command line for `ps`."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from pytest_seedreplay.cli import main

from proxy_support import http
from test_proxy_cli import spawn  # noqa: F401 (a fixture)

TOKEN = "team-token-5b9d"


def answers(proxy, token: str | None) -> int:
    return http(f"{proxy.root}/seedreplay/stats", "GET", headers={"X-Seedreplay-Token": token} if token else {}).status


def command_line(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()


def test_the_token_from_the_environment_guards_the_proxy_and_stays_out_of_ps(spawn, tmp_path):  # noqa: F811
    proxy = spawn("--upstream", "sim", "--cache-dir", str(tmp_path / "c"), env={"SEEDREPLAY_TOKEN": TOKEN})
    assert answers(proxy, None) == 401 and answers(proxy, "wrong") == 401 and answers(proxy, TOKEN) == 200
    assert TOKEN not in command_line(proxy.process.pid)
    assert "warning" not in proxy.log()


def test_the_token_from_a_file_guards_the_proxy(spawn, tmp_path):  # noqa: F811
    secret = tmp_path / "token"
    secret.write_text(TOKEN + "\n")
    secret.chmod(0o600)
    proxy = spawn("--upstream", "sim", "--cache-dir", str(tmp_path / "c"), "--token-file", str(secret))
    assert answers(proxy, None) == 401 and answers(proxy, TOKEN) == 200
    assert TOKEN not in command_line(proxy.process.pid) and "warning" not in proxy.log()


def test_a_token_on_the_command_line_works_and_is_warned_about(spawn, tmp_path):  # noqa: F811
    proxy = spawn("--upstream", "sim", "--cache-dir", str(tmp_path / "c"), "--token", TOKEN)
    assert answers(proxy, TOKEN) == 200
    assert "--token on the command line is visible to other users" in proxy.log()


def test_token_file_mistakes_are_one_line_errors(tmp_path):
    runner = CliRunner()
    missing = runner.invoke(main, ["proxy", "--upstream", "sim", "--token-file", str(tmp_path / "nope")])
    assert missing.exit_code == 2 and "cannot read" in missing.output and "nope" in missing.output
    empty = tmp_path / "empty"
    empty.write_text("\n")
    blank = runner.invoke(main, ["proxy", "--upstream", "sim", "--token-file", str(empty)])
    assert blank.exit_code == 2 and "is empty" in blank.output
    twice = runner.invoke(main, ["proxy", "--upstream", "sim", "--token-file", str(empty)], env={"SEEDREPLAY_TOKEN": TOKEN})
    assert twice.exit_code == 2 and "not both" in twice.output and TOKEN not in twice.output
    for result in (missing, blank, twice):
        assert "Traceback" not in result.output


def test_a_token_file_others_can_read_is_warned_about(spawn, tmp_path):  # noqa: F811
    shared = tmp_path / "token"
    shared.write_text(TOKEN)
    shared.chmod(0o644)
    proxy = spawn("--upstream", "sim", "--cache-dir", str(tmp_path / "c"), "--token-file", str(shared))
    assert answers(proxy, TOKEN) == 200
    assert f"{shared} can be read by other users; chmod 600" in proxy.log()
