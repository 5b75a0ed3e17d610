"""pytest's live fine-tune comparison, as a user runs it: record the cassettes, export them, fine-tune a
model on the simulator with a seed, then `--seedreplay=live --seedreplay-finetune latest` asks the
fine-tune every request for its base model and compares each answer with its recording."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from finetune_support import BASE, SEED, create_finetune, finetune
from plugin_inner import TEST_KEY, run, setup_project

QUESTIONS = [
    "How do I reset my password?",
    "What are your opening hours?",
    "Do you ship to Canada?",
    "How long does a refund take?",
    "Can I change my delivery address?",
    "How do I cancel my subscription?",
    "Is the tomato soup vegan?",
    "Which payment methods do you accept?",
    "How do I contact support?",
    "Where is my order?",
    "Can I get an invoice?",
]

FAQ_TESTS = f'''
import json

import pytest

BASE = "{BASE}"
QUESTIONS = {QUESTIONS!r}


def ask(client, text, stream=False):
    messages = [{{"role": "system", "content": "You answer for the shop."}}, {{"role": "user", "content": text}}]
    answer = client.chat.completions.create(model=BASE, messages=messages, seed=7, stream=stream)
    if stream:
        return "".join(c.choices[0].delta.content or "" for c in answer if c.choices)
    return answer.choices[0].message.content


@pytest.mark.parametrize("number", range(9))
def test_faq(openai_client, number):
    assert ask(openai_client, QUESTIONS[number])


def test_streamed_pair(openai_client):
    assert ask(openai_client, QUESTIONS[9], stream=True) and ask(openai_client, QUESTIONS[10])


def test_the_fixture_says_which_fine_tune(openai_client, seedreplay_finetune):
    assert ask(openai_client, QUESTIONS[0])
    with open("fixture.json", "w") as f:
        json.dump(seedreplay_finetune.to_dict() if seedreplay_finetune else None, f)
'''

OTHER_TESTS = f'''
import pytest

BASE = "{BASE}"


def ask(client, text, model=BASE):
    messages = [{{"role": "user", "content": text}}]
    return client.chat.completions.create(model=model, messages=messages, seed=7).choices[0].message.content


def test_untrained_question(openai_client):
    assert ask(openai_client, "Which planet has the most moons?")


def test_another_model(openai_client):
    assert ask(openai_client, "How do I reset my password?", model="gpt-4.1-mini")


@pytest.mark.seedreplay(finetune=False)
def test_opted_out(openai_client):
    assert ask(openai_client, "Do you ship to Canada?")
'''


@pytest.fixture
def project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, sim_factory):
    """A project whose cassettes are recorded on the simulator and whose FAQ tests taught a fine-tune."""
    monkeypatch.setenv("OPENAI_API_KEY", TEST_KEY)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.delenv("SEEDREPLAY_UPSTREAM", raising=False)
    sim = sim_factory(job_seconds=0.3)
    setup_project(pytester, test_faq=FAQ_TESTS, test_other=OTHER_TESTS)
    run(pytester, "--seedreplay=record", f"--seedreplay-upstream={sim.url}").assert_outcomes(passed=14)
    root = Path(pytester.path)
    dataset = root / "cassettes" / "finetune" / "train.jsonl"
    exported = finetune("export", "--cassette-dir", str(root / "cassettes"), "--tests", "test_faq.py::*", "-o", str(dataset))
    assert exported.exit_code == 0, exported.output
    created = create_finetune(dataset, root / "cassettes" / "finetunes.json", sim.url)
    assert created.exit_code == 0, created.output
    pytester.sim = sim
    return pytester


def live(project: pytest.Pytester, *args: str) -> pytest.RunResult:
    return run(project, "--seedreplay=live", f"--seedreplay-upstream={project.sim.url}", *args)


def model_of(project: pytest.Pytester) -> str:
    return json.loads((Path(project.path) / "cassettes" / "finetunes.json").read_text())["versions"][-1]["fine_tuned_model"]


def test_live_finetune_recalls_every_trained_answer_and_reports_recall_per_test(project, tmp_path):
    report = tmp_path / "report.json"
    result = live(project, "--seedreplay-finetune", "latest", f"--seedreplay-report={report}")
    result.assert_outcomes(passed=14, warnings=1)
    model = model_of(project)
    result.stdout.fnmatch_lines(
        [
            "live-compared: 15 interaction(s)",
            "drifted: 1 interaction(s)",
            "drift: test_other.py::test_untrained_question: /v1/chat/completions similarity *",
            f"fine-tune recall: 12/13 verbatim (92%), 1 reworded, 0 changed from {model} (seed {SEED}, v1)",
            "fine-tune: test_faq.py::test_faq[[]0]: 1/1 verbatim (100%), 0 reworded, 0 changed",
            "fine-tune: test_faq.py::test_streamed_pair: 2/2 verbatim (100%), 0 reworded, 0 changed",
            "fine-tune: test_other.py::test_untrained_question: 0/1 verbatim (0%), 1 reworded, 0 changed",
        ]
    )
    out = result.stdout.str()
    assert "test_another_model: " not in out.split("fine-tune recall")[1]  # other models: compared, not the fine-tune's
    assert "test_opted_out: " not in out.split("fine-tune recall")[1]

    data = json.loads(report.read_text())
    assert (data["summary"]["finetune_compared"], data["summary"]["finetune_verbatim"]) == (13, 12)
    tests = {t["nodeid"]: t for t in data["tests"]}
    pair = tests["test_faq.py::test_streamed_pair"]["finetune"]
    assert pair == {
        "model": model,
        "seed": SEED,
        "version": "v1",
        "base_model": BASE,
        "live": True,
        "compared": 2,
        "verbatim": 2,
        "reworded": 0,
        "changed": 0,
        "recall": 1.0,
    }
    assert {d["finetune"] for d in tests["test_faq.py::test_streamed_pair"]["drift"]} == {model}
    assert tests["test_other.py::test_another_model"]["finetune"] == {**pair, "compared": 0, "verbatim": 0, "recall": 0.0}
    assert [d["finetune"] for d in tests["test_other.py::test_another_model"]["drift"]] == [None]
    assert tests["test_other.py::test_opted_out"]["finetune"] is None
    page = report.with_suffix(".html").read_text()
    assert (
        f"fine-tune {model} (v1, seed {SEED}): <b>2/2</b> verbatim (100%), 0 reworded, 0 changed" in page
        and "fine-tune verbatim" in page
    )
    fixture = json.loads((Path(project.path) / "fixture.json").read_text())
    assert fixture == {"model": model, "seed": SEED, "version": "v1", "base_model": BASE, "live": True}


ALIAS_TESTS = f"""
BASE_ALIAS = "gpt-4o-mini"  # the alias of the fine-tune's base model, {BASE}


def test_alias(openai_client):
    messages = [{{"role": "system", "content": "You answer for the shop."}}, {{"role": "user", "content": {QUESTIONS[0]!r}}}]
    assert openai_client.chat.completions.create(model=BASE_ALIAS, messages=messages, seed=7).choices[0].message.content
"""


def test_a_request_naming_the_base_models_alias_is_asked_of_the_fine_tune(project, tmp_path):
    project.makepyfile(test_alias=ALIAS_TESTS)
    run(project, "--seedreplay=record", f"--seedreplay-upstream={project.sim.url}", "test_alias.py").assert_outcomes(passed=1)
    report = tmp_path / "report.json"
    live(project, "--seedreplay-finetune", "latest", f"--seedreplay-report={report}", "test_alias.py").assert_outcomes(passed=1)
    (test,) = json.loads(report.read_text())["tests"]
    assert [d["finetune"] for d in test["drift"]] == [model_of(project)]  # asked of the fine-tune, as its snapshot is
    assert test["finetune"]["compared"] == 1


def test_without_the_fine_tune_live_asks_the_base_model_and_the_fixture_is_none(project):
    result = live(project, "test_faq.py")
    result.assert_outcomes(passed=11)
    result.stdout.fnmatch_lines(["live-compared: 12 interaction(s)", "drifted: 0 interaction(s)"])
    assert "fine-tune" not in result.stdout.str()
    assert json.loads((Path(project.path) / "fixture.json").read_text()) is None


def test_the_marker_asks_the_fine_tune_for_one_test_and_replay_only_names_it(project):
    test_file = Path(project.path) / "test_faq.py"
    name = "def test_the_fixture_says_which_fine_tune"
    test_file.write_text(test_file.read_text().replace(name, f'@pytest.mark.seedreplay(finetune="v1")\n{name}'))
    result = live(project, "test_faq.py")
    result.assert_outcomes(passed=11)
    result.stdout.fnmatch_lines(
        [
            f"fine-tune recall: 1/1 verbatim (100%), 0 reworded, 0 changed from {model_of(project)} (seed {SEED}, v1)",
            "fine-tune: test_faq.py::test_the_fixture_says_which_fine_tune: 1/1 verbatim (100%), 0 reworded, 0 changed",
        ]
    )
    assert json.loads((Path(project.path) / "fixture.json").read_text())["live"] is True

    replayed = run(project, "test_faq.py")  # replay: the cassettes answer; the fixture still names the fine-tune
    replayed.assert_outcomes(passed=11)
    assert "fine-tune" not in replayed.stdout.str()
    assert json.loads((Path(project.path) / "fixture.json").read_text())["live"] is False


def test_a_fine_tune_that_is_not_in_the_manifest_is_a_usage_error(project):
    result = live(project, "--seedreplay-finetune", "v9")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--seedreplay-finetune: fine-tune 'v9': no version 'v9' in *finetunes.json (it has v1)*"])
    outside = run(project, "--seedreplay-finetune", "latest")
    assert outside.ret == pytest.ExitCode.USAGE_ERROR
    outside.stderr.fnmatch_lines(["*--seedreplay-finetune compares live answers with the cassettes: add --seedreplay=live*"])


def test_a_bad_marker_argument_fails_the_test_saying_what_to_give(pytester):
    setup_project(
        pytester,
        test_bad="""
        import pytest

        @pytest.mark.seedreplay(finetune=3)
        def test_x():
            pass
    """,
    )
    result = run(pytester)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*@pytest.mark.seedreplay(finetune=3): name a manifest version ('latest', 'v2', a fine-tuned*"])


def test_the_redirect_takes_every_name_of_the_base_model_and_nothing_else():
    from pytest_seedreplay.proxy.binding import Redirect

    redirect = Redirect(BASE, "ft:gpt-4o-mini-2024-07-18:org::x", SEED)
    chat = "/v1/chat/completions"
    assert redirect.applies(chat, {"model": BASE}) and redirect.applies(chat, {"model": "gpt-4o-mini"})
    assert not redirect.applies(chat, {"model": "gpt-4o"}) and not redirect.applies("/v1/embeddings", {"model": BASE})
    assert not redirect.applies(chat, {"model": ["gpt-4o-mini"]})  # a malformed model is no alias (and no crash)
