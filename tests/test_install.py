"""What installing us adds to a project: one top-level name, `pytest_seedreplay`, and a plugin that
lives beside a project's own `proxy` package."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_a_project_with_its_own_proxy_package_runs_with_the_plugin_active(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(**{"proxy/__init__.py": "NAME = 'the project proxy'\n", "proxy/config.py": "PORT = 1\n"})
    pytester.makepyfile(
        test_app="""
        import proxy
        import proxy.config

        def test_own_proxy(seedreplay):
            assert proxy.NAME == 'the project proxy' and proxy.config.PORT == 1
            assert seedreplay.mode == 'replay'
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*seedreplay (replay)*"])


def test_a_project_with_a_proxy_module_runs_with_the_plugin_active(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(proxy="VALUE = 7\n", test_app="import proxy\n\ndef test_it():\n    assert proxy.VALUE == 7\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


@pytest.mark.slow
def test_the_wheel_installs_only_pytest_seedreplay_at_the_top(tmp_path: Path) -> None:
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert build.returncode == 0, build.stderr
    (wheel,) = tmp_path.glob("pytest_seedreplay-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {name.split("/", 1)[0] for name in names if not name.split("/", 1)[0].endswith((".dist-info", ".data"))}
    assert tops == {"pytest_seedreplay"}
    # Every package folder of the repository is in the wheel (the package list in pyproject is explicit).
    assert repository_packages() <= {name.rsplit("/", 1)[0].replace("/", ".") for name in names if name.endswith("/__init__.py")}
    assert "pytest_seedreplay/proxy/sim/corpus.txt" in names


def repository_packages() -> set[str]:
    """Dotted names of the repository's packages as installed: `proxy/sim` is `pytest_seedreplay.proxy.sim`."""
    ours = {".".join(f.parent.relative_to(ROOT).parts) for f in ROOT.joinpath("pytest_seedreplay").rglob("__init__.py")}
    mapped = {
        "pytest_seedreplay." + ".".join(f.parent.relative_to(ROOT).parts) for f in ROOT.joinpath("proxy").rglob("__init__.py")
    }
    return ours | mapped
