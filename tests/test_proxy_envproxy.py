"""The proxy reaches its upstream through the forward proxy the environment names (HTTP(S)_PROXY,
ALL_PROXY, NO_PROXY), as the openai SDK does, so a user behind a corporate proxy can record. A
loopback upstream is always reached directly, and ~/.netrc is never read for the upstream.

The forward proxy here is a real one on loopback: it reads each request's head, records it, and
pipes the bytes to the simulator (whatever host the request names), one request per connection.
"""

from __future__ import annotations

import base64
import socket
import socketserver
import threading
import urllib.request
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from yarl import URL

from pytest_seedreplay.proxy.upstream import UnsupportedProxy, env_proxy

from proxy_support import API_KEY, CHAT, MODEL, http, messages, upstream_calls

# A name no resolver knows: only a forward proxy can reach it.
FAR_UPSTREAM = "http://api.seedreplay.test/v1"
_PROXY_ENV = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")


class ForwardProxy(socketserver.ThreadingTCPServer):
    """A plain HTTP forward proxy that sends every request to `target` and remembers its head."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, target: tuple[str, int]):
        super().__init__(("127.0.0.1", 0), _Relay)
        self.target = target
        self.seen: list[tuple[str, str, dict[str, str]]] = []  # (method, request target, headers)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Relay(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        client: socket.socket = self.request
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = client.recv(65536)
            if not chunk:
                return
            data += chunk
        head, rest = data.split(b"\r\n\r\n", 1)
        line, *lines = head.decode("latin-1").split("\r\n")
        method, target, version = line.split(" ")
        headers = {name.strip().lower(): value.strip() for name, _, value in (h.partition(":") for h in lines)}
        self.server.seen.append((method, target, headers))
        parts = urlsplit(target)
        kept = [
            h for h in lines if h.partition(":")[0].strip().lower() not in ("connection", "proxy-authorization", "keep-alive")
        ]
        origin_form = parts.path + (f"?{parts.query}" if parts.query else "")
        upstream = socket.create_connection(self.server.target)
        upstream.sendall(
            ("\r\n".join([f"{method} {origin_form} {version}", *kept, "Connection: close"]) + "\r\n\r\n").encode("latin-1") + rest
        )
        threading.Thread(target=_pipe, args=(client, upstream), daemon=True).start()
        _pipe(upstream, client)


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    try:
        while chunk := source.recv(65536):
            sink.sendall(chunk)
    except OSError:
        pass
    finally:
        for end in (source, sink):
            try:
                end.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


@pytest.fixture
def forward_proxy(sim) -> Iterator[ForwardProxy]:
    parts = urlsplit(sim.url)
    server = ForwardProxy((parts.hostname, parts.port))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def clean_env(monkeypatch):
    # urllib's urlopen (the simulator's stats) keeps the proxies of the environment it first saw:
    # start this test with none built, and give the next test back the one it had.
    monkeypatch.setattr(urllib.request, "_opener", None)
    for name in _PROXY_ENV:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    return monkeypatch


def test_records_and_forwards_through_the_environments_proxy(sim, forward_proxy, proxy_factory, clean_env, tmp_path):
    proxied = URL(forward_proxy.url).with_user("corp").with_password("pa ss")
    clean_env.setenv("HTTP_PROXY", str(proxied))
    clean_env.setenv("NO_PROXY", "127.0.0.1")  # the SDK's own way to the seedreplay proxy stays direct
    proxy = proxy_factory(FAR_UPSTREAM)
    client = proxy.client()
    first = client.chat.completions.with_raw_response.create(model=MODEL, messages=messages(), seed=1)
    second = client.chat.completions.with_raw_response.create(model=MODEL, messages=messages(), seed=1)
    assert (first.headers["x-seedreplay-cache"], second.headers["x-seedreplay-cache"]) == ("miss", "hit")
    assert first.parse().choices[0].message.content == second.parse().choices[0].message.content
    text = "".join(
        chunk.choices[0].delta.content or ""
        for chunk in client.chat.completions.create(model=MODEL, messages=messages("s"), seed=1, stream=True)
        if chunk.choices
    )
    assert text
    assert [m.id for m in client.models.list()]  # a non-cacheable path goes the same way
    assert [(method, target) for method, target, _ in forward_proxy.seen] == [
        ("POST", FAR_UPSTREAM + CHAT),
        ("POST", FAR_UPSTREAM + CHAT),
        ("GET", FAR_UPSTREAM + "/models"),
    ]
    for _, _, headers in forward_proxy.seen:
        assert headers["proxy-authorization"] == "Basic " + base64.b64encode(b"corp:pa ss").decode()
        assert headers["authorization"] == f"Bearer {API_KEY}"  # the client's credential still reaches the upstream
    assert upstream_calls(sim) == 2
    for path in proxy.cache_dir.rglob("*"):
        if path.is_file():
            assert b"pa ss" not in path.read_bytes() and b"pa%20ss" not in path.read_bytes()


def test_no_proxy_sends_the_upstream_direct(forward_proxy, proxy_factory, clean_env):
    clean_env.setenv("https_proxy", forward_proxy.url)
    clean_env.setenv("http_proxy", forward_proxy.url)
    clean_env.setenv("no_proxy", "localhost,.seedreplay.test")
    proxy = proxy_factory(FAR_UPSTREAM)
    reply = proxy.post(CHAT, {"model": MODEL, "messages": messages(), "seed": 1})
    assert reply.status == 502 and reply.json()["error"]["code"] == "upstream_unreachable"
    assert forward_proxy.seen == []


def test_a_loopback_upstream_never_goes_through_the_proxy(sim, forward_proxy, proxy_factory, clean_env):
    clean_env.setenv("HTTP_PROXY", forward_proxy.url)
    clean_env.setenv("ALL_PROXY", forward_proxy.url)
    proxy = proxy_factory(sim.url)
    assert proxy.post(CHAT, {"model": MODEL, "messages": messages(), "seed": 1}).status == 200
    assert forward_proxy.seen == []
    clean_env.setenv("NO_PROXY", "*")  # the simulator's stats are read with urllib, which obeys the proxy too
    assert upstream_calls(sim) == 1


def test_netrc_is_not_read_for_the_upstream(sim, forward_proxy, proxy_factory, clean_env, tmp_path):
    # aiohttp's trust_env would add ~/.netrc's login for the upstream host: a request without a
    # key would go out with the proxy owner's, and one with a key would fail (auth and header both).
    netrc = tmp_path / "netrc"
    netrc.write_text("machine api.seedreplay.test login owner password owner-secret\n")
    netrc.chmod(0o600)
    clean_env.setenv("NETRC", str(netrc))
    clean_env.setenv("HTTP_PROXY", forward_proxy.url)
    proxy = proxy_factory(FAR_UPSTREAM)
    assert proxy.post(CHAT, {"model": MODEL, "messages": messages(), "seed": 1}).status == 200
    assert http(proxy.url + CHAT, body={"model": MODEL, "messages": messages(), "seed": 2}).status == 200
    assert [headers.get("authorization") for _, _, headers in forward_proxy.seen] == [f"Bearer {API_KEY}", None]


@pytest.mark.parametrize(
    "env, url, expected",
    [
        ({}, "https://api.openai.com/v1", None),
        ({"HTTPS_PROXY": "http://p:3128"}, "https://api.openai.com/v1", "http://p:3128"),
        ({"https_proxy": "p:3128"}, "https://api.openai.com/v1", "http://p:3128"),  # no scheme: http
        ({"HTTP_PROXY": "http://p:3128"}, "https://api.openai.com/v1", None),  # HTTP_PROXY is for http:// only
        ({"ALL_PROXY": "http://all:1"}, "https://api.openai.com/v1", "http://all:1"),
        ({"ALL_PROXY": "http://all:1", "HTTPS_PROXY": "http://p:2"}, "https://api.openai.com/v1", "http://p:2"),
        ({"HTTPS_PROXY": "http://p:3128", "NO_PROXY": "openai.com"}, "https://api.openai.com/v1", None),
        ({"HTTPS_PROXY": "http://p:3128", "NO_PROXY": "*"}, "https://api.openai.com/v1", None),
        ({"HTTPS_PROXY": "http://p:3128", "NO_PROXY": "other.com"}, "https://api.openai.com/v1", "http://p:3128"),
        ({"HTTP_PROXY": "http://p:3128"}, "http://127.0.0.1:9/v1", None),
        ({"HTTP_PROXY": "http://p:3128"}, "http://localhost:9/v1", None),
        ({"HTTP_PROXY": "http://p:3128"}, "http://[::1]:9/v1", None),
    ],
)
def test_which_proxy_the_environment_names(clean_env, env, url, expected):
    for name, value in env.items():
        clean_env.setenv(name, value)
    found = env_proxy(URL(url))
    assert (str(found[0]) if found else None) == expected


def test_proxy_credentials_become_a_header_and_leave_the_url(clean_env):
    clean_env.setenv("HTTPS_PROXY", "http://me:s%40cret@p:3128")
    url, headers = env_proxy(URL("https://api.openai.com/v1"))
    assert str(url) == "http://p:3128"
    assert headers == {"Proxy-Authorization": "Basic " + base64.b64encode(b"me:s@cret").decode()}


def test_an_unsupported_proxy_is_a_clear_502(proxy_factory, clean_env):
    clean_env.setenv("ALL_PROXY", "socks5://user:pw@p:1080")
    with pytest.raises(UnsupportedProxy, match="socks5"):
        env_proxy(URL("https://api.openai.com/v1"))
    proxy = proxy_factory(FAR_UPSTREAM)
    reply = proxy.post(CHAT, {"model": MODEL, "messages": messages(), "seed": 1})
    error = reply.json()["error"]
    assert reply.status == 502 and error["code"] == "upstream_proxy_unsupported"
    assert "socks5://p:1080" in error["message"] and "pw" not in error["message"]
    forwarded = http(proxy.url + "/models", "GET")
    assert forwarded.status == 502 and forwarded.json()["error"]["code"] == "upstream_proxy_unsupported"
    assert proxy.stats()["stored"] == 0
