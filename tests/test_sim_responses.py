"""The simulator's Responses API calling tools, driven by the real openai SDK: function tools, every
`tool_choice`, parallel calls, function-call outputs fed back (in the input or through
`previous_response_id`), plain and streamed; and the same conversations recorded and replayed
through a real seedreplay proxy."""

from __future__ import annotations

import json

import openai
import pytest

from proxy_support import MODEL, upstream_calls

WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather in a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["c", "f"]}},
        "required": ["city", "unit"],
        "additionalProperties": False,
    },
    "strict": True,
}
TIME = {"type": "function", "name": "get_time", "parameters": {"type": "object", "properties": {"zone": {"type": "string"}}}}
SHOP = {"type": "function", "name": "find_shop", "parameters": {"type": "object", "properties": {"what": {"type": "string"}}}}
TOOLS = [WEATHER, TIME, SHOP]
ASK_WEATHER = "What is the weather in Lisbon?"
ASK_BOTH = "What is the weather and the time in Lisbon?"


@pytest.fixture
def client(sim):
    return openai.OpenAI(base_url=sim.url, api_key="sk-test", max_retries=0)


def create(client, **params):
    params.setdefault("model", MODEL)
    params.setdefault("tools", TOOLS)
    params.setdefault("temperature", 0)
    return client.responses.create(**params)


def calls(response) -> list:
    return [item for item in response.output if item.type == "function_call"]


def outputs_for(response, text: str = '{"temperature": 21}') -> list[dict]:
    return [{"type": "function_call_output", "call_id": c.call_id, "output": text} for c in calls(response)]


def history(question: str, response) -> list[dict]:
    """The conversation spelled out: the question, the calls the response made, their outputs."""
    return [
        {"role": "user", "content": question},
        *[c.model_dump(exclude_none=True) for c in calls(response)],
        *outputs_for(response),
    ]


def test_auto_calls_the_function_the_user_asks_for_with_arguments_from_its_schema(client):
    answer = create(client, input=ASK_WEATHER)
    (call,) = calls(answer)
    assert answer.status == "completed" and answer.output_text == ""
    assert call.name == "get_weather" and call.call_id.startswith("call_") and call.id.startswith("fc_")
    assert call.status == "completed"
    arguments = json.loads(call.arguments)
    assert set(arguments) == {"city", "unit"} and arguments["unit"] in ("c", "f")
    assert answer.usage.output_tokens > 0
    assert calls(create(client, input=ASK_WEATHER))[0].arguments == call.arguments  # temperature 0: the same call


def test_auto_answers_in_prose_when_no_function_is_asked_for(client):
    answer = create(client, input="Tell me about bread")
    assert not calls(answer) and answer.output_text and answer.output[0].type == "message"


def test_several_functions_asked_for_are_called_in_parallel_unless_parallel_tool_calls_is_false(client):
    both = create(client, input=ASK_BOTH)
    assert [c.name for c in calls(both)] == ["get_weather", "get_time"]
    assert len({c.call_id for c in calls(both)}) == 2
    assert both.parallel_tool_calls is True
    one = create(client, input=ASK_BOTH, parallel_tool_calls=False)
    assert [c.name for c in calls(one)] == ["get_weather"] and one.parallel_tool_calls is False


def test_tool_choice_none_required_named_and_allowed_tools(client):
    assert not calls(create(client, input=ASK_WEATHER, tool_choice="none"))
    required = calls(create(client, input="Tell me about bread", tool_choice="required"))
    assert len(required) == 1 and required[0].name in {"get_weather", "get_time", "find_shop"}
    named = calls(create(client, input=ASK_WEATHER, tool_choice={"type": "function", "name": "find_shop"}))
    assert [c.name for c in named] == ["find_shop"]
    allowed = {"type": "allowed_tools", "mode": "required", "tools": [{"type": "function", "name": "get_time"}]}
    assert [c.name for c in calls(create(client, input=ASK_BOTH, tool_choice=allowed))] == ["get_time"]


def test_required_calls_what_has_not_been_called_yet_so_an_agent_loop_ends(client):
    """pydantic-ai's output tool: tool_choice required, a user tool and `final_result`."""
    final = {
        "type": "function",
        "name": "final_result",
        "parameters": {"type": "object", "properties": {"answer": {"type": "string"}}},
    }
    conversation: list = [{"role": "user", "content": ASK_WEATHER}]
    names = []
    for _ in range(2):
        answer = create(client, input=conversation, tools=[WEATHER, final], tool_choice="required")
        names += [c.name for c in calls(answer)]
        conversation += [c.model_dump(exclude_none=True) for c in calls(answer)] + outputs_for(answer)
    assert names == ["get_weather", "final_result"]


def test_function_outputs_in_the_input_get_a_prose_answer(client):
    first = create(client, input=ASK_WEATHER)
    answer = create(client, input=history(ASK_WEATHER, first))
    assert not calls(answer) and answer.output_text


def test_previous_response_id_continues_the_conversation_it_ends(client):
    first = create(client, input=ASK_BOTH)
    continued = create(client, previous_response_id=first.id, input=outputs_for(first))
    assert continued.previous_response_id == first.id and continued.output_text
    # The same conversation spelled out in the input gets the same answer: the simulator remembered it.
    assert create(client, input=history(ASK_BOTH, first)).output_text == continued.output_text
    # Only the function outputs, without the conversation they belong to, are another prompt.
    assert create(client, input=outputs_for(first)).output_text != continued.output_text


def test_an_unknown_or_unstored_previous_response_is_a_400(client):
    with pytest.raises(openai.BadRequestError, match="Previous response with id 'resp_0123' not found") as caught:
        create(client, previous_response_id="resp_0123", input="hi")
    assert caught.value.body["param"] == "previous_response_id" and caught.value.body["code"] == "previous_response_not_found"
    unstored = create(client, input=ASK_WEATHER, store=False)
    with pytest.raises(openai.BadRequestError, match="not found"):
        create(client, previous_response_id=unstored.id, input=outputs_for(unstored))
    with pytest.raises(openai.BadRequestError, match="not found"):
        create(client, previous_response_id="../state", input="hi")


def test_previous_responses_survive_a_restart_with_a_state_dir(sim_factory, tmp_path):
    first_sim = sim_factory(state_dir=tmp_path)
    first = create(openai.OpenAI(base_url=first_sim.url, api_key="sk-test", max_retries=0), input=ASK_WEATHER)
    first_sim.stop()
    again = openai.OpenAI(base_url=sim_factory(state_dir=tmp_path).url, api_key="sk-test", max_retries=0)
    assert create(again, previous_response_id=first.id, input=outputs_for(first)).output_text


def test_tools_the_simulator_cannot_run_and_bad_tool_choices_are_400s_naming_the_parameter(client):
    cases = [
        ({"tools": [{"type": "web_search"}]}, "tools[0]"),
        ({"tools": [{"type": "function", "parameters": {}}]}, "tools[0].name"),
        ({"tool_choice": {"type": "function", "name": "nope"}}, "tool_choice"),
        ({"tool_choice": "sometimes"}, "tool_choice"),
        ({"parallel_tool_calls": "yes"}, "parallel_tool_calls"),
        ({"input": [{"type": "function_call_output", "output": "x"}]}, "input[0].call_id"),
    ]
    for params, param in cases:
        with pytest.raises(openai.BadRequestError) as caught:
            create(client, **{"input": ASK_WEATHER, **params})
        assert caught.value.body["param"] == param, params


def test_a_streamed_tool_call_sends_the_events_upstream_sends(client):
    events = list(create(client, input=ASK_BOTH, stream=True))
    kinds = [e.type for e in events]
    assert kinds[:3] == ["response.created", "response.in_progress", "response.output_item.added"]
    assert kinds[-1] == "response.completed" and "response.output_text.delta" not in kinds
    assert [e.sequence_number for e in events] == list(range(len(events)))
    final = events[-1].response
    for at, call in enumerate(calls(final)):
        mine = [e for e in events if getattr(e, "output_index", None) == at]
        assert [e.type for e in mine][0] == "response.output_item.added" and mine[0].item.arguments == ""
        assert mine[0].item.status == "in_progress"
        assert "".join(e.delta for e in mine if e.type == "response.function_call_arguments.delta") == call.arguments
        assert [e.type for e in mine][-2:] == ["response.function_call_arguments.done", "response.output_item.done"]
        assert mine[-2].arguments == call.arguments and mine[-1].item == call
    plain = create(client, input=ASK_BOTH)
    assert [(c.name, c.arguments) for c in calls(final)] == [(c.name, c.arguments) for c in calls(plain)]


def test_the_sdk_stream_helper_assembles_the_calls(client):
    with client.responses.stream(model=MODEL, input=ASK_WEATHER, tools=TOOLS, temperature=0) as stream:
        done = [e for e in stream if e.type == "response.function_call_arguments.done"]
        final = stream.get_final_response()
    (call,) = calls(final)
    assert call.name == "get_weather" and done[0].arguments == call.arguments
    assert call.parsed_arguments == json.loads(call.arguments)  # a strict tool: the SDK parses its arguments


def test_chat_completions_call_functions_in_parallel_too(client):
    chat_tools = [{"type": "function", "function": {k: v for k, v in t.items() if k not in ("type", "strict")}} for t in TOOLS]
    both = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": ASK_BOTH}], tools=chat_tools, seed=1)
    assert [c.function.name for c in both.choices[0].message.tool_calls] == ["get_weather", "get_time"]
    one = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": ASK_BOTH}], tools=chat_tools, seed=1, parallel_tool_calls=False
    )
    assert [c.function.name for c in one.choices[0].message.tool_calls] == ["get_weather"]


# ---------------------------------------------------------------- through the proxy


def test_tool_calls_record_and_replay_through_the_proxy_plain_and_streamed(sim, proxy_factory, tmp_path):
    recorder = proxy_factory(sim.url, cache_dir=tmp_path / "cache")
    client = recorder.client()
    plain = create(client, input=ASK_BOTH)
    streamed = list(create(client, input=ASK_WEATHER, stream=True))
    continued = create(client, previous_response_id=plain.id, input=outputs_for(plain))
    assert upstream_calls(sim, "POST /v1/responses") == 3
    recorder.settle()

    replayer = proxy_factory("http://127.0.0.1:9/v1", cache_dir=tmp_path / "cache", mode="replay")  # no upstream
    again = replayer.client()
    # A plain recording answers a streamed request, and a streamed one a plain request, with the same calls.
    raw = again.responses.with_raw_response.create(model=MODEL, input=ASK_BOTH, tools=TOOLS, temperature=0, stream=True)
    assert raw.headers["x-seedreplay-cache"] == "hit"
    events = list(raw.parse())
    assert [e.type for e in events if e.type.startswith("response.function_call_arguments")].count(
        "response.function_call_arguments.done"
    ) == 2
    assert events[-1].response.output == plain.output
    replayed = again.responses.with_raw_response.create(model=MODEL, input=ASK_WEATHER, tools=TOOLS, temperature=0)
    assert replayed.headers["x-seedreplay-cache"] == "hit"
    assert replayed.parse().output == streamed[-1].response.output
    with again.responses.stream(model=MODEL, input=ASK_WEATHER, tools=TOOLS, temperature=0) as stream:
        assert calls(stream.get_final_response())[0].arguments == calls(streamed[-1].response)[0].arguments
    # The conversation continues from the recorded response id, as it did when recording.
    assert create(again, previous_response_id=plain.id, input=outputs_for(plain)).output_text == continued.output_text
    assert upstream_calls(sim, "POST /v1/responses") == 3


def test_an_unknown_top_level_parameter_is_refused_as_the_responses_api_refuses_it(client):
    with pytest.raises(openai.BadRequestError) as caught:
        create(client, input=ASK_WEATHER, extra_body={"seed": 1})  # chat's parameter, not this API's
    assert caught.value.status_code == 400
    assert caught.value.body["message"] == "Unknown parameter: 'seed'."
    assert caught.value.code == "unknown_parameter" and caught.value.param == "seed"


def test_every_parameter_the_sdk_documents_is_known_and_the_usual_ones_answer(client):
    import inspect

    from pytest_seedreplay.proxy.sim.responses import RESPONSES_PARAMS

    documented = set(inspect.signature(type(client.responses).create).parameters)
    documented -= {"self", "extra_headers", "extra_query", "extra_body", "timeout"}
    assert documented <= RESPONSES_PARAMS, documented - RESPONSES_PARAMS
    usual = {
        "tool_choice": "none",
        "instructions": "Be brief.",
        "max_output_tokens": 64,
        "metadata": {"suite": "x"},
        "store": False,
        "truncation": "auto",
        "user": "u1",
        "safety_identifier": "s1",
        "prompt_cache_key": "k",
        "parallel_tool_calls": True,
        "include": ["message.output_text.logprobs"],
        "top_logprobs": 2,
        "top_p": 1,
        "service_tier": "auto",
    }
    answer = create(client, input=ASK_WEATHER, extra_body=usual)  # as the body, whatever this SDK version names
    assert answer.output_text
