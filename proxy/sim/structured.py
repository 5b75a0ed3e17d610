"""Tool calls and JSON output for chat completions: values drawn from a JSON schema, seeded.

When a request offers `tools`, the simulated model calls them if `tool_choice` asks for it
("required", a named function, `allowed_tools`), or, under "auto", if the last user message names
them (a name or all the words of it: `get_weather` <- "what's the weather"; several named, several
calls at once unless `parallel_tool_calls` is false), unless the conversation already ends with a
tool result. Chat completions and the Responses API share this logic. `response_format` json_object / json_schema makes
the answer a JSON document instead of prose.
"""

from __future__ import annotations

import json
import math
import random
import re
from dataclasses import dataclass
from typing import Any

from .errors import bad_request, invalid_type, invalid_value, missing
from .model import topic_words

MAX_DEPTH = 4  # past this depth arrays are left empty and nullable values null (recursive schemas end)
HARD_DEPTH = 24  # objects stop here whatever the schema says (a schema no finite value satisfies)
MAX_VALUES = 10_000  # values one document may hold: a schema asking for more is refused, not generated
# String formats pydantic emits, each with a fixed value that validates.
FORMATS = {
    "date-time": "2024-07-18T12:00:00Z",
    "date": "2024-07-18",
    "time": "12:00:00",
    "email": "user@example.com",
    "uri": "https://example.com/",
    "uuid": "123e4567-e89b-42d3-a456-426614174000",
}


class SchemaError(Exception):
    """A JSON schema the simulator cannot draw a value from (malformed, or asking for too much)."""


def parse_tools(body: dict[str, Any], nested: bool = True) -> list[dict[str, Any]]:
    """The request's function tools, each as {"name", "parameters", ...}. Chat nests them under
    `function`; the Responses API does not (`nested=False`)."""
    tools = body.get("tools")
    if tools is None:
        return []
    if not isinstance(tools, list):
        raise invalid_type("tools", "an array", tools)
    functions = []
    for i, tool in enumerate(tools):
        if not isinstance(tool, dict) or tool.get("type", "function") != "function":
            raise invalid_value(f"tools[{i}]", "only tools of type 'function' are supported by the simulator.")
        function, where = (tool.get("function"), f"tools[{i}].function") if nested else (tool, f"tools[{i}]")
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise missing(f"{where}.name")
        parameters = function.get("parameters")
        if parameters is not None:
            # Checked up front, as upstream checks every tool whether it is called or not.
            check_schema(parameters, f"{where}.parameters", f"function '{function['name']}'")
        functions.append(function)
    return functions


def check_schema(schema: Any, param: str, what: str) -> None:
    """400 naming `param` when no value can be drawn from `schema`."""
    if not isinstance(schema, dict):
        raise invalid_type(param, "a JSON schema object", schema)
    try:
        value_for(schema, random.Random(0), "")
    except SchemaError as exc:
        raise bad_request(f"Invalid schema for {what}: {exc}", param) from None


@dataclass
class ToolChoice:
    """What `tool_choice` lets the model do: `mode` none | auto | required, among `allowed`."""

    mode: str
    allowed: list[dict[str, Any]]


def parse_tool_choice(value: Any, functions: list[dict[str, Any]], nested: bool = True) -> ToolChoice:
    """`tool_choice` as chat (`nested`) or the Responses API writes it: "none", "auto", "required",
    a named function, or `allowed_tools` (a subset, with its own mode)."""
    if value is None or value in ("none", "auto", "required"):
        return ToolChoice(value or "auto", functions)
    if not isinstance(value, dict):
        raise invalid_value("tool_choice", f"{value!r}. Use 'none', 'auto', 'required' or a named function.")
    kind = value.get("type")
    if kind == "function":
        return ToolChoice("required", [_function_named(functions, _tool_name(value, nested), "tool_choice")])
    if kind == "allowed_tools":
        spec = value.get("allowed_tools") if nested else value
        if not isinstance(spec, dict) or not isinstance(spec.get("tools"), list):
            raise missing("tool_choice.allowed_tools.tools" if nested else "tool_choice.tools")
        mode = spec.get("mode", "auto")
        if mode not in ("auto", "required"):
            raise invalid_value("tool_choice.mode", f"{mode!r}. Use 'auto' or 'required'.")
        names = [_tool_name(t, nested) for t in spec["tools"] if isinstance(t, dict)]
        return ToolChoice(mode, [_function_named(functions, n, "tool_choice.tools") for n in names])
    raise invalid_value("tool_choice.type", f"{kind!r}. The simulator supports 'function' and 'allowed_tools'.")


def _tool_name(tool: dict[str, Any], nested: bool) -> Any:
    return (tool.get("function") or {}).get("name") if nested else tool.get("name")


def _function_named(functions: list[dict[str, Any]], name: Any, param: str) -> dict[str, Any]:
    for function in functions:
        if function["name"] == name:
            return function
    raise invalid_value(param, f"no tool named {name!r} among the request's tools.")


def parallel_calls(body: dict[str, Any]) -> bool:
    """`parallel_tool_calls` (default true): may the model call several functions in one turn?"""
    value = body.get("parallel_tool_calls")
    if value is None:
        return True
    if not isinstance(value, bool):
        raise invalid_type("parallel_tool_calls", "a boolean", value)
    return value


def called_functions(messages: list[dict[str, Any]]) -> set[str]:
    """Names of the functions the conversation has already called (assistant `tool_calls`)."""
    names = set()
    for message in messages:
        for call in message.get("tool_calls") or []:
            if isinstance(call, dict) and isinstance(call.get("function"), dict):
                names.add(call["function"].get("name"))
    return names


def chosen_tools(
    choice: ToolChoice, last_user: str, messages: list[dict[str, Any]], rng: random.Random, parallel: bool = True
) -> list[dict[str, Any]]:
    """The functions the model calls for this request (several at once when `parallel`), or none for
    a text answer. auto: those the last user message names, unless the conversation ends with a tool
    result. required: those named and not called yet, else one not called yet, else any one, so an
    agent loop that must call a tool still reaches its last one (pydantic-ai's `final_result`)."""
    if choice.mode == "none" or not choice.allowed:
        return []
    named = [f for f in choice.allowed if _names(f["name"], last_user)]
    if choice.mode == "auto":
        ends_with_tool = bool(messages) and messages[-1].get("role") in ("tool", "function")
        picks = [] if ends_with_tool else named
    else:
        called = called_functions(messages)
        picks = [f for f in named if f["name"] not in called]
        if not picks:
            pool = [f for f in choice.allowed if f["name"] not in called] or choice.allowed
            picks = [pool[rng.randrange(len(pool))]]
    return picks if parallel else picks[:1]


def _names(function_name: str, text: str) -> bool:
    """Does the text ask for this function (its name, or all the words of it: `get_weather` <- "the weather")?"""
    asked = {w.lower() for w in text.replace("_", " ").split()} | set(topic_words(text))
    said = text.lower()
    parts = [p for p in function_name.lower().split("_") if p not in ("get", "set", "do", "make")]
    return function_name.lower() in said or bool(parts and all(p in asked or p in said for p in parts))


# A run of capitalised words: a proper name ("Paris", "New York"). One that opens a sentence loses
# its first word ("What", "Compare Paris" -> "Paris").
_NAME_RUN = re.compile(r"[A-Z][\w'’-]*(?:\s+[A-Z][\w'’-]*)*")
_SENTENCE_START = re.compile(r"(?:^|[.!?:;]\s+|\n\s*)$")
# String parameters that name what a call is about, preferred for the entity a call is for.
_ENTITY_PARAMS = ("city", "location", "place", "country", "name", "query", "q", "symbol", "ticker", "topic", "term")


def entities(text: str) -> list[str]:
    """The proper names a message asks about, in order: "weather in Paris and in Rome?" -> Paris, Rome."""
    found: list[str] = []
    for match in _NAME_RUN.finditer(text):
        name = match.group()
        if _SENTENCE_START.search(text[: match.start()]):
            name = name.partition(" ")[2]
        if name and name != "I" and name not in found:
            found.append(name)
    return found


def tool_calls(
    functions: list[dict[str, Any]], rng: random.Random, prompt_text: str, parallel: bool = True
) -> list[dict[str, Any]]:
    """The calls of the chosen functions: one per entity the message names for a function it names
    ("weather in Paris and in Rome" -> get_weather twice), else one each; only the first when not
    `parallel`."""
    names = entities(prompt_text)
    calls = []
    for function in functions:
        param = _entity_param(function) if _names(function["name"], prompt_text) else None
        targets: list[str | None] = list(names) if param and names else [None]
        calls += [tool_call(function, rng, prompt_text, {param: t} if param and t else None) for t in targets]
    return calls if parallel else calls[:1]


def _entity_param(function: dict[str, Any]) -> str | None:
    """The free string parameter a call's entity goes into, or None."""
    schema = function.get("parameters") or {}
    properties = schema.get("properties") if isinstance(schema, dict) else None
    if not isinstance(properties, dict):
        return None
    free = [n for n, p in properties.items() if _free_string(p)]
    required = schema.get("required")
    required = required if isinstance(required, list) else []
    for pick in ([n for n in free if n.lower() in _ENTITY_PARAMS], [n for n in free if n in required], free):
        if pick:
            return pick[0]
    return None


def _free_string(schema: Any) -> bool:
    return isinstance(schema, dict) and schema.get("type") == "string" and not set(schema) & {"enum", "const", "format"}


def tool_call(
    function: dict[str, Any], rng: random.Random, prompt_text: str, fixed: dict[str, str] | None = None
) -> dict[str, Any]:
    schema = function.get("parameters") or {"type": "object", "properties": {}}
    arguments = value_for(schema, rng, prompt_text)
    if fixed and isinstance(arguments, dict):
        arguments.update(fixed)
    return {
        "id": "call_" + "".join(rng.choice("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") for _ in range(24)),
        "type": "function",
        "function": {"name": function["name"], "arguments": json.dumps(arguments, ensure_ascii=False)},
    }


@dataclass
class _Fill:
    """What every value drawn for one document shares."""

    root: dict[str, Any]  # the whole schema, where `$ref`s point
    rng: random.Random
    prompt_text: str
    sentences: list[str]  # string fields are filled with these (sentences of the prose answer)
    values: int = 0  # drawn so far, against MAX_VALUES


def value_for(schema: Any, rng: random.Random, prompt_text: str, text: str = "") -> Any:
    """A value that satisfies a JSON schema as the SDKs write them: types, enum, const, properties,
    items, anyOf/oneOf, `$ref` into `$defs`, string formats. Strings are sentences of `text` (the prose
    the model would have answered), else words of the prompt."""
    root = schema if isinstance(schema, dict) else {}
    return _value(schema, _Fill(root, rng, prompt_text, _sentences(text)), 0)


def _value(schema: Any, fill: _Fill, depth: int) -> Any:
    if not isinstance(schema, dict):
        return None
    fill.values += 1
    if fill.values > MAX_VALUES:
        raise SchemaError(f"it asks for more than {MAX_VALUES} values (check minItems).")
    schema = _resolve(schema, fill.root)
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        if not isinstance(schema["enum"], list) or not schema["enum"]:
            raise SchemaError("'enum' must be a non-empty array.")
        return schema["enum"][fill.rng.randrange(len(schema["enum"]))]
    for key in ("anyOf", "oneOf"):
        if schema.get(key):
            options = [_resolve(o, fill.root) for o in schema[key] if isinstance(o, dict)]
            concrete = [o for o in options if o.get("type") != "null"]
            if depth >= MAX_DEPTH and len(concrete) < len(options):
                return None  # deep in a recursive schema: end the branch where it may end
            return _value((concrete or options or [{}])[0], fill, depth)
    if schema.get("allOf"):
        return _value(schema["allOf"][0], fill, depth)
    kind = schema.get("type", "object" if "properties" in schema else "string")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object":
        if depth >= HARD_DEPTH:
            return {}
        properties = schema.get("properties") or {}
        if not isinstance(properties, dict):
            raise SchemaError("'properties' must be an object.")
        return {name: _value(sub, fill, depth + 1) for name, sub in properties.items()}
    if kind == "array":
        low = _bound(schema, "minItems", 0)
        count = low if depth >= MAX_DEPTH else max(1, low)
        return [_value(schema.get("items") or {}, fill, depth + 1) for _ in range(int(count))]
    if kind in ("integer", "number"):
        return _number(schema, fill, kind == "integer")
    if kind == "boolean":
        return fill.rng.random() < 0.5
    if kind == "null":
        return None
    return _string(schema, fill)


def _string(schema: dict[str, Any], fill: _Fill) -> str:
    if schema.get("format") in FORMATS:
        return FORMATS[schema["format"]]
    if fill.sentences:
        text = fill.sentences[fill.rng.randrange(len(fill.sentences))]
    else:
        words = sorted(topic_words(fill.prompt_text)) or ["example"]
        text = words[fill.rng.randrange(len(words))]
    limit = schema.get("maxLength")
    return text[:limit] if isinstance(limit, int) and limit > 0 else text


def _bound(schema: dict[str, Any], key: str, default: float) -> float:
    value = schema.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise SchemaError(f"'{key}' must be a number, got {value!r}.")
    return value


def _range(schema: dict[str, Any], low: float, high: float, step: float) -> tuple[float, float]:
    """The bounds a number must lie in: minimum/maximum (exclusive ones moved in by `step`), a missing
    one defaulting relative to the other, so `minimum: 500` alone still works."""
    lows = [_bound(schema, "minimum", 0)] if "minimum" in schema else []
    lows += [_bound(schema, "exclusiveMinimum", 0) + step] if "exclusiveMinimum" in schema else []
    highs = [_bound(schema, "maximum", 0)] if "maximum" in schema else []
    highs += [_bound(schema, "exclusiveMaximum", 0) - step] if "exclusiveMaximum" in schema else []
    if lows and highs:
        low, high = max(lows), min(highs)
    elif lows:
        low = max(lows)
        high = high if high >= low else low + 100
    elif highs:
        high = min(highs)
        low = low if low <= high else high - 100
    if low > high:
        raise SchemaError(f"no number lies between its minimum {low} and maximum {high}.")
    return low, high


def _number(schema: dict[str, Any], fill: _Fill, integer: bool) -> float:
    if integer:
        low, high = _range(schema, 1, 100, 1)
        if math.ceil(low) > math.floor(high):
            raise SchemaError(f"no integer lies between its minimum {low} and maximum {high}.")
        return fill.rng.randint(math.ceil(low), math.floor(high))
    low, high = _range(schema, 0, 100, 0.01)
    value = fill.rng.uniform(low, high)
    rounded = round(value, 2)  # a plausible figure, unless rounding would leave the range
    return rounded if low <= rounded <= high else value


def _resolve(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    """Follow a local `$ref` ("#", "#/$defs/Step", "#/definitions/Step")."""
    seen = 0
    while isinstance(schema.get("$ref"), str) and seen < 32:
        ref, seen = schema["$ref"], seen + 1
        target: Any = root
        for part in ref.removeprefix("#").strip("/").split("/") if ref.strip("#/") else []:
            target = target.get(part.replace("~1", "/").replace("~0", "~")) if isinstance(target, dict) else None
        if not isinstance(target, dict):
            raise SchemaError(f"'$ref' {ref!r} does not point to a schema in this document.")
        schema = target
    return schema


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in re.findall(r"[^.!?]+[.!?]*", text) if s.strip()]


SCHEMA_SCAN_CHARS = 200_000  # of each message, looking for a schema: bounds the work on a huge prompt
SCHEMA_SCAN_TRIES = 200  # `{` positions tried per message


def schema_in_prompt(messages: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The first JSON schema written into a system, developer or user message (pydantic-ai's
    `PromptedOutput`, instructor's JSON mode: "answer with an object matching this schema: {...}")."""
    decoder = json.JSONDecoder()
    for message in messages:
        if message.get("role") not in ("system", "developer", "user"):
            continue
        text = _plain_text(message.get("content"))[:SCHEMA_SCAN_CHARS]
        at, tries = text.find("{"), 0
        while at != -1 and tries < SCHEMA_SCAN_TRIES:
            tries += 1
            try:
                value, end = decoder.raw_decode(text, at)
            except ValueError:
                at = text.find("{", at + 1)
                continue
            if _looks_like_schema(value):
                return value
            at = text.find("{", end)
    return None


def _plain_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    return ""


def _looks_like_schema(value: Any) -> bool:
    """A JSON schema, not an example document: it declares properties, or is made of `$defs`/`anyOf`."""
    if not isinstance(value, dict):
        return False
    if isinstance(value.get("properties"), dict) and value.get("type", "object") == "object":
        return True
    return "$schema" in value or (isinstance(value.get("$defs"), dict) and ("$ref" in value or "anyOf" in value))


def json_answer(
    response_format: Any, text: str, rng: random.Random, prompt_text: str, messages: list[dict[str, Any]] | None = None
) -> str | None:
    """The answer as a JSON document when `response_format` asks for one; None for prose. For
    json_object, a schema the prompt carries shapes the document; else it is `{"answer": prose}`."""
    if response_format is None:
        return None
    if not isinstance(response_format, dict):
        raise invalid_type("response_format", "an object", response_format)
    kind = response_format.get("type", "text")
    if kind == "text":
        return None
    if kind == "json_object":
        schema = schema_in_prompt(messages or [])
        if schema is not None:
            try:
                return json.dumps(value_for(schema, rng, prompt_text, text), ensure_ascii=False)
            except SchemaError:
                pass  # a schema the simulator cannot fill: the plain JSON answer still parses
        return json.dumps({"answer": text}, ensure_ascii=False)
    if kind == "json_schema":
        spec = response_format.get("json_schema")
        if not isinstance(spec, dict) or "name" not in spec:
            raise missing("response_format.json_schema.name")
        schema = spec.get("schema") or {}
        if not isinstance(schema, dict):
            raise invalid_type("response_format.json_schema.schema", "a JSON schema object", schema)
        try:
            return json.dumps(value_for(schema, rng, prompt_text, text), ensure_ascii=False)
        except SchemaError as exc:
            raise bad_request(f"Invalid schema for response_format '{spec['name']}': {exc}", "response_format") from None
    raise invalid_value("response_format.type", f"'{kind}'. Supported values are: 'text', 'json_object' and 'json_schema'.")
