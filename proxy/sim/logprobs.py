"""Log probabilities of an answer's tokens, as chat (`logprobs`, `top_logprobs`) and the Responses API
(`include=["message.output_text.logprobs"]`, `top_logprobs`) return them.

Deterministic: a token's figures are a hash of the request's material, its position and the token, so
the same request gets the same logprobs, streamed or not. The chosen token is the most likely one
(probability 0.5 to 0.999); the alternatives share what is left, each half the one before, so the
probabilities of a position never add up to more than 1.
"""

from __future__ import annotations

import hashlib
import math
import random
from typing import Any

from .errors import invalid_type, invalid_value
from .model import pieces

MAX_TOP = 20  # the API's bound on top_logprobs
# Alternatives drawn at each position (tokens a model commonly weighs), never the chosen token.
ALTERNATIVES: tuple[str, ...] = (" the", " a", " and", " to", " of", " in", " is", " it", " that", ",", ".", " for")
ALTERNATIVES += (" on", " with", " as", " this", " be", " you", " are", " or", " not", " can", " we", " an", "\n")


def parse_top(body: dict[str, Any], enabled: bool) -> int:
    """`top_logprobs` (0..20, default 0); it needs logprobs switched on, as upstream says."""
    value = body.get("top_logprobs")
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid_type("top_logprobs", "an integer", value)
    if not 0 <= value <= MAX_TOP:
        raise invalid_value("top_logprobs", f"expected a value between 0 and {MAX_TOP}, but got {value} instead.")
    if not enabled:
        raise invalid_value("top_logprobs", "'logprobs' must be set to true when 'top_logprobs' is used.")
    return value


def chat_enabled(body: dict[str, Any]) -> bool:
    value = body.get("logprobs")
    if value is None:
        return False
    if not isinstance(value, bool):
        raise invalid_type("logprobs", "a boolean", value)
    return value


def material(model: str, prompt_key: str, index: int) -> str:
    """What a choice's logprobs are hashed from: the same request gives the same figures."""
    return f"{model}\0{prompt_key}\0{index}"


def token_logprobs(text: str, salt: str, top: int) -> list[dict[str, Any]]:
    """One entry per token of `text`: token, logprob, bytes and the `top` most likely tokens."""
    entries = []
    for position, token in enumerate(pieces(text)):
        digest = hashlib.sha256(f"{salt}\0{position}\0{token}".encode()).hexdigest()
        rng = random.Random(int(digest[:16], 16))
        chosen = rng.uniform(0.5, 0.999)
        pool = [t for t in ALTERNATIVES if t != token]
        others = rng.sample(pool, max(0, top - 1))
        rest = 1 - chosen
        tops = [_entry(token, chosen)] + [_entry(t, rest / 2 ** (i + 1)) for i, t in enumerate(others)]
        entries.append({**_entry(token, chosen), "top_logprobs": tops[:top]})
    return entries


def _entry(token: str, probability: float) -> dict[str, Any]:
    return {"token": token, "logprob": round(math.log(probability), 6), "bytes": list(token.encode("utf-8"))}
