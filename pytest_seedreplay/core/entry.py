"""The one record type every store, cassette and exporter shares."""

from __future__ import annotations

import dataclasses
import re
import time
from dataclasses import dataclass, field
from typing import Any

from .constants import ENTRY_FORMAT, KEY_VERSION


@dataclass
class SSEEvent:
    """One server-sent event as it came off the wire: optional event name and its data line(s)."""

    data: str
    event: str | None = None


@dataclass
class Entry:
    """A recorded answer: the canonical request it answers and the response, plain or streamed.

    Exactly one of `body` (parsed JSON of a plain answer) and `events` (the SSE events of a
    streamed answer, in order, `[DONE]` included when the upstream sent it) is set.
    """

    key: str
    endpoint: str
    request: dict[str, Any]
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None
    events: list[SSEEvent] | None = None
    recorded_at: float = field(default_factory=time.time)
    # When the recording stops answering (epoch seconds; `--ttl`); None: never. Stores drop it then.
    expires_at: float | None = None
    upstream: str = ""
    # The URL the request was sent to (no credentials; of the query only the API version), when it says
    # more than `upstream` + `endpoint` does: an Azure deployment's path, an api-version.
    url: str = ""
    model: str | None = None
    system_fingerprint: str | None = None
    key_version: str = KEY_VERSION
    format: int = ENTRY_FORMAT

    @property
    def streamed(self) -> bool:
        return self.events is not None

    def expired(self, now: float | None = None) -> bool:
        return self.expires_at is not None and (time.time() if now is None else now) >= self.expires_at

    def age(self, now: float | None = None) -> float:
        """Seconds since the answer was recorded."""
        return (time.time() if now is None else now) - self.recorded_at

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Entry:
        """The entry `data` describes; ValueError naming the first field that no recording could hold
        (a stored entry is read back through here, and a store may have been written by anyone)."""
        if not isinstance(data, dict):
            raise ValueError(f"an entry is a JSON object, not {type(data).__name__}")
        data = {k: v for k, v in data.items() if k in _FIELDS}
        _check_fields(data)
        if data.get("events") is not None:
            data["events"] = [SSEEvent(data=e["data"], event=e.get("event")) for e in data["events"]]
        return cls(**data)


# What a header may be on the wire (RFC 9110): a token for the name; no line break or other control
# character in the value, which would split the response a stored entry is served as.
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_HEADER_VALUE = re.compile(r"[^\x00-\x08\x0a-\x1f\x7f]*")
_FIELDS = frozenset(f.name for f in dataclasses.fields(Entry))
_REQUIRED = ("key", "endpoint", "request")
_TEXT = ("key", "endpoint", "upstream", "url", "key_version")
_OPTIONAL_TEXT = ("model", "system_fingerprint")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_fields(data: dict[str, Any]) -> None:
    for name in _REQUIRED:
        if name not in data:
            raise ValueError(f"the entry has no {name}")
    for name in _TEXT:
        if type(data.get(name, "")) is not str:
            raise ValueError(f"its {name} is not a string")
    for name in _OPTIONAL_TEXT:
        value = data.get(name)
        if value is not None and type(value) is not str:
            raise ValueError(f"its {name} is not a string")
    if not data["key"]:
        raise ValueError("its key is empty")
    if not isinstance(data["request"], dict):
        raise ValueError("its request is not an object")
    if not _is_number(data.get("recorded_at", 0)) or not (data.get("expires_at") is None or _is_number(data["expires_at"])):
        raise ValueError("its recorded_at or expires_at is not a number")
    if not isinstance(data.get("format", ENTRY_FORMAT), int):
        raise ValueError("its format is not a number")
    check_wire(data.get("status", 200), data.get("headers", {}))
    _check_events(data.get("events"))


def check_wire(status: Any, headers: Any) -> None:
    """ValueError unless `status` and `headers` can go on the wire as they are (what a proxy serving
    an entry it did not read through `from_dict`, e.g. a cassette's, asks before sending it)."""
    if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599:
        raise ValueError(f"its status {str(status)[:20]!r} is not an HTTP status (100-599)")
    _check_headers(headers)


def _check_headers(headers: Any) -> None:
    if not isinstance(headers, dict):
        raise ValueError("its headers are not an object")
    for name, value in headers.items():
        if not _HEADER_NAME.fullmatch(name) or not isinstance(value, str) or not _HEADER_VALUE.fullmatch(value):
            raise ValueError(f"its header {name[:40]!r} cannot be sent (a line break, a control character, or not text)")


def _check_events(events: Any) -> None:
    if events is None:
        return
    if not isinstance(events, list):
        raise ValueError("its events are not a list")
    for event in events:
        if not isinstance(event, dict) or not isinstance(event.get("data"), str):
            raise ValueError("one of its events has no text data")
        name = event.get("event")
        if name is not None and (not isinstance(name, str) or "\n" in name or "\r" in name):
            raise ValueError("one of its events has a name that is not one line of text")
