"""`seedreplay cache ...`: look into a store, move its recordings in and out, trim it."""

from __future__ import annotations

import json
import os
import re
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from functools import wraps
from pathlib import Path
from typing import Any

import click

from ..core.constants import CACHEABLE_ENDPOINTS, CHAT, DEFAULT_CACHE_DIR, ENV_STORE
from ..core.entry import Entry
from ..core.jsontext import json_text, printable
from ..core.key import key_of_canonical, normalize_endpoint
from ..core.redact import SecretRefused, refuse_secrets
from ..savings import dollars
from ..shapes import entry_summary, excerpt, prompt_line, reply_text
from ..store import EntryFormatError, Store, StoreError, open_store, store_target
from ..store.cassette import (
    CassetteError,
    read_interaction,
    read_interactions,
    write_cassette,
)


@click.group("cache")
def command() -> None:
    """Inspect, export, import and trim the recordings in a store."""


def echo(message: str = "", err: bool = False) -> None:
    """click.echo for text from recordings: a lone surrogate in a stored string (legal in JSON, not
    in UTF-8) is shown as its escape instead of crashing the output."""
    click.echo(printable(message), err=err)


# --- opening the store --------------------------------------------------------------------------


_NAMESPACE = "seedreplay_namespace"  # where --namespace waits in the click context for `opened`
_NAMESPACES_DIR = "namespaces"  # where a directory keeps its namespaces (store.disk.NAMESPACES; not imported: diskcache)
_DATABASE = "cache.db"  # the file a directory's recordings live in (diskcache's DBNAME)


def store_options(func: Callable) -> Callable:
    """--cache-dir, --store and --namespace on every subcommand."""

    @click.option(
        "--cache-dir",
        type=click.Path(file_okay=False, path_type=str),
        default=None,
        help=f"Cache directory (default ${ENV_STORE}, else {DEFAULT_CACHE_DIR}).",
    )
    @click.option(
        "--store", "store_url", metavar="URL", default=None, help="Store URL (e.g. redis://host:6379/0); wins over --cache-dir."
    )
    @click.option(
        "--namespace", metavar="NAME", default=None, help="The recordings of this namespace (as the proxy's --namespace)."
    )
    @wraps(func)
    def wrapper(*args: Any, namespace: str | None = None, **kwargs: Any) -> Any:
        click.get_current_context().meta[_NAMESPACE] = namespace
        return func(*args, **kwargs)

    return wrapper


def current_namespace() -> str | None:
    """The --namespace of the running command (None outside one, or when not given)."""
    context = click.get_current_context(silent=True)
    return context.meta.get(_NAMESPACE) if context is not None else None


@contextmanager
def opened(cache_dir: str | None, store_url: str | None, create: bool = False) -> Iterator[Store]:
    """The store the flags name; read-only commands refuse to create an empty cache as a side effect."""
    target = store_target(cache_dir, store_url)
    context = click.get_current_context(silent=True)
    namespace = context.meta.get(_NAMESPACE) if context is not None else None
    # A directory without its database (empty, or only other namespaces) holds no recordings: opening
    # it would create one, so a read-only command says so instead.
    recorded = os.path.isdir(target) and (namespace or os.path.isfile(os.path.join(target, _DATABASE)))
    if not create and "://" not in target and not recorded:
        raise click.ClickException(
            f"no cache at {target}: nothing has been recorded there yet; "
            "pass --cache-dir DIR (or --store URL) to point at an existing cache"
        )
    in_namespace = os.path.join(target, _NAMESPACES_DIR, namespace or "", _DATABASE)
    if namespace and not create and "://" not in target and not os.path.isfile(in_namespace):
        raise click.ClickException(
            f"no namespace {namespace!r} in the cache at {target}: nothing has been recorded in it yet; "
            f"the namespaces there: {', '.join(sorted(_namespaces(target))) or 'none'}"
        )
    try:
        store = open_store(cache_dir=cache_dir, store_url=store_url, namespace=namespace)
    except StoreError as exc:  # a bad URL, an unreachable server, a directory we cannot write
        raise click.ClickException(str(exc)) from None
    try:
        yield store
    except StoreError as exc:  # an entry written by a newer seedreplay, a store locked too long
        raise click.ClickException(str(exc)) from None
    finally:
        store.close()


def _namespaces(directory: str) -> list[str]:
    try:
        return os.listdir(os.path.join(directory, _NAMESPACES_DIR))
    except OSError:
        return []


# --- what an entry says, for people -------------------------------------------------------------


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def local_time(ts: float) -> str:
    return datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M")


def human_bytes(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


def describe_answer(entry: Entry) -> str:
    """The answer as `cache show` prints it: its readable text, else the body as JSON."""
    read = entry_summary(entry)
    if read.body is None and read.problem:
        return f"(the recorded stream cannot be assembled: {read.problem})"
    return read.text or json_text(read.body, indent=2)


# --- selecting entries --------------------------------------------------------------------------


def endpoint_option(func: Callable) -> Callable:
    return click.option(
        "--endpoint", default=None, metavar="PATH", help="Only this endpoint (chat/completions, /v1/embeddings, ...)."
    )(func)


def model_option(func: Callable) -> Callable:
    return click.option("--model", default=None, metavar="MODEL", help="Only entries for this model (as requested).")(func)


def entry_model(entry: Entry) -> str:
    """The model the request asked for (what users type), else the one the answer named."""
    return str(entry.request.get("params", {}).get("model") or entry.model or "")


def selected(entries: Iterable[Entry], model: str | None = None, endpoint: str | None = None) -> list[Entry]:
    wanted_endpoint = normalize_endpoint(endpoint) if endpoint else None
    chosen = [
        e
        for e in entries
        if (model is None or model in (entry_model(e), e.model)) and (wanted_endpoint is None or e.endpoint == wanted_endpoint)
    ]
    return sorted(chosen, key=lambda e: e.recorded_at)


def find_by_prefix(store: Store, prefix: str) -> Entry:
    """The one entry whose key starts with `prefix` (with or without the `v1:` version part)."""
    exact = store.get(prefix)
    if exact is not None:
        return exact
    prefix = prefix.strip().lower()
    if not prefix:
        raise click.BadParameter("give at least a few characters of a key (see `seedreplay cache ls`)", param_hint="KEY")
    matches = [key for key, _ in store.iter_requests() if key.startswith(prefix) or key.split(":", 1)[-1].startswith(prefix)]
    if not matches:
        raise click.ClickException(
            f"no entry with a key starting {prefix!r} in {store.location}; list the keys with `seedreplay cache ls`"
        )
    if len(matches) > 1:
        shown = ", ".join(key[:15] + "…" for key in sorted(matches)[:5]) + (", ..." if len(matches) > 5 else "")
        raise click.ClickException(
            f"key prefix {prefix!r} is ambiguous: it matches {len(matches)} entries ({shown}); give more characters"
        )
    entry = store.get(matches[0])
    if entry is None:  # removed between the scan and the read
        raise click.ClickException(f"entry {matches[0]} disappeared while reading it; try again")
    return entry


# --- stats, ls, show ----------------------------------------------------------------------------


@command.command("stats")
@store_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
def stats_command(cache_dir: str | None, store_url: str | None, as_json: bool) -> None:
    """Entry count, size, endpoints, models, age.

    How many entries the store holds and how many bytes, counts by endpoint and by model, and the
    oldest and newest recording. --json prints the same for scripts.
    """
    with opened(cache_dir, store_url) as store:
        totals = store.stats()
        entries = list(store.iter_entries())
        saved = store.savings() if hasattr(store, "savings") else None
    times = [e.recorded_at for e in entries]
    report: dict[str, Any] = {
        "location": totals.location,
        "entries": totals.entries,
        "bytes": totals.bytes,
        "streamed": sum(e.streamed for e in entries),
        "by_endpoint": dict(Counter(e.endpoint for e in entries).most_common()),
        "by_model": dict(Counter(entry_model(e) or "(none)" for e in entries).most_common()),
        "oldest": iso(min(times)) if times else None,
        "newest": iso(max(times)) if times else None,
        "expiring": sum(1 for e in entries if e.expires_at is not None),
        "saved": saved,
    }
    if as_json:
        echo(json.dumps(report, indent=2))
        return
    echo(f"cache:    {report['location']}")
    echo(f"entries:  {report['entries']} ({report['streamed']} streamed), {human_bytes(report['bytes'])}")
    if times:
        echo(f"oldest:   {local_time(min(times))}")
        echo(f"newest:   {local_time(max(times))}")
    if report["expiring"]:
        echo(f"with TTL: {report['expiring']} (gone when it ends; `cache prune --expired` frees their space)")
    if saved and saved["hits"]:
        echo(f"saved:    {saved_line(saved)}")
    for title, counts in (("by endpoint", report["by_endpoint"]), ("by model", report["by_model"])):
        if counts:
            echo(f"{title}:")
            width = max(len(name) for name in counts)
            for name, count in counts.items():
                echo(f"  {name:<{width}}  {count}")


def short_key(key: str, width: int = 12) -> str:
    return key.split(":", 1)[-1][:width]


def row_of(entry: Entry) -> dict[str, Any]:
    return {
        "key": entry.key,
        "endpoint": entry.endpoint,
        "model": entry_model(entry),
        "streamed": entry.streamed,
        "status": entry.status,
        "recorded_at": iso(entry.recorded_at),
        "prompt": prompt_line(entry.request),
    }


def print_table(rows: list[list[str]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())


@command.command("ls")
@store_options
@model_option
@endpoint_option
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Show only the N most recent entries.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list for scripts (full keys and prompts).")
def ls_command(
    cache_dir: str | None, store_url: str | None, model: str | None, endpoint: str | None, limit: int | None, as_json: bool
) -> None:
    """List entries, newest first.

    One row per entry: key prefix (enough for `cache show`), endpoint, model, streamed or not,
    status, when it was recorded, and the first words of the prompt.
    """
    with opened(cache_dir, store_url) as store:
        entries = selected(store.iter_entries(), model, endpoint)
    entries.reverse()
    if limit is not None:
        entries = entries[:limit]
    if as_json:
        echo(json_text([row_of(e) for e in entries], indent=2))
        return
    if not entries:
        echo("no entries" + (" match the filters" if model or endpoint else ""))
        return
    rows = [["KEY", "ENDPOINT", "MODEL", "STREAM", "STATUS", "RECORDED", "PROMPT"]]
    for e in entries:
        rows.append(
            [
                short_key(e.key),
                e.endpoint.removeprefix("/v1/"),
                entry_model(e),
                "yes" if e.streamed else "no",
                str(e.status),
                local_time(e.recorded_at),
                excerpt(prompt_line(e.request), 40),
            ]
        )
    print_table(rows)


@command.command("show")
@store_options
@click.argument("key")
@click.option("--json", "as_json", is_flag=True, help="Print the raw stored entry as JSON.")
def show_command(cache_dir: str | None, store_url: str | None, key: str, as_json: bool) -> None:
    """Show one entry's request and answer.

    KEY is a full key or any unique prefix of it (with or without `v1:`). A streamed answer is
    shown as its assembled text; --json prints the stored entry as it is.
    """
    with opened(cache_dir, store_url) as store:
        entry = find_by_prefix(store, key)
    if as_json:
        echo(json_text(entry.to_dict(), indent=2))
        return
    echo(f"key:          {entry.key}")
    echo(f"endpoint:     {entry.endpoint}")
    answered_by = f" (answered by {entry.model})" if entry.model and entry.model != entry_model(entry) else ""
    echo(f"model:        {entry_model(entry)}{answered_by}")
    echo(f"recorded:     {local_time(entry.recorded_at)} from {entry.upstream or '(unknown upstream)'}")
    echo(f"status:       {entry.status}{' (streamed)' if entry.streamed else ''}")
    if entry.system_fingerprint:
        echo(f"fingerprint:  {entry.system_fingerprint}")
    echo("request:")
    echo(_indent(json_text(entry.request, indent=2)))
    echo("answer:")
    echo(_indent(describe_answer(entry)))


def _indent(text: str) -> str:
    return "\n".join("  " + line for line in text.splitlines())


# --- export -------------------------------------------------------------------------------------


def finetune_example(entry: Entry) -> tuple[dict[str, Any] | None, str]:
    """A chat fine-tuning example from an entry, or None and why it cannot be one."""
    if entry.endpoint != CHAT:
        return None, f"not chat completions ({entry.endpoint})"
    messages = entry.request.get("params", {}).get("messages")
    if not isinstance(messages, list) or not messages:
        return None, "no request messages"
    if entry.request["params"].get("n", 1) != 1:
        return None, "several choices (n > 1)"
    read = entry_summary(entry)
    if read.body is None:
        return None, "a recorded stream that cannot be assembled"
    text = reply_text(entry.endpoint, read.body)
    if text is None:
        return None, "no text answer (tool calls or empty)"
    return {"messages": [*messages, {"role": "assistant", "content": text}]}, ""


@command.command("export")
@store_options
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["jsonl", "cassette", "finetune"]),
    default="jsonl",
    show_default=True,
    help="jsonl: one entry per line; cassette: one vcrpy YAML file; finetune: chat fine-tuning JSONL.",
)
@click.option("-o", "--output", required=True, metavar="FILE", help="File to write ('-' = stdout for jsonl and finetune).")
@model_option
@endpoint_option
def export_command(
    cache_dir: str | None, store_url: str | None, fmt: str, output: str, model: str | None, endpoint: str | None
) -> None:
    """Export entries: jsonl, cassette or finetune.

    Entries are written oldest first. jsonl is lossless (one stored entry per line, what `cache
    import` reads back); cassette is one vcrpy-readable YAML file; finetune is chat fine-tuning
    JSONL built from chat-completions entries with a text answer.
    """
    if fmt == "cassette" and output == "-":
        raise click.BadParameter(
            "a cassette is written to a file; give a path like cassettes/exported.yaml", param_hint="-o/--output"
        )
    with opened(cache_dir, store_url) as store:
        entries = selected(store.iter_entries(), model, endpoint)
    where = "stdout" if output == "-" else output
    if fmt == "cassette":
        try:
            write_cassette(output, entries)
        except (SecretRefused, OSError) as exc:
            raise click.ClickException(f"cannot write {output}: {exc}") from None
        echo(f"exported {len(entries)} entries to {where} (cassette)", err=True)
        return
    if fmt == "jsonl":
        lines = [json_text(e.to_dict()) for e in entries]
        write_lines(output, lines)
        echo(f"exported {len(lines)} entries to {where} (jsonl)", err=True)
        return
    lines = []
    skipped: Counter[str] = Counter()
    for entry in entries:
        example, why = finetune_example(entry)
        if example is None:
            skipped[why] += 1
        else:
            lines.append(json_text(example))
    write_lines(output, lines)
    note = f"exported {len(lines)} examples to {where} (finetune)"
    if skipped:
        note += f"; skipped {sum(skipped.values())}: " + ", ".join(f"{n} {why}" for why, n in skipped.most_common())
    echo(note, err=True)
    if 0 < len(lines) < 10:
        echo("note: OpenAI fine-tuning needs at least 10 examples", err=True)


def write_lines(output: str, lines: list[str]) -> None:
    # atomic=True: a file is replaced only once fully written; '-' is stdout.
    try:
        with click.open_file(output, "w", encoding="utf-8", atomic=output != "-") as handle:
            for line in lines:
                handle.write(line + "\n")
    except BrokenPipeError:
        stop_quietly_on_closed_pipe()
    except OSError as exc:
        raise click.ClickException(f"cannot write {output}: {exc.strerror or exc}") from None


# --- import ---------------------------------------------------------------------------------------


class ImportTally:
    """What an import (or a --check) did, for the per-file report, the summary line and the exit status."""

    def __init__(self, check: bool = False) -> None:
        self.check = check
        self.imported = 0
        self.skipped = 0
        self.refused = 0
        self.failed_files = 0
        self.files = 0

    def refuse(self, where: str, why: str) -> None:
        self.refused += 1
        echo(f"{'stale' if self.check else 'refused'} {where}: {why}", err=True)

    def skip(self, where: str, why: str) -> None:
        self.skipped += 1
        echo(f"skipped {where}: {why}", err=True)


def looks_like_jsonl(path: Path, text: str) -> bool:
    if path.suffix.lower() in (".jsonl", ".ndjson", ".json"):
        return True
    if path.suffix.lower() in (".yaml", ".yml"):
        return False
    return text.lstrip().startswith("{")


class NotAnEntry(ValueError):
    """A jsonl line that is not an entry `cache export --format jsonl` wrote."""


def entry_from_line(data: Any) -> Entry:
    """An exported jsonl line back to an entry; the key is computed when the line has none."""
    if not isinstance(data, dict):
        raise NotAnEntry("not a JSON object")
    missing = [name for name in ("endpoint", "request") if name not in data]
    if missing:
        raise NotAnEntry(
            "missing " + ", ".join(missing) + " (expected lines written by `seedreplay cache export --format jsonl`)"
        )
    if data["endpoint"] not in CACHEABLE_ENDPOINTS:
        raise NotAnEntry(f"endpoint {data['endpoint']!r} is not cached by seedreplay")
    if not isinstance(data["request"], dict):
        raise NotAnEntry("request is not a JSON object")
    if not data.get("key"):
        data = {**data, "key": key_of_canonical(data["request"])}
    if (data.get("body") is None) == (data.get("events") is None):
        raise NotAnEntry("needs exactly one of body and events")
    try:
        return Entry.from_dict(data)
    except (TypeError, ValueError) as exc:
        raise NotAnEntry(str(exc)) from None


def put(store: Store | None, entry: Entry, where: str, tally: ImportTally) -> None:
    """Store the entry; with no store (--check), only the secret check every write passes."""
    try:
        if store is None:
            refuse_secrets(entry, where)
        else:
            store.put(entry)
    except (SecretRefused, EntryFormatError) as exc:
        tally.refuse(where, str(exc))
    except StoreError:
        raise  # the store itself failed: stop the import
    except ValueError as exc:  # an entry the store cannot encode
        tally.refuse(where, str(exc))
    else:
        tally.imported += 1


def import_jsonl(store: Store | None, path: Path, text: str, tally: ImportTally) -> None:
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path} line {number}"
        try:
            entry = entry_from_line(json.loads(line))
        except json.JSONDecodeError as exc:
            tally.refuse(where, f"not JSON ({exc.msg} at column {exc.colno})")
            continue
        except ValueError as exc:
            tally.refuse(where, str(exc))
            continue
        put(store, entry, where, tally)


def import_cassette(store: Store | None, path: Path, tally: ImportTally) -> None:
    """Each interaction: imported (it replays when a test sends the request it recorded), stale (an
    OpenAI answer that cannot be keyed: refused, named), or skipped (not an OpenAI answer we cache)."""
    interactions = read_interactions(path)
    mtime = path.stat().st_mtime
    before = (tally.imported, tally.refused, tally.skipped)
    seen: set[str] = set()
    repeated = 0
    for index, interaction in enumerate(interactions):
        where = f"{path} interaction {index}"
        try:
            entry, why = read_interaction(interaction, recorded_at=mtime)
        except CassetteError as exc:
            tally.refuse(where, str(exc))
            continue
        if entry is None:
            tally.skip(where, why)
            continue
        repeated += entry.key in seen
        seen.add(entry.key)
        put(store, entry, where, tally)
    replay, stale, skipped = (now - then for now, then in zip((tally.imported, tally.refused, tally.skipped), before))
    echo(cassette_report(path, len(interactions), replay, stale, skipped, repeated))


def cassette_report(path: Path, total: int, replay: int, stale: int, skipped: int, repeated: int) -> str:
    """One line per cassette: what of it replays from a store, and what does not."""
    line = f"{path}: {replay} of {total} interaction(s) replay"
    if stale:
        line += f", {stale} stale (see above)"
    if skipped:
        line += f", {skipped} skipped (not cached OpenAI answers)"
    if repeated:
        line += f"; {repeated} repeat an earlier request: a store keeps the last answer (the cassette itself plays them in turn)"
    return line


def import_paths(paths: Iterable[Path]) -> list[Path]:
    """The files named, a directory standing for the cassettes and jsonl files under it."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.suffix.lower() in _IMPORTABLE and p.is_file())
            if not found:
                echo(f"note: {path} holds no .yaml, .yml or .jsonl files", err=True)
            files.extend(found)
        else:
            files.append(path)
    return files


_IMPORTABLE = (".yaml", ".yml", ".jsonl", ".ndjson")

# What "replay" promises, said where a user decides (the summary of `import --check`).
_REPLAY_MEANS = (
    "an interaction replays when your code still sends the request it recorded (seedreplay matches the body); "
    "cassettes that vcrpy matched on URL only can hold bodies your code no longer sends: "
    "after importing, run the suite with --seedreplay=replay and each miss names the request that changed"
)


@command.command("import")
@store_options
@click.option("--check", is_flag=True, help="Report per cassette what would replay and what not; write nothing.")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
def import_command(cache_dir: str | None, store_url: str | None, check: bool, files: tuple[Path, ...]) -> None:
    """Import jsonl exports or vcrpy cassettes (or --check them).

    FILE is a `cache export --format jsonl` file, any vcrpy YAML cassette (seedreplay's or
    pytest-recording's), or a directory of them. Cassette entries are re-keyed from their request.
    Each cassette gets a line saying how many of its interactions replay; an OpenAI answer that
    cannot be keyed (no request body, a body that does not parse, a custom serializer's fields) is
    named as refused (stale with --check), and other traffic as skipped. An entry carrying an
    API-key-shaped string is refused and named; the rest are imported. --check writes nothing.
    Exit status 1 if anything was refused or unreadable.
    """
    tally = ImportTally(check)
    paths = import_paths(files)
    if check:
        import_files(None, paths, tally)
    else:
        with opened(cache_dir, store_url, create=True) as store:
            import_files(store, paths, tally)
    echo(import_summary(tally))
    if check:
        echo(f"note: {_REPLAY_MEANS}")
    if tally.refused or tally.failed_files:
        raise SystemExit(1)


def import_files(store: Store | None, paths: list[Path], tally: ImportTally) -> None:
    for path in paths:
        tally.files += 1
        try:
            text = path.read_text(encoding="utf-8")
            if looks_like_jsonl(path, text):
                import_jsonl(store, path, text, tally)
            else:
                import_cassette(store, path, tally)
        except (OSError, UnicodeDecodeError) as exc:
            tally.failed_files += 1
            echo(f"Error: cannot read {path}: {getattr(exc, 'strerror', None) or exc}", err=True)
        except CassetteError as exc:
            tally.failed_files += 1
            echo(f"Error: {exc}", err=True)


def import_summary(tally: ImportTally) -> str:
    read = tally.files - tally.failed_files
    if tally.check:
        summary = f"checked {read} file(s): {tally.imported} entries would replay; nothing written"
    else:
        summary = f"imported {tally.imported} entries from {read} file(s)"
    if tally.skipped:
        summary += f"; skipped {tally.skipped} interaction(s) that are not cached OpenAI answers"
    if tally.refused:
        summary += f"; {'stale' if tally.check else 'refused'} {tally.refused} (see above)"
    if tally.failed_files:
        summary += f"; {tally.failed_files} file(s) could not be read"
    return summary


def stop_quietly_on_closed_pipe() -> None:
    """The reader of stdout went away (`| head`): stop without a word, as Unix tools do (exit 141,
    128 + SIGPIPE); what is still buffered goes to /dev/null, so exiting cannot fail on it again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    raise SystemExit(141)


# --- prune, clear -------------------------------------------------------------------------------

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


class Duration(click.ParamType):
    """`30d`, `12h`, `90m`, `45s`, `2w` as seconds."""

    name = "duration"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        if isinstance(value, (int, float)):
            return float(value)
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*", str(value).lower())
        if not match:
            self.fail(f"{value!r} is not a duration; use a number and a unit: 30d, 12h, 90m, 45s or 2w", param, ctx)
        return float(match.group(1)) * _UNITS[match.group(2)]


def saved_line(saved: dict[str, Any]) -> str:
    """What the ledger of a store says replays saved, in one line."""
    since = f" since {local_time(saved['since'])}" if saved.get("since") else ""
    unpriced = f"; {saved['unpriced_hits']} of unpriced models" if saved.get("unpriced_hits") else ""
    return f"{saved['tokens']:,} tokens ({dollars(saved['cost'])}{unpriced}) in {saved['hits']} answers from recordings{since}"


@command.command("prune")
@store_options
@click.option("--older-than", type=Duration(), default=None, help="Remove entries recorded longer ago than this (30d, 12h, 90m).")
@click.option("--model", default=None, metavar="MODEL", help="Remove entries for this model.")
@click.option(
    "--expired", is_flag=True, help="Remove the entries past their TTL (the proxy's --ttl); always done with the others."
)
@click.option("--dry-run", is_flag=True, help="Say what would be removed, remove nothing.")
def prune_command(
    cache_dir: str | None, store_url: str | None, older_than: float | None, model: str | None, expired: bool, dry_run: bool
) -> None:
    """Remove old entries, one model's, and those past their TTL.

    With both --older-than and --model, removes the entries that match both. Entries past their
    TTL answer nothing already; every prune frees their space too.
    """
    if older_than is None and model is None and not expired:
        raise click.UsageError(
            "give --older-than and/or --model, or --expired (to remove everything, use `seedreplay cache clear`)"
        )
    cutoff = time.time() - older_than if older_than is not None else None
    with opened(cache_dir, store_url) as store:
        doomed = []
        if older_than is not None or model is not None:
            doomed = [e.key for e in selected(store.iter_entries(), model) if cutoff is None or e.recorded_at < cutoff]
        if dry_run:
            total = store.stats().entries
            past = _past_ttl(sum(1 for _ in _expired_entries(store)))
            echo(f"would remove {len(doomed)} of {total} entries{past} (dry run, nothing removed)")
            return
        gone = _past_ttl(store.purge_expired() if hasattr(store, "purge_expired") else 0)
        removed = sum(1 for key in doomed if store.delete(key))
        total = store.stats().entries
        echo(f"removed {removed} entries{gone}, {total} left")


def _past_ttl(count: int) -> str:
    return f" and {count} past their TTL" if count else ""


def _expired_entries(store: Store) -> Iterator[str]:
    """Keys listed whose entries are past their TTL (the store answers them as missing)."""
    for key in store.iter_keys():
        if key not in store:
            yield key


@command.command("clear")
@store_options
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
def clear_command(cache_dir: str | None, store_url: str | None, yes: bool) -> None:
    """Remove every entry (asks unless --yes)."""
    with opened(cache_dir, store_url) as store:
        keys = [key for key, _ in store.iter_requests()]
        if not keys:
            echo(f"{store.location} is already empty")
            return
        if not yes:
            click.confirm(f"Remove all {len(keys)} entries from {store.location}?", abort=True)
        removed = sum(1 for key in keys if store.delete(key))
        echo(f"removed {removed} entries from {store.location}")
