"""Helpers for the fine-tune tests: recordings made through a real proxy in front of the simulator,
and the `seedreplay finetune` commands run with click's runner against it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openai
from click.testing import CliRunner, Result

from pytest_seedreplay.cli import main

from test_sim_finetune import EXAMPLES

BASE = "gpt-4o-mini-2024-07-18"
SEED = 4242
RECORD_SEED = 7
JOB_SECONDS = 0.3
POLL = "0.02"
SYSTEM = "You are the shop's helpful assistant."


def question(text: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": text}]


@dataclass
class Recorded:
    """What a recording session left: the cache directory and the answer each question got."""

    cache_dir: Path
    answers: dict[str, str]


def record(client: openai.OpenAI, questions: list[str], stream_every: int = 3, seed: int = RECORD_SEED) -> dict[str, str]:
    """Ask each question once through the proxy (every `stream_every`-th one streamed); the answers as the SDK saw them."""
    answers = {}
    for number, text in enumerate(questions):
        if number % stream_every == stream_every - 1:
            chunks = client.chat.completions.create(model=BASE, messages=question(text), seed=seed, stream=True)
            answers[text] = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        else:
            answer = client.chat.completions.create(model=BASE, messages=question(text), seed=seed)
            answers[text] = answer.choices[0].message.content
    return answers


def questions(count: int) -> list[str]:
    return [q for q, _, _ in EXAMPLES[:count]]


def finetune(*args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(main, ["finetune", *args], input=input, catch_exceptions=False)


def create_finetune(dataset: Path, manifest: Path, base_url: str) -> Result:
    """`seedreplay finetune create` of `dataset` on `base_url` with the tests' base model and seed."""
    return finetune(
        "create", "--file", str(dataset), "--model", BASE, "--seed", str(SEED), "--poll", POLL,
        "--base-url", base_url, "--manifest", str(manifest),
    )  # fmt: skip


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def write_jsonl(path: Path, examples: list[Any]) -> Path:
    path.write_text("".join(json.dumps(e) + "\n" for e in examples), encoding="utf-8")
    return path


def good_example(number: int) -> dict[str, Any]:
    return {
        "messages": [{"role": "user", "content": f"question {number}?"}, {"role": "assistant", "content": f"answer {number}."}]
    }


@dataclass
class TunedSim:
    """A simulator holding a real fine-tune of the 20 shop examples, and the manifest that records it."""

    sim: Any
    dataset: Path
    manifest: Path

    def version(self) -> dict[str, Any]:
        return json.loads(self.manifest.read_text(encoding="utf-8"))["versions"][-1]


def tuned_sim(root: Path) -> TunedSim:
    """Start a simulator and fine-tune a model on it with `finetune create` (the caller stops `.sim`)."""
    from conftest import start_sim

    from pytest_seedreplay.proxy.sim import SimConfig

    from test_sim_finetune import training_jsonl

    sim = start_sim(SimConfig(job_seconds=JOB_SECONDS))
    dataset = root / "cassettes" / "finetune" / "train.jsonl"
    dataset.parent.mkdir(parents=True, exist_ok=True)
    dataset.write_bytes(training_jsonl())
    manifest = root / "cassettes" / "finetunes.json"
    created = create_finetune(dataset, manifest, sim.url)
    if created.exit_code != 0:
        sim.stop()
        raise AssertionError(created.output)
    return TunedSim(sim, dataset, manifest)
