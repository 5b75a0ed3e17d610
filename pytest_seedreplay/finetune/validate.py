"""A chat fine-tuning set checked with the provider's rules, under the names its cookbook gives them.

The rules (OpenAI's chat format, as its data-preparation cookbook and its file validator check them):
each example is a JSON object with a non-empty `messages` list; each message has a `role` and
`content` (an assistant message may carry `tool_calls` instead) and no keys beyond the known ones;
roles are system, user, assistant, tool or function; every example ends with the assistant answer
it teaches; `weight` is 0 or 1 and only on assistant messages; content is text (user and system
messages may also send text/image parts); an example fits the training context; a file holds at least
10 examples and at most 512 MB. Tokens are estimated offline (no tokenizer download): about one
token per short word or punctuation mark and one per four letters of a long word, plus the
provider's per-message overhead.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MIN_EXAMPLES = 10
MAX_FILE_BYTES = 512 * 1024 * 1024
MAX_EXAMPLE_TOKENS = 65_536  # the training context of gpt-4o-mini, gpt-4.1 and their family
# A line longer than this is example_too_long before it is parsed: 65,536 tokens of text are at most
# a few hundred KB, and image parts are capped by the provider (10 MB each); parsing a 300 MB line
# took 6 GB. Nesting is bounded too: real examples (tool schemas included) stay far below it.
MAX_LINE_CHARS = 32 * 2**20
MAX_DEPTH = 64
TRUNCATED_ON_OLDER = 16_385  # gpt-3.5-turbo truncates longer examples
ROLES = frozenset({"system", "user", "assistant", "tool", "function"})
MESSAGE_KEYS = frozenset({"role", "content", "name", "weight", "function_call", "tool_calls", "tool_call_id", "refusal"})
EXAMPLE_KEYS = frozenset({"messages", "tools", "parallel_tool_calls", "functions"})
PART_TYPES = frozenset({"text", "image_url"})
TOKENS_PER_MESSAGE = 3
TOKENS_PER_NAME = 1
TOKENS_PER_REPLY = 3

_TOKEN = re.compile(r"[A-Za-z0-9]{1,4}|[^\sA-Za-z0-9]")


class DatasetError(ValueError):
    """A dataset file that cannot be read at all (missing, not UTF-8)."""


@dataclass
class Problem:
    """One broken rule: the cookbook's name for it, which example, and what is wrong."""

    rule: str
    where: str | None  # "example 3" (of an export) or "line 3" (of a file); None for the whole set
    detail: str

    def __str__(self) -> str:
        where = f"{self.where} " if self.where is not None else ""
        return f"{where}{self.detail} ({self.rule})"


@dataclass
class Validation:
    """What a check found: figures for the summary, errors that stop a job, warnings that do not."""

    examples: int = 0
    tokens: int = 0
    longest: int = 0
    errors: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def first_error(self, what: str = "the training set") -> str:
        """One line for a CLI error: the first broken rule, and how many others there are."""
        problem = self.errors[0]
        more = f" (and {len(self.errors) - 1} more problem(s))" if len(self.errors) > 1 else ""
        return f"{what} is not a valid fine-tuning set: {problem}{more}"


def estimate_tokens(text: str) -> int:
    return len(_TOKEN.findall(text))


def example_tokens(example: dict[str, Any]) -> int:
    """The provider's count for one example: each message's overhead, its text, names, the reply priming."""
    total = TOKENS_PER_REPLY
    for message in example.get("messages") or []:
        if not isinstance(message, dict):
            continue
        total += TOKENS_PER_MESSAGE + estimate_tokens(content_text(message.get("content")))
        if message.get("name"):
            total += TOKENS_PER_NAME
        for call in message.get("tool_calls") or []:
            total += estimate_tokens(json.dumps(call, ensure_ascii=False))
    if example.get("tools"):
        total += estimate_tokens(json.dumps(example["tools"], ensure_ascii=False))
    return total


def content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    return ""


def check_example(example: Any, name: str) -> list[Problem]:
    """Every rule one example breaks; `name` says which ('example 3', 'line 3')."""
    if not isinstance(example, dict):
        return [Problem("data_type", name, f"is a JSON {type(example).__name__}, not an object")]
    messages = example.get("messages")
    if not isinstance(messages, list) or not messages:
        return [Problem("missing_messages_list", name, "has no non-empty 'messages' list")]
    problems = []
    extra = sorted(set(example) - EXAMPLE_KEYS)
    if extra:
        problems.append(Problem("example_unrecognized_key", name, f"has unrecognized key(s) {', '.join(extra)}"))
    for index, message in enumerate(messages):
        problems += check_message(message, index, name)
    if problems:
        return problems
    if not any(m["role"] == "assistant" for m in messages):
        return [Problem("example_missing_assistant_message", name, "has no assistant message")]
    if messages[-1]["role"] != "assistant":
        problems.append(
            Problem(
                "last_message_not_assistant",
                name,
                f"ends with a {messages[-1]['role']} message, not the assistant answer it teaches",
            )
        )
    return problems


def check_message(message: Any, index: int, name: str) -> list[Problem]:
    where = f"messages[{index}]"
    if not isinstance(message, dict):
        return [Problem("data_type", name, f"{where} is not an object")]
    calls = bool(message.get("tool_calls") or message.get("function_call"))
    for key in ("role", "content"):
        if key not in message and not (key == "content" and calls):
            return [Problem("message_missing_key", name, f"{where} has no '{key}'")]
    extra = sorted(set(message) - MESSAGE_KEYS)
    if extra:
        return [Problem("message_unrecognized_key", name, f"{where} has unrecognized key(s) {', '.join(extra)}")]
    role = message["role"]
    if role not in ROLES:
        return [Problem("unrecognized_role", name, f"{where} has role {role!r}; use system, user, assistant or tool")]
    problems = check_content(message.get("content"), role, calls, where, name)
    if "weight" in message and (role != "assistant" or message["weight"] not in (0, 1) or isinstance(message["weight"], bool)):
        problems.append(Problem("invalid_weight", name, f"{where}: 'weight' must be 0 or 1, on assistant messages only"))
    return problems


def check_content(content: Any, role: str, calls: bool, where: str, name: str) -> list[Problem]:
    if content is None and calls:
        return []
    if isinstance(content, str):
        return [] if content.strip() or calls else [Problem("missing_content", name, f"{where} has empty content")]
    if isinstance(content, list) and role in ("user", "system"):
        kinds = {p.get("type") if isinstance(p, dict) else None for p in content}
        if not content or not kinds <= PART_TYPES:
            shown = ", ".join(sorted(str(k) for k in kinds - PART_TYPES)) or "none"
            return [Problem("invalid_content_type", name, f"{where} content parts must be text or image_url (got {shown})")]
        return []
    kind = "a list of parts" if isinstance(content, list) else f"a JSON {type(content).__name__}"
    return [Problem("invalid_content_type", name, f"{where} ({role}) content is {kind}; it must be text")]


def validate_examples(examples: list[Any], size: int | None = None, names: list[str] | None = None) -> Validation:
    """Check a whole set; `size` is the file's size in bytes, `names` how to call each example (default "example N")."""
    result = Validation(examples=len(examples))
    names = names or [f"example {i}" for i in range(1, len(examples) + 1)]
    for name, example in zip(names, examples):
        problems = check_example(example, name)
        result.errors += problems
        if problems:
            continue
        tokens = example_tokens(example)
        result.tokens += tokens
        result.longest = max(result.longest, tokens)
        if tokens > MAX_EXAMPLE_TOKENS:
            result.errors.append(
                Problem(
                    "example_too_long", name, f"holds about {tokens} tokens, over the {MAX_EXAMPLE_TOKENS} a training example may"
                )
            )
        elif tokens > TRUNCATED_ON_OLDER:
            result.warnings.append(
                Problem(
                    "example_long", name, f"holds about {tokens} tokens: gpt-3.5-turbo would truncate it at {TRUNCATED_ON_OLDER}"
                )
            )
    if len(examples) < MIN_EXAMPLES:
        result.errors.append(
            Problem("insufficient_examples", None, f"only {len(examples)} examples: at least {MIN_EXAMPLES} are required")
        )
    if size is not None and size > MAX_FILE_BYTES:
        result.errors.append(
            Problem("file_too_large", None, f"the file holds {size} bytes, over the provider's {MAX_FILE_BYTES}")
        )
    return result


@dataclass
class Dataset:
    """A JSONL file as read: its bytes, its examples and the line each came from, lines that are not JSON."""

    raw: bytes
    examples: list[Any]
    lines: list[int]
    bad_lines: list[Problem]


def read_dataset(path: str | Path) -> Dataset:
    """A dataset file (blank lines skipped); DatasetError when it cannot be read as text."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:  # not read at all: the provider would refuse it anyway
            raise DatasetError(f"{path} holds {size} bytes, over the provider's {MAX_FILE_BYTES} (file_too_large)")
        raw = path.read_bytes()
    except OSError as exc:
        raise DatasetError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{path} is not UTF-8 text ({exc.reason} at byte {exc.start}) (invalid_encoding)") from None
    data = Dataset(raw=raw, examples=[], lines=[], bad_lines=[])
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        example = _parse_line(line, f"line {number}")
        if isinstance(example, Problem):
            data.bad_lines.append(example)
            continue
        data.examples.append(example)
        data.lines.append(number)
    return data


def _parse_line(line: str, name: str) -> Any:
    """The line's JSON, or the Problem that keeps it from being an example: found before parsing
    (length) or while parsing (not JSON, nested too deep)."""
    if len(line) > MAX_LINE_CHARS:
        return Problem("example_too_long", name, f"is {len(line)} characters long, over the {MAX_LINE_CHARS} a line may be")
    too_deep = Problem("invalid_json", name, f"nests deeper than {MAX_DEPTH} levels")
    try:
        value = json.loads(line)
    except json.JSONDecodeError as exc:
        return Problem("invalid_json", name, f"is not JSON ({exc.msg} at column {exc.colno})")
    except RecursionError:
        return too_deep
    return too_deep if _deeper_than(value, MAX_DEPTH) else value


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether arrays and objects nest more than `limit` levels (walked without recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def validate_file(path: str | Path) -> tuple[Dataset, Validation]:
    """Read and check a JSONL file; problems name the file's lines."""
    data = read_dataset(path)
    result = validate_examples(data.examples, size=len(data.raw), names=[f"line {n}" for n in data.lines])
    result.errors = data.bad_lines + result.errors
    return data, result
