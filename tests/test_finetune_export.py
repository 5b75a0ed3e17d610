"""`seedreplay finetune export`: recordings made through the proxy become a validated chat fine-tuning set."""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone

import pytest

from pytest_seedreplay.finetune.export import record_path, validation_path
from pytest_seedreplay.store import DiskStore
from pytest_seedreplay.store.cassette import write_cassette

from finetune_support import BASE, RECORD_SEED, SYSTEM, finetune, lines, question, questions, record


@pytest.fixture
def recorded(sim, proxy_factory, tmp_path, monkeypatch):
    """12 questions recorded through a proxy in front of the simulator (every third one streamed)."""
    monkeypatch.chdir(tmp_path)
    proxy = proxy_factory(sim.url, cache_dir=tmp_path / "cache")
    answers = record(proxy.client(), questions(12))
    proxy.settle()
    return proxy, answers


def test_export_writes_one_example_per_recorded_question_with_streams_assembled(recorded, tmp_path):
    proxy, answers = recorded
    result = finetune("export", "--cache-dir", str(proxy.cache_dir), "-o", "train.jsonl")
    assert result.exit_code == 0, result.output
    examples = lines(tmp_path / "train.jsonl")
    taught = {e["messages"][1]["content"]: e["messages"][-1]["content"] for e in examples}
    assert taught == answers  # the streamed ones too, assembled into the text the SDK showed
    assert all(e["messages"][0] == {"role": "system", "content": SYSTEM} for e in examples)
    assert all(e["messages"][-1]["role"] == "assistant" for e in examples)
    assert "exported 12 examples to train.jsonl" in result.output
    assert "from store" in result.output and "12 chat recording(s)" in result.output


def test_export_merges_duplicates_and_keeps_the_newest_of_conflicting_answers(recorded, tmp_path):
    proxy, answers = recorded
    client = proxy.client()
    again = questions(2)
    record(client, again[:1], stream_every=99)  # the same request again: a hit, nothing new
    newer = record(client, again[1:], stream_every=99, seed=RECORD_SEED + 1)  # same prompt, another seed: another answer
    proxy.settle()
    assert newer[again[1]] != answers[again[1]]
    result = finetune("export", "--cache-dir", str(proxy.cache_dir), "-o", "train.jsonl", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["examples"] == 12 and summary["conflicts"] == 1
    assert "the newest recording of each was kept" in " ".join(summary["warnings"])
    taught = {e["messages"][1]["content"]: e["messages"][-1]["content"] for e in lines(tmp_path / "train.jsonl")}
    assert taught[again[1]] == newer[again[1]]


def test_export_reads_cassettes_of_the_tests_a_glob_names(recorded, tmp_path):
    proxy, _ = recorded
    entries = sorted(proxy.store.iter_entries(), key=lambda e: e.recorded_at)
    # The plugin's layout: a test's cassette under its module path without .py.
    write_cassette(tmp_path / "cassettes/tests/test_shop/test_refunds.yaml", entries[:6])
    write_cassette(tmp_path / "cassettes/tests/test_shop/test_orders.yaml", entries[6:11])
    write_cassette(tmp_path / "cassettes/tests/test_other/test_x.yaml", entries[11:])
    result = finetune("export", "--cassette-dir", "cassettes", "--tests", "tests/test_shop.py::test_*", "-o", "t.jsonl", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["examples"] == 11
    assert summary["sources"] == [
        {"kind": "cassettes", "location": "cassettes", "files": 2, "entries": 11, "tests": ["tests/test_shop.py::test_*"]}
    ]
    only_one = finetune("export", "--tests", "tests/test_other.py", "-o", "one.jsonl")
    assert only_one.exit_code == 1 and "only 1 examples: at least 10 are required (insufficient_examples)" in only_one.output
    none = finetune("export", "--tests", "tests/test_nothing.py", "-o", "none.jsonl")
    assert none.exit_code == 1 and "no cassette under cassettes matches --tests" in none.output


def test_export_of_too_few_examples_fails_naming_the_rule_and_writes_nothing(recorded, tmp_path):
    proxy, _ = recorded
    since = time.time()
    client = proxy.client()
    record(client, ["What's new this week?", "Any discounts today?"], stream_every=99)
    proxy.settle()
    cutoff = datetime.fromtimestamp(since, timezone.utc).isoformat()
    result = finetune("export", "--cache-dir", str(proxy.cache_dir), "--since", cutoff, "-o", "few.jsonl")
    assert result.exit_code == 1
    assert "only 2 examples: at least 10 are required (insufficient_examples)" in result.output
    assert not (tmp_path / "few.jsonl").exists()
    by_model = finetune("export", "--cache-dir", str(proxy.cache_dir), "--model", "gpt-4.1-nano", "-o", "none.jsonl")
    assert by_model.exit_code == 1 and "only 0 examples" in by_model.output


def test_a_holdout_too_small_to_validate_is_refused(recorded, tmp_path):
    proxy, _ = recorded
    record(proxy.client(), questions(20)[12:], stream_every=99)
    proxy.settle()
    result = finetune("export", "--cache-dir", str(proxy.cache_dir), "-o", "train.jsonl", "--holdout", "0.3")
    assert result.exit_code == 1
    assert "--holdout 0.3 leaves only 6 validation examples: at least 10 are required" in result.output
    assert not (tmp_path / "train.jsonl").exists()


def test_export_with_holdout_writes_both_files_and_the_record(recorded, tmp_path):
    proxy, _ = recorded
    more = [f"Is product number {n} in stock?" for n in range(10)]
    record(proxy.client(), more, stream_every=99)
    proxy.settle()
    output = tmp_path / "out" / "train.jsonl"
    result = finetune("export", "--cache-dir", str(proxy.cache_dir), "-o", str(output), "--holdout", "0.45", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["examples"] == 12 and summary["validation_examples"] == 10
    assert len(lines(output)) == 12 and len(lines(validation_path(output))) == 10
    trained = {e["messages"][1]["content"] for e in lines(output)}
    held = {e["messages"][1]["content"] for e in lines(validation_path(output))}
    assert not trained & held
    record_ = json.loads(record_path(output).read_text())
    assert record_["examples"] == 12 and record_["validation"]["examples"] == 10
    assert record_["sources"][0]["kind"] == "store" and record_["holdout"] == 0.45
    # The same recordings export to the same bytes: the split is chosen by hash, not by chance.
    again = finetune("export", "--cache-dir", str(proxy.cache_dir), "-o", str(tmp_path / "again.jsonl"), "--holdout", "0.45")
    assert again.exit_code == 0 and (tmp_path / "again.jsonl").read_bytes() == output.read_bytes()


def test_export_keeps_tool_calls_and_the_tools_offered(recorded, tmp_path):
    proxy, answers = recorded
    tools = [
        {
            "type": "function",
            "function": {
                "name": "order_status",
                "description": "Look up an order",
                "parameters": {"type": "object", "properties": {"order": {"type": "string"}}, "required": ["order"]},
            },
        }
    ]
    asked = proxy.client().chat.completions.create(
        model=BASE, messages=question("Where is order 1234?"), seed=RECORD_SEED, tools=tools, tool_choice="required", stream=True
    )
    calls: dict = {}
    for chunk in asked:
        for call in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
            slot = calls.setdefault(call.index, {"name": "", "arguments": ""})
            slot["name"] += call.function.name or ""
            slot["arguments"] += call.function.arguments or ""
    proxy.settle()
    result = finetune("export", "--cache-dir", str(proxy.cache_dir), "-o", "train.jsonl")
    assert result.exit_code == 0, result.output
    example = next(e for e in lines(tmp_path / "train.jsonl") if "tools" in e)
    assert example["tools"] == tools
    taught = example["messages"][-1]
    assert taught["role"] == "assistant" and "content" not in taught
    assert [c["function"] for c in taught["tool_calls"]] == [calls[0]]


@pytest.mark.parametrize(
    "example, rule",
    [
        ("just a string", "data_type"),
        ({"prompt": "hi", "completion": "x"}, "missing_messages_list"),
        ({"messages": [{"role": "user"}, {"role": "assistant", "content": "x"}]}, "message_missing_key"),
        (
            {"messages": [{"role": "user", "content": "hi", "mood": "ok"}, {"role": "assistant", "content": "x"}]},
            "message_unrecognized_key",
        ),
        ({"messages": [{"role": "robot", "content": "hi"}, {"role": "assistant", "content": "x"}]}, "unrecognized_role"),
        ({"messages": [{"role": "user", "content": "  "}, {"role": "assistant", "content": "x"}]}, "missing_content"),
        ({"messages": [{"role": "user", "content": "hi"}]}, "example_missing_assistant_message"),
        (
            {
                "messages": [
                    {"role": "user", "content": "hi"},
                    {"role": "assistant", "content": "x"},
                    {"role": "user", "content": "and?"},
                ]
            },
            "last_message_not_assistant",
        ),
        ({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "x", "weight": 2}]}, "invalid_weight"),
        (
            {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": [{"type": "text", "text": "x"}]}]},
            "invalid_content_type",
        ),
        ({"messages": [{"role": "user", "content": "word " * 70000}, {"role": "assistant", "content": "x"}]}, "example_too_long"),
        (
            {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "x"}], "temperature": 0},
            "example_unrecognized_key",
        ),
    ],
)
def test_each_provider_rule_is_named_with_its_line(sim, tmp_path, monkeypatch, example, rule):
    """create checks the file before anything is uploaded: exit 1 naming the line and the rule."""
    from finetune_support import good_example, write_jsonl

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OPENAI_BASE_URL", sim.url)
    path = write_jsonl(tmp_path / "bad.jsonl", [good_example(n) for n in range(11)] + [example])
    result = finetune("create", "--file", str(path), "--model", BASE, "--seed", "1")
    assert result.exit_code == 1
    assert "line 12 " in result.output and f"({rule})" in result.output, result.output
    assert "Traceback" not in result.output
    assert sim.stats()["requests"].get("POST /v1/files", 0) == 0
    assert not (tmp_path / "cassettes" / "finetunes.json").exists()


def test_a_file_that_is_not_jsonl_is_named_by_line(sim, tmp_path, monkeypatch):
    from finetune_support import good_example, write_jsonl

    monkeypatch.setenv("OPENAI_BASE_URL", sim.url)
    path = write_jsonl(tmp_path / "bad.jsonl", [good_example(n) for n in range(10)])
    path.write_text(path.read_text() + "{not json\n")
    result = finetune("create", "--file", str(path), "--model", BASE, "--seed", "1", "--manifest", str(tmp_path / "m.json"))
    assert result.exit_code == 1 and "line 11 is not JSON" in result.output and "(invalid_json)" in result.output
    path.write_bytes("\n".join(json.dumps(good_example(n)) for n in range(10)).encode("utf-16"))
    result = finetune("create", "--file", str(path), "--model", BASE, "--seed", "1", "--manifest", str(tmp_path / "m.json"))
    assert result.exit_code == 1 and "is not UTF-8 text" in result.output and "invalid_encoding" in result.output
    missing = finetune("create", "--file", str(tmp_path / "nope.jsonl"), "--model", BASE, "--seed", "1")
    assert missing.exit_code == 1 and "cannot read" in missing.output and "nope.jsonl" in missing.output


def test_developer_messages_are_taught_as_system_messages(tmp_path, monkeypatch):
    """A recording whose request used the `developer` role still exports: fine-tuning knows `system`."""
    from test_cli_cache import chat_body, make_entry

    monkeypatch.chdir(tmp_path)
    store = DiskStore(tmp_path / "cache")
    for n in range(10):
        request = {
            "model": BASE,
            "seed": 1,
            "messages": [{"role": "developer", "content": "Be brief."}, {"role": "user", "content": f"Question {n}?"}],
        }
        store.put(make_entry("/v1/chat/completions", request, chat_body(f"Answer {n}.")))
    store.close()
    result = finetune("export", "--cache-dir", "cache", "-o", "train.jsonl")
    assert result.exit_code == 0, result.output
    assert {e["messages"][0]["role"] for e in lines(tmp_path / "train.jsonl")} == {"system"}
    assert "10 developer message(s) are taught as system messages" in result.output


def test_export_with_nothing_to_read_says_what_to_pass(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = finetune("export")
    assert result.exit_code == 2 and "pass --cache-dir DIR" in result.output
    bad = finetune("export", "--cassette-dir", "nowhere")
    assert bad.exit_code == 1 and "no cassette directory at nowhere" in bad.output
    since = finetune("export", "--cache-dir", "c", "--since", "last tuesday")
    assert since.exit_code == 2 and "neither a duration" in since.output


def test_paraphrases_teach_the_same_answer_to_other_wordings(recorded, tmp_path):
    pytest.importorskip("pytest_seedreplay.paraphrase", reason="the offline paraphrase generator is not installed")
    proxy, answers = recorded
    result = finetune("export", "--cache-dir", str(proxy.cache_dir), "-o", "train.jsonl", "--paraphrase-count", "2", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["recorded"] == 12 and summary["paraphrased"] > 12
    examples = lines(tmp_path / "train.jsonl")
    generated = json.loads(record_path(tmp_path / "train.jsonl").read_text())["generated_lines"]
    assert len(generated) == summary["paraphrased"] and len(examples) == 12 + len(generated)
    for number in generated:
        example = examples[number - 1]
        asked, taught = example["messages"][1]["content"], example["messages"][-1]["content"]
        assert asked not in answers and taught in answers.values()


def test_the_old_name_paraphrases_n_still_works_and_says_the_new_one(recorded, tmp_path):
    pytest.importorskip("pytest_seedreplay.paraphrase", reason="the offline paraphrase generator is not installed")
    proxy, _answers = recorded
    new = finetune("export", "--cache-dir", str(proxy.cache_dir), "-o", "new.jsonl", "--paraphrase-count", "1", "--json")
    old = finetune("export", "--cache-dir", str(proxy.cache_dir), "-o", "old.jsonl", "--paraphrases", "1", "--json")
    assert old.exit_code == 0 and "warning: --paraphrases N is now --paraphrase-count 1" in old.stderr
    assert json.loads(old.stdout)["paraphrased"] == json.loads(new.stdout)["paraphrased"] > 0
    assert (tmp_path / "old.jsonl").read_bytes() == (tmp_path / "new.jsonl").read_bytes()
    both = finetune("export", "--cache-dir", str(proxy.cache_dir), "--paraphrase-count", "1", "--paraphrases", "1")
    assert both.exit_code == 2 and "Error: give --paraphrase-count only" in both.output
