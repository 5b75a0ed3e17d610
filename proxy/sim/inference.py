"""What the simulated models say: request parsing and seeded text generation (pure, no HTTP).

Determinism: the random generator of an answer is seeded from a hash of the model, the prompt, the
seed, the sampling parameters, the choice index and the drift salt. With no seed it also mixes in
fresh randomness, so unseeded calls vary; temperature 0 drops that randomness, so it is deterministic
with or without a seed. `max_tokens` and `stop` only cut the text afterwards, so the same request
gives the same prefix whatever its limit, streamed or not.
"""

from __future__ import annotations

import hashlib
import json
import random
import secrets
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Protocol

from .errors import invalid_type, invalid_value, missing
from .model import base_model, count_tokens, pieces, topic_words

CHAT_ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
SEED_MAX = 2**63 - 1


@dataclass
class Sampling:
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int | None = None
    max_tokens: int | None = None
    stop: list[str] = field(default_factory=list)
    n: int = 1
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0


@dataclass
class Prompt:
    """A request's input, reduced to what generation needs."""

    key: str  # canonical text of the whole input: part of the seed hash
    last_user: str  # the message the answer responds to (topic, fine-tune lookup)
    tokens: int  # prompt_tokens for usage


@dataclass
class Generated:
    text: str
    finish_reason: str  # stop | length | tool_calls
    tool_calls: list[dict[str, Any]] | None = None
    logprobs: list[dict[str, Any]] | None = None  # one entry per token of `text`, when asked for
    annotations: list[dict[str, Any]] | None = None  # a search model's url_citation


class Brain(Protocol):
    """Something that writes the full (uncut) answer text for one choice."""

    def reply(self, prompt: Prompt, rng: random.Random, sampling: Sampling) -> str: ...


class BaseBrain:
    """The base models: the bundled Markov chain, steered towards the prompt's words."""

    def reply(self, prompt: Prompt, rng: random.Random, sampling: Sampling) -> str:
        return base_model().generate(
            rng,
            topic=topic_words(prompt.last_user),
            sentences=rng.randint(1, 3),
            temperature=sampling.temperature,
            top_p=sampling.top_p,
            presence_penalty=sampling.presence_penalty,
            frequency_penalty=sampling.frequency_penalty,
        )


# ---------------------------------------------------------------- parsing


def require_model(body: dict[str, Any]) -> str:
    model = body.get("model")
    if model is None:
        raise missing("model")
    if not isinstance(model, str) or not model:
        raise invalid_type("model", "a string", model)
    return model


def parse_sampling(body: dict[str, Any], length_params: tuple[str, ...] = ("max_completion_tokens", "max_tokens")) -> Sampling:
    """Validate the sampling parameters shared by chat, completions and responses."""
    s = Sampling()
    s.temperature = _number(body, "temperature", 0, 2, 1.0)
    s.top_p = _number(body, "top_p", 0, 1, 1.0)
    s.presence_penalty = _number(body, "presence_penalty", -2, 2, 0.0)
    s.frequency_penalty = _number(body, "frequency_penalty", -2, 2, 0.0)
    seed = body.get("seed")
    if seed is not None:
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise invalid_type("seed", "an integer", seed)
        if not -SEED_MAX - 1 <= seed <= SEED_MAX:
            raise invalid_value("seed", f"{seed} is out of range; use an integer between {-SEED_MAX - 1} and {SEED_MAX}.")
        s.seed = seed
    for name in length_params:
        value = body.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int):
            raise invalid_type(name, "an integer", value)
        if value < 1:
            raise invalid_value(name, f"integer below minimum value. Expected a value >= 1, but got {value} instead.")
        s.max_tokens = value
        break
    n = body.get("n", 1)
    if n is None:
        n = 1
    if isinstance(n, bool) or not isinstance(n, int):
        raise invalid_type("n", "an integer", n)
    if not 1 <= n <= 128:
        raise invalid_value("n", f"expected a value between 1 and 128, but got {n} instead.")
    s.n = n
    s.stop = _stop(body.get("stop"))
    return s


def _number(body: dict[str, Any], name: str, low: float, high: float, default: float) -> float:
    value = body.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise invalid_type(name, "a number", value)
    if not low <= value <= high:
        raise invalid_value(name, f"expected a value between {low} and {high}, but got {value} instead.")
    return float(value)


def _stop(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value] if value else []
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        if len(value) > 4:
            raise invalid_value("stop", "at most 4 stop sequences are allowed.")
        return [v for v in value if v]
    raise invalid_type("stop", "a string or an array of strings", value)


def content_text(content: Any, param: str) -> str:
    """Text of a message content: a string, null, or a list of parts (non-text parts are skipped)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for i, part in enumerate(content):
            if not isinstance(part, dict) or "type" not in part:
                raise invalid_type(f"{param}[{i}]", "an object with a 'type'", part)
            if "text" in part and not isinstance(part["text"], str):
                raise invalid_type(f"{param}[{i}].text", "a string", part["text"])
            if isinstance(part.get("text"), str):
                texts.append(part["text"])
        return "\n".join(texts)
    raise invalid_type(param, "a string or an array of content parts", content)


def chat_prompt(body: dict[str, Any]) -> tuple[Prompt, list[dict[str, Any]]]:
    """Validate `messages` and reduce them to a Prompt."""
    messages = body.get("messages")
    if messages is None:
        raise missing("messages")
    if not isinstance(messages, list):
        raise invalid_type("messages", "an array", messages)
    if not messages:
        raise invalid_value("messages", "empty array. Expected an array with minimum length 1, but got an empty array instead.")
    tokens = 3  # every reply is primed with <|start|>assistant<|message|>
    last_user = ""
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise invalid_type(f"messages[{i}]", "an object", message)
        role = message.get("role")
        if role is None:
            raise missing(f"messages[{i}].role")
        if not isinstance(role, str) or role not in CHAT_ROLES:
            raise invalid_value(
                f"messages[{i}].role",
                f"'{role}'. Supported values are: 'system', 'developer', 'user', 'assistant', 'tool', and 'function'.",
            )
        if "content" not in message and role != "assistant":
            raise missing(f"messages[{i}].content")
        text = content_text(message.get("content"), f"messages[{i}].content")
        tokens += 3 + count_tokens(text) + (1 if message.get("name") else 0)
        if role == "user":
            last_user = text
    key = json.dumps(messages, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return Prompt(key=key, last_user=last_user, tokens=tokens), messages


def text_prompt(text: str) -> Prompt:
    return Prompt(key=json.dumps(text, ensure_ascii=False), last_user=text, tokens=count_tokens(text))


# ---------------------------------------------------------------- generation


def rng_for(model: str, prompt: Prompt, sampling: Sampling, drift: str, index: int) -> random.Random:
    """The generator of one choice. Unseeded, non-zero-temperature requests get fresh randomness."""
    fresh = secrets.token_hex(8) if sampling.seed is None and sampling.temperature != 0 else ""
    material = json.dumps(
        [
            model,
            prompt.key,
            sampling.seed,
            sampling.temperature,
            sampling.top_p,
            sampling.presence_penalty,
            sampling.frequency_penalty,
            drift,
            index,
            fresh,
        ],
        ensure_ascii=False,
    )
    return random.Random(int(hashlib.sha256(material.encode()).hexdigest()[:16], 16))


def cut(text: str, sampling: Sampling, natural_finish: str = "stop") -> Generated:
    """Apply `stop` (text ends before the first stop sequence) then `max_tokens`."""
    finish = natural_finish
    hits = [text.find(s) for s in sampling.stop if s in text]
    if hits:
        text = text[: min(hits)]
        finish = "stop"
    if sampling.max_tokens is not None:
        parts = pieces(text)
        if len(parts) > sampling.max_tokens:
            text = "".join(parts[: sampling.max_tokens])
            finish = "length"
    return Generated(text=text, finish_reason=finish)


def generate(brain: Brain, model: str, prompt: Prompt, sampling: Sampling, drift: str) -> list[Generated]:
    """All `n` choices of a request."""
    out = []
    for index in range(sampling.n):
        rng = rng_for(model, prompt, sampling, drift, index)
        out.append(cut(brain.reply(prompt, rng, sampling), sampling))
    return out


def cite(text: str, prompt_key: str) -> list[dict[str, Any]]:
    """A search model's answer cites a web page, as `url_citation` annotations (a stable made-up page
    under example.com, spanning the answer)."""
    if not text:
        return []
    page = hashlib.sha256(prompt_key.encode()).hexdigest()[:12]
    citation = {"start_index": 0, "end_index": len(text), "title": "Simulated source", "url": f"https://example.com/sim/{page}"}
    return [{"type": "url_citation", "url_citation": citation}]


def completion_tokens(choice: Generated) -> int:
    calls = sum(count_tokens(c["function"]["name"] + c["function"]["arguments"]) + 3 for c in choice.tool_calls or [])
    return count_tokens(choice.text) + calls


def prediction_text(body: dict[str, Any]) -> str | None:
    """The text of a `prediction` (Predicted Outputs), or None when the request sends none."""
    prediction = body.get("prediction")
    if prediction is None:
        return None
    if not isinstance(prediction, dict) or prediction.get("type") != "content":
        raise invalid_value("prediction", "expected an object with type 'content'.")
    return content_text(prediction.get("content"), "prediction.content")


def prediction_counts(predicted: str | None, choices: list[Generated]) -> tuple[int, int]:
    """(accepted, rejected) predicted tokens: those the answers reuse, and the rest of the prediction."""
    if predicted is None:
        return 0, 0
    offered = Counter(pieces(predicted))
    accepted = sum(sum((offered & Counter(pieces(c.text))).values()) for c in choices)
    return accepted, max(0, len(pieces(predicted)) * len(choices) - accepted)


def usage(prompt: Prompt, choices: list[Generated], reasoning: int = 0, predicted: tuple[int, int] = (0, 0)) -> dict[str, Any]:
    """Token counts; a reasoning model's `reasoning` tokens (per choice) count as completion tokens, and
    so do rejected predicted tokens, as upstream bills them."""
    reasoning *= len(choices)
    completion = sum(completion_tokens(c) for c in choices) + reasoning + predicted[1]
    return {
        "prompt_tokens": prompt.tokens,
        "completion_tokens": completion,
        "total_tokens": prompt.tokens + completion,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": reasoning,
            "audio_tokens": 0,
            "accepted_prediction_tokens": predicted[0],
            "rejected_prediction_tokens": predicted[1],
        },
    }
