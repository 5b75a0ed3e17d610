"""Recorded chat answers -> a chat fine-tuning set: one example per distinct request, checked, written.

Each example is the recorded request's system and conversation turns plus the recorded assistant
answer (a streamed answer assembled first; tool calls kept, with the request's `tools`). The same
conversation recorded twice with the same answer is one example; recorded with different answers
(another seed, another day) the newest answer wins, since a model cannot be taught two answers to
one prompt. Optional paraphrases of the last user turn teach the same answer to other wordings; an
optional holdout goes to a validation file. Next to the training file a small record says what it
was exported from, which `finetune create` copies into the manifest.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.atomic import write_atomically
from ..core.constants import CHAT
from ..core.entry import Entry
from ..core.jsontext import compact_json
from ..core.redact import find_secret
from ..shapes import MalformedStream, answer_body
from ..store import StoreError, display_location, open_store
from ..store.cassette import CassetteError, read_cassette
from .validate import MIN_EXAMPLES, Problem, Validation, content_text, validate_examples

EXPORT_RECORD_VERSION = 1
PARAPHRASE_SEED = 0  # export's variants; verify asks with other seeds so it tests wordings never trained on


class ExportError(ValueError):
    """The sources cannot be read, or the set cannot be built; the message says what to do."""


@dataclass
class Options:
    model: str | None = None
    since: float | None = None  # epoch seconds: only recordings made at or after it
    paraphrases: int = 0
    holdout: float = 0.0


@dataclass
class Example:
    """One training example and where it came from (a store key or a cassette file)."""

    data: dict[str, Any]
    origin: str
    recorded_at: float
    generated: bool = False  # a paraphrase variant, not a recorded prompt

    @property
    def prompt_id(self) -> str:
        """What identifies the question: everything but the answer."""
        return compact_json({"messages": self.data["messages"][:-1], "tools": self.data.get("tools")})


@dataclass
class Export:
    training: list[Example]
    validation: list[Example]
    sources: list[dict[str, Any]]
    options: Options
    skipped: Counter = field(default_factory=Counter)
    duplicates: int = 0
    conflicts: int = 0
    renamed_roles: int = 0
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {
            "examples": len(self.training),
            "recorded": sum(not e.generated for e in self.training),
            "paraphrased": sum(e.generated for e in self.training),
            "validation_examples": len(self.validation),
            "duplicates": self.duplicates,
            "conflicts": self.conflicts,
            "skipped": dict(self.skipped.most_common()),
            "sources": self.sources,
        }


# --- reading the recordings -----------------------------------------------------------------------


def entries_from_store(cache_dir: str | None, store_url: str | None) -> tuple[list[Entry], dict[str, Any]]:
    try:
        store = open_store(cache_dir=cache_dir, store_url=store_url)
    except StoreError as exc:
        raise ExportError(str(exc)) from None
    try:
        entries = [e for e in store.iter_entries() if e.endpoint == CHAT]
    except StoreError as exc:
        raise ExportError(str(exc)) from None
    finally:
        store.close()
    return entries, {"kind": "store", "location": display_location(store.location), "entries": len(entries)}


def cassette_files(cassette_dir: Path, tests: Iterable[str] = ()) -> list[Path]:
    """The cassettes under a directory, those of the tests matching a glob when some are given.

    A glob names tests as pytest does (`tests/test_chat.py::test_*`) or as paths under the cassette
    directory (`tests/test_chat.py/*`); a glob naming a test module takes all its cassettes.
    """
    files = sorted(p for p in cassette_dir.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())
    patterns = [p for t in tests for p in cassette_globs(t)]
    if not patterns:
        return files
    chosen = []
    for path in files:
        name = path.relative_to(cassette_dir).as_posix()
        stem = name.rsplit(".", 1)[0]
        if any(
            stem == p
            or fnmatch.fnmatchcase(stem, p)
            or fnmatch.fnmatchcase(name, p)
            or fnmatch.fnmatchcase(stem, p.rstrip("/") + "/*")
            for p in patterns
        ):
            chosen.append(path)
    return chosen


def cassette_globs(test: str) -> list[str]:
    """Where the cassettes of the tests a glob names lie: the plugin files a test's cassette under its
    module path without `.py` (`tests/test_x.py::test_y` -> `tests/test_x/test_y.yaml`)."""
    module, sep, rest = test.partition("::")
    bare = module[:-3] if module.endswith(".py") else module
    if sep:
        return [f"{bare}/{rest.replace('::', '.')}"]
    return list(dict.fromkeys([bare, module]))


def entries_from_cassettes(cassette_dir: Path, tests: Iterable[str] = ()) -> tuple[list[Entry], dict[str, Any]]:
    tests = list(tests)
    if not cassette_dir.is_dir():
        raise ExportError(
            f"no cassette directory at {cassette_dir}; pass --cassette-dir DIR (the tests' seedreplay_cassette_dir)"
        )
    files = cassette_files(cassette_dir, tests)
    if tests and not files:
        raise ExportError(
            f"no cassette under {cassette_dir} matches --tests {' '.join(tests)}; "
            "name tests as pytest does (tests/test_x.py::test_y*) or as paths under the cassette directory"
        )
    entries = []
    for path in files:
        try:
            entries += [e for e in read_cassette(path) if e.endpoint == CHAT]
        except CassetteError as exc:
            raise ExportError(f"{exc}; fix or delete that cassette, or narrow --tests") from None
    source = {"kind": "cassettes", "location": str(cassette_dir), "files": len(files), "entries": len(entries)}
    if tests:
        source["tests"] = tests
    return entries, source


# --- one entry -> one example --------------------------------------------------------------------


def requested_model(entry: Entry) -> str:
    return str(entry.request.get("params", {}).get("model") or entry.model or "")


def answer_message(entry: Entry) -> tuple[dict[str, Any] | None, str]:
    """The recorded assistant message ready to be taught, or None and why the entry teaches nothing."""
    try:
        body = answer_body(entry)
    except MalformedStream:
        return None, "a recorded stream that cannot be assembled"
    choices = body.get("choices") if isinstance(body, dict) else None
    if not isinstance(choices, list) or len(choices) != 1 or not isinstance(choices[0], dict):
        return None, "not exactly one choice (n > 1)"
    choice = choices[0]
    given = choice.get("message")
    message = given if isinstance(given, dict) else {}
    if choice.get("finish_reason") == "length":
        return None, "an answer cut short by max_tokens"
    if message.get("refusal") and not message.get("content"):
        return None, "a refusal"
    content, calls = message.get("content"), message.get("tool_calls")
    taught: dict[str, Any] = {"role": "assistant"}
    if isinstance(content, str) and content.strip():
        taught["content"] = content
    if isinstance(calls, list) and calls:
        taught["tool_calls"] = [
            {"id": c.get("id"), "type": c.get("type", "function"), "function": c.get("function")}
            for c in calls
            if isinstance(c, dict)
        ]
    if len(taught) == 1:
        return None, "an empty answer"
    return taught, ""


def history_message(message: Any) -> tuple[Any, bool]:
    """A request message as training data: empty extras dropped, `developer` taught as `system`.

    Returns the message and whether its role was renamed. Anything else stays as recorded, so the
    validator names what the provider would refuse."""
    if not isinstance(message, dict):
        return message, False
    kept = {k: v for k, v in message.items() if v not in (None, [], "", {}) or k == "content"}
    renamed = kept.get("role") == "developer"
    if renamed:
        kept["role"] = "system"
    return kept, renamed


def example_of(entry: Entry) -> tuple[Example | None, str, int]:
    """(example, why not, roles renamed) for one recorded chat answer."""
    params = entry.request.get("params", {})
    messages = params.get("messages")
    if not isinstance(messages, list) or not messages:
        return None, "no request messages", 0
    answer, why = answer_message(entry)
    if answer is None:
        return None, why, 0
    history = [history_message(m) for m in messages]
    data: dict[str, Any] = {"messages": [m for m, _ in history] + [answer]}
    if params.get("tools"):
        data["tools"] = params["tools"]
        if "parallel_tool_calls" in params:
            data["parallel_tool_calls"] = params["parallel_tool_calls"]
    return Example(data=data, origin=entry.key, recorded_at=entry.recorded_at), "", sum(r for _, r in history)


# --- the whole set -------------------------------------------------------------------------------


def build(entries: list[Entry], sources: list[dict[str, Any]], options: Options) -> Export:
    """Select, convert, deduplicate, paraphrase and split recorded entries."""
    export = Export(training=[], validation=[], sources=sources, options=options)
    chosen: dict[str, Example] = {}
    for entry in sorted(entries, key=lambda e: e.recorded_at):
        if options.model is not None and options.model not in (requested_model(entry), entry.model):
            export.skipped[f"another model ({requested_model(entry)})"] += 1
            continue
        if options.since is not None and entry.recorded_at < options.since:
            export.skipped["recorded before --since"] += 1
            continue
        example, why, renamed = example_of(entry)
        if example is None:
            export.skipped[why] += 1
            continue
        export.renamed_roles += renamed
        earlier = chosen.get(example.prompt_id)
        if earlier is not None:
            if earlier.data == example.data:
                export.duplicates += 1
                continue
            export.conflicts += 1  # the same prompt answered differently: the newest recording wins
            del chosen[example.prompt_id]
        chosen[example.prompt_id] = example
    originals = list(chosen.values())
    held = held_out(originals, options.holdout)
    for example in originals:
        group = [example, *variants(example, options.paraphrases)]
        (export.validation if example.prompt_id in held else export.training).extend(group)
    note_warnings(export)
    return export


def held_out(examples: list[Example], fraction: float) -> set[str]:
    """The prompts kept for validation: a fixed share, chosen by hash so a re-export keeps the same ones."""
    if fraction <= 0 or not examples:
        return set()
    count = max(1, round(len(examples) * fraction))
    ranked = sorted(examples, key=lambda e: hashlib.sha256(e.prompt_id.encode("utf-8", "surrogatepass")).hexdigest())
    return {e.prompt_id for e in ranked[:count]}


def paraphrase(text: str, n: int, seed: int) -> list[str]:
    """n offline rule-based rewordings of a text (pytest_seedreplay.paraphrase)."""
    try:
        from ..paraphrase import paraphrases
    except ImportError:
        raise ExportError(
            "paraphrase generation needs the module pytest_seedreplay.paraphrase, which this install lacks; "
            "upgrade seedreplay, or give the paraphrases yourself (verify --paraphrases FILE)"
        ) from None
    return paraphrases(text, n, seed=seed)


def variants(example: Example, n: int) -> list[Example]:
    """Up to n examples that ask the last user turn in other words and teach the same answer."""
    if n <= 0:
        return []
    messages = example.data["messages"]
    last_user = max((i for i, m in enumerate(messages) if isinstance(m, dict) and m.get("role") == "user"), default=None)
    if last_user is None or not isinstance(messages[last_user].get("content"), str):
        return []
    original = messages[last_user]["content"]
    out, seen = [], {original}
    for text in paraphrase(original, n, PARAPHRASE_SEED):
        if text in seen or not text.strip():
            continue
        seen.add(text)
        changed = [*messages[:last_user], {**messages[last_user], "content": text}, *messages[last_user + 1 :]]
        out.append(
            Example(
                data={**example.data, "messages": changed}, origin=example.origin, recorded_at=example.recorded_at, generated=True
            )
        )
    return out


def note_warnings(export: Export) -> None:
    if export.conflicts:
        export.warnings.append(
            f"{export.conflicts} prompt(s) were recorded with different answers; the newest recording of each was kept"
        )
    if export.renamed_roles:
        export.warnings.append(f"{export.renamed_roles} developer message(s) are taught as system messages")
    if export.options.paraphrases and not any(e.generated for e in export.training):
        export.warnings.append("no paraphrase was generated (no example has a text user turn)")


def check(export: Export) -> tuple[Validation, Validation | None]:
    """The provider's rules on the training set and, when there is one, the validation set."""
    training = validate_examples([e.data for e in export.training])
    validation = validate_examples([e.data for e in export.validation]) if export.validation else None
    for problem in training.errors:
        if problem.rule == "insufficient_examples" and export.validation:
            problem.detail += f" (--holdout {export.options.holdout:g} moved {len(export.validation)} to validation)"
    if validation is not None:
        for problem in validation.errors:
            if problem.rule == "insufficient_examples":
                problem.detail = (
                    f"--holdout {export.options.holdout:g} leaves only {len(export.validation)} validation "
                    f"examples: at least {MIN_EXAMPLES} are required; raise --holdout or record more"
                )
    secret = find_secret([e.data for e in export.training + export.validation], "examples")
    if secret:
        training.errors.append(
            Problem("secret_in_example", None, f"an API-key-shaped string sits at {secret}; remove it from the recordings first")
        )
    return training, validation


# --- writing -------------------------------------------------------------------------------------


def jsonl(examples: list[Example]) -> bytes:
    return "".join(compact_json(e.data) + "\n" for e in examples).encode("utf-8", "surrogatepass")


def validation_path(output: Path) -> Path:
    """`train.jsonl` -> `train.validation.jsonl`."""
    return output.with_name(f"{output.stem}.validation{output.suffix or '.jsonl'}")


def record_path(dataset: Path) -> Path:
    """`train.jsonl` -> `train.export.json`: what the set was exported from."""
    return dataset.with_name(f"{dataset.stem}.export.json")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write(export: Export, output: Path) -> dict[str, Any]:
    """Write the training file, the validation file (if any) and the export record, each atomically."""
    training = jsonl(export.training)
    record: dict[str, Any] = {
        "seedreplay_export": EXPORT_RECORD_VERSION,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "dataset": output.name,
        "sha256": sha256(training),
        "examples": len(export.training),
        "generated_lines": [i for i, e in enumerate(export.training, start=1) if e.generated],
        "validation": None,
        "sources": export.sources,
        "filters": {
            "model": export.options.model,
            "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(export.options.since)) if export.options.since else None,
        },
        "paraphrases": export.options.paraphrases,
        "holdout": export.options.holdout,
    }
    try:
        write_atomically(output, training)
        if export.validation:
            validation = jsonl(export.validation)
            write_atomically(validation_path(output), validation)
            record["validation"] = {
                "file": validation_path(output).name,
                "sha256": sha256(validation),
                "examples": len(export.validation),
            }
        write_atomically(record_path(output), (json.dumps(record, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))
    except OSError as exc:
        raise ExportError(f"cannot write {output}: {exc.strerror or exc}") from None
    return record


def read_record(dataset: Path, data: bytes) -> dict[str, Any] | None:
    """The export record of a dataset file, when there is one and it describes these very bytes."""
    try:
        record = json.loads(record_path(dataset).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("sha256") != sha256(data):
        return None
    return record


def prompt_text(example: dict[str, Any]) -> str:
    """The last user turn: the words a person recognises an example by."""
    for message in reversed(example.get("messages") or []):
        if isinstance(message, dict) and message.get("role") == "user":
            return content_text(message.get("content"))
    return ""
