"""`seedreplay finetune create / status / ls / show` against the simulator's fine-tuning API, with the real SDK."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import openai
import pytest

from pytest_seedreplay.finetune.manifest import Manifest, public_base_url

from finetune_support import BASE, JOB_SECONDS, POLL, SEED, finetune, lines, questions, record, write_jsonl
from proxy_support import API_KEY
from test_sim_finetune import training_jsonl

MANIFEST = Path("cassettes/finetunes.json")


@pytest.fixture
def provider(sim_factory, tmp_path, monkeypatch):
    """A simulator whose jobs take JOB_SECONDS, reached through OPENAI_BASE_URL with a key-shaped key; cwd is tmp_path."""
    sim = sim_factory(job_seconds=JOB_SECONDS)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OPENAI_BASE_URL", sim.url)
    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
    return sim


@pytest.fixture
def dataset(tmp_path) -> Path:
    path = tmp_path / "train.jsonl"
    path.write_bytes(training_jsonl())
    return path


def create(*args: str):
    return finetune("create", "--model", BASE, "--seed", str(SEED), "--poll", POLL, *args)


def uploads(sim) -> int:
    return sim.stats()["requests"].get("POST /v1/files", 0)


def test_create_from_an_export_follows_the_job_and_records_a_version(provider, proxy_factory, tmp_path):
    proxy = proxy_factory(provider.url, cache_dir=tmp_path / "cache")
    record(proxy.client(), questions(12))
    proxy.settle()
    assert finetune("export", "--cache-dir", "cache").exit_code == 0
    result = create("--suffix", "shop")
    assert result.exit_code == 0, result.output
    # Not a terminal: plain lines, one per status change and per event.
    assert "job ftjob-" in result.output and "· Validating training file" in result.output and ": succeeded" in result.output
    assert "Step " in result.output and "training loss=" in result.output
    version = Manifest(MANIFEST).find("latest")
    dataset = Path("cassettes/finetune/train.jsonl")
    assert version.version == 1 and version.label == "v1"
    assert version.base_model == BASE and version.seed == SEED and version.suffix == "shop"
    assert version.fine_tuned_model.startswith(f"ft:{BASE}:seedreplay:shop:")
    assert version.job_id.startswith("ftjob-") and version.training_file.startswith("file-")
    assert version.dataset_sha256 == hashlib.sha256(dataset.read_bytes()).hexdigest()
    assert version.examples == 12 and version.dataset == "finetune/train.jsonl"
    assert version.base_url == provider.url and version.trained_tokens > 0 and version.epochs == 8
    assert version.exported_from["sources"][0] == {"kind": "store", "location": "cache", "entries": 12}
    assert f"recorded v1 in {MANIFEST}: ask {version.fine_tuned_model} with seed {SEED}" in result.output
    assert API_KEY not in MANIFEST.read_text()
    job = openai.OpenAI(base_url=provider.url, api_key="x").fine_tuning.jobs.retrieve(version.job_id)
    assert job.metadata["seedreplay_dataset_sha256"] == version.dataset_sha256


def test_ls_and_show_name_each_version(provider, dataset):
    assert create("--file", str(dataset)).exit_code == 0
    assert create("--file", str(dataset), "--force", "--epochs", "2").exit_code == 0
    listed = finetune("ls")
    assert listed.exit_code == 0
    rows = listed.output.splitlines()
    assert rows[0].split() == ["VERSION", "CREATED", "BASE", "FINE-TUNED", "MODEL", "SEED", "EXAMPLES", "DATASET"]
    assert [r.split()[0] for r in rows[1:]] == ["v1", "v2"]
    second = Manifest(MANIFEST).find("2")
    assert second.epochs == 2
    for spec in ("v2", "2", "latest", second.fine_tuned_model, second.job_id):
        shown = finetune("show", spec, "--json")
        assert shown.exit_code == 0 and json.loads(shown.output)["version"] == 2, spec
    text = finetune("show", "1").output
    assert "fine tuned model:" in text and f"seed:             {SEED}" in text
    unknown = finetune("show", "v9")
    assert unknown.exit_code == 1 and "no version 'v9'" in unknown.output and "v1, v2" in unknown.output


def test_an_unchanged_dataset_is_refused_unless_forced(provider, dataset):
    assert create("--file", str(dataset)).exit_code == 0
    before = uploads(provider)
    again = create("--file", str(dataset))
    assert again.exit_code == 1
    assert "is unchanged since v1" in again.output and "--force" in again.output
    assert uploads(provider) == before  # refused before anything was uploaded
    assert len(Manifest(MANIFEST).versions) == 1
    forced = create("--file", str(dataset), "--force")
    assert forced.exit_code == 0 and [v.version for v in Manifest(MANIFEST).versions] == [1, 2]


def test_a_failed_job_exits_1_with_its_last_events_and_leaves_the_manifest(provider, dataset, tmp_path):
    assert create("--file", str(dataset)).exit_code == 0
    before = MANIFEST.read_bytes()
    # Valid for the provider's format (a user turn may be content parts), refused by this provider's own checks.
    examples = lines(dataset)
    for example in examples:
        example["messages"][1]["content"] = [{"type": "text", "text": example["messages"][1]["content"]}]
    parts = write_jsonl(tmp_path / "parts.jsonl", examples)
    result = create("--file", str(parts))
    assert result.exit_code == 1
    assert "last events of job ftjob-" in result.output
    assert "! The job failed due to an invalid training file" in result.output and "missing_content" in result.output
    assert "failed: " in result.output and "the manifest is unchanged" in result.output
    assert MANIFEST.read_bytes() == before


def test_a_provider_that_cannot_be_reached_is_one_line(provider, dataset, monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    result = finetune("create", "--file", str(dataset), "--model", BASE, "--seed", "1")
    assert result.exit_code == 1 and "cannot reach http://127.0.0.1:9/v1" in result.output
    assert "Traceback" not in result.output and not MANIFEST.exists()
    refused = finetune(
        "create", "--file", str(dataset), "--model", "text-embedding-3-small", "--seed", "1", "--base-url", provider.url
    )
    assert refused.exit_code == 1 and "answered 400" in refused.output and "not available for fine-tuning" in refused.output


def test_no_key_is_needed_on_this_machine_but_is_elsewhere(provider, dataset, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY")
    assert create("--file", str(dataset)).exit_code == 0
    monkeypatch.setenv("OPENAI_BASE_URL", "https://api.example.invalid/v1")
    far = create("--file", str(dataset), "--force")
    assert far.exit_code == 1 and "OPENAI_API_KEY is not set" in far.output


def test_the_manifest_never_keeps_credentials_of_a_base_url():
    assert public_base_url("https://user:sk-secret@gateway.example:8443/v1/?api-key=abc#x") == "https://gateway.example:8443/v1"
    assert public_base_url("http://127.0.0.1:8787/v1") == "http://127.0.0.1:8787/v1"


# --- following from another process: cancel elsewhere, Ctrl-C -----------------------------------------


# The installed `seedreplay` script, run with Ctrl-C as a terminal delivers it. A process started with
# SIGINT ignored (an asynchronous command of a non-interactive shell, as some CI runners start the
# suite) passes that on to its children, and Python then never raises KeyboardInterrupt in them.
WITH_CTRL_C = (
    "import runpy, signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')"
)


def seedreplay(*args: str, env: dict[str, str]) -> subprocess.Popen:
    script = Path(sys.executable).with_name("seedreplay")
    return subprocess.Popen(
        [sys.executable, "-c", WITH_CTRL_C, str(script), *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, **env, "PYTHONUNBUFFERED": "1", "NO_COLOR": "1"},
    )


def read_until(process: subprocess.Popen, marker: str, deadline_s: float = 20) -> list[str]:
    seen = []
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        seen.append(line)
        if marker in line:
            return seen
    raise AssertionError(f"{marker!r} never appeared: {seen}")


@pytest.fixture
def slow_provider(sim_factory, tmp_path, monkeypatch):
    """Jobs that run long enough to be interrupted (60 s; every test here ends them first)."""
    sim = sim_factory(job_seconds=60)
    monkeypatch.chdir(tmp_path)
    return sim


def start_create(sim, dataset: Path) -> tuple[subprocess.Popen, str]:
    process = seedreplay(
        "finetune",
        "create",
        "--file",
        str(dataset),
        "--model",
        BASE,
        "--seed",
        str(SEED),
        "--poll",
        "0.05",
        env={"OPENAI_BASE_URL": sim.url},
    )
    line = read_until(process, "job ftjob-")[-1]
    job_id = line.split()[1].rstrip(":")
    read_until(process, "· Validating training file")  # following
    return process, job_id


def test_a_job_cancelled_elsewhere_exits_1_and_leaves_no_version(slow_provider, dataset):
    process, job_id = start_create(slow_provider, dataset)
    try:
        openai.OpenAI(base_url=slow_provider.url, api_key="x").fine_tuning.jobs.cancel(job_id)
        output, _ = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == 1
    assert ": cancelled" in output and "Job cancelled by the user" in output
    assert f"job {job_id} cancelled" in output and not MANIFEST.exists()


def test_ctrl_c_then_cancel_cancels_the_job(slow_provider, dataset):
    process, job_id = start_create(slow_provider, dataset)
    try:
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate("cancel\n", timeout=30)
    finally:
        process.kill()
    assert "Cancel job" in output and "or leave it running?" in output
    assert process.returncode == 1 and f"job {job_id} cancelled" in output and "Traceback" not in output
    job = openai.OpenAI(base_url=slow_provider.url, api_key="x").fine_tuning.jobs.retrieve(job_id)
    assert job.status == "cancelled" and not MANIFEST.exists()


def test_ctrl_c_then_leave_keeps_the_job_and_status_finishes_it(sim_factory, dataset, tmp_path, monkeypatch):
    sim = sim_factory(job_seconds=4)
    monkeypatch.chdir(tmp_path)
    process, job_id = start_create(sim, dataset)
    try:
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate("leave\n", timeout=30)
    finally:
        process.kill()
    assert process.returncode == 130
    assert f"follow it again with: seedreplay finetune status {job_id}" in output
    client = openai.OpenAI(base_url=sim.url, api_key="x")
    assert client.fine_tuning.jobs.retrieve(job_id).status not in ("cancelled", "failed")
    assert not MANIFEST.exists()
    monkeypatch.setenv("OPENAI_BASE_URL", sim.url)
    resumed = finetune("status", job_id, "--poll", POLL)
    assert resumed.exit_code == 0, resumed.output
    version = Manifest(MANIFEST).find("latest")
    assert version.job_id == job_id and version.examples == 20
    assert version.dataset_sha256 == hashlib.sha256(dataset.read_bytes()).hexdigest()
    assert finetune("status", job_id, "--poll", POLL).exit_code == 0  # again: the same version, not a second one
    assert len(Manifest(MANIFEST).versions) == 1


def test_status_of_a_finished_foreign_job_reads_every_page_of_events(provider):
    """A job started elsewhere (no seedreplay metadata) that ran to the end before anyone looked: its
    105 events span two pages, and the version says it does not know what the job was trained on."""
    from test_sim_finetune import train

    client = openai.OpenAI(base_url=provider.url, api_key="x")
    _, done = train(client, training_jsonl(), seed=SEED)
    assert len(list(client.fine_tuning.jobs.list_events(done.id, limit=100))) > 100
    result = finetune("status", done.id, "--poll", POLL)
    assert result.exit_code == 0, result.output
    assert "was not started by seedreplay" in result.output
    assert "· Validating training file" in result.output and "· Step 100/100" in result.output
    version = Manifest(MANIFEST).find(done.id)
    assert version.fine_tuned_model == done.fine_tuned_model and version.dataset_sha256 is None


def test_the_live_display_shows_the_steps_a_long_poll_skipped(provider, dataset):
    # A terminal's live display, with one look before the job runs and one once it has ended (as a
    # 2 s --poll sees a fast simulator job): the steps in between still scroll above the bar.
    import io

    from rich.console import Console

    from pytest_seedreplay.cli.finetune_progress import LiveDisplay
    from pytest_seedreplay.finetune.jobs import follow

    client = openai.OpenAI(max_retries=0)
    uploaded = client.files.create(file=dataset.open("rb"), purpose="fine-tune")
    job = client.fine_tuning.jobs.create(model=BASE, training_file=uploaded.id, seed=SEED)

    def until_the_job_ends(_poll: float) -> None:
        for _ in range(400):  # bounded: the job takes JOB_SECONDS
            if client.fine_tuning.jobs.retrieve(job.id).status in ("succeeded", "failed", "cancelled"):
                return
            time.sleep(0.02)

    screen = io.StringIO()
    display = LiveDisplay(job.id, Console(file=screen, force_terminal=True, width=120))
    display.start()
    looks = 0
    for progress in follow(client, job.id, poll=2.0, sleep=until_the_job_ends):
        display.update(progress)
        looks += 1
    display.stop()
    shown = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", screen.getvalue())  # the terminal's control codes
    assert looks <= 2  # one look before the job ended (unless the machine was slower than the job), one after
    statuses = re.findall(rf"job {job.id}: (\w+)", shown)  # the first look's status depends on the machine's pace
    assert len(statuses) == looks and statuses[-1] == "succeeded", shown
    assert "Fine-tuning job started" in shown
    steps = [line for line in shown.splitlines() if "Step " in line and "training loss" in line]
    assert len(steps) >= 5, shown
