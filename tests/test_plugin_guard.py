"""The network guard through real inner pytest sessions: it stops what is meant for the OpenAI API
and lets other traffic pass, unless --seedreplay-block-network (or its ini) stops every non-loopback
connection; what it raises is the transport's own connect error, so libraries that fall back when
offline (LiteLLM's price map fetched at import) keep working.

No request here leaves the machine. The "far" hosts are reached through a forward proxy on loopback
(HTTP_PROXY), which answers for every host it is asked for and remembers what it was asked: a request
the guard lets through shows up there, a blocked one does not. The socket-level tests connect to
0.0.0.0, an address the guard treats as non-loopback but which still lands on this machine."""

from __future__ import annotations

import http.server
import importlib.util
import json
import threading
from collections.abc import Iterator

import pytest

from plugin_inner import INI, TEST_KEY, cassette_dir, run, setup_project

TRANSPORTS = [name for name in ("httpx", "httpx2") if importlib.util.find_spec(name)]
PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy", "NO_PROXY", "no_proxy")
OFFLINE_ADVICE = (
    "--seedreplay-block-network (ini seedreplay_block_network) lets tests reach loopback only. Mock this "
    "call or serve it on 127.0.0.1, or run without --seedreplay-block-network"
)


class FarAway(http.server.ThreadingHTTPServer):
    """Stands in for every remote host: a forward proxy on loopback that answers any request itself."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Answer)
        self.seen: list[str] = []  # "METHOD absolute-url" of each request that got here

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Answer(http.server.BaseHTTPRequestHandler):
    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        self.server.seen.append(f"{self.command} {self.path}")
        body = json.dumps({"target": self.path, "prices": {"gpt-4o-mini": 0.15}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def far_away(monkeypatch: pytest.MonkeyPatch) -> Iterator[FarAway]:
    server = FarAway()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    for name in PROXY_VARS:
        monkeypatch.delenv(name, raising=False)
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.setenv(name, server.url)
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", TEST_KEY)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.delenv("SEEDREPLAY_UPSTREAM", raising=False)


def notes(pytester: pytest.Pytester) -> dict[str, str]:
    path = pytester.path / "notes.jsonl"
    found = dict(json.loads(line) for line in path.read_text().splitlines()) if path.exists() else {}
    path.unlink(missing_ok=True)
    return found


NOTE = """
import json

def note(name, value):
    with open("notes.jsonl", "a") as f:
        f.write(json.dumps([name, value]) + "\\n")
"""


def test_other_hosts_pass_by_default_and_are_blocked_with_the_flag_or_the_ini(pytester, far_away):
    setup_project(
        pytester,
        test_other_service=f"""
            import importlib
            import pytest

            @pytest.mark.parametrize("transport", {TRANSPORTS!r})
            def test_calls_another_service(transport):
                http = importlib.import_module(transport)
                answer = http.get("http://weather.example/today", timeout=10)
                assert answer.json()["target"] == "http://weather.example/today"
        """,
    )
    run(pytester).assert_outcomes(passed=len(TRANSPORTS))
    assert far_away.seen == ["GET http://weather.example/today"] * len(TRANSPORTS)

    blocked = run(pytester, "--seedreplay-block-network", "--tb=line")
    blocked.assert_outcomes(failed=len(TRANSPORTS))
    blocked.stdout.fnmatch_lines([f"*NetworkBlocked: seedreplay blocked GET http://weather.example/today: {OFFLINE_ADVICE}*"])
    pytester.makeini(INI + "seedreplay_block_network = true\n")
    run(pytester).assert_outcomes(failed=len(TRANSPORTS))
    assert len(far_away.seen) == len(TRANSPORTS)  # nothing blocked got out


def test_a_library_that_falls_back_when_offline_imports_under_the_flag(pytester, far_away):
    """LiteLLM fetches its price map at import and catches httpx.HTTPError to use its bundled copy."""
    library = """
        import {transport} as http

        try:
            PRICES = http.get("http://prices.example/model_prices.json", timeout=10).json()["prices"]
            SOURCE = "network"
        except http.HTTPError:  # offline: the copy bundled with the package
            PRICES = {{"gpt-4o-mini": 0.15}}
            SOURCE = "bundled"
    """
    setup_project(
        pytester,
        **{f"pricemap_{t}": library.format(transport=t) for t in TRANSPORTS},
        test_uses_the_library=NOTE
        + f"""
import importlib
import pytest

@pytest.mark.parametrize("transport", {TRANSPORTS!r})
def test_import(transport):
    library = importlib.import_module("pricemap_" + transport)  # imported by the test, guard active
    assert library.PRICES["gpt-4o-mini"] == 0.15
    note(transport, library.SOURCE)
""",
    )
    run(pytester, "--seedreplay-block-network").assert_outcomes(passed=len(TRANSPORTS))
    assert notes(pytester) == dict.fromkeys(TRANSPORTS, "bundled") and far_away.seen == []
    run(pytester).assert_outcomes(passed=len(TRANSPORTS))  # the default lets the fetch through
    assert notes(pytester) == dict.fromkeys(TRANSPORTS, "network")


def test_what_is_meant_for_the_openai_api_is_blocked_in_replay_even_when_caught(pytester, far_away):
    calls = [
        ("GET", "http://api.openai.com/v1/models"),
        ("POST", "http://my-resource.openai.azure.com/openai/deployments/gpt4o/chat/completions?api-version=2024-10-21"),
        ("POST", "http://my-resource.cognitiveservices.azure.com/openai/v1/responses"),
        ("GET", "http://llm-gateway.example/v1/models"),  # the configured upstream's host
        ("POST", "http://elsewhere.example/api/v1/chat/completions"),  # an OpenAI API call, whatever the host
    ]
    transport = TRANSPORTS[-1]
    setup_project(
        pytester,
        test_bypass=f"""
            import pytest
            import {transport} as http

            @pytest.mark.parametrize("method,url", {calls!r})
            def test_blocked(method, url):
                with pytest.raises(http.ConnectError, match="^seedreplay blocked .*replay mode answers OpenAI calls"):
                    http.request(method, url, json={{}}, timeout=10)

            def test_other_paths_of_other_hosts_pass():
                assert http.get("http://elsewhere.example/v1/models", timeout=10).status_code == 200

            def test_a_telemetry_upload_is_blocked_but_fails_no_test():
                # The Agents SDK uploads its traces to OpenAI; it logs the failure and carries on.
                with pytest.raises(http.ConnectError, match="^seedreplay blocked"):
                    http.post("http://api.openai.com/v1/traces/ingest", json={{"data": []}}, timeout=10)
        """,
    )
    result = run(pytester, "--seedreplay-upstream=http://llm-gateway.example/v1", "--tb=short")
    result.assert_outcomes(passed=2, failed=len(calls))  # caught or not: the test fails, naming the call
    result.stdout.fnmatch_lines(["*seedreplay: blocked network access in replay mode:*", f"*{calls[1][0]} {calls[1][1]}*"])
    assert far_away.seen == ["GET http://elsewhere.example/v1/models"]


def test_socket_connections_to_other_hosts_are_blocked_only_with_the_flag(pytester, far_away, monkeypatch):
    for name in PROXY_VARS:  # straight to the address: no forward proxy in between
        monkeypatch.delenv(name, raising=False)
    port = far_away.server_address[1]
    setup_project(
        pytester,
        test_sockets=NOTE
        + f"""
import urllib.request

import aiohttp

def outcome(error):
    reason = getattr(error, "reason", None) or getattr(error, "os_error", None) or error
    return f"{{type(reason).__name__}}: {{reason}}"

def test_urllib():
    try:
        note("urllib", str(urllib.request.urlopen("http://0.0.0.0:{port}/x", timeout=10).status))
    except OSError as error:
        note("urllib", outcome(error))

async def test_aiohttp():
    try:
        async with aiohttp.ClientSession() as session:
            async with session.get("http://0.0.0.0:{port}/x") as answer:
                note("aiohttp", str(answer.status))
    except aiohttp.ClientConnectionError as error:
        note("aiohttp", outcome(error))

def test_loopback_is_never_blocked():
    assert urllib.request.urlopen("http://127.0.0.1:{port}/x", timeout=10).status == 200
""",
    )
    run(pytester).assert_outcomes(passed=3)
    assert notes(pytester) == {"urllib": "200", "aiohttp": "200"}
    run(pytester, "--seedreplay-block-network").assert_outcomes(passed=3)
    blocked = f"NetworkBlocked: seedreplay blocked a connection to 0.0.0.0:{port}: {OFFLINE_ADVICE}"
    assert notes(pytester) == {"urllib": blocked, "aiohttp": blocked}
    assert len(far_away.seen) == 2 + 1 + 1  # two reached it by default, none with the flag; loopback each time


def test_the_flag_still_lets_the_plugin_record_from_a_remote_upstream(pytester, sim):
    # 0.0.0.0 is not loopback to the guard: only the plugin's own proxy may connect there.
    upstream = sim.url.replace("127.0.0.1", "0.0.0.0")
    setup_project(
        pytester,
        test_record="""
            import urllib.request
            import pytest

            def test_chat(openai_client):
                openai_client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], seed=1)
                # The test itself may not go there: only the plugin's proxy is let through.
                with pytest.raises(OSError, match="seedreplay blocked a connection to 0.0.0.0"):
                    urllib.request.urlopen(str(openai_client.base_url).replace("127.0.0.1", "0.0.0.0") + "models")
        """,
    )
    flags = ("--seedreplay=record", f"--seedreplay-upstream={upstream}", "--seedreplay-block-network")
    run(pytester, *flags).assert_outcomes(passed=1)
    assert (cassette_dir(pytester) / "test_record" / "test_chat.yaml").exists()
    run(pytester, "--seedreplay-block-network").assert_outcomes(passed=1)


def test_a_transport_imported_during_a_test_is_guarded_and_none_is_imported_for_nothing(pytester):
    # A project that never uses httpx pays no import for the guard; a test that imports it later is still guarded.
    pytester.makepyfile(
        test_late="""
            import subprocess, sys

            def test_nothing_imported_by_the_guard():
                code = (
                    "import sys\\n"
                    "from pytest_seedreplay.guard import NetworkGuard\\n"
                    "blocked = []\\n"
                    "with NetworkGuard('http://127.0.0.1:1/v1', 'replay', blocked.append, upstream='https://api.openai.com/v1'):\\n"
                    "    assert 'httpcore' not in sys.modules and 'httpcore2' not in sys.modules\\n"
                    "    try:\\n"
                    "        import httpx2 as httpx\\n"
                    "    except ImportError:\\n"
                    "        import httpx\\n"
                    "    try:\\n"
                    "        httpx.post('https://api.openai.com/v1/chat/completions', json={})\\n"
                    "    except httpx.ConnectError as exc:\\n"
                    "        print('BLOCKED', type(exc).__name__)\\n"
                    "print(len(blocked))\\n"
                )
                out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
                assert out.returncode == 0, out.stderr
                assert out.stdout.split() == ["BLOCKED", "NetworkBlocked", "1"]
        """
    )
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)
