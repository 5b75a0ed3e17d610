"""The request key: canonical form + hash, and the diff to the closest recording. Pure functions."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Iterable

from .constants import (
    DEFAULTS_BY_ENDPOINT,
    IGNORED_PARAMS,
    IGNORED_PARAMS_BY_ENDPOINT,
    KEY_VERSION,
)

_NO_EXTRA: frozenset[str] = frozenset()


class UnkeyableRequest(ValueError):
    """The request cannot be keyed (not a JSON object); the message says what to send instead."""


def normalize_endpoint(path: str) -> str:
    """`/v1/chat/completions` whatever base path or trailing slash the client used."""
    path = "/" + path.split("?", 1)[0].strip("/")
    marker = path.find("/v1/")
    if marker >= 0:
        return path[marker:]
    return "/v1" + path


def _canonical_value(value: Any) -> Any:
    # 1 and 1.0 are the same number to the API; bools stay bools (True is not 1 here).
    if isinstance(value, float):
        return int(value) if value.is_integer() else value
    if isinstance(value, dict):
        return {k: _canonical_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_canonical_value(v) for v in value]
    return value


def _canonical_message(message: Any) -> Any:
    # A content list holding one text part says the same as the plain string.
    if isinstance(message, dict):
        content = message.get("content")
        if isinstance(content, list) and len(content) == 1:
            part = content[0]
            if isinstance(part, dict) and part.get("type") == "text" and set(part) == {"type", "text"}:
                message = {**message, "content": part["text"]}
    return message


def canonical_request(path: str, body: Any) -> dict[str, Any]:
    """The canonical form that is hashed: endpoint plus the output-changing parameters only."""
    if not isinstance(body, dict):
        raise UnkeyableRequest(f"request body must be a JSON object, got {type(body).__name__}")
    endpoint = normalize_endpoint(path)
    ignored = IGNORED_PARAMS | IGNORED_PARAMS_BY_ENDPOINT.get(endpoint, _NO_EXTRA)
    defaults = DEFAULTS_BY_ENDPOINT.get(endpoint, {})
    params: dict[str, Any] = {}
    for name, value in body.items():
        if name in ignored or value is None:
            continue
        value = _canonical_value(value)
        if name in defaults and _same(value, defaults[name]):
            continue
        params[name] = value
    messages = params.get("messages")
    if isinstance(messages, list):
        params["messages"] = [_canonical_message(m) for m in messages]
    return {"endpoint": endpoint, "params": params}


def _same(value: Any, default: Any) -> bool:
    return type(value) is type(default) and value == default


def canonical_json(canonical: dict[str, Any]) -> str:
    return json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def key_of_canonical(canonical: dict[str, Any], namespace: str | None = None) -> str:
    text = canonical_json(canonical)
    if namespace:
        text = namespace + "\n" + text
    return f"{KEY_VERSION}:{hashlib.sha256(text.encode('utf-8')).hexdigest()}"


def request_key(path: str, body: Any, namespace: str | None = None) -> str:
    """The versioned key (`v1:<sha256>`) of a request; `namespace` isolates callers sharing a store."""
    return key_of_canonical(canonical_request(path, body), namespace)


# --- the diff to the closest recording --------------------------------------------------------


@dataclass
class Closest:
    """The recorded request nearest to a missed one, and how they differ (JSON paths)."""

    key: str
    canonical: dict[str, Any]
    differences: list[str] = field(default_factory=list)

    def describe(self) -> str:
        return f"closest recording {self.key} differs in: " + "; ".join(self.differences)


def _short(value: Any, limit: int = 60) -> str:
    text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def diff_requests(wanted: Any, recorded: Any, path: str = "") -> list[str]:
    """Differing fields by JSON path: `seed: 1 → 2`, `messages[1].content differs`."""
    if isinstance(wanted, dict) and isinstance(recorded, dict):
        out: list[str] = []
        for name in sorted(set(wanted) | set(recorded)):
            sub = f"{path}.{name}" if path else name
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
    if isinstance(wanted, str) and isinstance(recorded, str) and max(len(wanted), len(recorded)) > 40:
        return [f"{path} differs"]
    return [f"{path}: {_short(recorded)} → {_short(wanted)}"]


def _rank(wanted: dict[str, Any], recorded: dict[str, Any], differences: list[str]) -> tuple[int, int, int]:
    same_endpoint = wanted.get("endpoint") == recorded.get("endpoint")
    same_model = wanted.get("params", {}).get("model") == recorded.get("params", {}).get("model")
    return (0 if same_endpoint else 1, 0 if same_model else 1, len(differences))


def closest_recording(
    wanted: dict[str, Any], recorded: Iterable[tuple[str, dict[str, Any]]]
) -> Closest | None:
    """Among (key, canonical) recordings, the one nearest `wanted`: same endpoint and model first,
    then fewest differing fields. Differences are reported from the recording to the request."""
    best: Closest | None = None
    best_rank: tuple[int, int, int] | None = None
    for key, canonical in recorded:
        differences = diff_requests(wanted, canonical)
        rank = _rank(wanted, canonical, differences)
        if best_rank is None or rank < best_rank:
            best, best_rank = Closest(key, canonical, differences), rank
    return best


def describe_miss(key: str, wanted: dict[str, Any], closest: Closest | None) -> str:
    """The one message a replay miss shows, in the proxy and in pytest alike."""
    head = f"no recording for key {key} ({wanted.get('endpoint')}, model {wanted.get('params', {}).get('model')!r})"
    if closest is None:
        return head + "; nothing is recorded yet"
    # Paths inside the canonical form start with `params.`; users think in request fields.
    fields = [d.removeprefix("params.") for d in closest.differences]
    return f"{head}; closest recording {closest.key} differs in: " + "; ".join(fields)
