"""A token clients could never send (not printable ASCII) stops the proxy at start with one line,
instead of failing every request later."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from pytest_seedreplay import Proxy
from pytest_seedreplay.cli import main

pytestmark = pytest.mark.timeout(60)
BAD = ["t\u00f8ken", "abc\udcff", "tab\there", "new\nline"]


def _seedreplay() -> str:
    return shutil.which("seedreplay", path=os.path.dirname(sys.executable)) or "seedreplay"


def test_a_non_ascii_byte_in_the_environment_is_a_one_line_error_at_start(tmp_path):
    env = {k.encode(): v.encode() for k, v in os.environ.items() if k != "SEEDREPLAY_TOKEN"}
    env[b"SEEDREPLAY_TOKEN"] = b"team-\xff-token"  # a byte no UTF-8 text holds, as a shell can set it
    done = subprocess.run(
        [_seedreplay(), "proxy", "--upstream", "sim", "--cache-dir", str(tmp_path / "c"), "--port", "0"],
        env=env,
        capture_output=True,
        timeout=60,
    )
    stderr = done.stderr.decode(errors="replace")
    assert done.returncode == 2, stderr
    assert "SEEDREPLAY_TOKEN" in stderr and "printable ASCII" in stderr
    assert "Traceback" not in stderr


@pytest.mark.parametrize("token", BAD)
def test_a_token_clients_cannot_send_is_refused_by_the_cli(token):
    result = CliRunner().invoke(main, ["proxy", "--upstream", "sim"], env={"SEEDREPLAY_TOKEN": token})
    assert result.exit_code == 2 and "printable ASCII" in result.output and "SEEDREPLAY_TOKEN" in result.output
    assert "Traceback" not in result.output


def test_a_token_file_holding_non_ascii_is_refused_naming_the_file(tmp_path: Path):
    secret = tmp_path / "token"
    secret.write_text("t\u00f8ken\n", encoding="utf-8")
    secret.chmod(0o600)
    result = CliRunner().invoke(main, ["proxy", "--upstream", "sim", "--token-file", str(secret)])
    assert result.exit_code == 2 and str(secret) in result.output and "printable ASCII" in result.output


@pytest.mark.parametrize("token", BAD)
def test_the_proxy_api_refuses_it_too(token):
    with pytest.raises(ValueError, match="printable ASCII"):
        Proxy("sim", token=token)


def test_a_printable_ascii_token_is_taken():
    assert Proxy("sim", token="team-token_5b9d!~").config.token == "team-token_5b9d!~"
