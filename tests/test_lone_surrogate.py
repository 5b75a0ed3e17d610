"""A lone UTF-16 surrogate ("\\ud800": legal JSON text, no Unicode character) in a recorded request:
the proxy records it, the cache tools show and export it without crashing, the simulator refuses it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_seedreplay.core.jsontext import json_text, printable
from pytest_seedreplay.store import DiskStore
from pytest_seedreplay.store.cassette import read_cassette

from proxy_support import raw_request

# The escape as it travels in JSON text; parsed, it becomes the lone surrogate character.
BODY = b'{"model": "gpt-4o-mini", "seed": 1, "messages": [{"role": "user", "content": "half \\ud800 a pair"}]}'
SCRIPT = Path(sys.executable).with_name("seedreplay")


def seedreplay(*args: str) -> subprocess.CompletedProcess[str]:
    """The installed command, as a user runs it (a real stdout that must encode what it prints)."""
    env = {**os.environ, "NO_COLOR": "1", "PYTHONIOENCODING": "utf-8"}
    return subprocess.run([str(SCRIPT), *args], capture_output=True, text=True, timeout=60, env=env)


@pytest.fixture
def recorded(recorder, proxy_factory) -> Path:
    """A cache directory holding one recording of a request with a lone surrogate, made by the proxy."""
    _, server = recorder
    proxy = proxy_factory(server.url + "/v1")
    status, _, answer = raw_request(proxy.root, "POST", "/v1/chat/completions", BODY, {"Content-Type": "application/json"})
    assert status == 200, answer
    assert len(proxy.store) == 1
    [entry] = proxy.store.iter_entries()
    assert entry.request["params"]["messages"][0]["content"] == "half \ud800 a pair"
    proxy.stop()
    return proxy.cache_dir


def test_cache_ls_and_show_print_the_escape_instead_of_crashing(recorded: Path) -> None:
    listed = seedreplay("cache", "ls", "--cache-dir", str(recorded))
    assert listed.returncode == 0 and "half \\ud800 a pair" in listed.stdout, listed.stderr
    as_json = seedreplay("cache", "ls", "--json", "--cache-dir", str(recorded))
    assert as_json.returncode == 0 and json.loads(as_json.stdout)[0]["prompt"] == "half \ud800 a pair"
    key = json.loads(as_json.stdout)[0]["key"]
    shown = seedreplay("cache", "show", key, "--cache-dir", str(recorded))
    assert shown.returncode == 0 and "half \\ud800 a pair" in shown.stdout, shown.stderr
    raw = seedreplay("cache", "show", key, "--json", "--cache-dir", str(recorded))
    assert raw.returncode == 0 and json.loads(raw.stdout)["request"]["params"]["messages"][0]["content"] == "half \ud800 a pair"
    assert "Traceback" not in listed.stderr + shown.stderr + raw.stderr


def test_cache_export_jsonl_round_trips_and_leaves_no_empty_file(recorded: Path, tmp_path: Path) -> None:
    exports = tmp_path / "exports"
    exports.mkdir()
    out = exports / "dump.jsonl"
    exported = seedreplay("cache", "export", "--format", "jsonl", "-o", str(out), "--cache-dir", str(recorded))
    assert exported.returncode == 0, exported.stderr
    text = out.read_bytes().decode("utf-8")  # valid UTF-8: the surrogate is written as its JSON escape
    assert "\\ud800" in text
    again = exports / "again"
    imported = seedreplay("cache", "import", str(out), "--cache-dir", str(again))
    assert imported.returncode == 0, imported.stderr
    store = DiskStore(again)
    [entry] = store.iter_entries()
    assert entry.request["params"]["messages"][0]["content"] == "half \ud800 a pair"
    store.close()
    cassette = exports / "c.yaml"
    as_cassette = seedreplay("cache", "export", "--format", "cassette", "-o", str(cassette), "--cache-dir", str(recorded))
    assert as_cassette.returncode == 0, as_cassette.stderr
    assert read_cassette(cassette)[0].request == entry.request
    assert sorted(p.name for p in exports.iterdir()) == ["again", "c.yaml", "dump.jsonl"]  # no temp, no empty file


def test_json_text_and_printable_escape_only_lone_surrogates() -> None:
    value = {"a": "caf\u00e9 \U0001f600 \ud800", "b": ["\udfff"]}
    text = json_text(value)
    assert text.encode("utf-8") and json.loads(text) == value and "caf\u00e9 \U0001f600" in text
    assert printable("x\ud800y\u00e9") == "x\\ud800y\u00e9"


def test_the_simulator_answers_a_lone_surrogate_with_a_400(sim) -> None:
    for path, body in [
        ("/v1/chat/completions", BODY),
        ("/v1/embeddings", b'{"model": "text-embedding-3-small", "input": "x \\udfff"}'),
        ("/v1/responses", b'{"model": "gpt-4o-mini", "input": "x \\ud83d"}'),
    ]:
        status, _, answer = raw_request(sim.root, "POST", path, body, {"Content-Type": "application/json"})
        assert status == 400, (path, answer)
        assert "surrogate" in json.loads(answer)["error"]["message"]
    # A surrogate pair is one character: fine.
    pair = b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "smile \\ud83d\\ude00"}]}'
    status, _, _ = raw_request(sim.root, "POST", "/v1/chat/completions", pair, {"Content-Type": "application/json"})
    assert status == 200
