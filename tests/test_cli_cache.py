"""`seedreplay cache ...` on a real diskcache store filled with realistic entries."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from click.testing import CliRunner

from pytest_seedreplay.cli import main
from pytest_seedreplay.core.entry import Entry
from pytest_seedreplay.core.key import canonical_request, request_key
from pytest_seedreplay.shapes import split
from pytest_seedreplay.store import DiskStore
from pytest_seedreplay.store.cassette import write_cassette

CHAT = "/v1/chat/completions"
NOW = time.time()
DAY = 86400.0
UPSTREAM = "http://127.0.0.1:9/v1"


def chat_body(answer: str | None, model: str = "gpt-4o-mini", tool_call: bool = False) -> dict:
    message: dict = {"role": "assistant", "content": answer, "refusal": None}
    if tool_call:
        message["tool_calls"] = [
            {"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": '{"city":"Oslo"}'}}
        ]
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1700000000,
        "model": model,
        "system_fingerprint": "fp_1",
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": "tool_calls" if tool_call else "stop"}],
        "usage": {"prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 13},
    }


def make_entry(path: str, request: dict, answer: dict, age_days: float = 0.0, stream: bool = False) -> Entry:
    return Entry(
        key=request_key(path, request),
        endpoint=path,
        request=canonical_request(path, request),
        headers={"content-type": "text/event-stream" if stream else "application/json", "x-request-id": "req_1"},
        body=None if stream else answer,
        events=split(path, answer, include_usage=True) if stream else None,
        recorded_at=NOW - age_days * DAY,
        upstream=UPSTREAM,
        model=answer.get("model"),
        system_fingerprint=answer.get("system_fingerprint"),
    )


def chat(prompt: str, answer: str | None, seed: int = 1, model: str = "gpt-4o-mini", **kw) -> tuple[dict, dict]:
    request = {
        "model": model,
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": prompt}],
        "seed": seed,
    }
    return request, chat_body(answer, model, tool_call=kw.get("tool_call", False))


def realistic_entries() -> list[Entry]:
    capital = chat("What is the capital of France? Answer in one word please.", "Paris.")
    haiku = chat(
        "Write a haiku about the sea", "Waves fold into foam,\nsalt wind carries gull voices,\nthe tide keeps its time.", seed=2
    )
    mini = chat("Translate 'Grüß Gott' to English", "Hello (a greeting) — 🙂", seed=3, model="gpt-4.1-nano")
    tool = chat("Weather in Oslo?", None, seed=4, tool_call=True)
    embed_req = {"model": "text-embedding-3-small", "input": "The quick brown fox"}
    embed_ans = {
        "object": "list",
        "data": [{"object": "embedding", "index": 0, "embedding": [0.125, -0.5, 0.25]}],
        "model": "text-embedding-3-small",
        "usage": {"prompt_tokens": 4, "total_tokens": 4},
    }
    return [
        make_entry(CHAT, *capital, age_days=40),
        make_entry(CHAT, *haiku, age_days=10, stream=True),
        make_entry(CHAT, *mini, age_days=2),
        make_entry(CHAT, *tool, age_days=1),
        make_entry("/v1/embeddings", embed_req, embed_ans, age_days=0.5),
    ]


@pytest.fixture
def entries() -> list[Entry]:
    return realistic_entries()


@pytest.fixture
def cache_dir(tmp_path: Path, entries: list[Entry]) -> str:
    directory = tmp_path / "cache"
    store = DiskStore(directory)
    for entry in entries:
        store.put(entry)
    store.close()
    return str(directory)


def run(*args: str, input: str | None = None):
    return CliRunner().invoke(main, ["cache", *args], input=input, catch_exceptions=False)


def stored(cache_dir: str) -> dict[str, Entry]:
    store = DiskStore(cache_dir)
    try:
        return {e.key: e for e in store.iter_entries()}
    finally:
        store.close()


# --- stats, ls, show ----------------------------------------------------------------------------


def test_stats_counts_entries_by_endpoint_and_model(cache_dir: str, entries: list[Entry]) -> None:
    result = run("stats", "--cache-dir", cache_dir, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["entries"] == 5 and report["streamed"] == 1 and report["bytes"] > 0
    assert report["by_endpoint"] == {CHAT: 4, "/v1/embeddings": 1}
    assert report["by_model"] == {"gpt-4o-mini": 3, "gpt-4.1-nano": 1, "text-embedding-3-small": 1}
    assert report["oldest"] == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(entries[0].recorded_at))

    human = run("stats", "--cache-dir", cache_dir)
    assert "entries:  5 (1 streamed)" in human.stdout
    assert "gpt-4.1-nano" in human.stdout and "/v1/embeddings" in human.stdout


def test_ls_lists_newest_first_with_the_prompt_words(cache_dir: str, entries: list[Entry]) -> None:
    result = run("ls", "--cache-dir", cache_dir)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["KEY", "ENDPOINT", "MODEL", "STREAM", "STATUS", "RECORDED", "PROMPT"]
    assert len(lines) == 6
    assert lines[1].startswith(entries[4].key.removeprefix("v1:")[:12]) and "embeddings" in lines[1]
    assert "What is the capital of France? Answer…" in lines[-1]
    haiku = next(line for line in lines if "haiku" in line)
    assert " yes " in haiku and " 200 " in haiku


def test_ls_filters_by_model_and_endpoint_and_limits(cache_dir: str, entries: list[Entry]) -> None:
    rows = json.loads(run("ls", "--cache-dir", cache_dir, "--json", "--model", "gpt-4o-mini").stdout)
    assert [r["key"] for r in rows] == [entries[3].key, entries[1].key, entries[0].key]
    assert rows[1]["streamed"] is True and rows[1]["prompt"] == "Write a haiku about the sea"

    rows = json.loads(run("ls", "--cache-dir", cache_dir, "--json", "--endpoint", "embeddings").stdout)
    assert [r["endpoint"] for r in rows] == ["/v1/embeddings"]

    rows = json.loads(run("ls", "--cache-dir", cache_dir, "--json", "--limit", "2").stdout)
    assert [r["key"] for r in rows] == [entries[4].key, entries[3].key]

    assert run("ls", "--cache-dir", cache_dir, "--model", "nope").stdout.strip() == "no entries match the filters"


def test_show_finds_an_entry_by_a_unique_key_prefix(cache_dir: str, entries: list[Entry]) -> None:
    prefix = entries[0].key.removeprefix("v1:")[:10]
    result = run("show", prefix, "--cache-dir", cache_dir)
    assert result.exit_code == 0, result.output
    assert f"key:          {entries[0].key}" in result.stdout
    assert '"seed": 1' in result.stdout and "capital of France" in result.stdout
    assert result.stdout.rstrip().endswith("Paris.")

    raw = json.loads(run("show", entries[0].key, "--cache-dir", cache_dir, "--json").stdout)
    assert raw == json.loads(json.dumps(entries[0].to_dict()))


def test_show_assembles_a_streamed_answer_into_its_text(cache_dir: str, entries: list[Entry]) -> None:
    result = run("show", entries[1].key[:12], "--cache-dir", cache_dir)
    assert "status:       200 (streamed)" in result.stdout
    assert "  Waves fold into foam,\n  salt wind carries gull voices,\n  the tide keeps its time." in result.stdout


def test_show_reads_tool_calls_and_vectors_as_drift_and_the_report_do(cache_dir: str, entries: list[Entry]) -> None:
    tool = run("show", entries[3].key, "--cache-dir", cache_dir)
    assert tool.stdout.rstrip().endswith('answer:\n  [tool call] weather({"city":"Oslo"})')
    vectors = run("show", entries[4].key, "--cache-dir", cache_dir)
    assert vectors.stdout.rstrip().endswith("answer:\n  embedding[0] (3 dims): [0.125000, -0.500000, 0.250000]")


def test_show_refuses_an_ambiguous_or_unknown_prefix(cache_dir: str) -> None:
    ambiguous = run("show", "v1:", "--cache-dir", cache_dir)
    assert ambiguous.exit_code == 1
    assert "ambiguous: it matches 5 entries" in ambiguous.output and "give more characters" in ambiguous.output

    unknown = run("show", "zzzz", "--cache-dir", cache_dir)
    assert unknown.exit_code == 1
    assert "no entry with a key starting 'zzzz'" in unknown.output and "seedreplay cache ls" in unknown.output
    assert "Traceback" not in unknown.output


def test_a_missing_cache_dir_is_an_error_and_is_not_created(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    result = run("stats", "--cache-dir", str(missing))
    assert result.exit_code == 1
    assert f"no cache at {missing}" in result.output
    assert not missing.exists()


# --- export / import ----------------------------------------------------------------------------


def test_jsonl_export_clear_import_restores_every_entry(cache_dir: str, tmp_path: Path, entries: list[Entry]) -> None:
    out = tmp_path / "dump.jsonl"
    exported = run("export", "--format", "jsonl", "-o", str(out), "--cache-dir", cache_dir)
    assert exported.exit_code == 0 and "exported 5 entries" in exported.stderr
    assert len(out.read_text().splitlines()) == 5

    assert "removed 5 entries" in run("clear", "--yes", "--cache-dir", cache_dir).stdout
    assert stored(cache_dir) == {}

    imported = run("import", str(out), "--cache-dir", cache_dir)
    assert imported.exit_code == 0, imported.output
    assert "imported 5 entries from 1 file(s)" in imported.stdout
    assert stored(cache_dir) == {e.key: e for e in entries}


def test_jsonl_export_to_stdout(cache_dir: str) -> None:
    result = run("export", "-o", "-", "--cache-dir", cache_dir, "--model", "gpt-4.1-nano")
    lines = result.stdout.splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["request"]["params"]["model"] == "gpt-4.1-nano"


def test_cassette_export_clear_import_restores_every_entry(cache_dir: str, tmp_path: Path, entries: list[Entry]) -> None:
    out = tmp_path / "cassettes" / "all.yaml"
    exported = run("export", "--format", "cassette", "-o", str(out), "--cache-dir", cache_dir)
    assert exported.exit_code == 0, exported.output
    assert len(yaml.safe_load(out.read_text())["interactions"]) == 5
    # vcrpy itself reads it: the same requests (path, JSON body) it would match against.
    from vcr.persisters.filesystem import FilesystemPersister
    from vcr.serializers import yamlserializer

    requests, responses = FilesystemPersister.load_cassette(str(out), serializer=yamlserializer)
    assert sorted(urlsplit(r.uri).path for r in requests) == sorted(e.endpoint for e in entries)
    assert sorted(json.loads(r.body)["model"] for r in requests) == sorted(e.request["params"]["model"] for e in entries)
    assert all(response["status"]["code"] == 200 for response in responses)

    run("clear", "--yes", "--cache-dir", cache_dir)
    imported = run("import", str(out), "--cache-dir", cache_dir)
    assert imported.exit_code == 0, imported.output
    assert stored(cache_dir) == {e.key: e for e in entries}


def test_finetune_export_writes_chat_examples_and_says_what_it_skipped(cache_dir: str, tmp_path: Path) -> None:
    out = tmp_path / "train.jsonl"
    result = run("export", "--format", "finetune", "-o", str(out), "--cache-dir", cache_dir)
    assert result.exit_code == 0, result.output
    examples = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(examples) == 3
    assert examples[0]["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "What is the capital of France? Answer in one word please."},
        {"role": "assistant", "content": "Paris."},
    ]
    assert examples[1]["messages"][-1]["content"].startswith("Waves fold into foam")  # the assembled stream
    assert "exported 3 examples" in result.stderr and "skipped 2: " in result.stderr
    assert "1 not chat completions (/v1/embeddings)" in result.stderr
    assert "1 no text answer (tool calls or empty)" in result.stderr
    assert "at least 10 examples" in result.stderr


def test_cassette_export_needs_a_file(cache_dir: str) -> None:
    result = run("export", "--format", "cassette", "-o", "-", "--cache-dir", cache_dir)
    assert result.exit_code == 2 and "a cassette is written to a file" in result.output


def test_import_refuses_secret_bearing_lines_and_keeps_the_rest(tmp_path: Path, entries: list[Entry]) -> None:
    leaky = entries[2].to_dict()
    leaky["request"]["params"]["messages"][1]["content"] = "use sk-proj-ABCDEFGHIJKLMNOPQRSTUVWX0123 please"
    dump = tmp_path / "dump.jsonl"
    dump.write_text("\n".join(json.dumps(d) for d in (entries[0].to_dict(), leaky, entries[4].to_dict(), {"x": 1})) + "\n")
    cache = tmp_path / "fresh"

    result = run("import", str(dump), "--cache-dir", str(cache))

    assert result.exit_code == 1
    assert f"refused {dump} line 2: refused to store an API-key-shaped string" in result.stderr
    assert "messages[1].content" in result.stderr
    assert f"refused {dump} line 4: missing endpoint, request" in result.stderr
    assert "imported 2 entries from 1 file(s); refused 2" in result.stdout
    assert set(stored(str(cache))) == {entries[0].key, entries[4].key}
    assert b"sk-proj-ABCDEFGH" not in b"".join(p.read_bytes() for p in cache.rglob("*") if p.is_file())


def test_import_of_a_cassette_names_the_refused_interaction(tmp_path: Path, entries: list[Entry]) -> None:
    cassette = tmp_path / "c.yaml"
    write_cassette(cassette, entries[:2])
    data = yaml.safe_load(cassette.read_text())
    data["interactions"][0]["request"]["body"] = data["interactions"][0]["request"]["body"].replace(
        "Be brief.", "key sk-abcdefghijklmnopqrstuvwxyz123456"
    )
    data["interactions"].append(
        {
            "request": {
                "method": "GET",
                "uri": "https://api.openai.com/v1/models",
                "body": None,
                "headers": {"authorization": ["DUMMY"]},
            },
            "response": {"status": {"code": 200, "message": "OK"}, "headers": {}, "body": {"string": '{"data":[]}'}},
        }
    )
    cassette.write_text(yaml.safe_dump(data))
    cache = tmp_path / "fresh"

    result = run("import", str(cassette), "--cache-dir", str(cache))

    assert result.exit_code == 1
    assert f"refused {cassette} interaction 0:" in result.stderr
    assert (
        "imported 1 entries from 1 file(s); skipped 1 interaction(s) that are not cached OpenAI answers; refused 1"
        in result.stdout
    )
    assert set(stored(str(cache))) == {entries[1].key}


def test_import_reports_an_unreadable_file_without_a_traceback(tmp_path: Path, entries: list[Entry]) -> None:
    good = tmp_path / "good.jsonl"
    good.write_text(json.dumps(entries[0].to_dict()) + "\n")
    bad = tmp_path / "broken.yaml"
    bad.write_text("interactions: [\n  - {request: ")
    result = run("import", str(bad), str(good), str(tmp_path / "absent.yaml"), "--cache-dir", str(tmp_path / "c"))
    assert result.exit_code == 1
    assert f"Error: {bad}: not valid YAML" in result.stderr
    assert "absent.yaml" in result.stderr
    assert "imported 1 entries from 1 file(s); 2 file(s) could not be read" in result.stdout
    assert "Traceback" not in result.output


def test_import_refuses_an_alias_bomb_cassette_in_one_line(tmp_path: Path, entries: list[Entry]) -> None:
    bomb = tmp_path / "bomb.yaml"
    levels = ["a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    levels += [f"{c}: &{c} [{', '.join(['*' + p] * 9)}]" for p, c in zip("abcdefgh", "bcdefghi", strict=True)]
    bomb.write_text("\n".join(levels) + "\ninteractions: [*i]\n")
    good = tmp_path / "good.yaml"
    write_cassette(good, entries[:1])

    result = run("import", str(bomb), str(good), "--cache-dir", str(tmp_path / "c"))

    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: {bomb}: line 1: an anchor (&a) is not allowed: a cassette holds plain data only; "
        "remove it or re-record the cassette\n"
    )
    assert "imported 1 entries from 1 file(s); 1 file(s) could not be read" in result.stdout
    assert set(stored(str(tmp_path / "c"))) == {entries[0].key}


# --- prune, clear -------------------------------------------------------------------------------


def test_prune_by_age_dry_run_first(cache_dir: str, entries: list[Entry]) -> None:
    dry = run("prune", "--older-than", "30d", "--dry-run", "--cache-dir", cache_dir)
    assert dry.stdout.strip() == "would remove 1 of 5 entries (dry run, nothing removed)"
    assert len(stored(cache_dir)) == 5

    real = run("prune", "--older-than", "168h", "--cache-dir", cache_dir)  # a week: the 40- and 10-day-old ones
    assert real.stdout.strip() == "removed 2 entries, 3 left"
    assert set(stored(cache_dir)) == {e.key for e in entries[2:]}


def test_prune_by_model_and_age_together(cache_dir: str, entries: list[Entry]) -> None:
    result = run("prune", "--model", "gpt-4o-mini", "--older-than", "2880m", "--cache-dir", cache_dir)
    assert result.stdout.strip() == "removed 2 entries, 3 left"  # the 1-day-old gpt-4o-mini entry stays
    assert set(stored(cache_dir)) == {entries[2].key, entries[3].key, entries[4].key}

    assert (
        run("prune", "--model", "text-embedding-3-small", "--cache-dir", cache_dir).stdout.strip() == "removed 1 entries, 2 left"
    )


def test_prune_needs_a_criterion_and_a_readable_duration(cache_dir: str) -> None:
    bare = run("prune", "--cache-dir", cache_dir)
    assert bare.exit_code == 2 and "give --older-than and/or --model" in bare.output
    bad = run("prune", "--older-than", "30 days", "--cache-dir", cache_dir)
    assert bad.exit_code == 2 and "use a number and a unit: 30d, 12h, 90m" in bad.output
    assert len(stored(cache_dir)) == 5


def test_clear_asks_first(cache_dir: str) -> None:
    declined = run("clear", "--cache-dir", cache_dir, input="n\n")
    assert declined.exit_code == 1 and "Remove all 5 entries" in declined.output and "Aborted" in declined.output
    assert len(stored(cache_dir)) == 5

    accepted = run("clear", "--cache-dir", cache_dir, input="y\n")
    assert accepted.exit_code == 0 and "removed 5 entries" in accepted.output
    assert stored(cache_dir) == {}


def test_the_installed_command_prints_stats(cache_dir: str) -> None:
    script = Path(sys.executable).with_name("seedreplay")
    result = subprocess.run(
        [str(script), "cache", "stats", "--json", "--cache-dir", cache_dir],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "NO_COLOR": "1"},
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["entries"] == 5


# --- import --check: what a migration really replays ---------------------------------------------


def vcrpy_cassette(path: Path, sim) -> None:
    """A cassette as vcrpy / pytest-recording write one: an OpenAI call and another GET, recorded
    from a real simulator through the real SDK."""
    import openai
    import vcr

    with vcr.use_cassette(str(path), match_on=["method", "uri"], filter_headers=["authorization"]):
        client = openai.OpenAI(base_url=sim.url, api_key="sk-test-x", max_retries=0)
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "Hi"}], seed=1)
        client.close()
        urllib_get(f"{sim.root}/sim/stats")


def urllib_get(url: str) -> None:
    import urllib.request

    with urllib.request.urlopen(url, timeout=10) as answer:
        answer.read()


def changed_copy(source: Path, target: Path, change) -> Path:
    data = yaml.safe_load(source.read_text())
    change(data["interactions"][0]["request"])
    target.write_text(yaml.safe_dump(data))
    return target


def test_import_check_reports_per_cassette_what_replays_and_writes_nothing(tmp_path: Path, sim) -> None:
    folder = tmp_path / "cassettes"
    folder.mkdir()
    recorded = folder / "test_ok.yaml"
    vcrpy_cassette(recorded, sim)
    changed_copy(recorded, folder / "test_filtered.yaml", lambda request: request.update(body=None))
    changed_copy(recorded, folder / "test_custom.yaml", lambda request: request.update(parsed_body={"model": "x"}))
    changed_copy(recorded, folder / "test_cut.yaml", lambda request: request.update(body=request["body"][:20]))
    cache = tmp_path / "cache"

    result = run("import", "--check", str(folder), "--cache-dir", str(cache))

    assert result.exit_code == 1
    out, err = result.stdout, result.stderr
    assert f"{folder / 'test_ok.yaml'}: 1 of 2 interaction(s) replay, 1 skipped (not cached OpenAI answers)" in out
    for name in ("test_filtered", "test_custom", "test_cut"):
        assert f"{folder / name}.yaml: 0 of 2 interaction(s) replay, 1 stale (see above), 1 skipped" in out
    assert f"stale {folder / 'test_filtered.yaml'} interaction 0: no request body recorded" in err
    assert f"stale {folder / 'test_custom.yaml'} interaction 0: request is not a vcrpy request (unexpected parsed_body" in err
    assert "custom serializer" in err
    assert f"stale {folder / 'test_cut.yaml'} interaction 0: request body is not JSON" in err
    assert f"skipped {folder / 'test_ok.yaml'} interaction 1: GET {sim.root}/sim/stats: not a call seedreplay records" in err
    assert "checked 4 file(s): 1 entries would replay; nothing written; skipped 4 interaction(s)" in out
    assert "stale 3 (see above)" in out
    assert "matched on URL only" in out and "--seedreplay=replay" in out
    assert not cache.exists()

    imported = run("import", str(recorded), "--cache-dir", str(cache))
    assert imported.exit_code == 0, imported.output
    assert f"{recorded}: 1 of 2 interaction(s) replay, 1 skipped" in imported.stdout
    assert len(stored(str(cache))) == 1


def test_import_check_passes_a_clean_cassette_and_names_repeated_requests(tmp_path: Path, entries: list[Entry]) -> None:
    cassette = tmp_path / "twice.yaml"
    write_cassette(cassette, [entries[0], entries[1], entries[0]])

    result = run("import", "--check", str(cassette))

    assert result.exit_code == 0, result.output
    assert (
        f"{cassette}: 3 of 3 interaction(s) replay; 1 repeat an earlier request: a store keeps the last answer" in result.stdout
    )
    assert "checked 1 file(s): 3 entries would replay; nothing written" in result.stdout
    assert result.stderr == ""


def test_import_of_an_empty_directory_says_so(tmp_path: Path) -> None:
    result = run("import", "--check", str(tmp_path))
    assert result.exit_code == 0
    assert f"note: {tmp_path} holds no .yaml, .yml or .jsonl files" in result.stderr
    assert "checked 0 file(s)" in result.stdout
