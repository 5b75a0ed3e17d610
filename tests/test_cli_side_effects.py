"""Read-only and failed commands leave nothing behind and say nothing they should not: no database
in an empty directory, no cache directory from a proxy that never started, no error when `| head`
stops reading, no upstream named by a proxy that will never call one."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

from click.testing import CliRunner

from pytest_seedreplay.cli import main
from pytest_seedreplay.store import DiskStore

from test_cli_cache import realistic_entries
from test_proxy_cli import SEEDREPLAY, ProxyProcess


def test_cache_stats_on_an_empty_directory_creates_no_database(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    for command in (["stats"], ["ls"], ["export", "-o", "-"]):
        result = CliRunner().invoke(main, ["cache", *command, "--cache-dir", str(empty)])
        assert result.exit_code == 1 and f"no cache at {empty}: nothing has been recorded there yet" in result.output
    assert list(empty.iterdir()) == []


def test_a_proxy_that_cannot_listen_leaves_no_cache_directory(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        refused = subprocess.run(
            [SEEDREPLAY, "proxy", "--port", str(port), "--upstream", "sim"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert refused.returncode == 1 and f"cannot listen on 127.0.0.1:{port}" in refused.stderr
    assert list(tmp_path.iterdir()) == []  # no .seedreplay/cache


def test_a_proxy_refused_for_its_fine_tune_leaves_no_cache_directory_but_keeps_an_existing_one(tmp_path: Path) -> None:
    args = [SEEDREPLAY, "proxy", "--port", "0", "--upstream", "sim", "--finetune", "latest"]
    refused = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert refused.returncode == 1 and "--finetune latest:" in refused.stderr
    assert list(tmp_path.iterdir()) == []
    existing = tmp_path / "kept"
    DiskStore(existing).close()
    before = sorted(p.name for p in existing.iterdir())
    again = subprocess.run([*args, "--cache-dir", str(existing)], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert again.returncode == 1 and sorted(p.name for p in existing.iterdir()) == before


def test_export_to_a_reader_that_went_away_stops_quietly(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    store = DiskStore(cache)
    for entry in realistic_entries():
        store.put(entry)
    store.close()
    read_end, write_end = os.pipe()
    os.close(read_end)  # as `| head` does once it has its lines: every write now fails with EPIPE
    try:
        done = subprocess.run(
            [SEEDREPLAY, "cache", "export", "--cache-dir", str(cache), "-o", "-"],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
        )
    finally:
        os.close(write_end)
    assert done.stderr == "" and done.returncode == 141  # 128 + SIGPIPE, as Unix tools end in a closed pipe


def test_a_replay_proxy_names_no_upstream_it_will_never_call(tmp_path: Path, sim) -> None:
    cache = str(tmp_path / "cache")
    DiskStore(cache).close()
    replaying = ProxyProcess("--mode", "replay", "--upstream", sim.url, "--cache-dir", cache)
    widened = ProxyProcess("--mode", "replay", "--allow-mode-override", "--upstream", sim.url, "--cache-dir", cache)
    try:
        assert replaying.upstream == "none" and sim.url not in replaying.first_line
        assert widened.upstream == sim.url  # a request may widen it to record: it may call the upstream
    finally:
        assert replaying.stop() == 0 and widened.stop() == 0
