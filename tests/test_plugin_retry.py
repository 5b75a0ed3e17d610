"""A client that retries a request whose answer it never used (its connection broke after the
answer came: the OpenAI Agents SDK's client shared between event loops does this) is served what the
try it repeats was. A cassette never holds the unused answer, and its replay gives the client the
same answer whether or not the client retries again."""

from __future__ import annotations

import yaml

from pytest_seedreplay.core.entry import Entry
from pytest_seedreplay.store.cassette_store import CassetteStore

from plugin_inner import TEST_KEY, answers, cassette_dir, run, setup_project

FLAKY_TESTS = '''
import json
import os
import sys

import openai

# The transport module the installed SDK speaks through (httpx for openai 1.x, httpx2 for 3.x).
transport = sys.modules[openai.DefaultHttpxClient.__mro__[1].__module__.split(".")[0]]


class LosesTheFirstAnswer(transport.BaseTransport):
    """Reads the first answer whole, then fails as a connection of another event loop would."""

    def __init__(self):
        self.inner = transport.HTTPTransport()
        self.lost = os.environ.get("LOSE_FIRST_ANSWER") != "1"

    def handle_request(self, request):
        response = self.inner.handle_request(request)
        if not self.lost:
            self.lost = True
            response.read()
            response.close()
            raise transport.ReadError("the connection broke after the answer came", request=request)
        return response


def note(name, value):
    with open("answers.jsonl", "a", encoding="utf-8") as f:
        f.write(json.dumps({"test": name, "value": value}) + "\\n")


def test_a_client_that_retries():
    client = openai.OpenAI(max_retries=2, http_client=openai.DefaultHttpxClient(transport=LosesTheFirstAnswer()))
    # Unseeded and hot: every upstream call answers differently.
    answer = client.chat.completions.create(model="gpt-4o-mini", temperature=1.6,
                                            messages=[{"role": "user", "content": "Tell me something new"}])
    note("answer", answer.choices[0].message.content)
'''


def cassette_answers(pytester) -> list[str]:
    [path] = cassette_dir(pytester).rglob("*.yaml")
    return [i["response"]["body"]["string"] for i in yaml.safe_load(path.read_text(encoding="utf-8"))["interactions"]]


def test_a_retried_request_records_one_answer_and_replays_it_whether_or_not_the_client_retries(pytester, monkeypatch, sim):
    monkeypatch.setenv("OPENAI_API_KEY", TEST_KEY)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.setenv("LOSE_FIRST_ANSWER", "1")
    setup_project(pytester, test_flaky=FLAKY_TESTS)

    run(pytester, "--seedreplay=record", f"--seedreplay-upstream={sim.url}").assert_outcomes(passed=1)
    recorded = answers(pytester)["answer"]
    [kept] = cassette_answers(pytester)
    assert recorded in kept
    assert sim.stats()["requests"]["POST /v1/chat/completions"] == 1  # the retry was served the recording

    monkeypatch.delenv("OPENAI_API_KEY")
    sim.stop()
    monkeypatch.setenv("LOSE_FIRST_ANSWER", "0")  # this time the client uses its first answer
    run(pytester).assert_outcomes(passed=1)
    assert answers(pytester)["answer"] == recorded
    monkeypatch.setenv("LOSE_FIRST_ANSWER", "1")  # and this time it retries again
    run(pytester).assert_outcomes(passed=1)
    assert answers(pytester)["answer"] == recorded


def test_rewrite_keeps_only_the_answer_of_the_retry(pytester, monkeypatch, sim):
    monkeypatch.setenv("OPENAI_API_KEY", TEST_KEY)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.setenv("LOSE_FIRST_ANSWER", "1")
    setup_project(pytester, test_flaky=FLAKY_TESTS)

    run(pytester, "--seedreplay=rewrite", f"--seedreplay-upstream={sim.url}").assert_outcomes(passed=1)
    used = answers(pytester)["answer"]
    [kept] = cassette_answers(pytester)
    assert used in kept  # rewrite asks the upstream every time: the retry's answer replaced the unused one
    assert sim.stats()["requests"]["POST /v1/chat/completions"] == 2


def entry(key: str, text: str) -> Entry:
    return Entry(key, "/v1/chat/completions", {"endpoint": "/v1/chat/completions", "params": {}}, body={"text": text})


def test_a_rewound_cassette_plays_the_place_of_the_last_request_again():
    store = CassetteStore(None, [entry("k", "first"), entry("k", "second")], repeat_last=False)
    assert store.get("k").body["text"] == "first"
    store.rewind("k")  # a retry of that request
    assert store.get("k").body["text"] == "first"
    assert store.get("k").body["text"] == "second"  # the next request of the same key moves on
    store.rewind("never asked")  # nothing to repeat: the first request of a key stays the first
    assert store.get("never asked") is None


def test_a_retry_put_without_a_read_replaces_the_answer_of_its_try():
    store = CassetteStore(None, [])
    store.put(entry("k", "unused"))
    store.rewind("k")
    store.put(entry("k", "used"))
    assert [e.body["text"] for e in store.iter_entries()] == ["used"]
