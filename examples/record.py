"""Re-record the repository's cassettes/ from scratch, offline: `python examples/record.py`.

1. starts the simulator (its state kept in .seedreplay/examples-sim, so the fine-tune survives it);
2. records the example suite's cassettes: `pytest examples --seedreplay=record` into an empty cassettes/
   (the test that reads the manifest last, once the fine-tune exists);
3. exports the FAQ tests' recordings (`seedreplay finetune export --tests 'test_shop.py::*'`);
4. fine-tunes the base model on them with seed 4242 (`seedreplay finetune create`), writing
   cassettes/finetunes.json afresh;
5. checks the story: `pytest examples --seedreplay=live --seedreplay-finetune latest` must find every
   FAQ answer verbatim in the fine-tune, and `pytest examples` must replay everything offline.

Afterwards the fine-tune can be asked again with the same simulator state:
    seedreplay sim --port 8000 --state-dir .seedreplay/examples-sim
    pytest examples --seedreplay=live --seedreplay-finetune latest --seedreplay-upstream http://127.0.0.1:8000/v1
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Relative to ROOT (the script runs there): what the manifest and the export record write down reads
# the same on every machine.
CASSETTES = Path("cassettes")
SIM_STATE = Path(".seedreplay") / "examples-sim"
BASE_MODEL = "gpt-4o-mini-2024-07-18"
SEED = 4242
DATASET = CASSETTES / "finetune" / "train.jsonl"


def seedreplay(*args: str) -> None:
    """One `seedreplay` command, in this process; stops the script when it fails."""
    from pytest_seedreplay.cli import main

    print(f"$ seedreplay {' '.join(args)}", flush=True)
    try:
        main.main(list(args), prog_name="seedreplay", standalone_mode=False)
    except Exception as exc:  # click.ClickException and friends: the command already said what went wrong
        sys.exit(f"seedreplay {args[0]} {args[1]} failed: {exc}")


def pytest(*args: str) -> None:
    print(f"$ pytest examples {' '.join(args)}", flush=True)
    done = subprocess.run([sys.executable, "-m", "pytest", "examples", "-p", "no:cacheprovider", *args], cwd=ROOT)
    if done.returncode != 0:
        sys.exit(f"pytest examples {' '.join(args)} failed (exit {done.returncode})")


def main() -> None:
    from pytest_seedreplay.proxy.serve import BackgroundServer
    from pytest_seedreplay.proxy.sim import SimConfig, make_sim_app

    os.chdir(ROOT)
    os.environ.setdefault("OPENAI_API_KEY", "sk-simulator-needs-no-key")  # the simulator checks none
    shutil.rmtree(SIM_STATE, ignore_errors=True)
    shutil.rmtree(CASSETTES, ignore_errors=True)  # rewritten from nothing: no recording outlives its test
    config = SimConfig(job_seconds=2.0, state_dir=SIM_STATE)
    with BackgroundServer(lambda: make_sim_app(config)) as sim:
        upstream = f"{sim.url}/v1"
        # The test that reads the manifest is recorded once the fine-tune exists.
        pytest("--seedreplay=record", f"--seedreplay-upstream={upstream}", "-k", "not fine_tune")
        seedreplay("finetune", "export", "--cassette-dir", str(CASSETTES), "--tests", "test_shop.py::*", "-o", str(DATASET))
        seedreplay(
            "finetune",
            "create",
            "--file",
            str(DATASET),
            "--model",
            BASE_MODEL,
            "--seed",
            str(SEED),
            "--suffix",
            "shop-faq",
            "--poll",
            "0.2",
            "--base-url",
            upstream,
            "--manifest",
            str(CASSETTES / "finetunes.json"),
        )
        pytest("--seedreplay=record", f"--seedreplay-upstream={upstream}")
        pytest(
            "--seedreplay=live", "--seedreplay-finetune", "latest", "--seedreplay-drift=fail", f"--seedreplay-upstream={upstream}"
        )
    pytest()  # the simulator is gone: the cassettes alone answer
    print(f"cassettes re-recorded under {CASSETTES}/; commit them with the manifest")


if __name__ == "__main__":
    main()
