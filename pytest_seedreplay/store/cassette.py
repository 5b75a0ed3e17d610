"""Cassettes <-> entries: vcrpy-readable YAML files holding recorded OpenAI answers.

A cassette is written as vcrpy's own serializer writes one (the same YAML, by PyYAML: vcrpy itself is
not needed at run time), so plain vcrpy / pytest-recording can replay ours; we read ours and theirs as
plain data (`yamldata.load_data`: libyaml's parser; anchors, aliases and object tags refused),
re-keying each interaction from its request. seedreplay's extra metadata (key, recorded_at,
fingerprint, ...) lives in an extra `seedreplay` mapping inside each interaction's response:
vcrpy's `Request._from_dict` rejects unknown request keys, but response dicts are kept as they are,
read only for status/headers/body, and written back untouched when vcrpy re-saves a cassette."""

from __future__ import annotations

import http
import json
import os
import time
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..core.atomic import write_atomically
from ..core.constants import (
    CACHEABLE_ENDPOINTS,
    CONTENT_TYPE_JSON,
    CONTENT_TYPE_SSE,
    DEFAULT_UPSTREAM,
    ENTRY_FORMAT,
    KEY_VERSION,
    SIM_RECORDED_URL,
    SIM_UPSTREAM,
)
from ..core.entry import Entry
from ..core.jsontext import compact_json
from ..core.key import UnkeyableRequest, canonical_request, key_of_canonical, normalize_endpoint
from ..core.redact import kept_response_headers, refuse_secrets
from ..core.urls import entry_url, join_upstream, recorded_upstream

# The extra mapping in each interaction's response that carries seedreplay's metadata.
META_FIELD = "seedreplay"


class CassetteError(ValueError):
    """A cassette file (or one interaction in it) cannot be read; the message names the file and the fault."""


# --- one interaction <-> one entry --------------------------------------------------------------


def entry_to_interaction(entry: Entry) -> dict[str, Any]:
    """The vcrpy interaction (`{"request": ..., "response": ...}`) that replays `entry`."""
    from ..shapes import format_sse  # when a stream is read or written

    params = dict(entry.request.get("params", {}))
    if entry.streamed:
        # The key ignores `stream`, but a reader (and vcrpy's body matcher) expects it on a streamed call.
        params["stream"] = True
    request = {
        "method": "POST",
        "uri": entry.url or _uri(entry.upstream, entry.endpoint),
        "body": compact_json(params),
        "headers": {"content-type": [CONTENT_TYPE_JSON], **_keyed_request_headers(entry.request)},
    }
    headers = {name.lower(): value for name, value in entry.headers.items()}
    if entry.streamed:
        headers["content-type"] = CONTENT_TYPE_SSE
        body = format_sse(entry.events or []).decode("utf-8")
    else:
        headers.setdefault("content-type", CONTENT_TYPE_JSON)
        body = compact_json(entry.body)
    response = {
        "status": {"code": entry.status, "message": _reason(entry.status)},
        "headers": {name: [value] for name, value in sorted(headers.items())},
        "body": {"string": body},
        META_FIELD: {
            "key": entry.key,
            "key_version": entry.key_version,
            "recorded_at": entry.recorded_at,
            "model": entry.model,
            "system_fingerprint": entry.system_fingerprint,
        },
    }
    return {"request": request, "response": response}


def _keyed_request_headers(canonical: dict[str, Any]) -> dict[str, list[str]]:
    """The request headers in a key (Anthropic's anthropic-version, anthropic-beta), as vcrpy writes headers."""
    keyed = canonical.get("headers")
    if not isinstance(keyed, dict):
        return {}
    return {name: [",".join(value) if isinstance(value, list) else str(value)] for name, value in sorted(keyed.items())}


def interaction_to_entry(interaction: dict[str, Any], recorded_at: float | None = None) -> Entry | None:
    """The entry an interaction records, re-keyed from its request; None when it is not a whole,
    successful answer from a cacheable OpenAI endpoint (so any vcrpy cassette can be imported).

    `recorded_at` is used when the interaction carries no seedreplay metadata (foreign cassettes).
    """
    return read_interaction(interaction, recorded_at)[0]


def read_interaction(interaction: dict[str, Any], recorded_at: float | None = None) -> tuple[Entry | None, str]:
    """(entry, "") as `interaction_to_entry`, or (None, why the interaction is no answer to replay);
    raises CassetteError for an OpenAI answer that cannot be read or keyed."""
    from ..shapes import parse_sse, stream_complete  # when a stream is read or written

    if not isinstance(interaction, dict) or not isinstance(interaction.get("request"), dict):
        raise CassetteError("interaction has no 'request' mapping")
    if not isinstance(interaction.get("response"), dict):
        raise CassetteError("interaction has no 'response' mapping")
    method, uri, sent_bytes = _request_parts(interaction["request"])
    if str(method).upper() != "POST":
        return None, f"{method} {uri}: not a call seedreplay records"
    uri = _url_of(uri)
    path = urlsplit(uri).path
    endpoint = normalize_endpoint(path)
    if endpoint not in CACHEABLE_ENDPOINTS:
        return None, f"POST {uri}: not an OpenAI endpoint seedreplay caches"
    response = interaction["response"]
    status = _status_code(response)
    if not 200 <= status < 300:
        return None, f"status {status}: errors are never recorded answers"
    if not sent_bytes.strip():
        raise CassetteError("no request body recorded (removed by a filter?): nothing to key the answer on")
    sent = _parse_json(_as_text(sent_bytes), "request body")
    try:
        # An Azure deployment in the path keys as the model; Anthropic's version and beta headers key too.
        canonical = canonical_request(path, sent, _flat_headers(interaction["request"].get("headers")))
    except UnkeyableRequest as exc:
        raise CassetteError(f"request body cannot be keyed: {exc}") from None
    headers = _flat_headers(response.get("headers"))
    raw = _response_bytes(response, headers)
    meta = response.get(META_FIELD)
    upstream = _upstream_of(uri)
    streamed = CONTENT_TYPE_SSE in headers.get("content-type", "") or sent.get("stream") is True
    if streamed:
        events, body = parse_sse(raw), None
        if not stream_complete(endpoint, events):
            return None, "a stream cut short or carrying an error frame is not an answer to replay"
        first = _first_json_event(events)
    else:
        events, body = None, _parse_json(_as_text(raw), "response body")
        first = body if isinstance(body, dict) else {}
    entry = Entry(
        key=key_of_canonical(canonical),
        endpoint=endpoint,
        request=canonical,
        status=status,
        headers=kept_response_headers(headers),
        body=body,
        events=events,
        upstream=upstream,
        url=entry_url(upstream, endpoint, uri),
        key_version=KEY_VERSION,
        format=ENTRY_FORMAT,
        **(_own_metadata(meta) if isinstance(meta, dict) else _derived_metadata(first, canonical, recorded_at)),
    )
    return entry, ""


def _own_metadata(meta: dict[str, Any]) -> dict[str, Any]:
    # Written by us: take it verbatim so a round trip is exact.
    recorded_at = meta.get("recorded_at")
    return {
        "recorded_at": float(recorded_at) if isinstance(recorded_at, (int, float)) else time.time(),
        "model": meta.get("model"),
        "system_fingerprint": meta.get("system_fingerprint"),
    }


def _derived_metadata(first: dict[str, Any], canonical: dict[str, Any], recorded_at: float | None) -> dict[str, Any]:
    # A foreign cassette: read what the answer itself says.
    return {
        "recorded_at": recorded_at if recorded_at is not None else time.time(),
        "model": first.get("model") or canonical["params"].get("model"),
        "system_fingerprint": first.get("system_fingerprint"),
    }


# --- files --------------------------------------------------------------------------------------


def read_cassette(path: str | os.PathLike[str]) -> list[Entry]:
    """The entries of a vcrpy YAML cassette, in recorded order; a missing file holds none."""
    path = Path(path)
    interactions = read_interactions(path)
    if not interactions:
        return []
    mtime = path.stat().st_mtime
    entries = []
    for index, interaction in enumerate(interactions):
        try:
            entry = interaction_to_entry(interaction, recorded_at=mtime)
        except CassetteError as exc:
            raise CassetteError(f"{path}: interaction {index}: {exc}") from None
        if entry is not None:
            entries.append(entry)
    return entries


def read_interactions(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The raw interaction dicts of a cassette (for tools that report per interaction)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError) as exc:
        raise CassetteError(f"{path}: cannot read the cassette ({exc})") from None
    return _interactions(path, text)


def write_cassette(path: str | os.PathLike[str], entries: Iterable[Entry]) -> None:
    """Write `entries` as one vcrpy-readable cassette, atomically; a secret-bearing entry refuses
    the whole write before the file is touched, and a file that already says this is left alone."""
    path = Path(path)
    entries = list(entries)
    for index, entry in enumerate(entries):
        refuse_secrets(entry, f"{path}: interaction {index} (key {entry.key})")
    content = cassette_text(entries).encode("utf-8")
    try:
        if path.read_bytes() == content:
            return  # not even the mtime moves: a re-recording that changed nothing leaves no trace
    except OSError:
        pass  # no file yet (or unreadable): write it
    write_atomically(path, content)


def cassette_text(entries: Iterable[Entry]) -> str:
    """The YAML vcrpy's own serializer writes for these interactions (`vcr.serialize` with its yaml
    serializer: version 1, sorted keys, block style), written by PyYAML directly so that writing a
    cassette needs no vcrpy; the tests hold the two to the same bytes."""
    import yaml

    data = {"interactions": [entry_to_interaction(entry) for entry in entries], "version": 1}
    # libyaml's emitter when PyYAML was built with it (as vcrpy's serializer): the same text, faster.
    return yaml.dump(data, Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper))


# --- helpers ------------------------------------------------------------------------------------


def _interactions(path: Path, text: str) -> list[dict[str, Any]]:
    # PyYAML is imported when a cassette is first read: a test run that reads none does not pay for it.
    import yaml

    from .yamldata import NotData, load_data

    try:
        data = load_data(text)
    except NotData as exc:
        raise CassetteError(f"{path}: line {exc.line}: {exc.problem}; remove it or re-record the cassette") from None
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        at = f" at line {where.line + 1}" if where is not None else ""
        raise CassetteError(f"{path}: not valid YAML{at}: {getattr(exc, 'problem', None) or exc}") from None
    if data is None:
        return []
    if not isinstance(data, dict) or not isinstance(data.get("interactions"), list):
        raise CassetteError(
            f"{path}: not a vcrpy cassette (expected a mapping with an 'interactions' list); delete it or re-record it"
        )
    return data["interactions"]


def _uri(upstream: str, endpoint: str) -> str:
    """The URL of an entry recorded before entries kept their own (`Entry.url`)."""
    return join_upstream(recorded_upstream(upstream or DEFAULT_UPSTREAM), endpoint)


def _url_of(uri: str) -> str:
    """A cassette's uri as a URL: `sim/chat/completions`, which seedreplay wrote for the simulator
    before it wrote URLs, is the simulator's recorded URL."""
    if uri.startswith(SIM_UPSTREAM + "/"):
        return SIM_RECORDED_URL + uri[len(SIM_UPSTREAM) :]
    return uri


def _upstream_of(uri: str) -> str:
    parts = urlsplit(uri)
    path = parts.path
    marker = path.find("/v1/")
    if marker < 0 and "/openai/" in path:
        base = path[: path.find("/openai/")]  # Azure's deployment paths: the resource's root
    else:
        # No /v1 in the path means the whole path is the endpoint tail (see normalize_endpoint).
        base = path[: marker + 3] if marker >= 0 else ""
    return f"{parts.scheme}://{parts.netloc}{base}" if parts.scheme else base


def _reason(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return ""


# The keys of a vcrpy request: `Request(**data)` takes exactly these.
_REQUEST_KEYS = frozenset({"method", "uri", "body", "headers"})


def _request_parts(data: dict[str, Any]) -> tuple[Any, str, bytes]:
    """(method, uri, body bytes) of a vcrpy request dict, checked as vcrpy's `Request(**data)` would
    take it, without building one (≈ 20 µs an interaction, a fifth of reading one)."""
    if data.keys() != _REQUEST_KEYS:
        unexpected = sorted(map(str, data.keys() - _REQUEST_KEYS))
        missing = sorted(_REQUEST_KEYS - data.keys())
        if unexpected:  # e.g. a `parsed_body` a project's own serializer added
            fault = f"unexpected {', '.join(unexpected)}: written by a custom serializer? re-record it or drop the field"
        else:
            fault = f"missing {', '.join(missing)}"
        raise CassetteError(f"request is not a vcrpy request ({fault})")
    method, uri = data["method"], data["uri"]
    if not isinstance(uri, str):
        raise CassetteError("request has no 'uri'")
    return method, uri, _request_body(data["body"])


def _request_body(body: Any) -> bytes:
    # What vcrpy keeps: text (written as UTF-8), bytes (`!!binary`), or the parts of an iterated body.
    if body is None:
        return b""
    if isinstance(body, str):
        return body.encode("utf-8")
    if isinstance(body, bytes):
        return body
    if isinstance(body, list) and all(isinstance(part, (str, bytes)) for part in body):
        return b"".join(part.encode("utf-8") if isinstance(part, str) else part for part in body)
    raise CassetteError("request body is neither text nor bytes")


def _status_code(response: dict[str, Any]) -> int:
    status = response.get("status")
    code = status.get("code") if isinstance(status, dict) else response.get("status_code")
    if not isinstance(code, int):
        raise CassetteError("response has no integer status code")
    return code


def _flat_headers(headers: Any) -> dict[str, str]:
    if not isinstance(headers, dict):
        return {}
    flat = {}
    for name, value in headers.items():
        if isinstance(value, (list, tuple)):
            value = value[0] if value else ""
        flat[str(name).lower()] = str(value)
    return flat


def _response_bytes(response: dict[str, Any], headers: dict[str, str]) -> bytes:
    body = response.get("body")
    raw = body.get("string") if isinstance(body, dict) else response.get("content")
    if raw is None:
        raw = b""
    if isinstance(raw, str):
        raw = raw.encode("utf-8")
    if not isinstance(raw, bytes):
        raise CassetteError("response body is neither text nor bytes")
    return _decompress(raw, headers.get("content-encoding", ""))


def _decompress(raw: bytes, encoding: str) -> bytes:
    # Cassettes recorded without decode_compressed_response keep the bytes as the server sent them.
    encoding = encoding.strip().lower()
    try:
        if encoding == "gzip":
            return zlib.decompress(raw, zlib.MAX_WBITS | 16)
        if encoding == "deflate":
            try:
                return zlib.decompress(raw)
            except zlib.error:
                return zlib.decompress(raw, -zlib.MAX_WBITS)
    except zlib.error as exc:
        raise CassetteError(f"response body says content-encoding {encoding} but does not decode ({exc})") from None
    if encoding == "br":
        return _unbrotli(raw)
    if encoding and encoding != "identity":
        raise CassetteError(f"response body uses content-encoding {encoding!r}, which seedreplay cannot decode")
    return raw


def _unbrotli(raw: bytes) -> bytes:
    # httpx asks for br only when brotli (or brotlicffi) is installed, so whoever recorded one has it.
    try:
        import brotli
    except ImportError:
        try:
            import brotlicffi as brotli
        except ImportError:
            raise CassetteError("response body uses content-encoding br: pip install brotli to read it") from None
    try:
        return brotli.decompress(raw)
    except brotli.error as exc:
        raise CassetteError(f"response body says content-encoding br but does not decode ({exc})") from None


def _as_text(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise CassetteError("body is not UTF-8 text") from None


def _parse_json(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise CassetteError(f"{what} is not JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None


def _first_json_event(events: list) -> dict[str, Any]:
    for event in events:
        try:
            data = json.loads(event.data)
        except (json.JSONDecodeError, TypeError):
            continue
        if isinstance(data, dict):
            # Responses API events wrap the response object.
            inner = data.get("response")
            return inner if isinstance(inner, dict) and "model" in inner else data
    return {}
