"""`seedreplay finetune ...`: export recordings, fine-tune with a seed, keep the manifest, verify recall."""

from __future__ import annotations

import asyncio
import json
import os
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from ..core.constants import DEFAULT_CACHE_DIR, DEFAULT_CASSETTE_DIR
from ..finetune import export as exporting
from ..finetune import jobs, verify_report
from ..finetune import verify as verifying
from ..finetune.manifest import DEFAULT_MANIFEST, Manifest, ManifestError, Version, public_base_url
from ..finetune.validate import DatasetError, Validation, read_dataset, validate_file
from .cache import Duration, store_options
from .finetune_progress import event_line, showing

DEFAULT_DATASET = Path(DEFAULT_CASSETTE_DIR) / "finetune" / "train.jsonl"
LAST_EVENTS = 5


@click.group("finetune")
def command() -> None:
    """Fine-tune as cache: export, train, verify.

    Export recordings as a dataset, fine-tune with a seed, verify recall, list the versions."""


def manifest_option(func: Any) -> Any:
    return click.option(
        "--manifest",
        "manifest_path",
        type=click.Path(dir_okay=False, path_type=Path),
        default=DEFAULT_MANIFEST,
        show_default=True,
        help="The fine-tune manifest (relative to the current directory).",
    )(func)


def base_url_option(func: Any) -> Any:
    return click.option(
        "--base-url",
        metavar="URL",
        default=None,
        help="Provider base URL (default $OPENAI_BASE_URL, else the OpenAI API); the key is $OPENAI_API_KEY.",
    )(func)


def open_manifest(path: Path) -> Manifest:
    try:
        return Manifest(path)
    except ManifestError as exc:
        raise click.ClickException(str(exc)) from None


# --- export ---------------------------------------------------------------------------------------


class Since(click.ParamType):
    """`7d`, `12h` (that long ago) or a date `2026-05-01` / `2026-05-01T12:00` (UTC unless it says)."""

    name = "since"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        if isinstance(value, float):
            return value
        text = str(value).strip()
        try:
            when = datetime.fromisoformat(text)
        except ValueError:
            try:
                return time.time() - Duration().convert(text, param, ctx)
            except click.BadParameter:
                self.fail(f"{value!r} is neither a duration (7d, 12h, 90m) nor a date (2026-05-01, 2026-05-01T12:00)", param, ctx)
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        return when.timestamp()


def export_sources(
    cache_dir: str | None, store_url: str | None, cassette_dir: Path | None, tests: tuple[str, ...]
) -> tuple[list, list]:
    """Entries and source records from what the flags name; with none, the default store and cassette dir that exist."""
    use_store = bool(cache_dir or store_url)
    use_cassettes = cassette_dir is not None or bool(tests)
    if not use_store and not use_cassettes:
        use_store = Path(DEFAULT_CACHE_DIR).is_dir()
        use_cassettes = Path(DEFAULT_CASSETTE_DIR).is_dir()
        if not (use_store or use_cassettes):
            raise click.UsageError(
                f"nothing to export from: no {DEFAULT_CACHE_DIR} nor {DEFAULT_CASSETTE_DIR}/ here; "
                "pass --cache-dir DIR, --store URL and/or --cassette-dir DIR"
            )
    entries, sources = [], []
    try:
        if use_store:
            found, source = exporting.entries_from_store(cache_dir, store_url)
            entries += found
            sources.append(source)
        if use_cassettes:
            found, source = exporting.entries_from_cassettes(cassette_dir or Path(DEFAULT_CASSETTE_DIR), tests)
            entries += found
            sources.append(source)
    except exporting.ExportError as exc:
        raise click.ClickException(str(exc)) from None
    return entries, sources


def report_problems(result: Validation, what: str) -> None:
    for problem in result.errors[1:6]:
        click.echo(f"  also: {problem}", err=True)
    raise click.ClickException(result.first_error(what))


@command.command("export")
@store_options
@click.option(
    "--cassette-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help=f"Read the cassettes under this directory (default {DEFAULT_CASSETTE_DIR} when --tests is given).",
)
@click.option(
    "--tests",
    "tests",
    multiple=True,
    metavar="GLOB",
    help="Only the cassettes of these tests (tests/test_x.py::test_*); repeatable.",
)
@click.option("--model", default=None, metavar="MODEL", help="Only recordings of requests for this model.")
@click.option("--since", type=Since(), default=None, help="Only recordings made since then: 7d, 12h or a date (2026-05-01).")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=DEFAULT_DATASET,
    show_default=True,
    help="The training JSONL to write (the export record goes next to it, NAME.export.json).",
)
@click.option(
    "--paraphrase-count",
    type=click.IntRange(0, 20),
    default=0,
    show_default=True,
    help="Add N offline rewordings of each example's last user turn, taught the same answer.",
)
# The old name of --paraphrase-count: --paraphrases is a FILE in `finetune verify` and `similar calibrate`.
@click.option("--paraphrases", "old_paraphrase_count", type=click.IntRange(0, 20), default=None, hidden=True)
@click.option(
    "--holdout",
    type=click.FloatRange(0, 0.5, max_open=True),
    default=0.0,
    show_default=True,
    help="Share of examples written to NAME.validation.jsonl instead (for --validation-file).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def export_command(
    cache_dir: str | None,
    store_url: str | None,
    cassette_dir: Path | None,
    tests: tuple[str, ...],
    model: str | None,
    since: float | None,
    output: Path,
    paraphrase_count: int,
    old_paraphrase_count: int | None,
    holdout: float,
    as_json: bool,
) -> None:
    """Recorded chat answers -> a validated chat fine-tuning JSONL.

    One example per distinct recorded chat request: its system and conversation turns plus the
    recorded answer (streams assembled, tool calls kept), duplicates removed. The set is checked
    with the provider's rules (at least 10 examples, roles, assistant last, content, size,
    estimated tokens); an invalid set is not written and exits 1 naming the example and the rule.
    """
    paraphrases = _renamed_count(paraphrase_count, old_paraphrase_count)
    entries, sources = export_sources(cache_dir, store_url, cassette_dir, tests)
    options = exporting.Options(model=model, since=since, paraphrases=paraphrases, holdout=holdout)
    try:
        result = exporting.build(entries, sources, options)
    except exporting.ExportError as exc:
        raise click.ClickException(str(exc)) from None
    training, validation = exporting.check(result)
    if not training.ok:
        report_problems(training, f"the exported set ({len(result.training)} examples)")
    if validation is not None and not validation.ok:
        report_problems(validation, "the holdout (validation) set")
    try:
        record = exporting.write(result, output)
    except exporting.ExportError as exc:
        raise click.ClickException(str(exc)) from None
    summary = {
        **result.summary(),
        "tokens": training.tokens,
        "longest_example_tokens": training.longest,
        "output": str(output),
        "sha256": record["sha256"],
        "validation_file": str(exporting.validation_path(output)) if result.validation else None,
        "warnings": result.warnings + [str(w) for w in training.warnings],
    }
    if as_json:
        click.echo(json.dumps(summary, indent=2, ensure_ascii=False))
        return
    print_export_summary(summary)


def print_export_summary(summary: dict[str, Any]) -> None:
    paraphrased = f" ({summary['recorded']} recorded + {summary['paraphrased']} paraphrased)" if summary["paraphrased"] else ""
    click.echo(
        f"exported {summary['examples']} examples{paraphrased} to {summary['output']}, "
        f"about {summary['tokens']} tokens (longest example {summary['longest_example_tokens']})"
    )
    if summary["validation_file"]:
        click.echo(f"held out {summary['validation_examples']} examples in {summary['validation_file']}")
    for source in summary["sources"]:
        click.echo(f"  from {source['kind']} {source['location']}: {source['entries']} chat recording(s)")
    if summary["duplicates"]:
        click.echo(f"  {summary['duplicates']} duplicate recording(s) merged")
    for why, count in summary["skipped"].items():
        click.echo(f"  skipped {count}: {why}")
    for warning in summary["warnings"]:
        click.echo(f"warning: {warning}")
    click.echo(f"sha256 {summary['sha256']}")


# --- create, status ---------------------------------------------------------------------------------


def checked(path: Path, what: str) -> tuple[bytes, int]:
    try:
        data, result = validate_file(path)
    except DatasetError as exc:
        raise click.ClickException(str(exc)) from None
    if not result.ok:
        report_problems(result, f"{what} {path}")
    return data.raw, result.examples


def _renamed_count(count: int, old: int | None) -> int:
    """--paraphrase-count, or its deprecated old name --paraphrases N (with a warning), not both."""
    if old is None:
        return count
    if click.get_current_context().get_parameter_source("paraphrase_count") == ParameterSource.COMMANDLINE:
        raise click.UsageError("give --paraphrase-count only (--paraphrases N is its old name)")
    click.echo(f"warning: --paraphrases N is now --paraphrase-count {old}; the old name will be removed", err=True)
    return old


@command.command("create")
@click.option(
    "--file",
    "file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=DEFAULT_DATASET,
    show_default=True,
    help="The training JSONL (from `finetune export`).",
)
@click.option("--model", required=True, metavar="MODEL", help="The base model to fine-tune (e.g. gpt-4o-mini-2024-07-18).")
@click.option(
    "--seed",
    required=True,
    type=click.IntRange(0, jobs.SEED_MAX),
    help="The seed of the job: the key of this cache. The fine-tuned model answers its trained prompts "
    "verbatim when asked with this seed; verify and the proxy's learned tier ask with it.",
)
@click.option("--suffix", default=None, help="Up to 64 characters added to the fine-tuned model's name.")
@click.option("--epochs", type=click.IntRange(1, 50), default=None, help="Training epochs (default: the provider's choice).")
@click.option(
    "--validation-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="A validation JSONL (export --holdout writes one).",
)
@click.option("--force", is_flag=True, help="Train even when this dataset already made a version for this base model.")
@click.option("--poll", type=click.FloatRange(min=0.01), default=2.0, show_default=True, help="Seconds between looks at the job.")
@base_url_option
@manifest_option
def create_command(
    file: Path,
    model: str,
    seed: int,
    suffix: str | None,
    epochs: int | None,
    validation_file: Path | None,
    force: bool,
    poll: float,
    base_url: str | None,
    manifest_path: Path,
) -> None:
    """Start a seeded fine-tuning job and follow it.

    Uploads the dataset, starts the job with the seed, follows it and records the version. The file
    is checked with the provider's rules before anything is uploaded. The job is
    followed with a live display until it ends (Ctrl-C asks whether to cancel it or leave it
    running; `finetune status JOB` follows it again). On success the version is appended to the
    manifest; a failed or cancelled job exits 1 with its last events and leaves the manifest as it was.
    """
    raw, examples = checked(file, "the training file")
    if validation_file is not None:
        checked(validation_file, "the validation file")
    manifest = open_manifest(manifest_path)
    sha = exporting.sha256(raw)
    same = manifest.same_dataset(sha, model)
    if same is not None and not force:
        raise click.ClickException(
            f"{file} is unchanged since {same.label} ({same.fine_tuned_model}, seed {same.seed}, dataset sha256 {sha[:12]}…): "
            "that fine-tune already holds this cache; record something new and export again, or pass --force to train anyway"
        )
    dataset = jobs.Dataset(
        sha256=sha, examples=examples, path=manifest.relative(file), exported_from=exporting.read_record(file, raw)
    )
    url = jobs.base_url_of(base_url)
    try:
        client = jobs.client_for(url)
        job = jobs.start(
            client,
            jobs.JobRequest(
                file=file, model=model, seed=seed, dataset=dataset, suffix=suffix, epochs=epochs, validation_file=validation_file
            ),
        )
    except jobs.JobError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"uploaded {file} ({examples} examples, sha256 {sha[:12]}…) to {public_base_url(url)}")
    click.echo(f"job {job.id}: {model}, seed {job.seed}" + (f", suffix {suffix}" if suffix else ""))
    follow_to_the_end(client, job.id, url, manifest, dataset, poll)


@command.command("status")
@click.argument("job_id", metavar="JOB")
@click.option("--poll", type=click.FloatRange(min=0.01), default=2.0, show_default=True, help="Seconds between looks at the job.")
@base_url_option
@manifest_option
def status_command(job_id: str, poll: float, base_url: str | None, manifest_path: Path) -> None:
    """Follow a job (again) until it ends.

    When it succeeds, its version is recorded in the manifest."""
    manifest = open_manifest(manifest_path)
    url = jobs.base_url_of(base_url)
    try:
        client = jobs.client_for(url)
        job = jobs.retrieve(client, job_id)
    except jobs.JobError as exc:
        raise click.ClickException(str(exc)) from None
    dataset = jobs.Dataset.from_metadata(job.metadata)
    if dataset.sha256 is None:
        click.echo(f"note: job {job_id} was not started by seedreplay; its version will not say what it was trained from")
    follow_to_the_end(client, job_id, url, manifest, dataset, poll)


def follow_to_the_end(client: Any, job_id: str, url: str, manifest: Manifest, dataset: jobs.Dataset, poll: float) -> None:
    """Show the job until it ends; record a success; exit 1 on failure or cancellation."""
    last = None
    try:
        with showing(job_id) as display:
            for progress in jobs.follow(client, job_id, poll):
                display.update(progress)
                last = progress
    except KeyboardInterrupt:
        last = interrupted(client, job_id, poll)
    except jobs.JobError as exc:
        raise click.ClickException(f"{exc}; follow it again with: seedreplay finetune status {job_id}") from None
    assert last is not None
    job = last.job
    if job.status != "succeeded":
        click.echo(f"last events of job {job_id}:", err=True)
        for event in last.all_events[-LAST_EVENTS:]:
            click.echo(f"  {event_line(event)}", err=True)
        raise click.ClickException(f"job {job_id} {job.status}: {jobs.error_text(job)}; the manifest is unchanged")
    try:
        version = jobs.record(manifest, job, url, dataset)
    except ManifestError as exc:
        raise click.ClickException(f"{exc}; the job succeeded as {job.fine_tuned_model}") from None
    click.echo(f"succeeded: {job.fine_tuned_model} ({job.trained_tokens} trained tokens)")
    click.echo(f"recorded {version.label} in {manifest.path}: ask {version.fine_tuned_model} with seed {version.seed}")


def interrupted(client: Any, job_id: str, poll: float) -> Any:
    """Ctrl-C while following: cancel the job, or leave it running and say how to come back to it."""
    click.echo("")
    try:
        choice = click.prompt(
            f"Cancel job {job_id} on the provider, or leave it running?", type=click.Choice(["cancel", "leave"]), default="leave"
        )
    except (click.Abort, EOFError):
        choice = "leave"
    if choice == "leave":
        click.echo(f"job {job_id} keeps running; follow it again with: seedreplay finetune status {job_id}")
        raise SystemExit(130)
    try:
        jobs.cancel(client, job_id)
        final = None
        for final in jobs.follow(client, job_id, poll):  # noqa: B007 - the last state is the answer
            pass
    except jobs.JobError as exc:
        raise click.ClickException(str(exc)) from None
    return final


# --- ls, show ---------------------------------------------------------------------------------------


@command.command("ls")
@manifest_option
@click.option("--json", "as_json", is_flag=True, help="Print the versions as JSON.")
def ls_command(manifest_path: Path, as_json: bool) -> None:
    """List the manifest's versions, oldest first."""
    manifest = open_manifest(manifest_path)
    if as_json:
        click.echo(json.dumps([v.to_dict() for v in manifest.versions], indent=2, ensure_ascii=False))
        return
    if not manifest.versions:
        click.echo(f"no fine-tune recorded in {manifest.path} yet")
        return
    rows = [["VERSION", "CREATED", "BASE", "FINE-TUNED MODEL", "SEED", "EXAMPLES", "DATASET"]]
    for v in manifest.versions:
        rows.append(
            [v.label, v.created, v.base_model, v.fine_tuned_model, str(v.seed), str(v.examples), (v.dataset_sha256 or "?")[:12]]
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())


@command.command("show")
@click.argument("version", default="latest")
@manifest_option
@click.option("--json", "as_json", is_flag=True, help="Print the version as JSON.")
def show_command(version: str, manifest_path: Path, as_json: bool) -> None:
    """Show one version of the manifest.

    VERSION: `latest` (default), a number (3 or v3), a fine-tuned model or a job id."""
    try:
        found = open_manifest(manifest_path).find(version)
    except ManifestError as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        click.echo(json.dumps(found.to_dict(), indent=2, ensure_ascii=False))
        return
    for name, value in found.to_dict().items():
        if name == "exported_from" and isinstance(value, dict):
            value = (
                jobs.sources_text(value)
                if value.get("sources") and not isinstance(value["sources"], str)
                else value.get("sources")
            )
        click.echo(f"{name.replace('_', ' ') + ':':<18}{value if value is not None else '-'}")


# --- verify ---------------------------------------------------------------------------------------


def read_paraphrases(path: Path) -> dict[str, list[str]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise click.ClickException(f"cannot read --paraphrases {path}: {exc}") from None
    except json.JSONDecodeError as exc:
        raise click.ClickException(f"--paraphrases {path} is not JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(data, dict) or not all(isinstance(v, list) and all(isinstance(s, str) for s in v) for v in data.values()):
        raise click.ClickException(
            f"--paraphrases {path} must map each trained prompt to a list of wordings: "
            '{"How do I reset my password?": ["how can i reset my password"]}'
        )
    return data


def verify_target(
    manifest: Manifest, spec: str, model: str | None, file: Path | None, seed: int | None
) -> tuple[Version | None, str, Path, int | None]:
    """(version, model, dataset, seed) from the flags, the manifest filling what they leave out."""
    version = None
    if manifest.versions or not (model and file):
        try:
            version = manifest.find(spec)
        except ManifestError as exc:
            raise click.ClickException(f"{exc} (or name everything: --model M --file DATASET --seed N)") from None
    dataset = file or (manifest.dataset_path(version) if version else None)
    if dataset is None:
        raise click.ClickException(
            f"{version.label if version else 'the version'} does not name its dataset file; pass --file DATASET"
        )
    chosen = model or (version.fine_tuned_model if version else None)
    if not chosen:
        raise click.ClickException("no fine-tuned model to verify: pass --model MODEL")
    return version, chosen, dataset, seed if seed is not None else (version.seed if version else None)


@command.command("verify")
@click.option(
    "--version", "spec", default="latest", show_default=True, help="The manifest version to check (number, model or job id)."
)
@click.option("--model", default=None, help="Ask this model instead (any model: how much of the recorded behaviour it keeps).")
@click.option(
    "--file",
    "file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="The trained dataset (default: the version's, checked against its sha256).",
)
@click.option("--seed", type=click.IntRange(0, jobs.SEED_MAX), default=None, help="Seed to ask with (default: the version's).")
@click.option(
    "--paraphrases",
    "paraphrase_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help='JSON mapping each trained prompt to wordings to ask: {"prompt": ["other words", ...]}.',
)
@click.option(
    "--paraphrase-count",
    type=click.IntRange(0, 20),
    default=2,
    show_default=True,
    help="Wordings generated per prompt when no --paraphrases file is given (0 skips the condition).",
)
@click.option("--concurrency", type=click.IntRange(1, 256), default=8, show_default=True, help="Asks in flight at once.")
@click.option(
    "--min-recall",
    type=click.FloatRange(0, 1),
    default=None,
    help="Exit 1 when verbatim recall with the seed is under this share (0.95).",
)
@click.option(
    "--html",
    "html_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the report page here (and the JSON next to it).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the whole report as JSON.")
@base_url_option
@manifest_option
def verify_command(
    spec: str,
    model: str | None,
    file: Path | None,
    seed: int | None,
    paraphrase_file: Path | None,
    paraphrase_count: int,
    concurrency: int,
    min_recall: float | None,
    html_path: Path | None,
    as_json: bool,
    base_url: str | None,
    manifest_path: Path,
) -> None:
    """Report how often the fine-tune recalls verbatim.

    It asks the fine-tuned model every trained prompt. Three conditions: with the version's seed,
    without a seed, and paraphrased with the seed.
    Per example and per condition: verbatim or not, and similarity to the trained answer.
    --model X [--base-url URL] asks any other model the same set (the migration report).
    """
    manifest = open_manifest(manifest_path)
    version, asked_model, dataset_path, seed = verify_target(manifest, spec, model, file, seed)
    try:
        data = read_dataset(dataset_path)
    except DatasetError as exc:
        raise click.ClickException(f"{exc}; pass --file with the dataset the model was trained on") from None
    sha = exporting.sha256(data.raw)
    if version is not None and version.dataset_sha256 and sha != version.dataset_sha256:
        if file is None:
            raise click.ClickException(
                f"{dataset_path} changed since {version.label} was trained (sha256 differs); "
                "restore it (git checkout) or pass --file with the file it was trained on"
            )
        click.echo(f"warning: {file} is not the dataset {version.label} was trained on (sha256 differs)", err=True)
    record = exporting.read_record(dataset_path, data.raw) or {}
    trained = verifying.trained_examples(data.examples, set(record.get("generated_lines") or []))
    if not trained:
        raise click.ClickException(f"{dataset_path} holds no example ending in an assistant answer; nothing to verify")
    given = read_paraphrases(paraphrase_file) if paraphrase_file else None
    try:
        asks = verifying.plan(trained, paraphrase_count=paraphrase_count, given=given)
    except exporting.ExportError as exc:  # no paraphrase generator installed: the other two conditions still tell a lot
        click.echo(f"warning: the paraphrase condition is skipped: {exc}", err=True)
        asks = verifying.plan(trained, conditions=(verifying.SEED, verifying.NO_SEED))
    url = verify_base_url(base_url, version)
    report = run_verify(
        url,
        asked_model,
        seed,
        trained,
        asks,
        concurrency,
        version=f"{version.label}" if version else None,
        dataset=str(dataset_path),
    )
    if html_path is not None:
        page, data_file = verify_report.write(report, html_path)
        if not as_json:
            click.echo(f"report: {page} (JSON: {data_file})")
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
    else:
        print_verify(report)
    seeded = report.summary(verifying.SEED)
    if min_recall is not None and seeded.recall < min_recall:
        raise click.ClickException(
            f"verbatim recall with seed {seed} is {seeded.recall:.0%} "
            f"({seeded.verbatim}/{seeded.asked - seeded.errors}), under --min-recall {min_recall:.0%}"
        )


def verify_base_url(base_url: str | None, version: Version | None) -> str:
    """--base-url, else $OPENAI_BASE_URL, else where the version was trained, else the OpenAI API."""
    if base_url or os.environ.get("OPENAI_BASE_URL") or version is None or not version.base_url:
        return jobs.base_url_of(base_url)
    return version.base_url


def run_verify(url: str, model: str, seed: int | None, trained: list, asks: list, concurrency: int, **labels: Any):
    async def main():
        client = jobs.async_client_for(url)
        async with client:
            return await verifying.run(client, model, seed, trained, asks, concurrency, base_url=public_base_url(url), **labels)

    try:
        return asyncio.run(main())
    except (jobs.JobError, verifying.VerifyError) as exc:
        raise click.ClickException(str(exc)) from None


def verify_cell_legend(report: verifying.Report, condition: str) -> str:
    """What a condition's cells hold: `verbatim sim.` for one ask per example, else how many of its
    asks were verbatim and the worst similarity among them."""
    several = any(len(report.answers_of(t.index, condition)) > 1 for t in report.examples)
    return "verbatim/asked worst sim." if several else "verbatim sim."


def print_verify(report: verifying.Report) -> None:
    where = f"{report.version}, " if report.version else ""
    click.echo(
        f"verify {report.model} ({where}seed {report.seed}) at {report.base_url}: "
        f"{len(report.examples)} examples, {len(report.answers)} asks in {report.elapsed:.1f} s"
    )
    conditions = report.conditions()
    for condition in conditions:
        s = report.summary(condition)
        failed = f", {s.errors} error(s)" if s.errors else ""
        click.echo(
            f"  {verifying.LABELS[condition]:<24} recall {s.recall:>4.0%} ({s.verbatim}/{s.asked - s.errors})"
            f"  mean similarity {s.similarity:.2f}  reworded {s.reworded}  changed {s.changed}{failed}"
        )
    if report.rate_limited:
        click.echo(f"  waited out {report.rate_limited} rate limit answer(s) (429)")
    # Two header lines: the condition, then what its cells hold (one ask, or several and the worst of them).
    rows = [
        ["#", "PROMPT", *(verifying.LABELS[c].upper() for c in conditions)],
        ["", "", *(verify_cell_legend(report, c) for c in conditions)],
    ]
    for t in report.examples:
        cells = []
        for condition in conditions:
            answers = report.answers_of(t.index, condition)
            if not answers:
                cells.append("-")
            elif len(answers) == 1:
                a = answers[0]
                cells.append("error" if a.error else f"{'yes' if a.verbatim else 'no '} {a.similarity:.2f}")
            else:
                hits = sum(a.verbatim for a in answers)
                cells.append(f"{hits}/{len(answers)} {min(a.similarity for a in answers):.2f}")
        rows.append([str(t.index), verifying.first_words(t.prompt), *cells])
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    click.echo("")
    for row in rows:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
    errors = [a for a in report.answers if a.error]
    if errors:
        click.echo(f"first error: example {errors[0].example} ({verifying.LABELS[errors[0].condition]}): {errors[0].error}")
