"""`seedreplay proxy` as users run it: a real subprocess, its listening line and log, a graceful
SIGTERM, a SIGKILL in the middle of recording, and no API key left anywhere on disk."""

from __future__ import annotations

import io
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.client import HTTPException
from pathlib import Path

import openai
import pytest
from click.testing import CliRunner

from pytest_seedreplay.cli import main
from pytest_seedreplay.core.key import key_of_canonical
from pytest_seedreplay.shapes import stream_complete
from pytest_seedreplay.store import DiskStore

from proxy_support import API_KEY, CHAT, MODEL, http, messages

SEEDREPLAY = str(Path(sys.executable).parent / "seedreplay")
LISTENING = re.compile(
    r"^seedreplay proxy listening on (http://127\.0\.0\.1:(\d+)/v1) \(mode=(\w+), upstream=(\S+), cache=(.+)\)$"
)


class ProxyProcess:
    """`seedreplay proxy ...` in a subprocess; `url` once it printed its listening line."""

    def __init__(self, *args: str, env: dict[str, str] | None = None):
        env = {**{k: v for k, v in os.environ.items() if k != "SEEDREPLAY_UPSTREAM"}, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.process = subprocess.Popen(
            [SEEDREPLAY, "proxy", "--port", "0", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.stderr: list[str] = []
        threading.Thread(target=self._pump, args=(self.process.stdout, self.lines.put), daemon=True).start()
        threading.Thread(target=self._pump, args=(self.process.stderr, self.stderr.append), daemon=True).start()
        self.first_line = self.lines.get(timeout=20)
        match = LISTENING.match(self.first_line)
        assert match, self.first_line
        self.url, self.mode, self.upstream, self.cache = match.group(1), match.group(3), match.group(4), match.group(5)
        self.root = self.url[: -len("/v1")]

    @staticmethod
    def _pump(stream, sink) -> None:
        for line in stream:
            sink(line.rstrip("\n"))

    def client(self) -> openai.OpenAI:
        return openai.OpenAI(base_url=self.url, api_key=API_KEY, max_retries=0)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.process.wait(timeout)

    def log(self) -> str:
        return "\n".join(self.stderr)


@pytest.fixture
def spawn():
    started: list[ProxyProcess] = []

    def factory(*args: str, env: dict[str, str] | None = None) -> ProxyProcess:
        running = ProxyProcess(*args, env=env)
        started.append(running)
        return running

    yield factory
    for running in started:
        if running.process.poll() is None:
            running.process.kill()
            running.process.wait(10)


def _wait_for(condition, seconds: float = 20, what: str = "condition") -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def test_a_session_with_the_builtin_simulator_logs_its_requests_and_leaves_no_key_on_disk(spawn, tmp_path):
    cache = tmp_path / "cache"
    proxy = spawn("--upstream", "sim", "--cache-dir", str(cache))
    assert (proxy.mode, proxy.upstream, proxy.cache) == ("record", "sim", str(cache))
    client = proxy.client()
    extra = {"OpenAI-Organization": "org-secretive", "api-key": API_KEY}
    first = client.chat.completions.with_raw_response.create(model=MODEL, messages=messages(), seed=1, extra_headers=extra)
    second = client.chat.completions.with_raw_response.create(model=MODEL, messages=messages(), seed=1)
    assert (first.headers["x-seedreplay-cache"], second.headers["x-seedreplay-cache"]) == ("miss", "hit")
    list(client.chat.completions.create(model=MODEL, messages=messages("s"), seed=1, stream=True))
    client.embeddings.create(model="text-embedding-3-small", input="e")
    client.responses.create(model=MODEL, input="r")
    client.files.create(file=("t.jsonl", io.BytesIO(b'{"messages": []}\n')), purpose="fine-tune")
    assert http(f"{proxy.root}/seedreplay/stats", "GET").json()["stored"] == 4
    client.close()
    assert proxy.stop(signal.SIGTERM) == 0
    # At info a hit has no line of its own: the hits are summed up every few seconds and as the proxy stops.
    _wait_for(lambda: any(" 1 hit in the last " in line for line in proxy.stderr), 5, "the log")
    log = proxy.log()
    key = first.headers["x-seedreplay-key"]
    assert re.search(rf"POST /v1/chat/completions key={re.escape(key[:11])} cache=miss upstream=200 status=200 [\d.]+ms", log)
    assert re.search(r"seedreplay\.proxy: 1 hit in the last [\d.]+ s \(p50 [\d.]+ ms, p99 [\d.]+ ms\)", log)
    assert "cache=hit" not in log
    assert "POST /v1/files key=- cache=bypass upstream=200" in log
    secret = API_KEY.encode()
    files = [path for path in cache.rglob("*") if path.is_file()]
    assert files
    for path in files:
        content = path.read_bytes()
        assert secret not in content and b"org-secretive" not in content, path
    assert API_KEY not in log and "org-secretive" not in log
    with DiskStore(cache) as store:  # closed cleanly: reopens with every entry
        assert len(store) == 4


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_stop_signal_lets_an_in_flight_request_finish_and_store(spawn, sim_factory, tmp_path, stop_signal):
    sim = sim_factory(latency_ms=700)
    proxy = spawn("--upstream", sim.url, "--cache-dir", str(tmp_path / "cache"), "--log-level", "warning")
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(
            lambda: http(
                proxy.url + CHAT,
                body={"model": MODEL, "messages": messages(), "seed": 1},
                headers={"Authorization": f"Bearer {API_KEY}"},
            )
        )
        _wait_for(lambda: sim.stats()["total"] >= 1, what="the upstream call")
        proxy.process.send_signal(stop_signal)
        reply = pending.result(timeout=20)
    assert reply.status == 200 and reply.json()["choices"]
    assert proxy.process.wait(20) == 0
    assert "Traceback" not in proxy.log()
    with DiskStore(tmp_path / "cache") as store:
        assert len(store) == 1


@pytest.mark.slow
def test_sigkill_during_concurrent_recording_leaves_no_partial_entry(spawn, sim_factory, tmp_path):
    sim = sim_factory(latency_ms=50, tokens_per_s=400)
    cache = tmp_path / "cache"
    proxy = spawn("--upstream", sim.url, "--cache-dir", str(cache), "--log-level", "warning")

    def ask(i: int) -> int:
        body = {"model": MODEL, "messages": messages(f"prompt {i}"), "seed": i, "stream": i % 2 == 0}
        try:
            return http(proxy.url + CHAT, body=body, timeout=20).status
        except (OSError, HTTPException):
            return -1  # killed under it

    with ThreadPoolExecutor(16) as pool:
        futures = [pool.submit(ask, i) for i in range(120)]
        _wait_for(lambda: http(f"{proxy.root}/seedreplay/stats", "GET").json()["stored"] >= 8, what="some stored entries")
        proxy.stop(signal.SIGKILL)
        statuses = [f.result() for f in futures]
    assert -1 in statuses  # the kill landed while requests were in flight
    with DiskStore(cache) as store:
        entries = list(store.iter_entries())
        assert len(entries) >= 8
        for entry in entries:
            assert entry.key == key_of_canonical(entry.request)
            if entry.streamed:
                assert stream_complete(entry.endpoint, entry.events)
            else:
                assert entry.body["choices"][0]["message"]["content"]
        assert len(list(store.iter_requests())) == len(entries)
    # And the proxy starts again on that store and serves what was recorded.
    again = spawn("--upstream", sim.url, "--cache-dir", str(cache), "--mode", "replay", "--log-level", "warning")
    recorded = entries[0].request["params"]
    reply = http(again.url + CHAT, body={**recorded, "stream": False})
    assert reply.status == 200 and reply.headers["x-seedreplay-cache"] == "hit"


def test_non_loopback_host_needs_a_token():
    result = CliRunner().invoke(main, ["proxy", "--host", "0.0.0.0", "--upstream", "sim"])
    assert result.exit_code != 0
    assert "refusing to listen on 0.0.0.0 without --token" in result.output


def test_busy_port_with_the_builtin_simulator_is_one_line_not_a_traceback(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run(
            [SEEDREPLAY, "proxy", "--upstream", "sim", "--port", str(port), "--cache-dir", str(tmp_path / "cache")],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 1
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"Error: cannot listen on 127.0.0.1:{port}: ")
    assert lines[0].endswith("pick another --port (0 picks a free one)")


def test_bad_options_are_clear_errors(tmp_path):
    runner = CliRunner()
    bad_upstream = runner.invoke(main, ["proxy", "--upstream", "api.openai.com"])
    assert bad_upstream.exit_code == 2 and "not an http(s) base URL" in bad_upstream.output
    bad_size = runner.invoke(main, ["proxy", "--upstream", "sim", "--max-body", "lots"])
    assert bad_size.exit_code == 2 and "32MiB" in bad_size.output
    bad_mode = runner.invoke(main, ["proxy", "--mode", "sometimes"])
    assert bad_mode.exit_code == 2


def test_help_names_every_contract_option():
    result = CliRunner().invoke(main, ["proxy", "--help"])
    assert result.exit_code == 0
    for option in (
        "--host",
        "--port",
        "--upstream",
        "--mode",
        "--cache-dir",
        "--store",
        "--require-seed",
        "--isolate-by-auth",
        "--token",
        "--max-body",
        "--log-level",
    ):
        assert option in result.output


def test_max_body_accepts_human_sizes():
    from pytest_seedreplay.proxy.config import parse_size

    assert parse_size("32MiB") == 32 * 1024 * 1024
    assert parse_size("512k") == 512 * 1024
    assert parse_size("1048576") == 1048576
    with pytest.raises(ValueError):
        parse_size("0")


def test_upstream_comes_from_the_environment_when_not_given(spawn, tmp_path, sim):
    proxy = spawn("--cache-dir", str(tmp_path / "cache"), env={"SEEDREPLAY_UPSTREAM": sim.url})
    assert proxy.upstream == sim.url
    assert http(proxy.url + CHAT, body={"model": MODEL, "messages": messages(), "seed": 1}).status == 200
    assert sim.stats()["total"] == 1


def test_memory_cache_zero_turns_the_memory_of_hits_off(spawn, tmp_path, sim):
    proxy = spawn("--upstream", sim.url, "--cache-dir", str(tmp_path / "cache"), "--memory-cache", "0", "--log-level", "warning")
    body = {"model": MODEL, "messages": messages(), "seed": 1}
    replies = [http(proxy.url + CHAT, body=body) for _ in range(4)]
    assert [r.headers["x-seedreplay-cache"] for r in replies][-2:] == ["hit", "hit"]
    stats = http(f"{proxy.root}/seedreplay/stats", "GET").json()
    assert (stats["memory_limit"], stats["memory_hits"], stats["memory_bytes"]) == (0, 0, 0)
    assert stats["hits"] == 3 and sim.stats()["total"] == 1


def test_memory_cache_takes_sizes():
    from pytest_seedreplay.proxy.config import ProxyConfig, parse_size

    assert ProxyConfig().memory_cache == 64 * 1024 * 1024
    assert parse_size("0", allow_zero=True) == 0 and parse_size("16MiB", allow_zero=True) == 16 * 1024 * 1024
    bad = CliRunner().invoke(main, ["proxy", "--upstream", "sim", "--memory-cache", "lots"])
    assert bad.exit_code == 2 and "--memory-cache" in bad.output and "32MiB" in bad.output


def test_a_replay_proxy_is_a_ceiling_unless_its_owner_allows_overrides(spawn, tmp_path, sim):
    body = {"model": MODEL, "messages": messages("ceiling"), "seed": 1}
    strict = spawn("--upstream", sim.url, "--cache-dir", str(tmp_path / "a"), "--mode", "replay")
    refused = http(strict.url + CHAT, body=body, headers={"X-Seedreplay-Mode": "refresh"})
    assert refused.status == 403 and refused.json()["error"]["code"] == "mode_not_allowed"
    assert sim.stats()["total"] == 0
    lenient = spawn("--upstream", sim.url, "--cache-dir", str(tmp_path / "b"), "--mode", "replay", "--allow-mode-override")
    allowed = http(lenient.url + CHAT, body=body, headers={"X-Seedreplay-Mode": "record"})
    assert allowed.status == 200 and allowed.headers["x-seedreplay-cache"] == "miss" and sim.stats()["total"] == 1
