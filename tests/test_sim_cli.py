"""`seedreplay sim` as users run it, and state that survives a restart."""

from __future__ import annotations

import io
import json
import re
import signal
import socket
import subprocess
import sys
import threading
import urllib.request

import openai
import pytest
from click.testing import CliRunner

from pytest_seedreplay.cli import main

from test_sim_finetune import EXAMPLES, SEED, training_jsonl, wait_for_job

LISTENING = re.compile(r"^seedreplay sim listening on (http://127\.0\.0\.1:\d+/v1)$")


def read_line(stream, timeout: float) -> str:
    """First line of a subprocess's stdout, or fail after `timeout` seconds."""
    line: list[str] = []
    reader = threading.Thread(target=lambda: line.append(stream.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    assert line, f"no listening line within {timeout}s"
    return line[0].rstrip("\n")


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_sim_subprocess_prints_listening_line_serves_and_stops_on_signal(tmp_path, stop_signal):
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from pytest_seedreplay.cli import main; main()",
            "sim",
            "--port",
            "0",
            "--state-dir",
            str(tmp_path),
            "--drift",
            "v2",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        match = LISTENING.match(read_line(process.stdout, 20))
        assert match, "unexpected listening line"
        client = openai.OpenAI(base_url=match.group(1), api_key="sk-test", max_retries=0)
        answer = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], seed=1)
        assert answer.choices[0].message.content
        client.files.create(file=("t.jsonl", io.BytesIO(b'{"messages": []}\n')), purpose="fine-tune")
        assert (tmp_path / "state.json").exists()
        process.send_signal(stop_signal)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert "Traceback" not in process.stderr.read()


def test_help_lists_every_option():
    result = CliRunner().invoke(main, ["sim", "--help"])
    assert result.exit_code == 0
    for option in (
        "--host",
        "--port",
        "--state-dir",
        "--latency-ms",
        "--tokens-per-s",
        "--drift",
        "--job-seconds",
        "--fault-rate",
        "--require-auth",
        "--strict-models",
    ):
        assert option in result.output


def test_strict_models_flag_refuses_names_outside_the_catalogue():
    process = subprocess.Popen(
        [sys.executable, "-c", "from pytest_seedreplay.cli import main; main()", "sim", "--port", "0", "--strict-models"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        match = LISTENING.match(read_line(process.stdout, 20))
        assert match, "unexpected listening line"
        client = openai.OpenAI(base_url=match.group(1), api_key="sk-test", max_retries=0)
        hello = [{"role": "user", "content": "hi"}]
        assert client.chat.completions.create(model="gpt-4o-mini", messages=hello, seed=1).choices[0].message.content
        with pytest.raises(openai.NotFoundError) as caught:
            client.chat.completions.create(model="gpt-5.5", messages=hello)
        assert caught.value.code == "model_not_found"
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_busy_port_is_a_clear_error_not_a_traceback():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = CliRunner().invoke(main, ["sim", "--port", str(port)])
    assert result.exit_code == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.output


def test_bad_fault_rate_is_rejected():
    result = CliRunner().invoke(main, ["sim", "--fault-rate", "2"])
    assert result.exit_code == 2 and "--fault-rate" in result.output


def test_state_dir_keeps_files_jobs_and_the_tuned_model_across_a_restart(sim_factory, tmp_path):
    first = sim_factory(state_dir=tmp_path, job_seconds=0.3)
    client = openai.OpenAI(base_url=first.url, api_key="sk-test", max_retries=0)
    upload = client.files.create(file=("train.jsonl", io.BytesIO(training_jsonl())), purpose="fine-tune")
    job = wait_for_job(
        client, client.fine_tuning.jobs.create(model="gpt-4o-mini", training_file=upload.id, seed=SEED, suffix="kept").id
    )
    first.stop()

    second = sim_factory(state_dir=tmp_path, job_seconds=0.3)
    client = openai.OpenAI(base_url=second.url, api_key="sk-test", max_retries=0)
    assert client.fine_tuning.jobs.retrieve(job.id).status == "succeeded"
    assert client.files.content(upload.id).content == training_jsonl()
    assert job.fine_tuned_model in {m.id for m in client.models.list()}
    question, answer, _ = EXAMPLES[3]
    recalled = client.chat.completions.create(
        model=job.fine_tuned_model, messages=[{"role": "user", "content": question}], seed=SEED
    )
    assert recalled.choices[0].message.content == answer
    assert not list(tmp_path.glob("*.tmp")) and not list(tmp_path.glob(".*.tmp"))


def test_unreadable_state_is_reported(tmp_path):
    (tmp_path / "state.json").write_text("{broken")
    result = CliRunner().invoke(main, ["sim", "--port", "0", "--state-dir", str(tmp_path)])
    assert result.exit_code == 1 and "cannot read simulator state" in result.output


def test_stats_endpoint_counts_only_v1_routes(sim):
    with urllib.request.urlopen(f"{sim.root}/healthz", timeout=5):
        pass
    assert json.loads(urllib.request.urlopen(f"{sim.root}/sim/stats", timeout=5).read())["total"] == 0
