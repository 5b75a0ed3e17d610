"""The live drift gate, as a user runs it: `--seedreplay-drift=fail-on-change` (and the ini) fails a
test only when its answer's behaviour changed, the marker overrides it per test, and the summary
counts the verdicts. The simulator drifts with a salt: JSON keeps its shape (reworded), embeddings
point elsewhere (changed)."""

from __future__ import annotations

import pytest

from plugin_inner import TEST_KEY, run, setup_project

GATE_TESTS = r"""
import pytest

SCHEMA = {"type": "object", "properties": {"name": {"type": "string"}, "price": {"type": "number"}},
          "required": ["name", "price"], "additionalProperties": False}
FORMAT = {"type": "json_schema", "json_schema": {"name": "product", "schema": SCHEMA, "strict": True}}


def shaped(client, text):
    messages = [{"role": "user", "content": text}]
    return client.chat.completions.create(model="gpt-4o-mini", messages=messages, seed=1, response_format=FORMAT)


def test_shape(openai_client):
    shaped(openai_client, "A product please")


def test_vectors(openai_client):
    openai_client.embeddings.create(model="text-embedding-3-small", input=["alpha"])


@pytest.mark.seedreplay(drift="fail")
def test_shape_strict(openai_client):
    shaped(openai_client, "Another product")


@pytest.mark.seedreplay(drift="warn")
def test_vectors_tolerated(openai_client):
    openai_client.embeddings.create(model="text-embedding-3-small", input=["beta"])
"""


@pytest.fixture
def gate(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, sim, sim_factory) -> tuple[pytest.Pytester, str]:
    """A project recorded on the simulator, and the URL of a simulator whose models drifted since."""
    monkeypatch.setenv("OPENAI_API_KEY", TEST_KEY)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.delenv("SEEDREPLAY_UPSTREAM", raising=False)
    setup_project(pytester, test_gate=GATE_TESTS)
    run(pytester, "--seedreplay=record", f"--seedreplay-upstream={sim.url}").assert_outcomes(passed=4)
    return pytester, sim_factory(drift="salt").url


def outcomes(result: pytest.RunResult) -> dict[str, str]:
    reports = result.reprec.getreports("pytest_runtest_logreport")  # type: ignore[attr-defined]
    found: dict[str, str] = {}
    for report in reports:
        if report.when == "call" or report.failed:
            found[report.nodeid.split("::")[-1]] = report.outcome
    return found


def test_fail_on_change_fails_only_the_changed_behaviour_and_the_marker_overrides_it(gate):
    project, drifted = gate
    result = run(project, "--seedreplay=live", f"--seedreplay-upstream={drifted}", "--seedreplay-drift=fail-on-change")
    assert outcomes(result) == {
        "test_shape": "passed",  # reworded: the same JSON shape in other words, a warning
        "test_vectors": "failed",  # changed: the embedding points elsewhere
        "test_shape_strict": "failed",  # the marker says fail on any drift
        "test_vectors_tolerated": "passed",  # the marker says warn
    }
    result.stdout.fnmatch_lines(
        [
            "*seedreplay: live answers drifted from cassette cassettes/test_gate/test_vectors.yaml*",
            "*/v1/embeddings v1:*: answer drifted (similarity *, changed: embedding[[]0]: cosine * below 0.95)",
            "drifted: 4 interaction(s)",
            "  changed: 2 (the behaviour differs)",
            "  reworded: 2 (the same behaviour, other words)",
            "  identical: 0",
        ]
    )


def test_the_ini_sets_the_gate_and_plain_fail_fails_every_drift(gate):
    project, drifted = gate
    project.makeini(
        "[pytest]\nseedreplay_mode = live\nseedreplay_drift = fail-on-change\nasyncio_default_fixture_loop_scope = function\n"
    )
    by_ini = run(project, f"--seedreplay-upstream={drifted}")
    assert outcomes(by_ini)["test_shape"] == "passed" and outcomes(by_ini)["test_vectors"] == "failed"
    strict = run(project, f"--seedreplay-upstream={drifted}", "--seedreplay-drift=fail")
    assert outcomes(strict) == {
        "test_shape": "failed",
        "test_vectors": "failed",
        "test_shape_strict": "failed",
        "test_vectors_tolerated": "passed",  # the marker still wins
    }


def test_a_wrong_drift_in_the_marker_names_the_choices(pytester, monkeypatch, sim):
    monkeypatch.setenv("OPENAI_API_KEY", TEST_KEY)
    setup_project(
        pytester,
        test_bad="""
            import pytest

            @pytest.mark.seedreplay(drift="sometimes")
            def test_x():
                pass
        """,
    )
    result = run(pytester, "--seedreplay=live", f"--seedreplay-upstream={sim.url}")
    result.stdout.fnmatch_lines(["*seedreplay(drift='sometimes'): drift must be one of warn, fail, fail-on-change*"])
    assert result.ret != 0


def test_the_seedreplay_config_fixture_sets_the_gate_for_the_tests_it_covers(gate):
    project, drifted = gate
    project.makeconftest(
        """
        import pytest

        @pytest.fixture
        def seedreplay_config():
            return {"drift": "fail-on-change"}
        """
    )
    result = run(project, "--seedreplay=live", f"--seedreplay-upstream={drifted}")  # the option's default: warn
    assert outcomes(result) == {
        "test_shape": "passed",
        "test_vectors": "failed",  # the fixture's fail-on-change
        "test_shape_strict": "failed",  # the marker wins over the fixture
        "test_vectors_tolerated": "passed",
    }
