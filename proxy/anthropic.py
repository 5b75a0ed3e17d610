"""Which requests belong to Anthropic's API, and where they go: one proxy fronts OpenAI and Anthropic at
once. `/v1/messages` (and everything under it) is Anthropic's; so is any request carrying the
`anthropic-version` header every Anthropic client sends (`GET /v1/models` is both APIs' path)."""

from __future__ import annotations

from aiohttp import web

from pytest_seedreplay.core.constants import ANTHROPIC_ENDPOINTS, ANTHROPIC_VERSION_HEADER, SIM_UPSTREAM
from pytest_seedreplay.core.urls import anthropic_path

from .config import ProxyConfig


def speaks_anthropic(request: web.BaseRequest) -> bool:
    """Does `request` belong to Anthropic's API? Its errors are then shaped as Anthropic's."""
    return anthropic_path(request.path) or ANTHROPIC_VERSION_HEADER in request.headers


def anthropic_base(url: str) -> str:
    """The Anthropic upstream as a base URL ending in /v1, as the proxy joins paths to it (the user
    gives Anthropic's root, `https://api.anthropic.com`, as the SDK's base_url does); `sim` stays."""
    if url == SIM_UPSTREAM:
        return url
    url = url.rstrip("/")
    return url if url.endswith("/v1") else url + "/v1"


def upstream_of(config: ProxyConfig, endpoint: str) -> str:
    """The configured upstream a cacheable endpoint's requests go to."""
    return anthropic_base(config.anthropic_upstream) if endpoint in ANTHROPIC_ENDPOINTS else config.upstream


def forwarded_upstream(config: ProxyConfig, request: web.BaseRequest) -> str:
    """The configured upstream an uncached request goes to."""
    return anthropic_base(config.anthropic_upstream) if speaks_anthropic(request) else config.upstream
