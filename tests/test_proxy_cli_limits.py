"""`seedreplay proxy`'s flags for the bounds a client and an upstream are held to: the answer size it
records, the time a request's head and body may take, and the connections it serves at once."""

from __future__ import annotations

from click.testing import CliRunner

from pytest_seedreplay.cli import main

from proxy_support import API_KEY, http
from test_proxy_cli import spawn  # noqa: F401 (a fixture)
from test_proxy_slow_clients import connect, read_all


def test_an_answer_over_max_answer_is_relayed_and_not_recorded(spawn, tmp_path):  # noqa: F811
    proxy = spawn("--upstream", "sim", "--cache-dir", str(tmp_path / "cache"), "--max-answer", "4k")
    body = {"model": "text-embedding-3-small", "input": "a sentence", "encoding_format": "float"}
    headers = {"Authorization": f"Bearer {API_KEY}"}
    first = http(proxy.url + "/embeddings", body=body, headers=headers)
    assert first.status == 200 and len(first.json()["data"][0]["embedding"]) > 500  # well over 4 KiB
    assert "larger than this proxy's bound of 4096 bytes" in first.headers["x-seedreplay-store-error"]
    again = http(proxy.url + "/embeddings", body=body, headers=headers)
    assert again.headers["x-seedreplay-cache"] == "miss"  # nothing was recorded


def test_the_head_and_body_timeouts_are_the_flags(spawn, tmp_path):  # noqa: F811
    proxy = spawn("--upstream", "sim", "--cache-dir", str(tmp_path / "cache"), "--header-timeout", "0.5", "--body-timeout", "0.5")
    with connect(proxy.root) as head, connect(proxy.root) as body:
        head.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        body.sendall(b'POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 500\r\n\r\n{"model": ')
        # The default timeouts (15 s, 60 s) would outlast the sockets' own 20 s bound on one of them.
        said_head, said_body = read_all(head), read_all(body)
    assert said_head.startswith(b"HTTP/1.1 408") and b"within 0.5 s" in said_head, said_head[:200]
    assert said_body.startswith(b"HTTP/1.1 408") and b"did not arrive within 0.5 s" in said_body, said_body[:300]


def test_connections_past_max_connections_get_a_503(spawn, tmp_path):  # noqa: F811
    proxy = spawn("--upstream", "sim", "--cache-dir", str(tmp_path / "cache"), "--max-connections", "2")
    held = [connect(proxy.root) for _ in range(2)]
    try:
        with connect(proxy.root) as extra:
            answer = read_all(extra)
        assert answer.startswith(b"HTTP/1.1 503") and b"too_many_connections" in answer
    finally:
        for sock in held:
            sock.close()


def test_the_bounds_reject_values_that_are_not_one_naming_the_flag():
    for flag, value in (
        ("--max-answer", "lots"),
        ("--header-timeout", "0"),
        ("--body-timeout", "-1"),
        ("--max-connections", "0"),
    ):
        result = CliRunner().invoke(main, ["proxy", flag, value])
        assert result.exit_code == 2 and flag in result.output and "Traceback" not in result.output, (flag, result.output)
