"""Anthropic's Messages API in a cassette (`use_cassette`, its public API only): recorded against the
simulator, the keyed headers written with the request, replayed offline; and the variable that points
Anthropic clients at a proxy."""

from __future__ import annotations

import anthropic
import yaml

from pytest_seedreplay import use_cassette
from pytest_seedreplay.core.environ import anthropic_environment
from pytest_seedreplay.store.cassette import read_cassette

MODEL = "claude-sonnet-4-5"
KEY = "sk-ant-api03-cassetteTEST0123456789abcdefABCDEF"
HELLO = [{"role": "user", "content": "Tell me about bread."}]
BYE = [{"role": "user", "content": "Say goodbye."}]


def test_a_cassette_records_and_replays_messages_plain_and_streamed(tmp_path, monkeypatch):
    path = tmp_path / "claude.yaml"
    with use_cassette(path, upstream="sim") as use:
        # What the plugin sets for Anthropic clients: the proxy's root (the SDK appends /v1/messages).
        for name, value in anthropic_environment(use.url).items():
            monkeypatch.setenv(name, value)
        with anthropic.Anthropic(api_key=KEY, max_retries=0) as client:
            plain = client.messages.create(model=MODEL, max_tokens=50, messages=HELLO)
            with client.messages.stream(model=MODEL, max_tokens=50, messages=BYE) as stream:
                streamed = stream.get_final_message()
    text = path.read_text()
    assert KEY not in text and "cassetteTEST" not in text
    interactions = yaml.safe_load(text)["interactions"]
    assert [i["request"]["uri"] for i in interactions] == ["http://seedreplay-sim.invalid/v1/messages"] * 2
    assert all(i["request"]["headers"]["anthropic-version"] for i in interactions)
    assert "event: message_start" in interactions[1]["response"]["body"]["string"]
    assert [e.key for e in read_cassette(path)] == [i["response"]["seedreplay"]["key"] for i in interactions]

    with use_cassette(path, mode="replay") as use:
        with anthropic.Anthropic(base_url=use.proxy.root, api_key="any", max_retries=0) as client:
            raw = client.messages.with_raw_response.create(model=MODEL, max_tokens=50, messages=HELLO)
            assert raw.headers["x-seedreplay-cache"] == "hit" and raw.parse().content == plain.content
            with client.messages.stream(model=MODEL, max_tokens=50, messages=BYE) as stream:
                assert stream.get_final_message().content == streamed.content
        assert use.misses == []
