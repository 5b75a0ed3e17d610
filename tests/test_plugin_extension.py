"""pytest extension points: overridable fixtures for the config and the cassette dir, and hooks
other plugins (or a conftest.py) implement."""

from __future__ import annotations

import pytest
import yaml

from plugin_inner import run, setup_project

CALL = """
def test_asks(openai_client):
    openai_client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
"""


def recorded_seeds(path) -> list:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    import json

    return [json.loads(i["request"]["body"]).get("seed") for i in data["interactions"]]


def test_a_conftest_cassette_dir_and_config_place_and_seed_the_recordings(pytester: pytest.Pytester, sim):
    pytester.makeconftest(
        """
        import pytest

        @pytest.fixture
        def seedreplay_cassette_dir(request):
            return request.path.parent / "recorded_here"

        @pytest.fixture
        def seedreplay_config():
            return {"seed": 5}
        """
    )
    setup_project(pytester, test_one=CALL)
    run(pytester, "--seedreplay=record", f"--seedreplay-upstream={sim.url}").assert_outcomes(passed=1)
    (cassette,) = (pytester.path / "recorded_here").rglob("*.yaml")
    assert cassette.name == "test_asks.yaml" and recorded_seeds(cassette) == [5]
    assert not (pytester.path / "cassettes").exists()
    # Replay finds the cassette where the fixture says, with no upstream.
    run(pytester, "--seedreplay-upstream=http://127.0.0.1:9/v1").assert_outcomes(passed=1)


def test_the_marker_wins_over_the_config_fixture(pytester: pytest.Pytester, sim):
    pytester.makeconftest(
        """
        import pytest

        @pytest.fixture
        def seedreplay_config():
            return {"seed": 5, "cassette": "from_config"}
        """
    )
    setup_project(
        pytester,
        test_one="""
            import pytest

            @pytest.mark.seedreplay(seed=9)
            def test_asks(openai_client):
                openai_client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
        """,
    )
    run(pytester, "--seedreplay=record", f"--seedreplay-upstream={sim.url}").assert_outcomes(passed=1)
    assert recorded_seeds(pytester.path / "cassettes" / "from_config.yaml") == [9]


def test_a_config_fixture_with_an_unknown_key_fails_saying_which(pytester: pytest.Pytester):
    pytester.makeconftest(
        """
        import pytest

        @pytest.fixture
        def seedreplay_config():
            return {"record_mode": "once"}
        """
    )
    setup_project(pytester, test_one=CALL)
    result = run(pytester)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*the seedreplay_config fixture takes only keyword arguments cassette, mode, seed, finetune, drift; got record_mode*"]
    )


def test_hooks_place_cassettes_and_see_each_recording(pytester: pytest.Pytester, sim):
    pytester.makeconftest(
        """
        def pytest_seedreplay_cassette_path(item, cassette_dir, name):
            return cassette_dir / "flat" / (item.name + ".yaml")

        SEEN = []

        def pytest_seedreplay_recording(item, recording):
            SEEN.append((item.name, recording.mode, recording.cassette.name))

        def pytest_sessionfinish(session):
            (session.config.rootpath / "seen.txt").write_text(repr(SEEN))
        """
    )
    setup_project(pytester, test_one=CALL)
    run(pytester, "--seedreplay=record", f"--seedreplay-upstream={sim.url}").assert_outcomes(passed=1)
    assert (pytester.path / "cassettes" / "flat" / "test_asks.yaml").exists()
    assert (pytester.path / "seen.txt").read_text() == "[('test_asks', 'record', 'test_asks.yaml')]"
