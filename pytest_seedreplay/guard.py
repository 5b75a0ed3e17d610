"""The replay-mode network guard: vcrpy patches the OpenAI SDK's transports (httpx, httpx2) so that
a request to a non-loopback host fails loudly instead of reaching the network."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable
from urllib.parse import urlsplit

from proxy.config import is_loopback


@dataclass
class Blocked:
    """A request the replay guard stopped before it reached the network."""

    method: str
    url: str


class NetworkBlocked(ConnectionError):
    """Raised inside httpx/httpx2 for a request that would leave the machine in replay mode."""


class ReplayGuard:
    """Around one replay-mode test: a request to a non-loopback host fails loudly, so a client that
    bypasses OPENAI_BASE_URL cannot reach the network unnoticed. Loopback requests pass untouched."""

    def __init__(self, proxy_url: str, on_block: Callable[[Blocked], None]):
        self.proxy_url = proxy_url
        self.on_block = on_block
        self._context = None

    def _filter(self, request):
        host = urlsplit(request.uri).hostname or ""
        if is_loopback(host):
            return None  # None: vcrpy lets it through untouched and records nothing
        self.on_block(Blocked(request.method, request.uri))
        raise NetworkBlocked(
            f"seedreplay blocked {request.method} {request.uri}: replay mode allows no network. "
            f"Leave base_url unset so OPENAI_BASE_URL ({self.proxy_url}) is used, or use the "
            "openai_client fixture; record with pytest --seedreplay=record"
        )

    def __enter__(self) -> ReplayGuard:
        import vcr
        import vcr.patch as vcr_patch
        from vcr.persisters.filesystem import CassetteNotFoundError

        class NothingPersister:
            """An ephemeral cassette: loads nothing, saves nothing."""

            @staticmethod
            def load_cassette(cassette_path, serializer):
                raise CassetteNotFoundError()

            @staticmethod
            def save_cassette(cassette_path, cassette_dict, serializer):
                return None

        options: dict[str, Any] = {"record_mode": "none", "before_record_request": self._filter}
        names = getattr(vcr_patch, "PATCHER_NAMES", None)
        # vcrpy >= 9 can patch only the OpenAI SDK's transports; older ones patch every library they know.
        if names:
            options["skip_patchers"] = tuple(n for n in names if n not in ("httpx", "httpx2"))
        guard = vcr.VCR(**options)
        guard.register_persister(NothingPersister)
        self._context = guard.use_cassette("seedreplay-replay-guard")
        self._context.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._context is not None:
            self._context.__exit__(None, None, None)
            self._context = None
