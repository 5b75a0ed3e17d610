"""Fault injection (X-Sim-Fault and --fault-rate), auth and OpenAI-shaped errors."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request

import openai
import pytest

from pytest_seedreplay.proxy.sim import app as sim_app

MESSAGES = [{"role": "user", "content": "hello"}]


def _stream_cut_errors() -> tuple[type[BaseException], ...]:
    """What a cut stream raises mid-iteration: openai 3.x wraps it, 1.x lets httpx's own error through."""
    errors: list[type[BaseException]] = [openai.APIConnectionError]
    for transport in ("httpx", "httpx2"):
        try:
            errors.append(__import__(transport).RemoteProtocolError)
        except ImportError:
            pass
    return tuple(errors)


def client_for(sim, **options):
    return openai.OpenAI(base_url=sim.url, api_key="sk-test", max_retries=0, **options)


def ask(client, fault=None, **params):
    headers = {"X-Sim-Fault": fault} if fault else {}
    return client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, extra_headers=headers, **params)


def post(sim, path, body: bytes, headers=None):
    request = urllib.request.Request(f"{sim.url}{path}", data=body, headers=headers or {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.mark.parametrize(
    "fault, error, code",
    [("500", openai.InternalServerError, "server_error"), ("503", openai.InternalServerError, "overloaded")],
)
def test_server_faults_raise_openai_errors(sim, fault, error, code):
    with pytest.raises(error) as caught:
        ask(client_for(sim), fault)
    assert caught.value.status_code == int(fault)
    assert caught.value.code == code


def test_429_carries_retry_after(sim):
    with pytest.raises(openai.RateLimitError) as caught:
        ask(client_for(sim), "429")
    assert caught.value.response.headers["retry-after"] == "1"
    assert caught.value.code == "rate_limit_exceeded"


def test_timeout_holds_the_request_longer_than_the_client_waits(sim):
    started = time.monotonic()
    with pytest.raises(openai.APITimeoutError):
        ask(client_for(sim, timeout=0.4), "timeout")
    assert time.monotonic() - started < 5


def test_held_timeout_request_does_not_delay_shutdown(sim):
    outcome = []

    def call():
        try:
            ask(client_for(sim, timeout=20), "timeout")
        except openai.APIError as exc:
            outcome.append(exc)

    caller = threading.Thread(target=call)
    caller.start()
    deadline = time.monotonic() + 5
    while sim.stats()["total"] < 1:
        assert time.monotonic() < deadline, "the held request never reached the simulator"
        time.sleep(0.02)
    started = time.monotonic()
    sim.stop()
    assert time.monotonic() - started < 5
    caller.join(10)
    assert outcome and not caller.is_alive()


def test_cut_stream_drops_the_stream_midway(sim):
    client = client_for(sim)
    received = []
    with pytest.raises(_stream_cut_errors()):
        for chunk in ask(client, "cut-stream", seed=1, stream=True):
            received.append(chunk)
    assert received, "the stream should start before it is cut"
    assert not any(c.choices and c.choices[0].finish_reason for c in received)


def test_cut_stream_on_a_plain_answer_truncates_the_body(sim):
    with pytest.raises(openai.APIConnectionError):
        ask(client_for(sim), "cut-stream")


def test_slow_answers_correctly_but_late(sim, monkeypatch):
    monkeypatch.setattr(sim_app, "SLOW_SECONDS", 0.3)  # the real delay is 1 s; the same code path, quicker
    client = client_for(sim)
    started = time.monotonic()
    answer = ask(client, "slow", seed=4)
    assert time.monotonic() - started >= 0.3
    assert answer.choices[0].message.content == ask(client, seed=4).choices[0].message.content


def test_unknown_fault_is_a_clear_400(sim):
    with pytest.raises(openai.BadRequestError, match="X-Sim-Fault"):
        ask(client_for(sim), "explode")


def test_fault_rate_one_fails_every_request_and_zero_none(sim_factory):
    always = client_for(sim_factory(fault_rate=1.0))
    for _ in range(5):
        with pytest.raises((openai.InternalServerError, openai.RateLimitError)):
            ask(always)
    never = client_for(sim_factory(fault_rate=0.0))
    assert ask(never).choices[0].message.content


def test_require_auth_rejects_missing_bearer(sim_factory):
    sim = sim_factory(require_auth=True)
    status, body = post(sim, "/chat/completions", json.dumps({"model": "gpt-4o-mini", "messages": MESSAGES}).encode())
    assert status == 401 and body["error"]["code"] == "invalid_api_key"
    assert ask(client_for(sim)).choices[0].message.content  # the SDK sends Bearer sk-test


def test_malformed_json_is_a_400(sim):
    status, body = post(sim, "/chat/completions", b"{not json")
    assert status == 400
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["type"] == "invalid_request_error"


def test_missing_messages_names_the_param(sim):
    status, body = post(sim, "/chat/completions", json.dumps({"model": "gpt-4o-mini"}).encode())
    assert status == 400 and body["error"]["param"] == "messages"


def test_bad_parameter_values_are_400s(sim):
    client = client_for(sim)
    with pytest.raises(openai.BadRequestError, match="temperature"):
        ask(client, temperature=7)
    with pytest.raises(openai.BadRequestError, match="role"):
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "robot", "content": "x"}])


def test_unknown_model_is_a_404_with_strict_models(sim_factory):
    with pytest.raises(openai.NotFoundError) as caught:
        client_for(sim_factory(strict_models=True)).chat.completions.create(model="gpt-imaginary", messages=MESSAGES)
    assert caught.value.code == "model_not_found"


def test_unknown_route_is_an_openai_shaped_404(sim):
    status, body = post(sim, "/no/such/thing", b"{}")
    assert status == 404 and "Invalid URL" in body["error"]["message"]


def test_latency_delays_the_answer_and_a_streams_first_token(sim_factory):
    client = client_for(sim_factory(latency_ms=200))
    started = time.monotonic()
    ask(client, seed=1)
    assert time.monotonic() - started >= 0.2
    started = time.monotonic()
    stream = ask(client, seed=1, stream=True)
    next(iter(stream))
    assert time.monotonic() - started >= 0.2
    stream.close()


def test_tokens_per_s_paces_the_stream_and_each_chunk_is_flushed_as_it_is_sent(sim_factory):
    client = client_for(sim_factory(tokens_per_s=100))
    started = time.monotonic()
    arrivals = [(time.monotonic(), chunk) for chunk in ask(client, seed=1, max_tokens=20, stream=True)]
    content = [at for at, chunk in arrivals if chunk.choices and chunk.choices[0].delta.content]
    assert len(content) == 20
    assert arrivals[-1][0] - started >= 0.19  # 20 tokens at 100/s
    # Buffered, every chunk would land at once; paced and flushed, the first lands long before the last.
    assert content[-1] - content[0] >= 0.1


def _chat(**extra):
    return json.dumps({"model": "gpt-4o-mini", "messages": MESSAGES, **extra}).encode()


def _schema(schema):
    return {"response_format": {"type": "json_schema", "json_schema": {"name": "doc", "schema": schema}}}


def _tool(parameters):
    return {"tools": [{"type": "function", "function": {"name": "f", "parameters": parameters}}], "tool_choice": "required"}


@pytest.mark.parametrize(
    "body, param",
    [
        (json.dumps({"model": "gpt-4o-mini", "messages": [{"role": ["user"], "content": "x"}]}).encode(), "messages[0].role"),
        (
            json.dumps(
                {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": [{"type": "text", "text": 5}]}]}
            ).encode(),
            "messages[0].content[0].text",
        ),
        (_chat(stream=True, stream_options=[1]), "stream_options"),
        (_chat(**_tool("x")), "tools[0].function.parameters"),
        (
            _chat(**_tool({"type": "object", "properties": {"a": {"type": "integer", "minimum": "x"}}})),
            "tools[0].function.parameters",
        ),
        (
            _chat(**_tool({"type": "object", "properties": {"a": {"type": "integer", "minimum": 10, "maximum": 1}}})),
            "tools[0].function.parameters",
        ),
        (_chat(**_schema({"type": "object", "properties": [1]})), "response_format"),
        (_chat(**_schema({"$ref": "#/$defs/missing"})), "response_format"),
        (_chat(**_schema({"type": "object", "properties": {"a": {"enum": "ab"}}})), "response_format"),
        (_chat(**_schema({"type": "array", "minItems": 100_000_000})), "response_format"),  # must not hang
        (_chat(**_schema({"type": "array", "minItems": 1000, "items": {"type": "array", "minItems": 1000}})), "response_format"),
    ],
    ids=[
        "role-list",
        "part-text-int",
        "stream-options-list",
        "params-string",
        "minimum-string",
        "minimum-over-maximum",
        "properties-list",
        "dangling-ref",
        "enum-string",
        "huge-array",
        "huge-nested-arrays",
    ],
)
def test_malformed_requests_are_400s_naming_the_param(sim, body, param):
    status, answer = post(sim, "/chat/completions", body)
    assert status == 400, answer
    assert answer["error"]["param"] == param and answer["error"]["type"] == "invalid_request_error"
