"""`seedreplay key`: the key on the first line, the canonical form it hashed after it, exit 2 on bad input."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from pytest_seedreplay.cli import main
from pytest_seedreplay.core.key import canonical_json, canonical_request, request_key

REQUEST = {
    "model": "gpt-4o-mini",
    "messages": [{"role": "user", "content": "Say hi"}],
    "seed": 7,
    "temperature": 1.0,
    "stream": True,
    "user": "someone",
}


def run(*args: str, input: str | bytes | None = None):
    return CliRunner().invoke(main, ["key", *args], input=input)


def test_key_from_stdin_prints_key_then_canonical_form():
    result = run(input=json.dumps(REQUEST, indent=2))
    assert result.exit_code == 0, result.output
    key, canonical, *rest = result.stdout.splitlines()
    assert rest == []
    assert key == request_key("/v1/chat/completions", REQUEST)
    assert canonical == canonical_json(canonical_request("/v1/chat/completions", REQUEST))
    # The printed form is exactly what was hashed, and it left out stream/user and the default temperature.
    assert key == "v1:" + hashlib.sha256(canonical.encode()).hexdigest()
    assert json.loads(canonical)["params"] == {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "Say hi"}],
        "seed": 7,
    }


def test_key_from_a_file_argument(tmp_path: Path):
    request_file = tmp_path / "request.json"
    request_file.write_text(json.dumps(REQUEST), encoding="utf-8")
    result = run(str(request_file))
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == request_key("/v1/chat/completions", REQUEST)


def test_embeddings_path_ignores_encoding_format():
    body = {"model": "text-embedding-3-small", "input": "hello", "encoding_format": "base64"}
    result = run("--path", "/v1/embeddings", input=json.dumps(body))
    assert result.exit_code == 0, result.output
    key, canonical = result.stdout.splitlines()
    assert key == request_key("/v1/embeddings", {**body, "encoding_format": "float"})
    assert json.loads(canonical) == {
        "endpoint": "/v1/embeddings",
        "params": {"model": "text-embedding-3-small", "input": "hello"},
    }


def test_invalid_json_is_a_one_line_error_naming_the_input(tmp_path: Path):
    result = run(input='{"model": ')
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("Error: <stdin> is not valid JSON")
    bad = tmp_path / "broken.json"
    bad.write_text("{nope", encoding="utf-8")
    result = run(str(bad))
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: {bad} is not valid JSON (") and "line 1 column 2" in result.stderr


def test_bytes_that_are_not_utf8_are_an_error_not_a_traceback():
    result = run(input=b"\xff{}")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: <stdin> is not valid JSON (not UTF-8")


def test_a_json_array_is_refused_with_exit_2():
    result = run(input="[1, 2]")
    assert result.exit_code == 1
    assert result.stderr == (
        'Error: <stdin>: request body must be a JSON object such as {"model": "...", "messages": [...]}, got an array\n'
    )


def test_installed_console_script_keys_stdin(tmp_path: Path):
    script = Path(sys.executable).with_name("seedreplay")
    found = str(script) if script.exists() else shutil.which("seedreplay")
    command = [found] if found else [sys.executable, "-c", "from pytest_seedreplay.cli import main; main()"]
    done = subprocess.run([*command, "key"], input=json.dumps(REQUEST), capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == request_key("/v1/chat/completions", REQUEST)
