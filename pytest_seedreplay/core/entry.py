"""The one record type every store, cassette and exporter shares."""

from __future__ import annotations

import dataclasses
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
        data = dict(data)
        if data.get("events") is not None:
            data["events"] = [SSEEvent(**e) for e in data["events"]]
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})
