"""`POST /v1/embeddings`: deterministic unit vectors where texts sharing words lie close together."""

from __future__ import annotations

import base64
import hashlib
import math
import random
import struct
from typing import Any

from aiohttp import web

from . import catalog
from .errors import APIError, bad_request, invalid_type, invalid_value, missing, model_not_found
from .inference import require_model
from .model import count_tokens, words
from .models import answers_any_name
from .runtime import CONFIG, first_token_delay, read_json

_BUCKETS_PER_FEATURE = 16


def embed(text: str, dims: int, salt: str = "") -> list[float]:
    """Feature-hashed words and character trigrams over a faint text-specific background, normalised."""
    rng = random.Random(_hash_int(f"text\0{salt}\0{text}"))
    vector = [rng.gauss(0.0, 0.02) for _ in range(dims)]
    for feature in _features(text):
        h = hashlib.sha256(f"{salt}\0{feature}".encode()).digest()
        for k in range(_BUCKETS_PER_FEATURE):
            index = int.from_bytes(h[2 * k : 2 * k + 2], "little") % dims
            vector[index] += 1.0 if h[k] & 1 else -1.0
    norm = math.sqrt(sum(v * v for v in vector)) or 1.0
    return [v / norm for v in vector]


def _features(text: str) -> list[str]:
    tokens = [w.lower() for w in words(text) if w.isalnum()]
    grams = [f"#{t[i : i + 3]}" for t in tokens for i in range(max(1, len(t) - 2))]
    return tokens + grams


def _hash_int(text: str) -> int:
    return int(hashlib.sha256(text.encode()).hexdigest()[:16], 16)


def encode_base64(vector: list[float]) -> str:
    """Little-endian float32, as the SDK decodes it."""
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")


def _inputs(value: Any) -> list[str]:
    if value is None:
        raise missing("input")
    if isinstance(value, str):
        value = [value]
    elif isinstance(value, list) and value and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        value = [" ".join(f"t{v}" for v in value)]
    elif isinstance(value, list) and value and all(_token_ids(v) for v in value):
        value = [" ".join(f"t{t}" for t in tokens) for tokens in value]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise invalid_type("input", "a string, an array of strings or an array of token arrays", value)
    if len(value) > 2048:
        raise invalid_value("input", "at most 2048 inputs are allowed per request.")
    for i, text in enumerate(value):
        if not text:
            raise bad_request(f"'$.input[{i}]' is invalid: an input cannot be an empty string.", "input", "invalid_value")
    return value


def _token_ids(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(t, int) and not isinstance(t, bool) for t in value)


# A model name outside the catalogue answers as text-embedding-3-small does (unless strict_models).
_ANY_NAME_AS = "text-embedding-3-small"


def _dimensions(body: dict[str, Any], model: str) -> int:
    like = model if model in catalog.EMBEDDING_MODELS else _ANY_NAME_AS
    native = catalog.EMBEDDING_MODELS[like]
    dims = body.get("dimensions")
    if dims is None:
        return native
    if like not in catalog.SHORTENABLE_EMBEDDINGS:
        raise bad_request(f"This model does not support specifying dimensions: {model}.", "dimensions")
    if isinstance(dims, bool) or not isinstance(dims, int):
        raise invalid_type("dimensions", "an integer", dims)
    if not 1 <= dims <= native:
        raise invalid_value("dimensions", f"expected a value between 1 and {native}, but got {dims} instead.")
    return dims


async def embeddings(request: web.Request) -> web.Response:
    body = await read_json(request)
    model = require_model(body)
    texts = _inputs(body.get("input"))
    fmt = body.get("encoding_format", "float") or "float"
    if fmt not in ("float", "base64"):
        raise invalid_value("encoding_format", f"'{fmt}'. Supported values are: 'float' and 'base64'.")
    if model not in catalog.EMBEDDING_MODELS and not answers_any_name(request.app, model):
        if model in catalog.ALL_BASE_MODELS:
            raise APIError(404, f"The model `{model}` is not an embedding model.", param="model", code="model_not_found")
        raise model_not_found(model)
    dims = _dimensions(body, model)
    salt = f"{model}\0{request.app[CONFIG].drift}"
    data = []
    for i, text in enumerate(texts):
        vector = embed(text, dims, salt)
        data.append({"object": "embedding", "index": i, "embedding": encode_base64(vector) if fmt == "base64" else vector})
    tokens = sum(count_tokens(t) for t in texts)
    await first_token_delay(request)
    return web.json_response(
        {"object": "list", "data": data, "model": model, "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}
    )


def add_routes(app: web.Application) -> None:
    app.router.add_post("/v1/embeddings", embeddings)
