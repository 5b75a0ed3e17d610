"""Reading a cacheable request: body limits, JSON, the seed policy, the key, the mode it runs in.

Everything a client can get wrong ends here as a 400/413 `APIError` naming what to fix.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from pytest_seedreplay.core.constants import (
    ANTHROPIC_ENDPOINTS,
    ANTHROPIC_KEYED_HEADERS,
    CHAT,
    COMPLETIONS,
    CONTENT_TYPE_JSON,
    CREDENTIAL_HEADERS,
    DEFAULT_BODY_TIMEOUT,
    EMBEDDINGS,
    HEADER_RETRY_COUNT,
    MESSAGES,
    RESPONSES,
)
from pytest_seedreplay.core.jsontext import compact_json_bytes
from pytest_seedreplay.core.key import UnkeyableRequest, canonical_request, key_of_canonical
from pytest_seedreplay.policy import Mode, ModeRefused, Policy, request_policy

from .config import ProxyConfig
from .errors import APIError, bad_request
from .flight import Shape
from .serve import BodyTimeout, decode_body

SEEDED_ENDPOINTS = (CHAT, COMPLETIONS)
# Bodies above this many bytes are parsed and keyed off the loop, so one big request never holds up the others.
LARGE_BODY = 1024 * 1024
# Bodies up to this many bytes are kept whole in the key memo's slots (`KeyMemo`), larger ones as a digest.
RAW_SLOT = 16 * 1024
# Objects and arrays a body may hold. Each costs ~100 bytes parsed, so this bounds a request's memory
# whatever its byte size (5 million `{}` in 14 MB would take a gigabyte); real requests, tool
# schemas and token-id inputs included, stay far below it.
MAX_CONTAINERS = 200_000
STREAMING_ENDPOINTS = (CHAT, COMPLETIONS, RESPONSES, MESSAGES)
_EMBEDDING_FORMATS = ("float", "base64")


@dataclass
class Call:
    """One cacheable request, read and checked: what to send, how it is keyed, how to answer."""

    endpoint: str
    body: dict[str, Any]
    payload: bytes  # the bytes sent upstream: the client's own, unless a seed was injected
    canonical: dict[str, Any]
    key: str
    shape: Shape  # what the client asked for
    upstream_shape: Shape  # what is asked of the upstream (a stream always with its usage chunk)
    policy: Policy  # what this request may do, after its headers
    namespace: str | None  # the caller's key namespace under --isolate-by-auth
    target: str = ""  # the client's path and query, as sent upstream (see `Arrival.target`)
    retry: bool = False  # the client retries a request it sent before (see `Arrival.retry`)


@dataclass(slots=True)
class Arrival:
    """A cacheable request before its body is parsed: its headers checked, its body read."""

    endpoint: str
    raw: bytes
    policy: Policy
    namespace: str | None  # the caller's key namespace under --isolate-by-auth
    default_seed: int | None  # the binding's seed for requests that carry none
    # The client's path as sent, not decoded: the key decodes an Azure deployment in it once, as the
    # upstream does when it gets the same raw path (aiohttp's decoded `path` would make that twice).
    path: str = ""
    target: str = ""  # the client's path and query as sent (Azure's api-version reaches the upstream)
    retry: bool = False  # the SDK's retry count says this request repeats an earlier try
    headers: tuple[tuple[str, str], ...] = ()  # the request headers its key takes (Anthropic's version, betas)


async def read_arrival(
    request: web.Request, endpoint: str, config: ProxyConfig, bound: Mode, default_seed: int | None
) -> Arrival:
    """The checks that need no parsing (mode, content type, size), and the body."""
    policy = policy_of(request.headers, bound, config.allow_mode_override)
    _check_content_type(request.headers.get("Content-Type"))
    raw = await read_body(request, config.max_body, config.body_timeout)
    namespace = auth_namespace(request.headers) if config.isolate_by_auth else None
    keyed = keyed_headers(request.headers) if endpoint in ANTHROPIC_ENDPOINTS else ()
    raw_path = request.raw_path
    return Arrival(
        endpoint, raw, policy, namespace, default_seed, raw_path.partition("?")[0], raw_path, is_retry(request.headers), keyed
    )


def keyed_headers(headers: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """The headers an Anthropic request's key takes, as sent (every value of a repeated header)."""
    getall = getattr(headers, "getall", None)
    out: list[tuple[str, str]] = []
    for name in ANTHROPIC_KEYED_HEADERS:
        values = getall(name, []) if getall is not None else [headers[name]] if name in headers else []
        out.extend((name, value) for value in values)
    return tuple(out)


def is_retry(headers: Mapping[str, str]) -> bool:
    """Does the client say this request retries one it sent before (`x-stainless-retry-count` >= 1)?"""
    count = headers.get(HEADER_RETRY_COUNT, "").strip()
    return count.isdigit() and int(count) > 0


def policy_of(headers: Mapping[str, str], bound: Mode, override: bool) -> Policy:
    """The request's policy, or the 400/403 `APIError` saying why its mode header is refused."""
    try:
        return request_policy(headers, bound, override)
    except ModeRefused as exc:
        raise APIError(403 if exc.code == "mode_not_allowed" else 400, str(exc), code=exc.code) from None


def make_call(arrival: Arrival, config: ProxyConfig) -> Call:
    """Parse and key an arrived request (the seed policy applied), or raise the 4xx `APIError`."""
    endpoint, raw = arrival.endpoint, arrival.raw
    body = parse_body(raw)
    changed = False  # True when what goes upstream differs from the client's bytes
    if endpoint in SEEDED_ENDPOINTS and body.get("seed") is None:
        if arrival.default_seed is not None:
            body = {**body, "seed": arrival.default_seed}
            changed = True
        elif config.require_seed:
            raise APIError(
                400,
                "this seedreplay proxy runs with --require-seed and the request has no 'seed'; "
                'add one (e.g. "seed": 1) so the answer is reproducible',
                code="missing_required_parameter",
                param="seed",
            )
    shape = request_shape(endpoint, body)
    upstream_shape, sent = shape, body
    if shape.stream and not shape.include_usage and endpoint in SEEDED_ENDPOINTS:
        # Record the usage chunk even when this client did not ask for it: a later request may
        # (or may want the plain answer, which always has usage). This client gets it stripped.
        options = body.get("stream_options")
        sent = {**body, "stream_options": {**(options if isinstance(options, dict) else {}), "include_usage": True}}
        upstream_shape = Shape(stream=True, include_usage=True)
        changed = True
    try:
        canonical = canonical_request(arrival.path or endpoint, body, arrival.headers)
    except UnkeyableRequest as exc:
        raise bad_request(str(exc)) from None
    except RecursionError:
        raise bad_request("the request body is nested too deeply to key") from None
    payload = compact_json_bytes(sent) if changed else raw
    key = key_of_canonical(canonical, arrival.namespace)
    return Call(
        endpoint,
        body,
        payload,
        canonical,
        key,
        shape,
        upstream_shape,
        arrival.policy,
        arrival.namespace,
        arrival.target or endpoint,
        arrival.retry,
    )


class KeyMemo:
    """The key and shape of request bodies seen lately, so a repeated request (a hit, mostly)
    skips parsing and hashing its body. They follow from the body's bytes, the endpoint, the seed
    settings and the auth namespace alone, so a remembered pair is never stale. A body up to
    `RAW_SLOT` bytes is its own part of the slot (a dict hashes and compares it faster than a digest
    is made: a tenth of a hit's own CPU); a larger one is there as a 128-bit digest. Bounded by
    count and by the bytes of the bodies it holds."""

    def __init__(self, size: int = 4096, budget: int = 16 * 1024 * 1024):
        self.size = size
        self.budget = budget
        self.bytes = 0  # of the bodies held in slots
        self._seen: OrderedDict[tuple, tuple[str, Shape]] = OrderedDict()

    @staticmethod
    def slot(arrival: Arrival, config: ProxyConfig) -> tuple:
        """Everything the key and shape of `arrival` follow from."""
        where = arrival.path or arrival.endpoint
        return KeyMemo.slot_of(where, arrival.raw, arrival.namespace, arrival.default_seed, config.require_seed, arrival.headers)

    @staticmethod
    def slot_of(
        where: str,
        raw: bytes,
        namespace: str | None,
        default_seed: int | None,
        require_seed: bool,
        headers: tuple[tuple[str, str], ...],
    ) -> tuple:
        """`slot` from its parts, for the hit lane (`hits`), which has no Arrival."""
        # A digest goes in a tuple: never equal to a body of the same 16 bytes.
        body = raw if len(raw) <= RAW_SLOT else (hashlib.blake2b(raw, digest_size=16).digest(),)
        return (where, body, namespace, default_seed, require_seed, headers)

    def get(self, slot: tuple) -> tuple[str, Shape] | None:
        seen = self._seen.get(slot)
        if seen is not None:
            self._seen.move_to_end(slot)
        return seen

    def put(self, slot: tuple, call: Call) -> None:
        if slot not in self._seen:
            self.bytes += _held(slot)
        self._seen[slot] = (call.key, call.shape)
        while len(self._seen) > self.size or self.bytes > self.budget:
            old, _ = self._seen.popitem(last=False)
            self.bytes -= _held(old)

    def __len__(self) -> int:
        return len(self._seen)


def _held(slot: tuple) -> int:
    body = slot[1]
    return len(body) if isinstance(body, bytes) else 0


def _check_content_type(value: str | None) -> None:
    # No Content-Type at all is taken as JSON (curl --data-binary); anything else must say JSON.
    if value is None or value == CONTENT_TYPE_JSON:  # what the SDKs send: no parsing needed
        return
    mime = value.split(";", 1)[0].strip().lower()
    if mime == CONTENT_TYPE_JSON or mime.endswith("+json"):
        return
    raise APIError(
        400,
        f"the request has Content-Type {value[:80]!r}; the OpenAI API takes a JSON body with Content-Type: application/json",
        code="invalid_content_type",
    )


async def read_body(request: web.Request, limit: int, deadline: float = DEFAULT_BODY_TIMEOUT) -> bytes:
    """The whole body, decoded as its Content-Encoding says: refused with 413 as soon as it passes
    `limit` bytes (never read past it), before or after decoding; a body that breaks off or is not
    the encoding it says is a 400; one that takes over `deadline` seconds to arrive (or stops
    arriving: see `ConnectionLimits`) a 408."""
    size = request.content_length  # parsed from the header at each access
    if size is not None and size > limit:
        raise _too_large(size, limit)
    try:
        if size is not None and request.content.is_eof():
            raw = await request.read()  # all here, within the limit (most requests): one read, no frame between
        else:
            reading = request.read() if size is not None else _read_chunked(request, limit)
            raw = await asyncio.wait_for(reading, deadline)
    except (BodyTimeout, asyncio.TimeoutError):
        raise APIError(
            408,
            f"the request body did not arrive within {deadline:g} s; send it at once (a client this slow holds a "
            "connection every other client could use)",
            code="request_timeout",
        ) from None
    except (web.RequestPayloadError, HttpProcessingError) as exc:  # chunked framing broken, cut short
        raise bad_request(f"the request body could not be read: {' '.join(str(exc).split())[:200]}") from None
    encoding = request.headers.get("Content-Encoding")
    if encoding is None:
        return raw
    # Inflating up to --max-body takes a while: not on the loop every client shares.
    return await asyncio.to_thread(decode_body, raw, encoding, limit)


async def _read_chunked(request: web.Request, limit: int) -> bytes:
    """A body of unknown size (chunked): read until the end, refused as soon as it passes `limit`."""
    body = bytearray()
    while True:
        chunk = await request.content.readany()
        if not chunk:
            return bytes(body)
        body += chunk
        if len(body) > limit:
            raise _too_large(None, limit)


def _too_large(size: int | None, limit: int) -> APIError:
    said = f" ({size} bytes)" if size is not None else ""
    return APIError(
        413,
        f"the request body{said} is over this proxy's limit of {limit} bytes; "
        "start the proxy with a larger --max-body if the request is meant to be this big",
        code="request_too_large",
    )


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def parse_body(raw: bytes) -> dict[str, Any]:
    """The JSON object in `raw`, strictly (no NaN/Infinity), or a 400 saying what is wrong."""
    if not raw.strip():
        raise bad_request('the request body is empty; send a JSON object such as {"model": ..., "messages": [...]}')
    # Counted before parsing (braces inside strings too: an upper bound, at memchr speed).
    containers = raw.count(b"{") + raw.count(b"[")
    if containers > MAX_CONTAINERS:
        raise APIError(
            413,
            f"the request body holds about {containers} JSON objects and arrays; this proxy takes at most "
            f"{MAX_CONTAINERS} per request",
            code="request_too_complex",
        )
    try:
        body = json.loads(raw, parse_constant=_no_constants)
    except json.JSONDecodeError as exc:
        raise bad_request(
            f"the request body is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})",
            code="invalid_json",
        ) from None
    except UnicodeDecodeError:
        raise bad_request("the request body is not UTF-8 encoded JSON", code="invalid_json") from None
    except ValueError as exc:
        raise bad_request(f"the request body is not valid JSON ({exc})", code="invalid_json") from None
    except RecursionError:
        raise bad_request("the request body is nested too deeply", code="invalid_json") from None
    if not isinstance(body, dict):
        try:
            canonical_request(CHAT, body)
        except UnkeyableRequest as exc:
            raise bad_request(str(exc), code="invalid_json") from None
    return body


def request_shape(endpoint: str, body: dict[str, Any]) -> Shape:
    """How the client wants the answer delivered (stream, usage chunk, embedding encoding)."""
    if endpoint == EMBEDDINGS:
        encoding = body.get("encoding_format")
        if encoding is None:
            encoding = "float"
        if encoding not in _EMBEDDING_FORMATS:
            raise bad_request(
                f"'encoding_format' must be 'float' or 'base64', got {json.dumps(encoding)[:40]}",
                code="invalid_value",
                param="encoding_format",
            )
        return Shape(encoding_format=encoding)
    if endpoint not in STREAMING_ENDPOINTS or body.get("stream") is not True:
        return Shape()
    options = body.get("stream_options")
    include_usage = isinstance(options, dict) and options.get("include_usage") is True
    # Responses and Messages streams always carry their usage (no stream_options there).
    return Shape(stream=True, include_usage=include_usage and endpoint not in (RESPONSES, MESSAGES))


def auth_namespace(headers: Mapping[str, str]) -> str:
    """The key namespace of the caller under --isolate-by-auth: a hash of its credential, never the credential."""
    credential = credential_of(headers)
    return caller_hash(credential) if credential else "auth:anonymous"


def credential_of(headers: Mapping[str, str]) -> str:
    """The caller's credential as sent (the first credential header that has one), or "": kept in
    memory only, to tell callers apart."""
    for name in CREDENTIAL_HEADERS:
        value = headers.get(name)
        if value:
            return value.strip()
    return ""


def caller_hash(credential: str) -> str:
    """What may be written down of a credential to tell callers apart: its SHA-256, never the credential."""
    return "auth:" + hashlib.sha256(credential.encode("utf-8", "surrogateescape")).hexdigest()
