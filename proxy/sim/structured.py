"""Tool calls and JSON output for chat completions: values drawn from a JSON schema, seeded.

When a request offers `tools`, the simulated model calls one if `tool_choice` asks for it
("required" or a named function), or, under "auto", if the last user message names the
function (its name or all the words of it: `get_weather` <- "what's the weather"), unless the
conversation already ends with a tool result. `response_format` json_object / json_schema makes
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


def parse_tools(body: dict[str, Any]) -> list[dict[str, Any]]:
    tools = body.get("tools")
    if tools is None:
        return []
    if not isinstance(tools, list):
        raise invalid_type("tools", "an array", tools)
    for i, tool in enumerate(tools):
        if not isinstance(tool, dict) or tool.get("type", "function") != "function":
            raise invalid_value(f"tools[{i}]", "only tools of type 'function' are supported by the simulator.")
        function = tool.get("function")
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise missing(f"tools[{i}].function.name")
        parameters = function.get("parameters")
        if parameters is not None:
            # Checked up front, as upstream checks every tool whether it is called or not.
            check_schema(parameters, f"tools[{i}].function.parameters", f"function '{function['name']}'")
    return tools


def check_schema(schema: Any, param: str, what: str) -> None:
    """400 naming `param` when no value can be drawn from `schema`."""
    if not isinstance(schema, dict):
        raise invalid_type(param, "a JSON schema object", schema)
    try:
        value_for(schema, random.Random(0), "")
    except SchemaError as exc:
        raise bad_request(f"Invalid schema for {what}: {exc}", param) from None


def chosen_tool(body: dict[str, Any], tools: list[dict[str, Any]], last_user: str, ends_with_tool: bool,
                rng: random.Random) -> dict[str, Any] | None:
    """The function the model calls for this request, or None for a text answer."""
    choice = body.get("tool_choice", "auto")
    if not tools or choice == "none":
        return None
    functions = [t["function"] for t in tools]
    if isinstance(choice, dict):
        name = (choice.get("function") or {}).get("name")
        for function in functions:
            if function["name"] == name:
                return function
        raise invalid_value("tool_choice", f"no tool named {name!r} among the request's tools.")
    if choice == "required":
        return functions[rng.randrange(len(functions))]
    if choice != "auto":
        raise invalid_value("tool_choice", f"{choice!r}. Use 'none', 'auto', 'required' or a named function.")
    if ends_with_tool:
        return None
    asked = {w.lower() for w in last_user.replace("_", " ").split()} | set(topic_words(last_user))
    said = last_user.lower()
    for function in functions:
        parts = [p for p in function["name"].lower().split("_") if p not in ("get", "set", "do", "make")]
        if function["name"].lower() in said or (parts and all(p in asked or p in said for p in parts)):
            return function
    return None


def tool_call(function: dict[str, Any], rng: random.Random, prompt_text: str) -> dict[str, Any]:
    schema = function.get("parameters") or {"type": "object", "properties": {}}
    arguments = value_for(schema, rng, prompt_text)
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


def json_answer(response_format: Any, text: str, rng: random.Random, prompt_text: str) -> str | None:
    """The answer as a JSON document when `response_format` asks for one; None for prose."""
    if response_format is None:
        return None
    if not isinstance(response_format, dict):
        raise invalid_type("response_format", "an object", response_format)
    kind = response_format.get("type", "text")
    if kind == "text":
        return None
    if kind == "json_object":
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
