"""Upstream URLs: where a client's path goes on the upstream, and the URL an entry records. Pure."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from .constants import KEPT_QUERY_PARAMS, SIM_RECORDED_URL, SIM_UPSTREAM

AZURE_PREFIX = "/openai/"  # Azure OpenAI's paths: /openai/deployments/{name}/..., /openai/v1/..., /openai/responses


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
