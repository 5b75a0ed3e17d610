"""The repository's own cassettes/ (recorded by `python examples/record.py`, replayed in CI by
`pytest examples`) hold what the manifest says: the example fine-tune was trained on exactly the
answers recorded in the shop's cassettes, for the model the shop asks."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_seedreplay.finetune.manifest import Manifest
from pytest_seedreplay.shapes import answer_body
from pytest_seedreplay.store.cassette import read_cassette

ROOT = Path(__file__).resolve().parent.parent
CASSETTES = ROOT / "cassettes"


def test_the_example_manifest_names_its_dataset_by_hash_and_the_shops_model():
    manifest = Manifest(CASSETTES / "finetunes.json")
    version = manifest.find("latest")
    dataset = manifest.dataset_path(version)
    assert dataset == CASSETTES / "finetune" / "train.jsonl"
    assert hashlib.sha256(dataset.read_bytes()).hexdigest() == version.dataset_sha256
    assert version.seed == 4242 and version.fine_tuned_model.startswith(f"ft:{version.base_model}:")
    shop = (ROOT / "examples" / "shop.py").read_text()
    assert f'MODEL = "{version.base_model}"' in shop
    assert "/work/" not in (CASSETTES / "finetunes.json").read_text()  # no path of the machine that recorded it


def test_the_example_fine_tune_was_trained_on_the_recorded_answers():
    recorded = {}
    for path in sorted((CASSETTES / "test_shop").glob("*.yaml")):
        for entry in read_cassette(path):
            question = entry.request["params"]["messages"][-1]["content"]
            recorded[question] = answer_body(entry)["choices"][0]["message"]["content"]
    lines = (CASSETTES / "finetune" / "train.jsonl").read_text(encoding="utf-8").splitlines()
    taught = {}
    for line in lines:
        messages = json.loads(line)["messages"]
        taught[messages[-2]["content"]] = messages[-1]["content"]
    assert len(taught) == 12 and taught == recorded


@pytest.mark.slow
def test_the_examples_run_with_only_what_the_readme_installs(tmp_path: Path) -> None:
    # A fresh venv with `pip install -e .` and nothing else: no pytest-asyncio, no test extras.
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "-e", str(ROOT)], capture_output=True, text=True, timeout=480
    )
    assert install.returncode == 0, install.stderr[-2000:]
    installed = subprocess.run([str(python), "-m", "pip", "list"], capture_output=True, text=True, timeout=60).stdout
    assert "pytest-asyncio" not in installed and "anyio" in installed
    run = subprocess.run(
        [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "error::pytest.PytestConfigWarning"],
        cwd=ROOT / "examples",
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert "15 passed" in run.stdout and "not natively supported" not in run.stdout
