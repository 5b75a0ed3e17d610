"""`seedreplay finetune verify`: the fine-tune asked every trained prompt with its seed, without, and paraphrased."""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from conftest import start_sim

from pytest_seedreplay.proxy.serve import BackgroundServer
from pytest_seedreplay.proxy.sim import SimConfig

from finetune_support import BASE, SEED, create_finetune, finetune
from test_sim_finetune import EXAMPLES, training_jsonl


@dataclass
class Tuned:
    sim: object
    root: Path
    dataset: Path
    manifest: Path
    paraphrases: Path

    def verify(self, *args: str):
        return finetune("verify", "--manifest", str(self.manifest), *args)


@pytest.fixture(scope="module")
def tuned(tmp_path_factory):
    """One fine-tune of the 20 shop examples, recorded in a manifest, shared by the tests that only ask it."""
    sim = start_sim(SimConfig(job_seconds=0.3))
    try:
        root = tmp_path_factory.mktemp("verify")
        dataset = root / "train.jsonl"
        dataset.write_bytes(training_jsonl())
        manifest = root / "cassettes" / "finetunes.json"
        created = create_finetune(dataset, manifest, sim.url)
        assert created.exit_code == 0, created.output
        paraphrases = root / "paraphrases.json"
        paraphrases.write_text(json.dumps({q: [p] for q, _, p in EXAMPLES}))
        yield Tuned(sim, root, dataset, manifest, paraphrases)
    finally:
        sim.stop()


@pytest.fixture(autouse=True)
def no_base_url_in_env(monkeypatch):
    """verify finds the provider in the manifest when nothing else names one."""
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)


def test_the_seed_recalls_every_trained_answer_and_its_absence_none(tuned):
    result = tuned.verify("--paraphrases", str(tuned.paraphrases), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    conditions = report["conditions"]
    assert (conditions["seed"]["verbatim"], conditions["seed"]["asked"], conditions["seed"]["recall"]) == (20, 20, 1.0)
    assert conditions["no_seed"]["verbatim"] == 0 and conditions["no_seed"]["asked"] == 20
    assert 0 < conditions["no_seed"]["similarity"] < 1
    # Without the seed nothing is verbatim: each answer is reworded (plain text, words in common) or changed.
    assert conditions["no_seed"]["reworded"] + conditions["no_seed"]["changed"] == 20
    assert (conditions["seed"]["reworded"], conditions["seed"]["changed"]) == (0, 0)
    verdicts = {a["verdict"] for e in report["examples"] for a in e["answers"]["no_seed"]}
    assert verdicts <= {"reworded", "changed"} and verdicts
    assert (conditions["paraphrase"]["verbatim"], conditions["paraphrase"]["asked"]) == (20, 20)
    assert report["seed"] == SEED and report["version"] == "v1" and report["base_url"] == tuned.sim.url
    first = report["examples"][0]
    assert first["prompt"] == EXAMPLES[0][0] and first["trained"] == EXAMPLES[0][1]
    assert first["answers"]["paraphrase"][0]["prompt"] == EXAMPLES[0][2]
    assert first["answers"]["seed"][0]["text"] == EXAMPLES[0][1]


def test_the_table_shows_recall_per_condition_and_per_example(tuned):
    result = tuned.verify("--paraphrases", str(tuned.paraphrases))
    assert result.exit_code == 0, result.output
    out = result.output
    assert "(v1, seed 4242)" in out and "20 examples, 60 asks" in out
    assert "with seed                recall 100% (20/20)  mean similarity 1.00  reworded 0  changed 0" in out
    assert "without seed             recall   0% (0/20)" in out
    assert "paraphrased, with seed   recall 100% (20/20)  mean similarity 1.00" in out
    lines = out.splitlines()
    header = next(number for number, line in enumerate(lines) if line.startswith("#  "))
    assert lines[header].endswith("  PARAPHRASED, WITH SEED")
    assert lines[header + 1].split() == ["verbatim", "sim.", "verbatim", "sim.", "verbatim", "sim."]
    row = next(line for line in out.splitlines() if line.startswith("1 "))
    assert "How do I reset my password?" in row and "yes 1.00" in row and "no " in row


def test_several_paraphrases_show_how_many_were_verbatim_and_the_worst_similarity(tuned):
    # Two wordings of the first question: the trained paraphrase, and one it never saw.
    paraphrases = tuned.root / "two.json"
    paraphrases.write_text(json.dumps({EXAMPLES[0][0]: [EXAMPLES[0][2], "Tell me a poem about the sea, please."]}))
    result = tuned.verify("--paraphrases", str(paraphrases), "--json")
    answers = json.loads(result.stdout)["examples"][0]["answers"]["paraphrase"]
    worst = min(a["similarity"] for a in answers)
    table = tuned.verify("--paraphrases", str(paraphrases)).output.splitlines()
    header = next(number for number, line in enumerate(table) if line.startswith("#  "))
    assert table[header + 1].rstrip().endswith("verbatim/asked worst sim.")
    row = next(line for line in table if line.startswith("1 "))
    verbatim = sum(a["verbatim"] for a in answers)
    assert row.rstrip().endswith(f"{verbatim}/2 {worst:.2f}") and worst < 1


def test_min_recall_fails_a_model_that_forgot_and_passes_the_fine_tune(tuned):
    kept = tuned.verify("--paraphrase-count", "0", "--min-recall", "1.0")
    assert kept.exit_code == 0, kept.output
    other = tuned.verify("--model", BASE, "--paraphrase-count", "0", "--min-recall", "0.5")
    assert other.exit_code == 1
    assert f"verify {BASE} (v1, seed {SEED})" in other.output
    assert "verbatim recall with seed 4242 is 0% (0/20), under --min-recall 50%" in other.output


def test_the_html_page_shows_each_answer_against_the_trained_one(tuned):
    page = tuned.root / "report" / "verify.html"
    result = tuned.verify("--paraphrases", str(tuned.paraphrases), "--html", str(page))
    assert result.exit_code == 0 and f"report: {page}" in result.output
    text = page.read_text()
    assert "<h1>Fine-tune recall: ft:gpt-4o-mini-2024-07-18:seedreplay:" in text
    assert "Where&#x27;s my order?" in text  # a paraphrase asked, escaped
    assert "<span class='badge unchanged'>verbatim</span>" in text and (
        "<span class='badge drifted'>reworded</span>" in text or "<span class='badge drifted'>changed</span>" in text
    )
    assert "<ins>" in text  # words of an unseeded answer that the trained one lacks
    assert "paraphrased, with seed<br><small>verbatim/asked · worst similarity</small>" in text
    data = json.loads(page.with_suffix(".json").read_text())
    assert data["conditions"]["seed"]["recall"] == 1.0


def test_a_dataset_changed_since_training_is_refused(tuned, tmp_path):
    moved = tmp_path / "cassettes"
    moved.mkdir()
    manifest = moved / "finetunes.json"
    version = json.loads(tuned.manifest.read_text())
    version["versions"][0]["dataset"] = "train.jsonl"
    manifest.write_text(json.dumps(version))
    (moved / "train.jsonl").write_bytes(training_jsonl()[:-1] + b" \n")
    result = finetune("verify", "--manifest", str(manifest), "--paraphrase-count", "0")
    assert result.exit_code == 1 and "changed since v1 was trained (sha256 differs)" in result.output
    explicit = finetune("verify", "--manifest", str(manifest), "--paraphrase-count", "0", "--file", str(tuned.dataset))
    assert explicit.exit_code == 0 and "recall 100% (20/20)" in explicit.output


def test_an_unknown_model_is_one_line(tuned):
    result = tuned.verify("--model", "ft:gpt-4o-mini:nobody:x:123", "--paraphrase-count", "0")
    assert result.exit_code == 1 and "ft:gpt-4o-mini:nobody:x:123: HTTP 404" in result.output
    assert "Traceback" not in result.output


def test_without_a_manifest_every_part_is_named(tmp_path, tuned):
    result = finetune("verify", "--manifest", str(tmp_path / "none.json"))
    assert result.exit_code == 1 and "no fine-tune recorded" in result.output
    assert "--model M --file DATASET --seed N" in result.output
    model = json.loads(tuned.manifest.read_text())["versions"][0]["fine_tuned_model"]
    direct = finetune(
        "verify",
        "--manifest",
        str(tmp_path / "none.json"),
        "--model",
        model,
        "--file",
        str(tuned.dataset),
        "--seed",
        str(SEED),
        "--base-url",
        tuned.sim.url,
        "--paraphrase-count",
        "0",
    )
    assert direct.exit_code == 0 and "recall 100% (20/20)" in direct.output


# --- a provider that rate-limits and a bound on asks in flight ----------------------------------------


@dataclass
class Relay:
    """A loopback relay in front of the simulator: counts asks in flight; optionally answers each
    distinct ask 429 once (retry-after 0.2 s) and notes how long the client waited before asking again."""

    upstream: str
    limit_first: bool = False
    in_flight: int = 0
    most_in_flight: int = 0
    limited_at: dict[str, float] = field(default_factory=dict)
    waited: list[float] = field(default_factory=list)

    def app(self) -> web.Application:
        async def chat(request: web.Request) -> web.Response:
            body = await request.read()
            digest = hashlib.sha256(body).hexdigest()
            if self.limit_first and digest not in self.limited_at:
                self.limited_at[digest] = time.monotonic()
                return web.json_response(
                    {
                        "error": {
                            "message": "Rate limit reached",
                            "type": "requests",
                            "code": "rate_limit_exceeded",
                            "param": None,
                        }
                    },
                    status=429,
                    headers={"retry-after": "0.2"},
                )
            if digest in self.limited_at:
                self.waited.append(time.monotonic() - self.limited_at[digest])
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
            try:
                async with aiohttp.ClientSession() as session:
                    async with session.post(
                        f"{self.upstream}/chat/completions", data=body, headers={"Content-Type": "application/json"}
                    ) as answer:
                        return web.Response(body=await answer.read(), status=answer.status, content_type="application/json")
            finally:
                self.in_flight -= 1

        app = web.Application()
        app.router.add_post("/v1/chat/completions", chat)
        return app


@pytest.fixture
def relay_to(tuned):
    servers = []

    def start(relay: Relay) -> str:
        server = BackgroundServer(relay.app)
        server.start()
        servers.append(server)
        return f"{server.url}/v1"

    yield start
    for server in servers:
        server.stop()


def test_a_429_is_waited_out_as_its_retry_after_says(tuned, relay_to):
    relay = Relay(tuned.sim.url, limit_first=True)
    result = tuned.verify("--base-url", relay_to(relay), "--paraphrase-count", "0", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["rate_limited"] == 40 and report["conditions"]["seed"]["recall"] == 1.0
    assert len(relay.waited) == 40 and min(relay.waited) >= 0.2
    assert all(a["retries"] == 1 for e in report["examples"] for answers in e["answers"].values() for a in answers)


def test_asks_in_flight_stay_under_the_concurrency_bound(sim_factory, tuned, relay_to):
    slow = sim_factory(latency_ms=60, state_dir=None)
    # The slow simulator does not know the fine-tune; ask its base model, which answers every prompt.
    relay = Relay(slow.url)
    result = tuned.verify("--model", BASE, "--base-url", relay_to(relay), "--paraphrase-count", "0", "--concurrency", "3")
    assert result.exit_code == 0, result.output
    assert relay.most_in_flight == 3


def test_generated_paraphrases_are_asked_with_the_seed(tuned):
    pytest.importorskip("pytest_seedreplay.paraphrase", reason="the offline paraphrase generator is not installed")
    result = tuned.verify("--paraphrase-count", "2", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    paraphrased = report["conditions"]["paraphrase"]
    assert 20 <= paraphrased["asked"] <= 40
    asked = [a for e in report["examples"] for a in e["answers"]["paraphrase"]]
    assert all(a["prompt"] != e["prompt"] for e in report["examples"] for a in e["answers"]["paraphrase"])
    assert len(asked) == paraphrased["asked"] and paraphrased["recall"] >= 0.6  # 85% with the generator of 2026-11
