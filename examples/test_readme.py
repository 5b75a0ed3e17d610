"""The README's pytest example, as a test that runs: a shared cassette, an injected seed, the
`seedreplay` handle, the sync and async client fixtures, and a subprocess using OPENAI_BASE_URL."""

import subprocess
import sys

import pytest


@pytest.mark.seedreplay(cassette="shared_answers", seed=42)  # also mode="record" etc.
def test_summary(openai_client, seedreplay):  # async_openai_client for AsyncOpenAI
    openai_client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "Summarise why seeds make answers cacheable."}]
    )  # gets seed=42: it has none
    assert seedreplay.interactions
    assert not [d for d in seedreplay.drift if d.drifted]  # live mode: this test's comparisons


@pytest.fixture
def anyio_backend():
    return "asyncio"  # anyio comes with openai: its pytest plugin runs async tests, no other runner needed


@pytest.mark.anyio
async def test_async_client(async_openai_client):
    stream = await async_openai_client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "Name three uses of a cache."}], seed=3, stream=True
    )
    assert "".join([chunk.choices[0].delta.content or "" async for chunk in stream if chunk.choices])


def test_any_process_goes_through_the_proxy(seedreplay_proxy):
    # A subprocess (or a non-Python client) finds the proxy in OPENAI_BASE_URL.
    script = (
        "import openai; c = openai.OpenAI(max_retries=0); "
        "print(c.embeddings.create(model='text-embedding-3-small', input='cache').data[0].embedding[:2])"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
