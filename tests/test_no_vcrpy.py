"""vcrpy is a test dependency only: every module of the package imports, and cassettes are written,
read and served, in a process where `import vcr` fails."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

SCRIPT = """
import importlib, pkgutil, sys, tempfile
from pathlib import Path
sys.modules["vcr"] = None  # any `import vcr...` now raises ImportError

import pytest_seedreplay
imported = 0
for module in pkgutil.walk_packages(pytest_seedreplay.__path__, "pytest_seedreplay."):
    importlib.import_module(module.name)
    imported += 1

import openai
from pytest_seedreplay import use_cassette
from pytest_seedreplay.store.cassette import read_cassette

path = Path(tempfile.mkdtemp()) / "c.yaml"
question = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}], "seed": 1}
with use_cassette(path, mode="record", upstream=sys.argv[1]) as cassette:
    recorded = openai.OpenAI(base_url=cassette.url, api_key="sk-test-x", max_retries=0).chat.completions.create(**question)
with use_cassette(path, mode="replay", upstream="http://127.0.0.1:9/v1") as cassette:
    replayed = openai.OpenAI(base_url=cassette.url, max_retries=0).chat.completions.create(**question)
assert replayed.choices[0].message.content == recorded.choices[0].message.content
assert len(read_cassette(path)) == 1
print(imported, "modules;", sorted(name for name in sys.modules if name.split(".")[0] == "vcr"))
"""


def test_the_package_runs_where_vcrpy_cannot_be_imported(sim) -> None:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, sim.url], capture_output=True, text=True, timeout=120, cwd=ROOT, check=False
    )
    assert result.returncode == 0, result.stderr
    count, rest = result.stdout.split(" modules;")
    assert int(count) > 50
    assert rest.strip() == "['vcr']"  # only the blocker we put there


def test_vcrpy_is_required_by_the_test_extra_only() -> None:
    from importlib.metadata import requires

    wanted = [requirement for requirement in requires("pytest-seedreplay") or [] if requirement.startswith("vcrpy")]
    assert wanted and all('extra == "test"' in requirement for requirement in wanted)
