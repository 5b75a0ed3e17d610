"""The environment a recording session sets and reads: which upstream to record from, OPENAI_BASE_URL
pointing at our proxy, NO_PROXY keeping it direct, a dummy key for replay. Pure helpers, stdlib only."""

from __future__ import annotations

import os
from typing import Any

from .constants import DEFAULT_UPSTREAM, ENV_BASE_URL, ENV_PLUGIN_PROXY, ENV_UPSTREAM

DUMMY_API_KEY = "seedreplay-replay-needs-no-key"  # replay needs no key, but the SDK wants one
NO_PROXY_VARS = ("NO_PROXY", "no_proxy")  # httpx, requests and urllib read either spelling


def choose_upstream(option: str | None, environ: Any = os.environ) -> str:
    """The upstream to record from: the one given, else $SEEDREPLAY_UPSTREAM, else the OPENAI_BASE_URL
    the proxy replaces (unless it is a seedreplay proxy itself), else the OpenAI API."""
    if option:
        return option
    if environ.get(ENV_UPSTREAM):
        return str(environ[ENV_UPSTREAM])
    previous = environ.get(ENV_BASE_URL)
    if previous and previous != environ.get(ENV_PLUGIN_PROXY):
        return str(previous)
    return DEFAULT_UPSTREAM


def with_no_proxy(current: str | None, host: str) -> str:
    """The NO_PROXY list with `host` added (the user's own entries kept)."""
    entries = [e.strip() for e in (current or "").split(",") if e.strip()]
    return ",".join(entries if host in entries or "*" in entries else [*entries, host])
