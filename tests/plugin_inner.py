"""Inner test modules and helpers for the pytester sessions of the test_plugin_* files.

The inner tests write what the API answered to `answers.jsonl`, so the outer test can check that a
replay serves exactly what was recorded (streams and async included)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

# Imported once here, not by every inner session: pytester forgets modules an inner run imported.
import openai  # noqa: F401
import pytest
import vcr  # noqa: F401
import vcr.patch  # noqa: F401

import pytest_seedreplay.proxy.app  # noqa: F401

openai.OpenAI(api_key="unused", base_url="http://127.0.0.1:9/v1").close()  # loads the transport's modules

# A test key: shaped like a real one, so a leak into a cassette would be caught by grep.
TEST_KEY = "sk-test-" + "Zq7" * 14

INI = """
[pytest]
seedreplay_mode = replay
asyncio_mode = auto
asyncio_default_fixture_loop_scope = function
"""

APP_TESTS = r"""
import json
import subprocess
import sys

import openai
import pytest

MODEL = "gpt-4o-mini"
# Created at collection time: OPENAI_BASE_URL already points at the plugin's proxy.
module_client = openai.OpenAI(max_retries=0)


def note(name, value):
    with open("answers.jsonl", "a", encoding="utf-8") as f:
        f.write(json.dumps({"test": name, "value": value}) + "\n")


def ask(client, text, **kw):
    return client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": text}], **kw)


def test_chat(openai_client, seedreplay):
    answer = ask(openai_client, "Say hello", seed=1)
    note("chat", answer.choices[0].message.content)
    assert len(seedreplay.interactions) == 1


def test_repeats_play_in_order(openai_client):
    # Unseeded: the upstream answers differently each time; the replay must keep the order.
    first = ask(openai_client, "Tell me a story", temperature=1.2)
    second = ask(openai_client, "Tell me a story", temperature=1.2)
    note("repeat", [first.choices[0].message.content, second.choices[0].message.content])


def test_stream(openai_client):
    chunks = list(ask(openai_client, "Stream a poem", seed=2, stream=True))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert len(chunks) > 3
    note("stream", text)


async def test_async(async_openai_client):
    answer = await async_openai_client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Async hello"}], seed=3)
    stream = await async_openai_client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Async stream"}], seed=4, stream=True)
    text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    note("async", [answer.choices[0].message.content, text])


def test_embeddings(openai_client):
    result = openai_client.embeddings.create(model="text-embedding-3-small", input=["alpha", "beta"])
    assert len(result.data) == 2
    note("embeddings", [d.embedding[:4] for d in result.data])


def test_module_level_client():
    note("module", ask(module_client, "From the module", seed=5).choices[0].message.content)


@pytest.mark.parametrize("topic", ["cats & dogs", "a/b test"])
def test_param(openai_client, topic):
    note("param " + topic, ask(openai_client, topic, seed=6).choices[0].message.content)
"""

# Each recorded test of APP_TESTS and the cassette file it must produce.
APP_CASSETTES = [
    "test_chat.yaml",
    "test_repeats_play_in_order.yaml",
    "test_stream.yaml",
    "test_async.yaml",
    "test_embeddings.yaml",
    "test_module_level_client.yaml",
    "test_param[cats_dogs].yaml",
    "test_param[a_b_test].yaml",
]


def setup_project(pytester: pytest.Pytester, **modules: str) -> None:
    pytester.makeini(INI)
    pytester.makepyfile(**modules)


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    """An in-process inner session (fast); cacheprovider off so no .pytest_cache is written."""
    return pytester.runpytest("-p", "no:cacheprovider", "-p", "no:hypothesispytest", *args)


def answers(pytester: pytest.Pytester, clear: bool = True) -> dict[str, Any]:
    path = Path(pytester.path) / "answers.jsonl"
    if not path.exists():
        return {}
    found = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        item = json.loads(line)
        found[item["test"]] = item["value"]
    if clear:
        path.unlink()
    return found


def cassette_dir(pytester: pytest.Pytester) -> Path:
    return Path(pytester.path) / "cassettes"


def cassette_text(pytester: pytest.Pytester) -> str:
    return "\n".join(p.read_text(encoding="utf-8") for p in sorted(cassette_dir(pytester).rglob("*.yaml")))
