"""Training-file validation with the provider's rules and error names, and what a job learns from it.

Rules (chat format, as the provider's data-preparation cookbook checks them): one JSON object per
line with a `messages` list; each message has `role` and `content` and no other keys than the known
ones; roles are system, user, assistant, tool or function; every example has an assistant message;
`weight` on assistant messages is 0 or 1; at least 10 examples.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .model import count_tokens

MIN_EXAMPLES = 10
ROLES = frozenset({"system", "user", "assistant", "tool", "function"})
MESSAGE_KEYS = frozenset({"role", "content", "name", "weight", "function_call", "tool_calls", "tool_call_id", "refusal"})


class TrainingFileError(Exception):
    """A file the provider would reject; `name` is the cookbook's error name."""

    def __init__(self, name: str, detail: str, line: int | None = None):
        where = f"line {line}: " if line is not None else ""
        super().__init__(f"{where}{name}: {detail}")
        self.name = name
        self.line = line
        self.detail = detail


@dataclass
class TrainingData:
    examples: list[dict[str, str]]  # learned pairs: {"prompt": user message, "answer": assistant message}
    example_count: int  # lines (examples) in the file
    tokens: int  # tokens of one epoch


def validate(content: bytes) -> TrainingData:
    """Check a JSONL chat training file; raise TrainingFileError at the first problem."""
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise TrainingFileError("invalid_encoding", f"the file is not UTF-8 ({exc.reason} at byte {exc.start})") from None
    pairs: list[dict[str, str]] = []
    count = tokens = 0
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        count += 1
        messages = _example_messages(line, number)
        tokens += sum(count_tokens(m["content"]) + 3 for m in messages if isinstance(m.get("content"), str))
        pairs.extend(_pairs(messages))
    if count < MIN_EXAMPLES:
        raise TrainingFileError(
            "insufficient_examples",
            f"the training file has {count} example(s), but must have at least {MIN_EXAMPLES} examples",
        )
    return TrainingData(examples=pairs, example_count=count, tokens=tokens)


def _example_messages(line: str, number: int) -> list[dict[str, Any]]:
    try:
        example = json.loads(line)
    except json.JSONDecodeError as exc:
        raise TrainingFileError("invalid_json", f"not valid JSON ({exc.msg} at column {exc.colno})", number) from None
    if not isinstance(example, dict):
        raise TrainingFileError("data_type", f"each line must be a JSON object, got {type(example).__name__}", number)
    messages = example.get("messages")
    if not isinstance(messages, list) or not messages:
        raise TrainingFileError("missing_messages_list", "the example has no non-empty 'messages' list", number)
    for i, message in enumerate(messages):
        _check_message(message, i, number)
    if not any(m["role"] == "assistant" for m in messages):
        raise TrainingFileError("example_missing_assistant_message", "the example has no assistant message", number)
    return messages


def _check_message(message: Any, index: int, number: int) -> None:
    if not isinstance(message, dict):
        raise TrainingFileError("data_type", f"messages[{index}] must be an object", number)
    if "role" not in message or ("content" not in message and not _calls(message)):
        missing = "role" if "role" not in message else "content"
        raise TrainingFileError("message_missing_key", f"messages[{index}] has no '{missing}'", number)
    extra = sorted(set(message) - MESSAGE_KEYS)
    if extra:
        raise TrainingFileError("message_unrecognized_key", f"messages[{index}] has unrecognized key(s) {extra}", number)
    if message["role"] not in ROLES:
        raise TrainingFileError("unrecognized_role", f"messages[{index}] has role {message['role']!r}", number)
    content = message.get("content")
    if not _calls(message) and (not isinstance(content, str) or not content.strip()):
        raise TrainingFileError("missing_content", f"messages[{index}] has no text content", number)
    if "weight" in message and (message["role"] != "assistant" or message["weight"] not in (0, 1)):
        raise TrainingFileError(
            "invalid_weight", f"messages[{index}]: 'weight' must be 0 or 1, on assistant messages only", number
        )


def _calls(message: dict[str, Any]) -> bool:
    return bool(message.get("tool_calls") or message.get("function_call"))


def _pairs(messages: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Each trained assistant text with the user message it answers (weight 0 answers are not learned)."""
    out, last_user = [], ""
    for message in messages:
        if message["role"] == "user" and isinstance(message.get("content"), str):
            last_user = message["content"]
        elif message["role"] == "assistant" and message.get("weight", 1) == 1 and isinstance(message.get("content"), str):
            out.append({"prompt": last_user, "answer": message["content"]})
    return out
