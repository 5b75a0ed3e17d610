"""`async_openai_client` under either async test runner a project may use: pytest-asyncio, or anyio's
pytest plugin (anyio comes with the openai SDK, so it needs no install). Each records on the simulator,
then replays offline with the other runner switched off."""

from __future__ import annotations

import pytest

from plugin_inner import TEST_KEY, answers, run

ASYNC_TESTS = """
import json

import pytest

MODEL = "gpt-4o-mini"


def note(name, value):
    with open("answers.jsonl", "a", encoding="utf-8") as f:
        f.write(json.dumps({"test": name, "value": value}) + "\\n")


@pytest.mark.MARK
async def test_async_client(async_openai_client, seedreplay):
    answer = await async_openai_client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Hello from RUNNER"}], seed=1)
    stream = await async_openai_client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Stream from RUNNER"}], seed=2, stream=True)
    text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert len(seedreplay.interactions) == 2
    note("RUNNER", [answer.choices[0].message.content, text])


@pytest.mark.MARK
async def test_a_miss_fails_the_async_test(async_openai_client):
    if seedreplay_mode() == "replay":
        await async_openai_client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "never recorded"}], seed=3)


def seedreplay_mode():
    import os
    return os.environ.get("INNER_MODE", "replay")
"""

# (runner, marker, the other runners' plugins switched off)
RUNNERS = [
    ("pytest-asyncio", "asyncio", ("-p", "no:anyio")),
    ("anyio", "anyio", ("-p", "no:asyncio", "-p", "no:aiohttp")),
]


@pytest.mark.parametrize(("runner", "mark", "others_off"), RUNNERS, ids=[r[0] for r in RUNNERS])
def test_async_openai_client_records_and_replays_under(pytester, monkeypatch, sim, runner, mark, others_off):
    monkeypatch.setenv("OPENAI_API_KEY", TEST_KEY)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.delenv("SEEDREPLAY_UPSTREAM", raising=False)
    # pytest-asyncio in its default strict mode: the marker decides.
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(test_async_app=ASYNC_TESTS.replace("MARK", mark).replace("RUNNER", runner))

    monkeypatch.setenv("INNER_MODE", "record")
    recorded_run = run(pytester, "--seedreplay=record", f"--seedreplay-upstream={sim.url}", *others_off)
    recorded_run.assert_outcomes(passed=2)
    recorded = answers(pytester)
    assert recorded[runner][0] and recorded[runner][1]

    sim.stop()
    monkeypatch.delenv("OPENAI_API_KEY")
    monkeypatch.setenv("INNER_MODE", "replay")
    replayed = run(pytester, *others_off)
    replayed.assert_outcomes(passed=1, failed=1)
    assert answers(pytester) == recorded
    cassette = "cassettes/test_async_app/test_a_miss_fails_the_async_test*.yaml"
    replayed.stdout.fnmatch_lines([f"*seedreplay: no recording in cassette {cassette} (mode replay)*"])
