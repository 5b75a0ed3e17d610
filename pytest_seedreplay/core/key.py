"""The request key: canonical form + hash, and the diff to the closest recording. Pure functions."""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any
from urllib.parse import unquote, urlsplit

from .constants import (
    CONDITIONAL_DEFAULTS_BY_ENDPOINT,
    DEFAULTS_BY_ENDPOINT,
    IGNORED_PARAMS,
    IGNORED_PARAMS_BY_ENDPOINT,
    KEY_VERSION,
    MESSAGES,
)
from .messages_key import canonical_params, keyed_headers

_JSON_KIND = {list: "an array", str: "a string", int: "a number", float: "a number", bool: "a boolean"}


class UnkeyableRequest(ValueError):
    """The request cannot be keyed (not a JSON object); the message says what to send instead."""


def _path_parts(path: str) -> list[str]:
    if "://" in path:
        path = urlsplit(path).path
    return [p for p in path.split("?", 1)[0].split("#", 1)[0].split("/") if p]


def _azure_deployment_at(parts: list[str]) -> int:
    """Where `openai/deployments/{name}` starts in `parts` (Azure OpenAI's deployment paths), else -1."""
    for at in range(len(parts) - 2):
        if parts[at] == "openai" and parts[at + 1] == "deployments":
            return at
    return -1


@lru_cache(maxsize=256)
def normalize_endpoint(path: str) -> str:
    """`/v1/chat/completions` whatever base URL, base path, query or trailing slash the client used, and
    for Azure OpenAI's paths too: `/openai/deployments/{name}/chat/completions`, `/openai/v1/...`, and
    `/openai/responses` (the Azure client's calls outside a deployment)."""
    parts = _path_parts(path)
    azure = _azure_deployment_at(parts)
    if azure >= 0:
        parts = parts[azure + 3 :]
    elif "v1" in parts:
        parts = parts[parts.index("v1") + 1 :]
    elif "openai" in parts:
        parts = parts[parts.index("openai") + 1 :]
    return "/v1/" + "/".join(parts) if parts else "/v1"


@lru_cache(maxsize=256)
def deployment_of(path: str) -> str | None:
    """The Azure OpenAI deployment a path names (`/openai/deployments/{name}/...`), else None.

    The deployment stands where `model` does: Azure answers with the deployment's model whatever
    `model` the body says, so the key takes the deployment as the request's model."""
    if "deployments" not in path:
        return None
    parts = _path_parts(path)
    azure = _azure_deployment_at(parts)
    return unquote(parts[azure + 2]) if azure >= 0 else None


# --- the canonical form -------------------------------------------------------------------------


def _canonical_value(value: Any) -> Any:
    # 1 and 1.0 are the same number to the API; bools stay bools (True is not 1 here).
    # Exact type checks first: this runs on every value of every request.
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:
        return value
    if kind is float:
        return int(value) if value.is_integer() else value
    if kind is dict:
        return {k: v if type(v) is str else _canonical_value(v) for k, v in value.items()}
    if kind is list:
        return [v if type(v) is str else _canonical_value(v) for v in value]
    # Python callers may hand in tuples or dict subclasses: key them as the JSON they send.
    if isinstance(value, dict):
        return {str(k): _canonical_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_canonical_value(v) for v in value]
    if isinstance(value, float):
        return _canonical_value(float(value))
    return value


def _canonical_message(message: Any) -> Any:
    if type(message) is not dict:
        return _canonical_value(message)
    # SDKs echo assistant messages back with `"tool_calls": null` etc.: null means not given.
    out = {k: v if type(v) is str else _canonical_value(v) for k, v in message.items() if v is not None}
    # A content list holding one plain text part says the same as the plain string.
    content = out.get("content")
    if type(content) is list and len(content) == 1:
        part = content[0]
        if type(part) is dict and len(part) == 2 and part.get("type") == "text" and type(part.get("text")) is str:
            out["content"] = part["text"]
    return out


def _same(value: Any, default: Any) -> bool:
    if type(value) is not type(default):
        return False
    if type(default) in (list, dict):
        return canonical_json(value) == canonical_json(default)
    return value == default


@dataclass(frozen=True)
class _Rules:
    ignored: frozenset[str]
    defaults: dict[str, Any]
    conditional: dict[str, tuple[str, Any, Any]]


@lru_cache(maxsize=64)
def _rules(endpoint: str) -> _Rules:
    ignored = IGNORED_PARAMS | IGNORED_PARAMS_BY_ENDPOINT.get(endpoint, frozenset())
    defaults = {k: _canonical_value(v) for k, v in DEFAULTS_BY_ENDPOINT.get(endpoint, {}).items()}
    return _Rules(ignored, defaults, dict(CONDITIONAL_DEFAULTS_BY_ENDPOINT.get(endpoint, {})))


def canonical_request(
    path: str, body: Any, headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None
) -> dict[str, Any]:
    """The canonical form that is hashed: `{"endpoint": ..., "params": {output-changing params}}`,
    and for Anthropic's Messages API `"headers"`: the `anthropic-version` / `anthropic-beta` given
    in `headers` (they change the answer's shape); other endpoints' keys take no header.

    Ignored params, nulls and params at their documented defaults are left out; unknown params
    are kept (a new parameter may change the output). An Azure deployment in `path` is the model.
    The query string (Azure's `api-version`) is not part of the key: it picks the wire format of
    the answer, not the answer, as the SDK's version does."""
    if not isinstance(body, dict):
        kind = "null" if body is None else _JSON_KIND.get(type(body), type(body).__name__)
        raise UnkeyableRequest(f'request body must be a JSON object such as {{"model": "...", "messages": [...]}}, got {kind}')
    endpoint = normalize_endpoint(path)
    rules = _rules(endpoint)
    params: dict[str, Any] = {}
    for name, value in body.items():
        if value is None or name in rules.ignored:
            continue
        if name == "messages" and type(value) is list:
            params[name] = [_canonical_message(m) for m in value]
            continue
        value = _canonical_value(value)
        if name in rules.defaults and _same(value, rules.defaults[name]):
            continue
        params[name] = value
    for name, (other, when_given, when_absent) in rules.conditional.items():
        if name in params and _same(params[name], when_given if params.get(other) else when_absent):
            del params[name]
    deployment = deployment_of(path)
    if deployment is not None:
        params["model"] = deployment
    if endpoint == MESSAGES:
        return _messages_canonical(params, body, headers)
    return {"endpoint": endpoint, "params": params}


def _messages_canonical(params: dict[str, Any], body: dict[str, Any], headers: Any) -> dict[str, Any]:
    canonical: dict[str, Any] = {"endpoint": MESSAGES, "params": canonical_params(params, body, _canonical_value)}
    shape = keyed_headers(headers)
    if shape:
        canonical["headers"] = shape
    return canonical


# One encoder built once: json.dumps with options builds a new one per call (a third of the cost).
# No circular-reference check: parsed JSON cannot be circular, and the check costs ~10%.
_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, check_circular=False)


def canonical_json(canonical: Any) -> str:
    """The exact text that is hashed: sorted keys, no whitespace, UTF-8 characters as they are."""
    return _ENCODER.encode(canonical)


def key_of_canonical(canonical: dict[str, Any], namespace: str | None = None) -> str:
    """`v1:<sha256 hex>` of a canonical form; a namespace (e.g. per API key) gives disjoint keys."""
    text = canonical_json(canonical)
    if namespace:
        # Canonical JSON never holds a raw newline, so the prefix cannot be confused with the body.
        text = namespace + "\n" + text
    # surrogatepass: JSON may carry a lone \ud800 escape, which plain UTF-8 refuses to encode.
    return f"{KEY_VERSION}:{hashlib.sha256(text.encode('utf-8', 'surrogatepass')).hexdigest()}"


def request_key(path: str, body: Any, namespace: str | None = None) -> str:
    """The versioned key (`v1:<sha256>`) of a request; `namespace` isolates callers sharing a store."""
    return key_of_canonical(canonical_request(path, body), namespace)


# --- the diff to the closest recording ------------------------------------------------------------

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_LONG_STRING = 40  # longer strings are shown around their first difference, not whole
_CONTEXT = 16  # characters shown either side of that difference
_MAX_SHOWN = 8  # differences listed in a miss message before "and N more"


@dataclass
class Closest:
    """The recorded request nearest to a missed one, and how they differ (JSON paths)."""

    key: str
    canonical: dict[str, Any]
    differences: list[str] = field(default_factory=list)

    def describe(self) -> str:
        return f"closest recording {self.key} differs in: {_listed(self.differences)}"


def _listed(differences: list[str]) -> str:
    # Paths inside the canonical form start with `params.`; users think in request fields.
    fields = [d[len("params.") :] if d.startswith("params.") else d for d in differences]
    shown = "; ".join(fields[:_MAX_SHOWN])
    if len(fields) > _MAX_SHOWN:
        shown += f"; and {len(fields) - _MAX_SHOWN} more"
    return shown


def _short(value: Any, limit: int = 60) -> str:
    text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _child(path: str, name: str) -> str:
    if _IDENTIFIER.match(name):
        return f"{path}.{name}" if path else name
    return f"{path}[{json.dumps(name, ensure_ascii=False)}]"


def _string_difference(path: str, recorded: str, wanted: str) -> str:
    # Long texts (prompts, schemas) are useless printed whole: show where they part ways.
    at = 0
    for at, (a, b) in enumerate(zip(recorded, wanted)):  # noqa: B007 - `at` is read after the loop
        if a != b:
            break
    else:
        at = min(len(recorded), len(wanted))
    start = max(0, at - _CONTEXT)

    def around(text: str) -> str:
        piece = json.dumps(text[start : at + _CONTEXT], ensure_ascii=False)
        return ("…" if start else "") + piece + ("…" if at + _CONTEXT < len(text) else "")

    lengths = f" (length {len(recorded)} → {len(wanted)})" if len(recorded) != len(wanted) else ""
    return f"{path} differs at character {at}{lengths}: {around(recorded)} → {around(wanted)}"


def diff_requests(wanted: Any, recorded: Any, path: str = "") -> list[str]:
    """Differing fields by JSON path, recorded → wanted: `seed: 1 → 2`, `messages[1].content differs ...`."""
    if isinstance(wanted, dict) and isinstance(recorded, dict):
        out: list[str] = []
        for name in sorted(set(wanted) | set(recorded)):
            sub = _child(path, name)
            if name not in recorded:
                out.append(f"{sub}: (absent) → {_short(wanted[name])}")
            elif name not in wanted:
                out.append(f"{sub}: {_short(recorded[name])} → (absent)")
            else:
                out.extend(diff_requests(wanted[name], recorded[name], sub))
        return out
    if isinstance(wanted, list) and isinstance(recorded, list):
        out = []
        for i in range(max(len(wanted), len(recorded))):
            sub = f"{path}[{i}]"
            if i >= len(recorded):
                out.append(f"{sub}: (absent) → {_short(wanted[i])}")
            elif i >= len(wanted):
                out.append(f"{sub}: {_short(recorded[i])} → (absent)")
            else:
                out.extend(diff_requests(wanted[i], recorded[i], sub))
        return out
    if wanted == recorded and type(wanted) is type(recorded):
        return []
    if isinstance(wanted, str) and isinstance(recorded, str) and max(len(wanted), len(recorded)) > _LONG_STRING:
        return [_string_difference(path, recorded, wanted)]
    return [f"{path}: {_short(recorded)} → {_short(wanted)}"]


def _params(canonical: dict[str, Any]) -> dict[str, Any]:
    params = canonical.get("params")
    return params if isinstance(params, dict) else {}


def _rank_head(wanted: dict[str, Any], recorded: dict[str, Any]) -> tuple[int, int]:
    same_endpoint = wanted.get("endpoint") == recorded.get("endpoint")
    same_model = _params(wanted).get("model") == _params(recorded).get("model")
    return (0 if same_endpoint else 1, 0 if same_model else 1)


# Seconds a replay miss may spend finding its closest recording, counted from when it asks (so a
# miss queued behind others' searches gives up sooner). A whole-store scan costs ~70 µs a recording:
# a few thousand fit; past that the message names the nearest among those read in time.
CLOSEST_SECONDS = 0.5
_CLOCK_EVERY = 32  # recordings read between looks at the clock


def closest_recording(wanted: dict[str, Any], recorded: Iterable[tuple[str, Any]]) -> Closest | None:
    """Among (key, canonical) recordings, the one nearest `wanted`: same endpoint and model first,
    then fewest differing fields. Differences read from the recording to the request."""
    return search_closest(wanted, recorded)[0]


def search_closest(
    wanted: dict[str, Any], recorded: Iterable[tuple[str, Any]], deadline: float | None = None
) -> tuple[Closest | None, bool]:
    """`closest_recording`, reading recordings only until `deadline` (time.monotonic()): (the nearest
    among those read, whether all were read)."""
    best: Closest | None = None
    best_rank: tuple[int, int, int] | None = None
    for seen, (key, canonical) in enumerate(recorded):
        if deadline is not None and seen % _CLOCK_EVERY == 0 and time.monotonic() > deadline:
            return best, False
        if not isinstance(canonical, dict):
            continue
        head = _rank_head(wanted, canonical)
        if best_rank is not None and head > best_rank[:2]:
            continue  # cannot win: skip the diff
        differences = diff_requests(wanted, canonical)
        rank = (*head, len(differences))
        if best_rank is None or rank < best_rank:
            best, best_rank = Closest(key, canonical, differences), rank
    return best, True


def describe_miss(key: str, wanted: dict[str, Any], closest: Closest | None, complete: bool = True) -> str:
    """The one message a replay miss shows, in the proxy and in pytest alike. `complete`: every
    recording was compared (not so when the search ran out of time, see CLOSEST_SECONDS)."""
    model = _params(wanted).get("model")
    about = f"{wanted.get('endpoint')}, model {_short(model)}" if model is not None else f"{wanted.get('endpoint')}, no model"
    head = f"no recording for key {key} ({about})"
    if not complete:
        head += f"; the store was searched for {CLOSEST_SECONDS:g} s only (a big store, or many misses at once)"
    if closest is None:
        return head + ("; nothing is recorded yet" if complete else "; no closest recording found in that time")
    if not closest.differences:
        return (
            f"{head}; closest recording {closest.key} has the same request but another key "
            "(recorded under another namespace, e.g. another API key with --isolate-by-auth, or key version)"
        )
    return f"{head}; {closest.describe()}"
