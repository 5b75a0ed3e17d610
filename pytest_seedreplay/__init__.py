"""seedreplay: record once, replay forever — a record/replay cache for the OpenAI API.

The public Python API, for unittest suites, scripts and notebooks (the CLI and the pytest plugin use
the same pieces):

    from pytest_seedreplay import request_key, open_store, Proxy, use_cassette

Names are imported on first use, so `import pytest_seedreplay` (which pytest does for the plugin in
every project) costs nothing until one is asked for.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .core.version import __version__

__all__ = ["Proxy", "__version__", "open_store", "request_key", "use_cassette"]

_WHERE = {
    "request_key": "pytest_seedreplay.core.key",
    "open_store": "pytest_seedreplay.store",
    "Proxy": "pytest_seedreplay.proxy.running",
    "use_cassette": "pytest_seedreplay.cassettes",
}

if TYPE_CHECKING:
    from .cassettes import use_cassette
    from .core.key import request_key
    from .proxy.running import Proxy
    from .store import open_store


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        import importlib

        value = getattr(importlib.import_module(_WHERE[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'pytest_seedreplay' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
