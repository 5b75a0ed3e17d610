"""Live drift: how a live answer compares with its recording. Pure functions, no I/O."""

from __future__ import annotations

import difflib
import json
import math
from dataclasses import asdict, dataclass
from typing import Any

from .core.constants import EMBEDDINGS, RESPONSES
from .core.entry import Entry
from .shapes import sse

_SHOWN_VALUES = 4  # leading vector components shown in an embedding's text


@dataclass
class Drift:
    """One live answer set against its recording (`recorded` False: there was nothing to compare)."""

    key: str
    endpoint: str
    prompt: str
    recorded_text: str
    live_text: str
    verbatim: bool
    similarity: float
    recorded_fingerprint: str | None = None
    live_fingerprint: str | None = None
    recorded_finish_reason: str | None = None
    live_finish_reason: str | None = None
    recorded: bool = True

    @property
    def fingerprint_changed(self) -> bool:
        return self.recorded and self.recorded_fingerprint != self.live_fingerprint

    @property
    def finish_reason_changed(self) -> bool:
        return self.recorded and self.recorded_finish_reason != self.live_finish_reason

    @property
    def drifted(self) -> bool:
        """The answer itself changed. A new fingerprint alone is reported but is not drift."""
        return self.recorded and (not self.verbatim or self.finish_reason_changed)

    def describe(self) -> str:
        """One line for a terminal: what changed, how similar the texts still are."""
        if not self.recorded:
            return f"{self.endpoint} {self.key}: no recording to compare with (live answer not checked)"
        if not self.drifted:
            note = " (system_fingerprint changed)" if self.fingerprint_changed else ""
            return f"{self.endpoint} {self.key}: unchanged{note}"
        return f"{self.endpoint} {self.key}: answer drifted ({', '.join(self.changes())})"

    def changes(self) -> list[str]:
        """The similarity, then only what changed: finish_reason, system_fingerprint."""
        parts = [f"similarity {self.similarity:.2f}"]
        if self.finish_reason_changed:
            parts.append(f"finish_reason {self.recorded_finish_reason} → {self.live_finish_reason}")
        if self.fingerprint_changed:
            parts.append(f"system_fingerprint {self.recorded_fingerprint} → {self.live_fingerprint}")
        return parts

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Drift:
        """The drift `to_dict` wrote (it travels as plain data from xdist workers)."""
        return cls(**{name: data[name] for name in cls.__dataclass_fields__ if name in data})

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(
            drifted=self.drifted,
            fingerprint_changed=self.fingerprint_changed,
            finish_reason_changed=self.finish_reason_changed,
        )
        return data


def compare(recorded: Entry | None, live: Entry) -> Drift:
    """Set a live answer against its recording: verbatim, similarity, fingerprint, finish_reason."""
    live_body = answer_body(live)
    live_text = answer_text(live.endpoint, live_body)
    common = dict(
        key=live.key,
        endpoint=live.endpoint,
        prompt=prompt_text(live.request),
        live_text=live_text,
        live_fingerprint=fingerprint(live, live_body),
        live_finish_reason=finish_reason(live.endpoint, live_body),
    )
    if recorded is None:
        return Drift(recorded_text="", verbatim=False, similarity=0.0, recorded=False, **common)
    recorded_body = answer_body(recorded)
    if live.endpoint == EMBEDDINGS:
        old, new = embedding_vectors(recorded_body), embedding_vectors(live_body)
        verbatim, similarity = old == new, vector_similarity(old, new)
    else:
        old_answer, new_answer = answer_parts(live.endpoint, recorded_body), answer_parts(live.endpoint, live_body)
        verbatim = old_answer == new_answer
        similarity = 1.0 if verbatim else text_similarity(answer_text(live.endpoint, recorded_body), live_text)
    return Drift(
        recorded_text=answer_text(live.endpoint, recorded_body),
        verbatim=verbatim,
        similarity=similarity,
        recorded_fingerprint=fingerprint(recorded, recorded_body),
        recorded_finish_reason=finish_reason(live.endpoint, recorded_body),
        **common,
    )


# --- reading answers ------------------------------------------------------------------------------


def answer_body(entry: Entry) -> dict[str, Any]:
    """The answer as one JSON object, a streamed entry assembled from its events."""
    try:
        body = sse.answer_body(entry)
    except ValueError:  # a stream cut short has no whole answer to compare
        body = {}
    return body if isinstance(body, dict) else {}


def answer_parts(endpoint: str, body: dict[str, Any]) -> list[Any]:
    """What the model said, without ids, timestamps or usage: the part compared verbatim."""
    if endpoint == RESPONSES:
        return [_without_ids(item) for item in body.get("output") or []]
    parts = []
    for choice in body.get("choices") or []:
        if not isinstance(choice, dict):
            continue
        message = choice.get("message")
        if isinstance(message, dict):
            calls = [_call_text(c) for c in message.get("tool_calls") or []]
            parts.append([message.get("content"), message.get("refusal"), calls])
        else:
            parts.append([choice.get("text")])
    return parts


def answer_text(endpoint: str, body: dict[str, Any]) -> str:
    """The answer as a person reads it: message content, tool calls, text, or a vector summary."""
    if endpoint == EMBEDDINGS:
        return _vectors_text(embedding_vectors(body))
    if endpoint == RESPONSES:
        return _responses_text(body)
    texts = []
    for choice in body.get("choices") or []:
        if not isinstance(choice, dict):
            continue
        message = choice.get("message")
        if isinstance(message, dict):
            pieces = [message.get("content") or message.get("refusal") or ""]
            pieces += [f"[tool call] {_call_text(c)}" for c in message.get("tool_calls") or []]
            texts.append("\n".join(p for p in pieces if p))
        else:
            texts.append(str(choice.get("text") or ""))
    return "\n---\n".join(texts)


def finish_reason(endpoint: str, body: dict[str, Any]) -> str | None:
    if endpoint == RESPONSES:
        details = body.get("incomplete_details")
        reason = details.get("reason") if isinstance(details, dict) else None
        return reason or body.get("status")
    reasons = [str(c.get("finish_reason")) for c in body.get("choices") or [] if isinstance(c, dict)]
    return ",".join(reasons) if reasons else None


def fingerprint(entry: Entry, body: dict[str, Any]) -> str | None:
    return entry.system_fingerprint or body.get("system_fingerprint")


def prompt_text(canonical: dict[str, Any]) -> str:
    """The request as a person reads it: the messages (role: content), prompt or input."""
    params = canonical.get("params") or {}
    lines = []
    if params.get("instructions"):
        lines.append(f"instructions: {params['instructions']}")
    lines += _messages_text(params.get("messages"))
    for name in ("prompt", "input"):
        value = params.get(name)
        if value is None:
            continue
        if isinstance(value, list) and value and all(isinstance(m, dict) and "role" in m for m in value):
            lines += _messages_text(value)  # Responses input given as messages
        elif isinstance(value, list) and all(isinstance(v, (str, int, float)) for v in value):
            lines.append(f"{name}: {json.dumps(value, ensure_ascii=False)}")  # a batch: where each item ends matters
        else:
            lines.append(f"{name}: {value if isinstance(value, str) else _content_text(value)}")
    return "\n".join(lines)


def _messages_text(messages: Any) -> list[str]:
    if not isinstance(messages, list):
        return []
    return [f"{m.get('role', '?')}: {_content_text(m.get('content'))}" for m in messages if isinstance(m, dict)]


def embedding_vectors(body: dict[str, Any]) -> list[list[float]]:
    """Every embedding in an answer as floats, whether sent as a list or base64 float32."""
    try:
        data = sse.convert_embeddings(body, "float").get("data") or []
    except ValueError:  # base64 that is not float32 vectors: nothing to compare
        return []
    return [
        [float(v) for v in item["embedding"]]
        for item in data
        if isinstance(item, dict) and isinstance(item.get("embedding"), list)
    ]


# --- similarity ---------------------------------------------------------------------------------


def text_similarity(recorded: str, live: str) -> float:
    """difflib's ratio over words (0..1): robust to small edits, cheap on long answers."""
    if recorded == live:
        return 1.0
    return round(difflib.SequenceMatcher(None, recorded.split(), live.split(), autojunk=False).ratio(), 4)


def vector_similarity(recorded: list[list[float]], live: list[list[float]]) -> float:
    """Mean cosine similarity of paired vectors as a 0..1 score (unrelated or opposite: 0); 0 when
    the shapes differ."""
    if len(recorded) != len(live) or not recorded:
        return 1.0 if recorded == live else 0.0
    scores = []
    for a, b in zip(recorded, live):
        if len(a) != len(b):
            return 0.0
        norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
        scores.append(sum(x * y for x, y in zip(a, b)) / norm if norm else float(a == b))
    return max(0.0, round(sum(scores) / len(scores), 4))  # 0.0 first: never a negative score, nor -0.0


# --- helpers ------------------------------------------------------------------------------------


def _call_text(call: Any) -> str:
    if not isinstance(call, dict):
        return str(call)
    function = call.get("function") if isinstance(call.get("function"), dict) else call
    return f"{function.get('name')}({function.get('arguments', '')})"


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for part in content:
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                texts.append(part["text"])
            elif isinstance(part, dict):
                texts.append(f"[{part.get('type', 'part')}]")
            else:
                texts.append(str(part))
        return " ".join(texts)
    return "" if content is None else json.dumps(content, ensure_ascii=False)


def _responses_text(body: dict[str, Any]) -> str:
    texts = []
    for item in body.get("output") or []:
        if not isinstance(item, dict):
            continue
        if item.get("type") == "message":
            texts += [c.get("text", "") for c in item.get("content") or [] if isinstance(c, dict)]
        elif item.get("type") == "function_call":
            texts.append(f"[tool call] {item.get('name')}({item.get('arguments', '')})")
    return "\n".join(texts)


def _without_ids(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_ids(v) for k, v in value.items() if k not in ("id", "call_id", "created_at")}
    if isinstance(value, list):
        return [_without_ids(v) for v in value]
    return value


def _vectors_text(vectors: list[list[float]]) -> str:
    lines = []
    for index, vector in enumerate(vectors):
        head = ", ".join(f"{v:.6f}" for v in vector[:_SHOWN_VALUES])
        more = ", …" if len(vector) > _SHOWN_VALUES else ""
        lines.append(f"embedding[{index}] ({len(vector)} dims): [{head}{more}]")
    return "\n".join(lines)
