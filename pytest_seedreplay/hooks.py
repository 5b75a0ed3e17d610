"""Hooks other plugins (or a conftest.py) implement to work with seedreplay, as pytest-recording's
`pytest_recording_configure` lets them work with vcrpy."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from .recorder import TestRecording
    from .settings import Settings


@pytest.hookspec
def pytest_seedreplay_configure(config: pytest.Config, settings: Settings) -> None:
    """Called once at the start of the session, after the initial conftest.py files are loaded (so a
    conftest.py can implement it, as a plugin can), before any test runs: `settings` (mode,
    cassette_dir, upstream, drift_policy, keep_failed) may be changed in place; mode "off" turns the
    plugin off. (A session-wide opt-in has already pointed OPENAI_BASE_URL at the proxy's port.)"""


@pytest.hookspec
def pytest_seedreplay_recording(item: pytest.Item, recording: TestRecording) -> None:
    """Called when a test's cassette is being served, before the test's own fixtures: `recording`
    says which cassette, mode and seed (read-only), and later what the test recorded, replayed, missed."""


@pytest.hookspec(firstresult=True)
def pytest_seedreplay_cassette_path(item: pytest.Item, cassette_dir: Any, name: str | None) -> Any:
    """Return the cassette path of `item` (a `pathlib.Path`) to place cassettes your own way, or None
    for the default (`<cassette_dir>/<module path>/<test name>.yaml`, or `<cassette_dir>/<name>.yaml`)."""
