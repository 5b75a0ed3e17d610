"""`/v1/completions` (legacy) answers: a `text_completion` body, or its stream of `text_completion`
chunks whose choices carry `text` pieces (and legacy logprobs: tokens, token_logprobs, ...)."""

from __future__ import annotations

from typing import Any

from ..core.entry import SSEEvent
from . import chunks
from .pieces import copied, token_pieces, words

_OBJECT = "text_completion"  # the plain answer and every chunk alike


def _new_choice(index: int) -> dict[str, Any]:
    return {"text": "", "index": index}


def _finish_choice(choice: dict[str, Any]) -> dict[str, Any]:
    return chunks.ordered(choice, ["text", "index", "logprobs", "finish_reason"])


def _choice_plan(choice: dict[str, Any]) -> list[dict[str, Any]]:
    """A choice as its text pieces (one per logprob token when the tokens spell the text, each with
    its slice of every logprob list), then the finish_reason."""
    index = choice.get("index", 0)
    text = choice.get("text")
    has_logprobs = "logprobs" in choice
    logprobs = choice.get("logprobs")
    extras = {k: v for k, v in choice.items() if k not in ("text", "index", "logprobs", "finish_reason")}

    def piece(part: str, piece_logprobs: Any = None) -> dict[str, Any]:
        out: dict[str, Any] = {"text": part, "index": index}
        if has_logprobs:
            out["logprobs"] = piece_logprobs
        out["finish_reason"] = None
        return out

    plan = []
    tokens = None
    if isinstance(logprobs, dict):
        lists = [v for v in logprobs.values() if v is not None]
        tokens = token_pieces(text, logprobs.get("tokens"))
        if tokens and not all(isinstance(v, list) and len(v) == len(tokens) for v in lists):
            tokens = None
    if tokens and isinstance(logprobs, dict):
        for i, token in enumerate(tokens):
            sliced = {k: (None if v is None else copied(v[i : i + 1])) for k, v in logprobs.items()}
            plan.append(piece(token, sliced))
    elif isinstance(text, str):
        plan.extend(piece(p) for p in words(text))
    last = piece("", None if tokens else copied(logprobs))
    last["finish_reason"] = choice.get("finish_reason")
    last.update(copied(extras))
    plan.append(last)
    return plan


FORMAT = chunks.ChunkFormat(
    plain_object=_OBJECT,
    chunk_object=_OBJECT,
    delta_key=None,
    new_choice=_new_choice,
    finish_choice=_finish_choice,
    plan=_choice_plan,
)


# --- stream <-> plain answer --------------------------------------------------------------------


def assemble(events: list[SSEEvent]) -> dict[str, Any]:
    return chunks.assemble(FORMAT, events)


def split(body: dict[str, Any], include_usage: bool) -> list[SSEEvent]:
    return chunks.split(FORMAT, body, include_usage)


def adapt_stream(events: list[SSEEvent], include_usage: bool) -> list[SSEEvent]:
    return chunks.adapt_stream(events, include_usage)


def read_stream(events: list[SSEEvent]) -> tuple[dict[str, Any] | None, str | None]:
    return chunks.read_stream(FORMAT, events)


def error_event(error: dict[str, Any]) -> SSEEvent:
    return chunks.error_event(error)


# --- what the answer says -----------------------------------------------------------------------


def answer_text(body: Any) -> str:
    """Each choice's text; choices (n > 1) apart by a `---` line."""
    return "\n---\n".join(str(choice.get("text") or "") for choice in chunks.choices(body))


def reply_text(body: Any) -> str | None:
    """The first choice's text, None when empty."""
    found = chunks.choices(body)
    text = found[0].get("text") if found else None
    return text if isinstance(text, str) and text else None


def answer_parts(body: Any) -> list[Any]:
    """What the model said, without ids, timestamps or usage: each choice's text."""
    return [[choice.get("text")] for choice in chunks.choices(body)]


finish_reason = chunks.finish_reason
