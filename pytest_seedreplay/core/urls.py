"""Upstream URLs: where a client's path goes on the upstream, the URL an entry records, an upstream's URL
checked and fit for logs, and which hosts are loopback. Pure."""

from __future__ import annotations

import ipaddress
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from .constants import KEPT_QUERY_PARAMS, MESSAGES, SIM_RECORDED_URL, SIM_UPSTREAM

AZURE_PREFIX = "/openai/"  # Azure OpenAI's paths: /openai/deployments/{name}/..., /openai/v1/..., /openai/responses


def anthropic_path(path: str) -> bool:
    """Is `path` Anthropic's Messages API (`/v1/messages` and everything under it: count_tokens, batches)?"""
    return path == MESSAGES or path.startswith(MESSAGES + "/")


def api_root(base: str) -> str:
    """The upstream's root for Azure OpenAI's `/openai/...` paths: `base` without a trailing `/v1`,
    then without a trailing `/openai` (`https://r.openai.azure.com/openai/v1` -> `https://r.openai.azure.com`)."""
    root = base.rstrip("/")
    for tail in ("/v1", "/openai"):
        root = root.removesuffix(tail)
    return root


def join_upstream(base: str, path: str) -> str:
    """The upstream URL of a client's `path` (query included): an OpenAI path (`/v1/...`) goes under
    `base` (which ends in /v1), an Azure path (`/openai/...`) under the upstream's root."""
    if path.startswith(AZURE_PREFIX):
        return api_root(base) + path
    rest = path[3:] if path.startswith("/v1") else path
    return base.rstrip("/") + rest


def recorded_upstream(upstream: str) -> str:
    """The upstream as entries and cassettes name it: a URL, never the word `sim`."""
    return SIM_RECORDED_URL if upstream == SIM_UPSTREAM else upstream


def recorded_url(url: str) -> str:
    """`url` fit to be written down: no user or password, and of the query only the API version."""
    parts = urlsplit(url)
    netloc = parts.netloc.rpartition("@")[2]
    kept = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k in KEPT_QUERY_PARAMS]
    return urlunsplit((parts.scheme, netloc, parts.path, urlencode(kept), ""))


def entry_url(upstream: str, endpoint: str, url: str) -> str:
    """What an entry keeps of the URL its request went to (see `Entry.url`): `url` fit to be written
    down, or "" when it says no more than `upstream` + `endpoint` does."""
    url = recorded_url(url)
    return "" if url == join_upstream(recorded_upstream(upstream), endpoint) else url


def public_url(url: str) -> str:
    """The URL without user:password, fit for logs and stored entries."""
    if url == SIM_UPSTREAM:
        return url
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = host + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def check_upstream(url: str) -> str:
    """The upstream base URL, trailing slash removed; ValueError with a hint when it is not usable."""
    if url == SIM_UPSTREAM:
        return url
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(
            f"upstream {public_url(url)!r} is not an http(s) base URL; "
            "give one like https://api.openai.com/v1, or the word 'sim' for the built-in simulator"
        )
    return url.rstrip("/")


def is_loopback(host: str) -> bool:
    """True for hosts only this machine can reach (127.0.0.0/8, ::1, localhost)."""
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
