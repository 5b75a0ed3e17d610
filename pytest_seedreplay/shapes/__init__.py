"""What answers look like on each endpoint, in one place.

`sse` is the wire format; `chat`, `completions`, `responses` and `embeddings` each know their
endpoint's answers (assemble a stream into one answer, split one into a stream, fit usage or the
embedding encoding, the text a person reads); `text` reads requests for people. The functions
here pick the endpoint's module, so callers never branch on the endpoint themselves.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property
from types import ModuleType
from typing import Any

from ..core.constants import CHAT, COMPLETIONS, EMBEDDINGS, MESSAGES, RESPONSES
from ..core.entry import Entry, SSEEvent
from ..core.key import normalize_endpoint
from . import chat, completions, embeddings, messages, responses
from .pieces import UnstreamableAnswer, words
from .sse import (
    CONTENT_TYPE_SSE,
    CONTENT_TYPE_SSE_UTF8,
    DONE,
    MalformedStream,
    SSEParser,
    ends_stream,
    format_event,
    format_sse,
    parse_sse,
)
from .text import excerpt, prompt_line, prompt_text

__all__ = [
    "CONTENT_TYPE_SSE",
    "CONTENT_TYPE_SSE_UTF8",
    "DONE",
    "MalformedStream",
    "SSEParser",
    "Summary",
    "UnstreamableAnswer",
    "adapt_stream",
    "answer_body",
    "answer_events",
    "answer_parts",
    "answer_summary",
    "answer_text",
    "assemble",
    "convert_embeddings",
    "ends_stream",
    "entry_summary",
    "error_event",
    "excerpt",
    "finish_reason",
    "format_event",
    "format_sse",
    "parse_sse",
    "prompt_line",
    "prompt_text",
    "reply_text",
    "answer_problem",
    "split",
    "stream_complete",
    "streams",
    "summary",
    "vectors",
    "words",
]

_STREAMING: dict[str, ModuleType] = {CHAT: chat, COMPLETIONS: completions, RESPONSES: responses, MESSAGES: messages}
_ANSWERS: dict[str, ModuleType] = {**_STREAMING, EMBEDDINGS: embeddings}


def _answers(endpoint: str) -> ModuleType | None:
    return _ANSWERS.get(normalize_endpoint(endpoint))


def _streaming(endpoint: str, verb: str) -> ModuleType:
    endpoint = normalize_endpoint(endpoint)
    module = _STREAMING.get(endpoint)
    if module is None:
        raise ValueError(f"{endpoint} does not stream; nothing to {verb}")
    return module


# --- stream <-> plain answer --------------------------------------------------------------------


# The list each endpoint's answer carries its content in: a 2xx body without it is no answer.
_CONTENT_LIST = {CHAT: "choices", COMPLETIONS: "choices", RESPONSES: "output", EMBEDDINGS: "data"}


def answer_problem(endpoint: str, body: Any) -> str | None:
    """Why a plain 2xx body is not an answer of `endpoint` (not an object, no list of parts where the
    API always sends one), or None. Such a body would replay as nonsense, and could not be streamed."""
    if not isinstance(body, dict):
        return "it is not a JSON object"
    field = _CONTENT_LIST.get(normalize_endpoint(endpoint))
    if field is None:
        return None
    parts = body.get(field)
    if not isinstance(parts, list) or not all(isinstance(part, dict) for part in parts):
        return f"it has no `{field}` list of objects"
    return None


def streams(endpoint: str) -> bool:
    """Whether the endpoint answers `stream: true` with a stream (embeddings do not)."""
    return normalize_endpoint(endpoint) in _STREAMING


def assemble(endpoint: str, events: list[SSEEvent]) -> dict[str, Any]:
    """A streamed answer as the plain body the API returns to the same request without `stream`
    (MalformedStream when the stream cannot make one)."""
    return _streaming(endpoint, "assemble").assemble(events)


def split(endpoint: str, body: dict[str, Any], include_usage: bool) -> list[SSEEvent]:
    """The stream the API would have sent for this plain answer, had the request said `stream`.

    include_usage: the request's `stream_options.include_usage` (chat and completions only; a
    Responses stream always carries usage in its last event).
    """
    module = _streaming(endpoint, "split")
    if not isinstance(body, dict):
        raise UnstreamableAnswer("only a JSON object answer can be streamed")
    return module.split(body, include_usage)


def adapt_stream(endpoint: str, events: list[SSEEvent], include_usage: bool) -> list[SSEEvent]:
    """A recorded stream fitted to a request that asked (or not) for `include_usage`."""
    module = _STREAMING.get(normalize_endpoint(endpoint))
    return module.adapt_stream(events, include_usage) if module is not None else list(events)


def stream_complete(endpoint: str, events: list[SSEEvent]) -> bool:
    """True when the stream ended as the API ends a whole answer, with no error frame in it, and
    `assemble` builds the answer from it (so a stored stream can always answer a plain request).

    Chat and completions end with `[DONE]`; Responses with `response.completed` (or
    `response.incomplete`, a whole answer cut by max_output_tokens).
    """
    return summary(endpoint, events=events).complete


def error_event(endpoint: str, error: dict[str, Any]) -> SSEEvent:
    """The frame that ends a stream broken off midway, so the client raises instead of hanging
    (`error` is the OpenAI error object: message, type, param, code)."""
    module = _STREAMING.get(normalize_endpoint(endpoint), chat)
    return module.error_event(error)


def convert_embeddings(body: dict[str, Any], encoding_format: str | None) -> dict[str, Any]:
    """An embeddings answer in the encoding a request asked for ("float", the default, or "base64")."""
    return embeddings.convert(body, encoding_format)


# --- an entry as a request asks for it ----------------------------------------------------------


def answer_body(entry: Entry, encoding_format: str | None = None) -> Any:
    """An entry's answer as the body a plain request gets: a streamed one assembled
    (MalformedStream when it cannot be), embeddings in the encoding asked (float by default)."""
    if entry.events is not None:
        return assemble(entry.endpoint, entry.events)
    if normalize_endpoint(entry.endpoint) == EMBEDDINGS and isinstance(entry.body, dict):
        return embeddings.convert(entry.body, encoding_format)
    return entry.body


def answer_events(entry: Entry, include_usage: bool) -> list[SSEEvent]:
    """An entry's answer as the stream a `stream: true` request gets: a recorded stream fitted to
    `include_usage`, a plain answer split (ValueError when it cannot be)."""
    if entry.events is not None:
        return adapt_stream(entry.endpoint, entry.events, include_usage)
    return split(entry.endpoint, entry.body, include_usage)


# --- what an answer says ------------------------------------------------------------------------


def answer_text(endpoint: str, body: Any) -> str:
    """The answer as a person reads it: message content and tool calls, text, or a vector summary."""
    module = _answers(endpoint)
    return module.answer_text(body) if module is not None else ""


def reply_text(endpoint: str, body: Any) -> str | None:
    """The model's text reply exactly as it said it (the assistant message of a fine-tuning
    example), None when the answer is not text (tool calls only, vectors, empty)."""
    module = _answers(endpoint)
    return module.reply_text(body) if module is not None else None


def answer_parts(endpoint: str, body: Any) -> list[Any]:
    """What the model said, without ids, timestamps or usage: two answers with equal parts are
    the same answer (vectors for embeddings)."""
    module = _answers(endpoint)
    return module.answer_parts(body) if module is not None else []


def finish_reason(endpoint: str, body: Any) -> str | None:
    """Why the answer ended: each choice's finish_reason (comma-separated), or a response's
    incomplete reason / status; None for embeddings."""
    module = _answers(endpoint)
    return module.finish_reason(body) if module is not None else None


def vectors(endpoint: str, body: Any) -> list[list[float]] | None:
    """An embeddings answer's vectors as floats (compared by cosine, not by words); None for an
    endpoint that answers with text."""
    if normalize_endpoint(endpoint) != EMBEDDINGS:
        return None
    return embeddings.vectors(body)


@dataclass(frozen=True)
class Summary:
    """One answer read once, plain or streamed: its body (a stream assembled), whether it is a
    whole answer, and what the entry, drift and the cache tools show of it."""

    endpoint: str
    events: list[SSEEvent] | None  # the stream as it came; None for a plain answer
    body: Any  # the plain answer, or the stream assembled; None when a stream cannot be
    complete: bool  # a plain answer, or a stream that ended as the API ends a whole answer
    problem: str | None  # why a stream is not a whole answer
    model: str | None
    system_fingerprint: str | None

    @cached_property
    def finish_reason(self) -> str | None:
        return finish_reason(self.endpoint, self.body)

    @cached_property
    def text(self) -> str:
        """The text a person reads (computed on first use: embeddings decode their vectors for it)."""
        return answer_text(self.endpoint, self.body)


def summary(endpoint: str, *, body: Any = None, events: list[SSEEvent] | None = None) -> Summary:
    """Read a plain answer (`body`) or a stream (`events`, assembled once) into a Summary."""
    endpoint = normalize_endpoint(endpoint)
    problem = None
    if events is not None:
        module = _STREAMING.get(endpoint)
        if module is None:
            body, problem = None, f"{endpoint} does not stream"
        else:
            body, problem = module.read_stream(events)
    model, fingerprint = _named(body, "model"), _named(body, "system_fingerprint")
    return Summary(endpoint, events, body, problem is None, problem, model, fingerprint)


def entry_summary(entry: Entry) -> Summary:
    """A recorded entry's Summary; the model and fingerprint the entry recorded win over its body's."""
    read = summary(entry.endpoint, body=entry.body, events=entry.events)
    return replace(read, model=entry.model or read.model, system_fingerprint=entry.system_fingerprint or read.system_fingerprint)


def answer_summary(endpoint: str, body: Any) -> tuple[str | None, str | None]:
    """(model, system_fingerprint) of a plain answer, for the entry's summary fields."""
    read = summary(endpoint, body=body)
    return read.model, read.system_fingerprint


def _named(body: Any, field: str) -> str | None:
    value = body.get(field) if isinstance(body, dict) else None
    return value if isinstance(value, str) else None
