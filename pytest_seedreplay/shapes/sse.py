"""Server-sent events on the wire: read them in any chunking, write them, and tell where a stream
ends and which of its frames carry JSON. What the frames *mean* is each endpoint's module's business.

https://html.spec.whatwg.org/multipage/server-sent-events.html
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from ..core.entry import SSEEvent
from ..core.jsontext import compact_json

# The media type of an SSE answer; the API sends the charset too.
CONTENT_TYPE_SSE = "text/event-stream"
CONTENT_TYPE_SSE_UTF8 = "text/event-stream; charset=utf-8"

# The last word of a chat or completions stream.
DONE = "[DONE]"

# The named events that end a stream (the Responses and Anthropic's Messages API name their events).
# `incomplete` is a real answer too (e.g. max_output_tokens reached), the same one a plain request
# returns with 200.
FINISHED_EVENTS = frozenset({"response.completed", "response.incomplete", "message_stop"})
FAILED_EVENTS = frozenset({"response.failed", "error"})


class MalformedStream(ValueError):
    """A stream that cannot be turned into an answer: bad JSON, an error frame, nothing in it."""


_LINE_END = re.compile(rb"\r\n|\r|\n")
_DATA_LINE_END = re.compile(r"\r\n|\r|\n")


class SSEParser:
    """Incremental SSE parser: feed it chunks as they arrive, get the events completed so far.

    Lines end in LF, CRLF or CR, even when a CRLF is split between two chunks. Lines are decoded
    only once whole, so a UTF-8 character split between chunks decodes right.
    """

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self._partial = bytearray()  # the start of a line whose end has not arrived yet
        self._skip_lf = False  # the last chunk ended in CR: a LF opening the next one ends nothing
        self._first_line = True
        self._data: list[str] = []
        self._event: str | None = None

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        events: list[SSEEvent] = []
        if not chunk:
            return events
        chunk = bytes(chunk)  # bytearray / memoryview from a socket read
        start = 0
        if self._skip_lf and chunk[:1] == b"\n":
            start = 1
        self._skip_lf = False
        for match in _LINE_END.finditer(chunk, start):
            if self._partial:
                self._partial += chunk[start : match.start()]
                line = bytes(self._partial)
                self._partial.clear()
            else:
                line = chunk[start : match.start()]
            start = match.end()
            event = self._line(line)
            if event is not None:
                events.append(event)
        if start < len(chunk):
            self._partial += chunk[start:]
        elif chunk.endswith(b"\r"):
            self._skip_lf = True
        return events

    def close(self) -> list[SSEEvent]:
        """The end of the stream: a last event the upstream did not end with a blank line.

        The spec drops such an event; we keep it so a stream whose final `[DONE]` lacks its blank
        line still counts as complete. The parser is ready for a new stream afterwards.
        """
        events: list[SSEEvent] = []
        if self._partial:
            line = bytes(self._partial)
            self._partial.clear()
            self._line(line)
        event = self._dispatch()
        if event is not None:
            events.append(event)
        self._reset()
        return events

    def _line(self, raw: bytes) -> SSEEvent | None:
        line = raw.decode("utf-8", "replace")
        if self._first_line:
            self._first_line = False
            line = line.removeprefix("\ufeff")
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value or None
        # `id` and `retry` steer browser reconnection; OpenAI sends neither and an entry keeps no
        # place for them. Unknown fields are ignored, as the spec says.
        return None

    def _dispatch(self) -> SSEEvent | None:
        data, event = self._data, self._event
        self._data, self._event = [], None
        if not data:  # the spec: an event without data lines is not dispatched
            return None
        return SSEEvent(data="\n".join(data), event=event)


def parse_sse(data: bytes) -> list[SSEEvent]:
    """Every event of a whole SSE body."""
    parser = SSEParser()
    return parser.feed(data) + parser.close()


def format_event(event: SSEEvent) -> bytes:
    """One event on the wire: `event:` when named, one `data:` line per line of data, blank line."""
    parts = []
    if event.event:
        if _DATA_LINE_END.search(event.event):
            raise ValueError(f"an SSE event name cannot hold a line break: {event.event!r}")
        parts.append(f"event: {event.event}\n")
    for line in _DATA_LINE_END.split(event.data):
        parts.append(f"data: {line}\n")
    parts.append("\n")
    return "".join(parts).encode("utf-8")


def format_sse(events: Iterable[SSEEvent]) -> bytes:
    return b"".join(format_event(event) for event in events)


def json_event(obj: dict[str, Any], name: str | None = None) -> SSEEvent:
    """One JSON frame, written compactly as the API writes them."""
    return SSEEvent(data=compact_json(obj), event=name)


# --------------------------------------------------------------------------------------------
# Where a stream ends, and its JSON frames


def is_done(event: SSEEvent) -> bool:
    return event.data.startswith(DONE)  # the SDK's own test


def ends_stream(events: Iterable[SSEEvent]) -> bool:
    """Whether these events carry a stream's last word: `[DONE]`, or a terminal named event."""
    return any(is_done(e) or e.event in FINISHED_EVENTS or e.event in FAILED_EVENTS for e in events)


def load(event: SSEEvent) -> Any:
    """The JSON a frame carries (MalformedStream when it is not JSON)."""
    try:
        return json.loads(event.data)
    except ValueError:
        raise MalformedStream(f"a stream frame is not JSON: {event.data[:200]!r}") from None


def error_of(event: SSEEvent, obj: Any) -> str | None:
    """The message of an error frame (the SDK raises on these), else None."""
    if isinstance(obj, dict) and obj.get("error"):
        error = obj["error"]
        message = error.get("message") if isinstance(error, dict) else None
        return message if isinstance(message, str) and message else "an error occurred during streaming"
    if event.event == "error" or (isinstance(obj, dict) and obj.get("type") == "error"):
        message = obj.get("message") if isinstance(obj, dict) else None
        return message if isinstance(message, str) and message else "an error occurred during streaming"
    return None


def frames(events: list[SSEEvent]) -> list[tuple[SSEEvent, dict[str, Any]]]:
    """The JSON frames of a stream, `[DONE]` left out. Error frames and junk raise MalformedStream."""
    out = []
    for event in events:
        if is_done(event):
            continue
        obj = load(event)
        error = error_of(event, obj)
        if error is not None:
            raise MalformedStream(f"the stream carried an error frame: {error}")
        if not isinstance(obj, dict):
            raise MalformedStream(f"a stream frame is not a JSON object: {event.data[:200]!r}")
        out.append((event, obj))
    if not out:
        raise MalformedStream("the stream carried no frame to build an answer from")
    return out
