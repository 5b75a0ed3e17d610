"""A test's cassette through a real inner pytest: its name stays in the cassette dir, and a cassette
that is more than data (an alias bomb, a Python tag) fails the test with one line naming the file."""

from __future__ import annotations

import os

import pytest

from plugin_inner import TEST_KEY, cassette_dir, run, setup_project


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", TEST_KEY)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.delenv("SEEDREPLAY_UPSTREAM", raising=False)


ESCAPING = """
    import pytest

    @pytest.mark.seedreplay(cassette="{name}")
    def test_escapes(openai_client):
        openai_client.chat.completions.create(model="gpt-4o-mini", messages=[{{"role": "user", "content": "hi"}}], seed=1)

    def test_stays(openai_client):
        openai_client.chat.completions.create(model="gpt-4o-mini", messages=[{{"role": "user", "content": "hi"}}], seed=1)
"""


def test_a_marker_cassette_name_with_dotdot_is_refused_and_nothing_is_written_outside(pytester, sim, tmp_path_factory):
    target = tmp_path_factory.mktemp("outside")
    name = os.path.relpath(target / "x", cassette_dir(pytester))  # ../../outside0/x
    setup_project(pytester, test_names=ESCAPING.format(name=name))

    result = run(pytester, "--seedreplay=record", f"--seedreplay-upstream={sim.url}")

    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            f"*@pytest.mark.seedreplay(cassette={name!r}): a cassette name must stay inside the cassette dir "
            f"{cassette_dir(pytester)}; drop the '..' parts, or move the cassette dir with the ini option seedreplay_cassette_dir"
        ]
    )
    assert list(target.iterdir()) == []
    assert [p.name for p in cassette_dir(pytester).rglob("*.yaml")] == ["test_stays.yaml"]


BOMB = "\n".join(
    ["a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    + [f"{c}: &{c} [{', '.join(['*' + p] * 9)}]" for p, c in zip("abcdefgh", "bcdefghi", strict=True)]
    + ["interactions: [*i]", ""]
)


@pytest.mark.parametrize(
    "text, refused",
    [
        (BOMB, "line 1: an anchor (&a) is not allowed"),
        ("interactions:\n- !!python/object/apply:os.system ['touch ran']\n", "line 2: the tag !!python/object/apply:os.system"),
    ],
)
def test_a_cassette_that_is_more_than_data_fails_its_test_naming_the_file(pytester, text, refused):
    setup_project(
        pytester,
        test_hostile="""
            def test_replays(openai_client):
                openai_client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
        """,
    )
    path = cassette_dir(pytester) / "test_hostile" / "test_replays.yaml"
    path.parent.mkdir(parents=True)
    path.write_text(text)

    result = run(pytester)

    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([f"*{path}: {refused}*re-record the cassette"])
    assert not (pytester.path / "ran").exists()
