"""The public Python API, used as a script, a unittest suite and async code would use it: record
against the simulator, then replay with the simulator stopped."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import openai
import pytest
import yaml

import pytest_seedreplay
from pytest_seedreplay import Proxy, open_store, request_key, use_cassette
from pytest_seedreplay.store.cassette import read_cassette

CHAT = "/v1/chat/completions"
BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hello api"}], "seed": 3}


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "SEEDREPLAY_"))}
    return {**env, **extra}


def run_python(path: Path, code: str, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    path.write_text(textwrap.dedent(code), encoding="utf-8")
    return subprocess.run(
        [sys.executable, *args, str(path)], cwd=path.parent, env=env, capture_output=True, text=True, timeout=120
    )


def test_the_public_names_are_the_documented_four():
    assert set(pytest_seedreplay.__all__) == {"Proxy", "open_store", "request_key", "use_cassette", "__version__"}
    assert request_key(CHAT, BODY) == request_key(CHAT, {**BODY, "temperature": 1.0, "stream": True})


SCRIPT = """
    import openai
    from pytest_seedreplay import use_cassette

    with use_cassette("cassettes/script.yaml", mode=MODE) as cassette:
        client = openai.OpenAI(max_retries=0)          # reads OPENAI_BASE_URL: the cassette's proxy
        answer = client.chat.completions.create(model="gpt-4o-mini", seed=1,
                                                messages=[{"role": "user", "content": "Name a color"}])
        print("ANSWER", answer.choices[0].message.content)
        print("MISSES", len(cassette.misses))
"""


def test_a_plain_script_records_then_replays_with_the_simulator_stopped(tmp_path, sim):
    record = run_python(
        tmp_path / "script.py",
        SCRIPT.replace("MODE", '"record"'),
        clean_env(OPENAI_API_KEY="sk-test-x", SEEDREPLAY_UPSTREAM=sim.url),
    )
    assert record.returncode == 0, record.stderr
    recorded = [line for line in record.stdout.splitlines() if line.startswith("ANSWER")]
    assert recorded and sim.stats()["total"] == 1
    (entry,) = read_cassette(tmp_path / "cassettes" / "script.yaml")
    assert entry.request["params"]["seed"] == 1

    sim.stop()
    replay = run_python(tmp_path / "script.py", SCRIPT.replace("MODE", '"replay"'), clean_env())  # no key, no upstream
    assert replay.returncode == 0, replay.stderr
    assert [line for line in replay.stdout.splitlines() if line.startswith("ANSWER")] == recorded
    assert "MISSES 0" in replay.stdout


UNITTEST_SUITE = """
    import os
    import unittest

    import openai
    from pytest_seedreplay import use_cassette

    MODE = os.environ["CASSETTE_MODE"]


    class Questions(unittest.TestCase):
        @use_cassette("cassettes/questions/test_capital.yaml", mode=MODE, seed=7)
        def test_capital(self):
            client = openai.OpenAI(max_retries=0)
            answer = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "Capital of France?"}])
            self.assertTrue(answer.choices[0].message.content)
            with open("answers.txt", "a", encoding="utf-8") as f:
                f.write(answer.choices[0].message.content + "\\n")

        def test_changed_prompt_misses_and_says_what_differs(self):
            if MODE != "replay":
                self.skipTest("replay only")
            with use_cassette("cassettes/questions/test_capital.yaml", mode="replay", seed=8):
                with self.assertRaises(openai.NotFoundError) as caught:
                    openai.OpenAI(max_retries=0).chat.completions.create(
                        model="gpt-4o-mini", messages=[{"role": "user", "content": "Capital of France?"}])
            self.assertIn("seed: 7 → 8", str(caught.exception))


    if __name__ == "__main__":
        unittest.main()
"""


def test_a_unittest_suite_records_then_replays_offline(tmp_path, sim):
    env = clean_env(OPENAI_API_KEY="sk-test-x", SEEDREPLAY_UPSTREAM=sim.url, CASSETTE_MODE="record")
    record = run_python(tmp_path / "test_questions.py", UNITTEST_SUITE, env)
    assert record.returncode == 0, record.stderr
    assert sim.stats()["total"] == 1
    sim.stop()
    replay = run_python(tmp_path / "test_questions.py", UNITTEST_SUITE, clean_env(CASSETTE_MODE="replay"))
    assert replay.returncode == 0, replay.stderr
    assert "Ran 2 tests" in replay.stderr and "OK" in replay.stderr
    first, again = (tmp_path / "answers.txt").read_text(encoding="utf-8").splitlines()
    assert first == again
    cassette = yaml.safe_load((tmp_path / "cassettes/questions/test_capital.yaml").read_text(encoding="utf-8"))
    assert len(cassette["interactions"]) == 1


async def test_an_async_block_and_a_decorated_coroutine_share_the_cassette(tmp_path, sim):
    path = tmp_path / "async.yaml"
    async with use_cassette(path, mode="record", upstream=sim.url) as cassette:
        client = openai.AsyncOpenAI(base_url=cassette.url, api_key="sk-test-x", max_retries=0)
        first = await client.chat.completions.create(**BODY)
        await client.close()
    assert cassette.recorded == 1

    @use_cassette(path, mode="replay", upstream="http://127.0.0.1:9/v1")
    async def replayed() -> str:
        client = openai.AsyncOpenAI(max_retries=0)  # OPENAI_BASE_URL points at the cassette
        answer = await client.chat.completions.create(**BODY)
        await client.close()
        return answer.choices[0].message.content

    assert await replayed() == first.choices[0].message.content
    assert "OPENAI_BASE_URL" not in os.environ or os.environ["OPENAI_BASE_URL"] != cassette.url  # put back


def test_use_cassette_refuses_an_unknown_mode():
    with pytest.raises(ValueError, match="use one of replay, record, rewrite, live"):
        use_cassette("x.yaml", mode="passthrough")


def test_proxy_serves_a_store_and_counts(tmp_path, sim):
    with Proxy(sim.url, store=tmp_path / "cache") as proxy:
        client = openai.OpenAI(base_url=proxy.url, api_key="sk-test-x", max_retries=0)
        answers = [client.chat.completions.create(**BODY).choices[0].message.content for _ in range(2)]
        client.close()
        stats = proxy.stats()
    assert answers[0] == answers[1]
    assert (stats["misses"], stats["hits"], stats["stored"], stats["upstream_calls"]) == (1, 1, 1, 1)
    with open_store(str(tmp_path / "cache")) as store:
        assert request_key(CHAT, BODY) in store


async def test_proxy_as_an_async_context_manager_replays_what_it_recorded(tmp_path, sim):
    async with Proxy(sim.url, store=tmp_path / "cache") as proxy:
        client = openai.AsyncOpenAI(base_url=proxy.url, api_key="sk-test-x", max_retries=0)
        recorded = (await client.chat.completions.create(**BODY)).choices[0].message.content
        await client.close()
    sim.stop()
    async with Proxy(sim.url, store=tmp_path / "cache", mode="replay") as proxy:
        client = openai.AsyncOpenAI(base_url=proxy.url, api_key="unused", max_retries=0)
        assert (await client.chat.completions.create(**BODY)).choices[0].message.content == recorded
        await client.close()
        assert proxy.stats()["hits"] == 1


def test_a_lazy_proxy_binds_its_port_and_starts_on_the_first_request(tmp_path, sim):
    proxy = Proxy(sim.url, store=tmp_path / "cache")
    url = proxy.start(lazily=True)
    try:
        assert not proxy._server.started
        client = openai.OpenAI(base_url=url, api_key="sk-test-x", max_retries=0)
        assert client.chat.completions.create(**BODY).choices[0].message.content
        client.close()
        assert proxy._server.started
    finally:
        proxy.stop()


def test_a_lazy_proxy_that_never_served_stops_without_starting(tmp_path, sim):
    proxy = Proxy(sim.url, store=tmp_path / "cache")
    proxy.start(lazily=True)
    proxy.stop()
    assert proxy._server is None and not proxy.root


def test_a_proxy_serves_on_a_port_reserved_before_it_under_what_was_bound_before_it_started(tmp_path, sim):
    import socket

    from pytest_seedreplay.store import DiskStore

    reserved = socket.create_server(("127.0.0.1", 0))  # as the pytest plugin reserves its port at start
    port = reserved.getsockname()[1]
    proxy = Proxy(sim.url, store=tmp_path / "cache", sock=reserved)
    with DiskStore(tmp_path / "other") as other:
        proxy.bind(other)  # before start(): the first request is served under this binding
        with proxy:
            assert proxy.url == f"http://127.0.0.1:{port}/v1"
            client = openai.OpenAI(base_url=proxy.url, api_key="sk-test-x", max_retries=0)
            assert client.chat.completions.create(**BODY).choices[0].message.content
            client.close()
            proxy.settle()
            assert proxy.stats()["stored"] == 1
        assert request_key(CHAT, BODY) in other
    assert reserved.fileno() == -1  # the proxy closed the socket it was given
    with open_store(str(tmp_path / "cache")) as own:
        assert request_key(CHAT, BODY) not in own


def test_a_running_proxy_is_rebound_only_on_its_own_loop(tmp_path, sim):
    from pytest_seedreplay.proxy.binding import Binding
    from pytest_seedreplay.store import DiskStore

    with Proxy(sim.url, store=tmp_path / "cache") as proxy:
        state = proxy._state()
        with DiskStore(tmp_path / "other") as other:
            with pytest.raises(RuntimeError, match="on its own loop only: use Proxy.bind"):
                import asyncio

                asyncio.run(_rebind(state, Binding(other)))  # another thread's loop
            with pytest.raises(RuntimeError, match="on its own loop only"):
                state.rebind(Binding(other))  # no loop at all
            proxy.bind(other, default_seed=4)  # the way: swapped on the proxy's loop
            assert state.bound.store is other and state.bound.binding.default_seed == 4


async def _rebind(state, binding) -> None:
    state.rebind(binding)


def test_an_anthropic_client_built_inside_a_block_needs_no_base_url_nor_key(tmp_path, monkeypatch):
    import anthropic

    for name in ("ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "SEEDREPLAY_ANTHROPIC_UPSTREAM"):
        monkeypatch.delenv(name, raising=False)
    path = tmp_path / "claude.yaml"
    ask = {"model": "claude-sonnet-4-5", "max_tokens": 40, "messages": [{"role": "user", "content": "Bread?"}]}
    with use_cassette(path, upstream="sim"):  # the Anthropic upstream follows: the simulator
        with anthropic.Anthropic(max_retries=0) as client:
            recorded = client.messages.create(**ask)
    assert "ANTHROPIC_BASE_URL" not in os.environ and "ANTHROPIC_API_KEY" not in os.environ  # put back
    assert [e.endpoint for e in read_cassette(path)] == ["/v1/messages"]
    with use_cassette(path, mode="replay") as use:
        with anthropic.Anthropic(max_retries=0) as client:
            assert client.messages.create(**ask).content == recorded.content
            with pytest.raises(anthropic.NotFoundError):
                client.messages.create(**{**ask, "max_tokens": 41})
    assert len(use.misses) == 1 and "max_tokens" in use.misses[0].message


@pytest.mark.parametrize("mode", ["rewrite", "live"])
def test_use_cassette_takes_every_mode_of_the_plugin(tmp_path, mode):
    path = tmp_path / "modes.yaml"
    other = {**BODY, "seed": 4}
    with use_cassette(path, mode="record", upstream="sim"):
        client = openai.OpenAI(max_retries=0)
        recorded = client.chat.completions.create(**BODY).choices[0].message.content
        client.chat.completions.create(**other)
    assert len(read_cassette(path)) == 2
    with use_cassette(path, mode=mode, upstream="sim") as use:
        answer = openai.OpenAI(max_retries=0).chat.completions.create(**BODY)
    assert answer.choices[0].message.content == recorded  # the simulator answers a seeded request alike
    kept = read_cassette(path)
    if mode == "rewrite":  # exactly what the block used is kept
        assert [e.request["params"]["seed"] for e in kept] == [3]
    else:  # live compares with the recording and writes nothing
        assert len(kept) == 2
        assert [(d.recorded, d.verbatim) for d in use.drift] == [(True, True)]
