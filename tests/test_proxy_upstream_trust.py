"""What the proxy sends to the upstream, and what it does with what comes back, when the upstream is
hostile or another tenant's recordings are near: redirects are never followed by any upstream call,
a learned tier's embeddings stay in the caller's namespace."""

from __future__ import annotations

import asyncio

from multidict import CIMultiDict
from yarl import URL

from pytest_seedreplay.proxy.serve import BackgroundServer
from pytest_seedreplay.proxy.upstream import Upstream

from proxy_support import API_KEY, Recorder


def test_a_learned_tiers_upstream_call_never_follows_a_redirect(recorder):
    elsewhere, redirecting = Recorder(), recorder[0]
    with BackgroundServer(elsewhere.app) as other:
        redirecting.redirect_to = f"{other.url}/v1/embeddings"

        async def ask() -> tuple[int, bytes]:
            upstream = Upstream()
            await upstream.open()
            try:
                headers = CIMultiDict({"api-key": API_KEY, "Content-Type": "application/json"})
                url = URL(f"{recorder[1].url}/v1/embeddings")
                return await upstream.ask(url, headers, b'{"model": "m", "input": ["x"]}', 10, "the upstream")
            finally:
                await upstream.close()

        status, _ = asyncio.run(ask())
    assert status == 307  # the redirect itself is the answer: the tier treats it as a failed one
    assert len(redirecting.seen) == 1 and redirecting.seen[0].headers["api-key"] == API_KEY
    assert elsewhere.seen == []  # the caller's key never went to the Location
