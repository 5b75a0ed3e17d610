"""`seedreplay similar calibrate|verify` on a real store, real cassettes and the real simulator's embeddings."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from pytest_seedreplay.cli import main
from pytest_seedreplay.core.entry import Entry
from pytest_seedreplay.core.key import canonical_request, key_of_canonical
from pytest_seedreplay.similar import calibration_path, load_calibration
from pytest_seedreplay.store import DiskStore
from pytest_seedreplay.store.cassette import write_cassette

DATA = Path(__file__).parent / "data" / "similar"
CHAT = "/v1/chat/completions"
QUESTIONS = [
    "How do I reset my password?",
    "What are the opening hours of the York branch?",
    "Can I pause my subscription for 2 months?",
    "Is the museum open on Mondays?",
    "Convert 5 kilometres to miles.",
]


def entry(text: str) -> Entry:
    canonical = canonical_request(CHAT, {"model": "gpt-4o-mini", "seed": 1, "messages": [{"role": "user", "content": text}]})
    return Entry(
        key=key_of_canonical(canonical), endpoint=CHAT, request=canonical, body={"answer": text}, upstream="http://127.0.0.1:9/v1"
    )


@pytest.fixture
def cache_dir(tmp_path: Path) -> Path:
    with DiskStore(tmp_path / "cache") as store:
        store.put_many(entry(q) for q in QUESTIONS)
    return tmp_path / "cache"


def run(*args: str) -> object:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_calibrate_saves_the_lowest_threshold_with_no_wrong_answer_next_to_the_cache(cache_dir: Path) -> None:
    result = run("similar", "calibrate", "--cache-dir", str(cache_dir))
    assert result.exit_code == 0, result.output
    assert "questions: 5" in result.output
    assert "precision: 100.0% (0 wrong answers)" in result.output
    saved = load_calibration(cache_dir / "similar.json")
    assert calibration_path(str(cache_dir)) == cache_dir / "similar.json"
    assert saved.precision == 1.0 and saved.questions == 5 and saved.recall > 0.8
    assert f"threshold: {saved.threshold:.3f}" in result.output


def test_calibrate_reads_cassettes_and_user_paraphrases_and_prints_json(tmp_path: Path) -> None:
    write_cassette(tmp_path / "cassettes" / "tests" / "test_a.yaml", [entry(q) for q in QUESTIONS[:3]])
    extra = tmp_path / "mine.jsonl"
    extra.write_text(json.dumps({"question": QUESTIONS[0], "paraphrases": ["how can I reset my password"]}) + "\n")
    out = tmp_path / "calibration.json"
    result = run(
        "similar",
        "calibrate",
        "--cassette-dir",
        str(tmp_path / "cassettes"),
        "--paraphrases",
        str(extra),
        "-o",
        str(out),
        "--json",
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["calibration"]["questions"] == 3
    assert data["figures"]["by_kind"]["paraphrase"] == {"probes": 1, "hits": 1, "right": 1, "wrong": 0}
    assert data["saved_to"] == str(out) and load_calibration(out).threshold == data["calibration"]["threshold"]


def test_calibrate_with_nothing_recorded_says_so(tmp_path: Path) -> None:
    DiskStore(tmp_path / "empty").close()
    result = run("similar", "calibrate", "--cache-dir", str(tmp_path / "empty"))
    assert result.exit_code == 1
    assert "no recorded chat questions in" in result.output and "Traceback" not in result.output


def test_verify_reports_the_shipped_set_per_kind_and_exits_0() -> None:
    result = run(
        "similar", "verify", "--paraphrases", str(DATA / "paraphrases.jsonl"), "--negatives", str(DATA / "negatives.jsonl")
    )
    assert result.exit_code == 0, result.output
    assert "precision: 100.0% (0 wrong answers" in result.output
    assert "without the guards, a threshold alone needs" in result.output
    for kind in ("paraphrase", "number", "entity", "quoted", "content", "direction"):
        assert kind in result.output


def test_verify_exits_1_on_a_wrong_answer_and_names_it(tmp_path: Path) -> None:
    negatives = tmp_path / "neg.jsonl"
    # A "negative" that is only a rewording: the tier answers it, which this file calls wrong.
    negatives.write_text(json.dumps({"question": QUESTIONS[0], "negatives": ["how can i reset my password"]}) + "\n")
    paraphrases = tmp_path / "para.jsonl"
    paraphrases.write_text(
        "# my set\n" + json.dumps({"question": QUESTIONS[0], "paraphrases": ["How do I reset my pasword?"]}) + "\n"
    )
    result = run("similar", "verify", "--paraphrases", str(paraphrases), "--negatives", str(negatives), "--json")
    assert result.exit_code == 1
    data = json.loads(result.output)
    assert data["wrong"] == 1 and data["right"] == 1 and data["precision"] == 0.5
    assert data["wrong_examples"][0]["asked"] == "how can i reset my password"


@pytest.mark.parametrize(
    "content, message",
    [
        ("not json\n", "para.jsonl:1: not JSON"),
        ('{"paraphrases": ["x"]}\n', 'para.jsonl:1: each line needs "question"'),
        ('{"question": "q", "paraphrases": "x"}\n', '"paraphrases" must be a list of non-empty strings'),
    ],
)
def test_verify_names_the_line_of_a_bad_file(tmp_path: Path, content: str, message: str) -> None:
    (tmp_path / "para.jsonl").write_text(content)
    result = run("similar", "verify", "--paraphrases", str(tmp_path / "para.jsonl"))
    assert result.exit_code == 1 and message in result.output and "Traceback" not in result.output


def test_verify_threshold_auto_needs_a_calibration(cache_dir: Path) -> None:
    args = ["similar", "verify", "--paraphrases", str(DATA / "paraphrases.jsonl"), "--cache-dir", str(cache_dir)]
    result = run(*args, "--threshold", "auto")
    assert result.exit_code == 1 and "no similar-questions calibration at" in result.output
    assert run("similar", "calibrate", "--cache-dir", str(cache_dir)).exit_code == 0
    result = run(*args, "--threshold", "auto")
    assert result.exit_code == 0 and f"threshold: {load_calibration(cache_dir / 'similar.json').threshold:.3f}" in result.output
    result = run(*args, "--threshold", "2")  # a bad flag value is a usage error, as click's own are
    assert result.exit_code == 2 and "Invalid value for --threshold: '2': give a number from 0 to 1, or auto" in result.output


def test_calibrate_with_embeddings_records_the_vectors_and_replays_them_offline(cache_dir: Path, sim_factory) -> None:
    sim = sim_factory()
    args = ["similar", "calibrate", "--cache-dir", str(cache_dir), "--similar-embeddings", "text-embedding-3-small", "--json"]
    first = run(*args, "--base-url", sim.url)
    assert first.exit_code == 0, first.output
    data = json.loads(first.output)
    assert data["calibration"]["measure"] == "embeddings:text-embedding-3-small"
    assert data["figures"]["wrong"] == 0
    calls = sim.stats()["requests"].get("POST /v1/embeddings", 0)
    assert calls >= 1
    with DiskStore(cache_dir) as store:
        assert sum(1 for e in store.iter_entries() if e.endpoint == "/v1/embeddings") > len(QUESTIONS)
    sim.stop()  # the vectors are in the store now: no upstream needed
    again = run(*args, "--base-url", sim.url)
    assert again.exit_code == 0, again.output
    assert json.loads(again.output)["calibration"]["threshold"] == data["calibration"]["threshold"]


def test_the_installed_command_runs_verify(tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("seedreplay")
    done = subprocess.run(
        [
            str(script),
            "similar",
            "verify",
            "--paraphrases",
            str(DATA / "paraphrases.jsonl"),
            "--negatives",
            str(DATA / "negatives.jsonl"),
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={**os.environ},
    )
    assert done.returncode == 0, done.stderr
    assert "precision: 100.0%" in done.stdout
