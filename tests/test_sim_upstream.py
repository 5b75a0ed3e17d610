"""The upstream `sim` (the built-in simulator, started in-process) works in the plugin and in
`use_cassette` as in the proxy, and what it records names a URL: cassettes replay, a second record run
records nothing, and `cache export --format cassette` of such entries imports back."""

from __future__ import annotations

import pytest
import yaml
from click.testing import CliRunner

from pytest_seedreplay import Proxy, use_cassette
from pytest_seedreplay.cli import main
from pytest_seedreplay.core.constants import CHAT, SIM_RECORDED_URL
from pytest_seedreplay.core.entry import Entry
from pytest_seedreplay.core.key import canonical_request, key_of_canonical
from pytest_seedreplay.store import DiskStore
from pytest_seedreplay.store.cassette import read_cassette

from plugin_inner import TEST_KEY, answers, cassette_dir, run, setup_project

SIM_TESTS = """
import json

import openai


def note(name, value):
    with open("answers.jsonl", "a", encoding="utf-8") as f:
        f.write(json.dumps({"test": name, "value": value}) + "\\n")


def test_chat_and_stream():
    client = openai.OpenAI(max_retries=0)
    plain = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "Hi sim"}])
    stream = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "Flow"}], stream=True)
    note("chat", [plain.choices[0].message.content, "".join(c.choices[0].delta.content or "" for c in stream if c.choices)])


def test_embeddings(openai_client):
    note("embeddings", openai_client.embeddings.create(model="text-embedding-3-small", input="x").data[0].embedding[:3])
"""


def uris(pytester: pytest.Pytester) -> list[str]:
    found = []
    for path in sorted(cassette_dir(pytester).rglob("*.yaml")):
        found += [i["request"]["uri"] for i in yaml.safe_load(path.read_text(encoding="utf-8"))["interactions"]]
    return found


@pytest.mark.parametrize("how", ["option", "environment"])
def test_the_plugin_records_from_sim_and_replays_what_it_recorded(pytester, monkeypatch, how):
    monkeypatch.setenv("OPENAI_API_KEY", TEST_KEY)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.delenv("SEEDREPLAY_UPSTREAM", raising=False)
    upstream = ["--seedreplay-upstream=sim"] if how == "option" else []
    if how == "environment":
        monkeypatch.setenv("SEEDREPLAY_UPSTREAM", "sim")
    setup_project(pytester, test_sim_app=SIM_TESTS)

    first = run(pytester, "--seedreplay=record", *upstream)
    first.assert_outcomes(passed=2)
    first.stdout.fnmatch_lines(["recorded: 3 interaction(s)"])
    recorded = answers(pytester)
    assert uris(pytester) == [f"{SIM_RECORDED_URL}/chat/completions"] * 2 + [f"{SIM_RECORDED_URL}/embeddings"]

    # A second record run finds every answer in the cassettes: nothing is recorded again.
    again = run(pytester, "--seedreplay=record", *upstream)
    again.assert_outcomes(passed=2)
    again.stdout.fnmatch_lines(["replayed: 3 interaction(s)", "recorded: 0 interaction(s)"])
    assert answers(pytester) == recorded

    monkeypatch.delenv("OPENAI_API_KEY")
    monkeypatch.delenv("SEEDREPLAY_UPSTREAM", raising=False)
    replayed = run(pytester)
    replayed.assert_outcomes(passed=2)
    assert answers(pytester) == recorded


def test_a_cassette_written_with_sim_uris_by_an_earlier_version_replays(pytester, monkeypatch):
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    setup_project(pytester, test_sim_app=SIM_TESTS)
    run(pytester, "--seedreplay=record", "--seedreplay-upstream=sim", "-k", "embeddings").assert_outcomes(passed=1, deselected=1)
    recorded = answers(pytester)
    [cassette] = cassette_dir(pytester).rglob("*.yaml")
    text = cassette.read_text(encoding="utf-8")
    cassette.write_text(text.replace(f"uri: {SIM_RECORDED_URL}/", "uri: sim/"), encoding="utf-8")
    assert "uri: sim/embeddings" in cassette.read_text(encoding="utf-8")

    run(pytester, "-k", "embeddings").assert_outcomes(passed=1, deselected=1)
    assert answers(pytester) == recorded


def test_use_cassette_records_from_sim_and_replays(tmp_path, monkeypatch):
    import openai

    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.delenv("SEEDREPLAY_UPSTREAM", raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", TEST_KEY)
    path = tmp_path / "sim.yaml"
    ask = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "From use_cassette"}]}
    with use_cassette(path, mode="record", upstream="sim"):
        recorded = openai.OpenAI(max_retries=0).chat.completions.create(**ask).choices[0].message.content
    [entry] = read_cassette(path)
    assert entry.upstream == SIM_RECORDED_URL
    assert yaml.safe_load(path.read_text())["interactions"][0]["request"]["uri"] == f"{SIM_RECORDED_URL}/chat/completions"

    monkeypatch.delenv("OPENAI_API_KEY")
    with use_cassette(path, mode="replay") as cassette:
        replayed = openai.OpenAI(max_retries=0).chat.completions.create(**ask).choices[0].message.content
    assert replayed == recorded and not cassette.misses


def test_cache_export_of_sim_recordings_imports_back(tmp_path):
    import openai

    cache, copy = tmp_path / "cache", tmp_path / "copy"
    with Proxy("sim", store=str(cache)) as proxy:
        client = openai.OpenAI(base_url=proxy.url, api_key=TEST_KEY, max_retries=0)
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "One"}], seed=1)
        two = [{"role": "user", "content": "Two"}]
        list(client.chat.completions.create(model="gpt-4o-mini", messages=two, seed=2, stream=True))
        client.embeddings.create(model="text-embedding-3-small", input="three")
        client.close()
    # An entry an earlier version recorded from `sim`: the word, not a URL.
    canonical = canonical_request(CHAT, {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Old"}]})
    old = Entry(key_of_canonical(canonical), CHAT, canonical, body={"choices": [], "model": "gpt-4o-mini"}, upstream="sim")
    with DiskStore(cache) as store:
        store.put(old)
        recorded = {e.key: e for e in store.iter_entries()}

    out = tmp_path / "all.yaml"
    runner = CliRunner()
    exported = runner.invoke(main, ["cache", "export", "--format", "cassette", "-o", str(out), "--cache-dir", str(cache)])
    assert exported.exit_code == 0, exported.output
    written = [i["request"]["uri"] for i in yaml.safe_load(out.read_text())["interactions"]]
    assert len(written) == 4 and all(u.startswith(SIM_RECORDED_URL + "/") for u in written)
    imported = runner.invoke(main, ["cache", "import", str(out), "--cache-dir", str(copy)])
    assert imported.exit_code == 0 and "imported 4 entries" in imported.output, imported.output
    with DiskStore(copy) as store:
        back = {e.key: e for e in store.iter_entries()}
    assert back.keys() == recorded.keys()
    for key, entry in recorded.items():
        assert (back[key].request, back[key].body, back[key].events) == (entry.request, entry.body, entry.events)
