"""The fine-tune CLI on hostile files: a manifest or dataset nested without end, fields of the wrong
type, a line of hundreds of MB. Each is one line naming the file, never a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from pytest_seedreplay.cli import main
from pytest_seedreplay.finetune import validate

GOOD_VERSION = {
    "version": 1,
    "created": "2026-12-01T10:00:00Z",
    "base_model": "gpt-4o-mini-2024-07-18",
    "fine_tuned_model": "ft:gpt-4o-mini-2024-07-18:org::abc",
    "seed": 42,
    "job_id": "ftjob-abc",
    "training_file": "file-abc",
    "dataset_sha256": "0" * 64,
    "examples": 12,
}


def run(*args: str):
    return CliRunner().invoke(main, ["finetune", *args])


def assert_one_line(result, *words: str) -> None:
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)  # a ClickException, not a crash
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1, result.output
    for word in words:
        assert word in result.output, result.output


def write_manifest(path: Path, versions) -> Path:
    path.write_text(json.dumps({"seedreplay_finetunes": 1, "versions": versions}), encoding="utf-8")
    return path


def test_a_good_manifest_is_listed(tmp_path):
    manifest = write_manifest(tmp_path / "finetunes.json", [GOOD_VERSION])
    result = run("ls", "--manifest", str(manifest))
    assert result.exit_code == 0 and "ft:gpt-4o-mini-2024-07-18:org::abc" in result.output


@pytest.mark.parametrize(
    "change, field",
    [({"created": 5}, "created"), ({"seed": "forty"}, "seed"), ({"seed": True}, "seed"), ({"examples": [1]}, "examples")],
)
def test_a_manifest_field_of_the_wrong_type_is_named(tmp_path, change, field):
    manifest = write_manifest(tmp_path / "finetunes.json", [{**GOOD_VERSION, **change}])
    assert_one_line(run("ls", "--manifest", str(manifest)), str(manifest), f"'{field}'")


def test_a_manifest_version_that_is_not_an_object_is_named(tmp_path):
    manifest = write_manifest(tmp_path / "finetunes.json", [GOOD_VERSION, "v2"])
    assert_one_line(run("ls", "--manifest", str(manifest)), str(manifest), "entry 2")


def test_a_manifest_nested_without_end_is_one_line(tmp_path):
    manifest = tmp_path / "finetunes.json"
    manifest.write_text('{"seedreplay_finetunes": 1, "versions": ' + "[" * 100_000 + "]" * 100_000 + "}")
    assert_one_line(run("ls", "--manifest", str(manifest)), str(manifest), "nests deeper")


def _dataset(path: Path, extra_line: str) -> Path:
    example = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}
    path.write_text("\n".join([json.dumps(example)] * 10 + [extra_line]) + "\n", encoding="utf-8")
    return path


def test_a_dataset_line_nested_without_end_is_a_problem_of_its_line(tmp_path):
    dataset = _dataset(tmp_path / "train.jsonl", "[" * 100_000 + "]" * 100_000)
    assert_one_line(
        run(
            "create",
            "--model",
            "gpt-4o-mini-2024-07-18",
            "--seed",
            "42",
            "--file",
            str(dataset),
            "--manifest",
            str(tmp_path / "m.json"),
        ),
        "line 11",
        "nests deeper",
    )


def test_a_dataset_line_nested_past_the_bound_is_refused(tmp_path):
    deep = '{"messages": ' + "[" * (validate.MAX_DEPTH + 1) + "]" * (validate.MAX_DEPTH + 1) + "}"
    data = validate.read_dataset(_dataset(tmp_path / "train.jsonl", deep))
    assert [str(p) for p in data.bad_lines] == [f"line 11 nests deeper than {validate.MAX_DEPTH} levels (invalid_json)"]
    assert len(data.examples) == 10


def test_verify_on_a_dataset_nested_without_end_is_one_line(tmp_path):
    dataset = tmp_path / "train.jsonl"
    dataset.write_text("[" * 100_000 + "]" * 100_000 + "\n")
    result = run("verify", "--model", "ft:x", "--file", str(dataset), "--seed", "1", "--manifest", str(tmp_path / "m.json"))
    assert_one_line(result, str(dataset))


def test_a_line_past_the_bound_is_too_long_before_it_is_parsed(tmp_path, monkeypatch):
    monkeypatch.setattr(validate, "MAX_LINE_CHARS", 2**20)
    # Valid JSON: parsed, it would be counted token by token (the 300 MB line took 6 GB doing that).
    long_line = json.dumps({"messages": [{"role": "user", "content": "word " * 400_000}, {"role": "assistant", "content": "x"}]})
    dataset = _dataset(tmp_path / "train.jsonl", long_line)
    result = run(
        "create",
        "--model",
        "gpt-4o-mini-2024-07-18",
        "--seed",
        "42",
        "--file",
        str(dataset),
        "--manifest",
        str(tmp_path / "m.json"),
    )
    assert_one_line(result, "line 11", f"over the {2**20} a line may be", "example_too_long")


def test_a_file_over_the_provider_limit_is_not_read(tmp_path, monkeypatch):
    monkeypatch.setattr(validate, "MAX_FILE_BYTES", 100)
    dataset = _dataset(tmp_path / "train.jsonl", "")
    with pytest.raises(validate.DatasetError, match="file_too_large"):
        validate.read_dataset(dataset)
