"""The plugin on the pytest versions it supports: what it registers with pytest's plugin manager must
be hashable (pytest 8.4 keeps the plugins in a set: an unhashable one was an INTERNALERROR on every
run), checked here under the pytest installed and, slow, under pytest 8.4 itself."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from plugin_inner import run

HASHES_EVERY_PLUGIN = """
import pytest


@pytest.mark.seedreplay
def test_every_registered_plugin_is_hashable(request):
    plugins = request.config.pluginmanager.get_plugins()
    unhashable = []
    for plugin in plugins:
        try:
            hash(plugin)
        except TypeError:
            unhashable.append(type(plugin).__name__)
    assert any(type(p).__name__ == "_State" for p in plugins)  # the plugin's own state is among them
    assert unhashable == []
"""


@pytest.mark.parametrize("opt_in", [[], ["--seedreplay=replay"]], ids=["per-test", "session-wide"])
def test_every_object_the_plugin_registers_is_hashable(pytester: pytest.Pytester, opt_in: list[str]) -> None:
    pytester.makepyfile(test_hash=HASHES_EVERY_PLUGIN)
    run(pytester, *opt_in).assert_outcomes(passed=1)


@pytest.fixture(scope="module")
def pytest_84(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """pytest 8.4.2 in a folder of its own, put first on the path of a subprocess (pip, once per module)."""
    target = tmp_path_factory.mktemp("pytest84")
    pip = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), "pytest==8.4.2"]
    done = subprocess.run(pip, capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        pytest.skip(f"pytest 8.4.2 could not be installed here: {done.stderr.strip()[-200:]}")
    return target


@pytest.mark.slow
@pytest.mark.parametrize("opt_in", [[], ["--seedreplay=replay"]], ids=["per-test", "session-wide"])
def test_a_run_under_pytest_84_works(pytest_84: Path, tmp_path: Path, opt_in: list[str]) -> None:
    (tmp_path / "test_hash.py").write_text(HASHES_EVERY_PLUGIN, encoding="utf-8")
    # Only our plugin: the other plugins installed here may want a newer pytest.
    env = {**os.environ, "PYTHONPATH": str(pytest_84), "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    command = [sys.executable, "-m", "pytest", "-p", "pytest_seedreplay.plugin", "-p", "no:cacheprovider", *opt_in]
    done = subprocess.run([*command, "-q", "test_hash.py"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert "INTERNALERROR" not in done.stdout + done.stderr
    assert done.returncode == 0, done.stdout + done.stderr
    version = subprocess.run([*command, "--version"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert "8.4.2" in version.stdout + version.stderr
