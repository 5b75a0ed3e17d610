"""The environment a recording session sets and reads: which upstreams to record from, OPENAI_BASE_URL
(and Azure OpenAI's endpoint, and ANTHROPIC_BASE_URL) pointing at our proxy, NO_PROXY keeping it
direct, dummy keys for replay.
Pure helpers, stdlib only."""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import urlsplit

from .constants import (
    DEFAULT_ANTHROPIC_UPSTREAM,
    DEFAULT_UPSTREAM,
    ENV_ANTHROPIC_API_KEY,
    ENV_ANTHROPIC_BASE_URL,
    ENV_ANTHROPIC_UPSTREAM,
    ENV_API_KEY,
    ENV_AZURE_API_KEY,
    ENV_AZURE_ENDPOINT,
    ENV_BASE_URL,
    ENV_PLUGIN_PROXY,
    ENV_UPSTREAM,
    SIM_UPSTREAM,
)

DUMMY_API_KEY = "seedreplay-replay-needs-no-key"  # replay needs no key, but the SDK wants one
NO_PROXY_VARS = ("NO_PROXY", "no_proxy")  # httpx, requests and urllib read either spelling


def choose_upstream(option: str | None, environ: Any = os.environ) -> str:
    """The upstream to record from: the one given, else $SEEDREPLAY_UPSTREAM, else the OPENAI_BASE_URL
    the proxy replaces, else the Azure OpenAI endpoint it replaces (its `/openai/v1` surface: the
    Azure client's `/openai/...` paths go to the endpoint itself), else the OpenAI API. A seedreplay
    proxy's own address (a nested session) is never the upstream."""
    if option:
        return option
    if environ.get(ENV_UPSTREAM):
        return str(environ[ENV_UPSTREAM])
    ours = str(environ.get(ENV_PLUGIN_PROXY) or "")
    previous = environ.get(ENV_BASE_URL)
    if previous and previous != ours:
        return str(previous)
    azure = str(environ.get(ENV_AZURE_ENDPOINT) or "").rstrip("/")
    if azure and (not ours or azure != ours.removesuffix("/v1")):
        return azure + "/openai/v1"
    return DEFAULT_UPSTREAM


def proxy_environment(url: str) -> dict[str, str]:
    """What points every client at the proxy serving at `url` (ends in /v1): OPENAI_BASE_URL for the
    OpenAI clients, AZURE_OPENAI_ENDPOINT (the proxy's root) for the Azure ones, ANTHROPIC_BASE_URL
    for the Anthropic ones, and our own mark."""
    root = url.removesuffix("/v1")
    return {ENV_BASE_URL: url, ENV_PLUGIN_PROXY: url, ENV_AZURE_ENDPOINT: root, **anthropic_environment(url)}


def choose_anthropic_upstream(option: str | None, openai_upstream: str | None = None, environ: Any = os.environ) -> str:
    """The Anthropic upstream (for /v1/messages): the one given, else $SEEDREPLAY_ANTHROPIC_UPSTREAM,
    else the simulator when the OpenAI upstream is the simulator (`sim` means offline), else
    Anthropic's API."""
    if option:
        return option
    if environ.get(ENV_ANTHROPIC_UPSTREAM):
        return str(environ[ENV_ANTHROPIC_UPSTREAM])
    return SIM_UPSTREAM if openai_upstream == SIM_UPSTREAM else DEFAULT_ANTHROPIC_UPSTREAM


def recording_anthropic_upstream(option: str | None, openai_upstream: str, environ: Any = os.environ) -> str:
    """The Anthropic upstream of a recording session (the plugin, `use_cassette`), which replaces the
    clients' ANTHROPIC_BASE_URL: the one given, else the simulator when the OpenAI upstream is (`sim`
    means offline, whatever the shell says), else $SEEDREPLAY_ANTHROPIC_UPSTREAM, else the
    ANTHROPIC_BASE_URL the proxy replaces (never a seedreplay proxy's own address), else Anthropic's API."""
    if option:
        return option
    if openai_upstream == SIM_UPSTREAM:
        return SIM_UPSTREAM
    if environ.get(ENV_ANTHROPIC_UPSTREAM):
        return str(environ[ENV_ANTHROPIC_UPSTREAM])
    ours = str(environ.get(ENV_PLUGIN_PROXY) or "").removesuffix("/v1")
    previous = str(environ.get(ENV_ANTHROPIC_BASE_URL) or "").rstrip("/")
    return previous if previous and previous != ours else DEFAULT_ANTHROPIC_UPSTREAM


def anthropic_environment(url: str) -> dict[str, str]:
    """What points the Anthropic clients at the proxy serving at `url` (ends in /v1): ANTHROPIC_BASE_URL,
    the proxy's root (the SDK appends /v1/messages itself)."""
    return {ENV_ANTHROPIC_BASE_URL: url.removesuffix("/v1")}


OPENAI_KEYS = (ENV_API_KEY, ENV_AZURE_API_KEY)  # what the OpenAI and Azure OpenAI clients read


def lent_keys(environ: Any = os.environ, names: tuple[str, ...] = (*OPENAI_KEYS, ENV_ANTHROPIC_API_KEY)) -> dict[str, str]:
    """Replay needs no key, but the SDKs refuse to build a client without one: dummies for the keys
    the OpenAI, Azure OpenAI and Anthropic clients read, where none is set."""
    return {name: DUMMY_API_KEY for name in names if not environ.get(name)}


def keys_to_lend(replay: bool, upstream: str, anthropic_upstream: str = "") -> tuple[str, ...]:
    """The key variables a session lends a dummy for: replay calls no upstream, and the built-in
    simulator wants no key; OpenAI's keys by its upstream, Anthropic's by its own."""
    openai = OPENAI_KEYS if replay or upstream == SIM_UPSTREAM else ()
    return (*openai, ENV_ANTHROPIC_API_KEY) if replay or anthropic_upstream == SIM_UPSTREAM else openai


def with_no_proxy(current: str | None, host: str) -> str:
    """The NO_PROXY list with `host` added (the user's own entries kept)."""
    entries = [e.strip() for e in (current or "").split(",") if e.strip()]
    return ",".join(entries if host in entries or "*" in entries else [*entries, host])


class ClientEnvironment:
    """The variables a recording session sets so clients (and subprocesses) reach its proxy, and puts
    back as they were: the pytest plugin's session and `use_cassette` alike. Generic over the names:
    whatever `proxy_environment`, `lent_keys` and NO_PROXY list is set, lifted and restored alike."""

    def __init__(self) -> None:
        self._saved: dict[str, str | None] = {}
        self._ours: dict[str, str] = {}

    def set(self, name: str, value: str) -> None:
        self._saved.setdefault(name, os.environ.get(name))
        self._ours[name] = value
        os.environ[name] = value

    def point_at(self, url: str) -> None:
        """OPENAI_BASE_URL (and the Azure endpoint, and ANTHROPIC_BASE_URL) at the proxy; its host in NO_PROXY, so an
        HTTP(S)_PROXY in the environment (corporate CI) does not capture calls to it."""
        for name, value in proxy_environment(url).items():
            self.set(name, value)
        host = urlsplit(url).hostname or "127.0.0.1"
        for name in NO_PROXY_VARS:
            self.set(name, with_no_proxy(os.environ.get(name), host))

    def lend_keys_for(self, replay: bool, upstream: str, anthropic_upstream: str = "") -> None:
        """Replay needs no API key, nor the simulator, but the SDKs refuse to build a client without
        one: lend a dummy where none is set."""
        for name, value in lent_keys(os.environ, keys_to_lend(replay, upstream, anthropic_upstream)).items():
            self.set(name, value)

    def lift(self) -> None:
        """Put back what was there before us, for a while (a test that fakes OpenAI its own way);
        `reapply` sets ours again."""
        _put_back(self._saved)

    def reapply(self) -> None:
        os.environ.update(self._ours)

    def restore(self) -> None:
        _put_back(self._saved)
        self._saved.clear()
        self._ours.clear()


def _put_back(saved: dict[str, str | None]) -> None:
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
