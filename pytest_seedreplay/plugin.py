"""pytest wiring for seedreplay (options, ini, markers, fixtures, hooks)."""

from __future__ import annotations


def pytest_addoption(parser) -> None:
    group = parser.getgroup("seedreplay")
    group.addoption("--seedreplay", dest="seedreplay_mode", default=None, help="replay|record|rewrite|live|off")
    parser.addini("seedreplay_mode", "default seedreplay mode", default="replay")
