"""What changes between two recordings of the same answer without the answer changing.

Every call to OpenAI (or the simulator) returns a fresh id, a new `created` time, a new
`x-request-id` and `openai-processing-ms`, and seedreplay notes a new `recorded_at`. Re-recording an
unchanged answer must not rewrite a cassette for those alone (a rewrite run would otherwise churn every
file), so a new recording that equals the old one modulo these fields keeps the old one as written.
This module is the one place that says which fields those are.
"""

from __future__ import annotations

from typing import Any

from ..core.entry import Entry

# Keys of an answer body (at any depth) that name one call rather than say something: the answer's id
# (`chatcmpl-…`, `resp_…`), tool-call and output-item ids, timestamps, the serving machine's
# fingerprint (it varies between identical calls on OpenAI's fleet), and how much of the prompt the
# provider's prompt cache happened to hold (`usage.*_tokens_details.cached_tokens`: billing, not answer).
VOLATILE_BODY_FIELDS = frozenset({"id", "created", "created_at", "completed_at", "system_fingerprint", "cached_tokens"})

# Response headers that differ on every call.
VOLATILE_HEADERS = frozenset({"x-request-id", "openai-processing-ms", "date"})


def same_answer(old: Entry, new: Entry) -> bool:
    """True when `new` records what `old` does, modulo the volatile fields; streams are compared by
    their assembled answer (a different chunking of the same text is the same answer)."""
    if _steady_fields(old) != _steady_fields(new):
        return False
    if _steady_headers(old) != _steady_headers(new):
        return False
    return _steady(_answer(old)) == _steady(_answer(new))


def _steady_fields(entry: Entry) -> tuple[Any, ...]:
    # Every field of an entry but recorded_at, expires_at and system_fingerprint (volatile).
    return (
        entry.key,
        entry.endpoint,
        entry.request,
        entry.status,
        entry.streamed,
        entry.upstream,
        entry.url,
        entry.model,
        entry.key_version,
        entry.format,
    )


def _steady_headers(entry: Entry) -> dict[str, str]:
    # A stream is written as text/event-stream whatever charset the upstream named.
    volatile = VOLATILE_HEADERS | {"content-type"} if entry.streamed else VOLATILE_HEADERS
    return {name.lower(): value for name, value in entry.headers.items() if name.lower() not in volatile}


def _answer(entry: Entry) -> Any:
    """The body of a plain answer; a stream's assembled body, else its raw events (which then must match)."""
    if not entry.streamed:
        return entry.body
    from ..shapes import entry_summary  # when a stream is compared

    read = entry_summary(entry)
    if read.body is not None:
        return read.body
    return [(event.event, event.data) for event in entry.events or []]


def _steady(value: Any) -> Any:
    if isinstance(value, dict):
        return {name: _steady(item) for name, item in value.items() if name not in VOLATILE_BODY_FIELDS}
    if isinstance(value, list):
        return [_steady(item) for item in value]
    return value


def keep_unchanged(entries: list[Entry], before: list[Entry]) -> list[Entry]:
    """`entries`, where each recording equal to the one `before` held at the same place (the n-th
    recording of its key) is that old recording, so the file it is written to stays as it was."""
    held: dict[str, list[Entry]] = {}
    for entry in before:
        held.setdefault(entry.key, []).append(entry)
    seen: dict[str, int] = {}
    kept = []
    for entry in entries:
        place = seen.get(entry.key, 0)
        seen[entry.key] = place + 1
        olds = held.get(entry.key, ())
        old = olds[place] if place < len(olds) else None
        kept.append(old if old is not None and old is not entry and same_answer(old, entry) else entry)
    return kept


__all__ = ["VOLATILE_BODY_FIELDS", "VOLATILE_HEADERS", "keep_unchanged", "same_answer"]
