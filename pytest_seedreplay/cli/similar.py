"""`seedreplay similar ...`: calibrate the similar-questions tier on the recordings, verify it on your own sets."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import click

from ..core.constants import ENV_API_KEY, ENV_BASE_URL
from ..similar.calibrate import (
    CalibrationError,
    Result,
    calibrate,
    calibration_path,
    load_calibration,
    recorded_questions,
    save_calibration,
)
from ..similar.embeddings import EmbeddingScorer, EmbeddingsError, StoreEmbeddings
from ..similar.evaluate import Figures, SetError, ask, figures, question_index, read_negatives, read_paraphrases, score_alone
from ..similar.index import DEFAULT_THRESHOLD
from ..store import store_target
from ..store.cassette import CassetteError, read_cassette
from .cache import current_namespace, opened, store_options


@click.group("similar")
def command() -> None:
    """Similar questions: calibrate and verify.

    A recorded answer for a reworded question, never for a different one."""


def _requests(cache_dir: str | None, store_url: str | None, cassette_dir: str | None) -> tuple[list[tuple[str, dict]], list[str]]:
    """(key, canonical request) of every recording in the store and the cassettes, and where they came from."""
    requests: list[tuple[str, dict]] = []
    sources: list[str] = []
    target = store_target(cache_dir, store_url)
    if cassette_dir is None or cache_dir or store_url or "://" in target or os.path.isdir(target):
        with opened(cache_dir, store_url) as store:
            requests.extend(store.iter_requests())
            sources.append(store.location)
    if cassette_dir is not None:
        for path in sorted(Path(cassette_dir).rglob("*.yaml")):
            try:
                requests.extend((e.key, e.request) for e in read_cassette(path))
            except CassetteError as exc:
                raise click.ClickException(str(exc)) from None
        sources.append(cassette_dir)
    return requests, sources


@command.command("calibrate")
@store_options
@click.option(
    "--cassette-dir",
    type=click.Path(file_okay=False, exists=True),
    default=None,
    help="Also read the questions recorded in these cassettes (*.yaml, recursively).",
)
@click.option(
    "--paraphrases",
    "paraphrase_file",
    type=click.Path(dir_okay=False, exists=True),
    default=None,
    help="Your own paraphrases (JSONL, see `seedreplay similar verify --help`) added to the generated ones.",
)
@click.option(
    "--per-question",
    default=3,
    show_default=True,
    type=click.IntRange(0, 50),
    help="Paraphrases generated for each recorded question.",
)
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the paraphrase generator and of the swaps.")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False),
    default=None,
    help="Where to save the result (default: similar.json in the cache directory, .seedreplay/similar.json for Redis).",
)
@click.option(
    "--similar-embeddings",
    "embeddings_model",
    metavar="MODEL",
    default=None,
    help="Score with this embeddings model (any OpenAI-compatible /v1/embeddings) instead of the built-in measure; "
    "vectors are recorded in the store.",
)
@click.option("--base-url", default=None, help="Where --similar-embeddings asks (default $OPENAI_BASE_URL, else the OpenAI API).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def calibrate_command(
    cache_dir, store_url, cassette_dir, paraphrase_file, per_question, seed, output, embeddings_model, base_url, as_json
) -> None:
    """Choose and save the similar tier's threshold.

    The lowest threshold with no wrong answer on the recordings' own questions.

    Positives: paraphrases of each recorded question (generated offline, plus --paraphrases FILE).
    Negatives: the other recorded questions, and each question with a number, a name or a content word
    swapped for another question's. `seedreplay proxy --similar auto` reads the saved threshold."""
    requests, sources = _requests(cache_dir, store_url, cassette_dir)
    questions = recorded_questions(requests)
    extra = _read(read_paraphrases, paraphrase_file) if paraphrase_file else []
    if not questions and not extra:
        raise click.ClickException(
            f"no recorded chat questions in {', '.join(sources)}: record chat requests first "
            "(or pass --cassette-dir DIR / --paraphrases FILE)"
        )
    if embeddings_model:
        with opened(cache_dir, store_url, create=True) as store:
            scorer = EmbeddingScorer(
                StoreEmbeddings(store, embeddings_model, _client(base_url), base_url or ""), embeddings_model
            )
            try:
                result = calibrate(questions, extra, per_question=per_question, seed=seed, scorer=scorer, floor=0.0)
            except EmbeddingsError as exc:
                raise click.ClickException(str(exc)) from None
    else:
        result = calibrate(questions, extra, per_question=per_question, seed=seed)
    path = Path(output) if output else calibration_path(store_target(cache_dir, store_url), current_namespace())
    try:
        save_calibration(result.calibration, path)
    except OSError as exc:
        raise click.ClickException(f"cannot write {path}: {exc.strerror or exc}") from None
    if as_json:
        click.echo(
            json.dumps(
                {
                    "calibration": result.calibration.to_dict(),
                    "saved_to": str(path),
                    "figures": result.figures.to_dict(),
                    "sources": sources,
                },
                indent=2,
            )
        )
        return
    _print_calibration(result, sources, path)


def _client(base_url: str | None) -> Any:
    import openai

    # A keyless local upstream (the simulator, a local server) still needs some key for the SDK.
    return openai.OpenAI(
        base_url=base_url or os.environ.get(ENV_BASE_URL) or None, api_key=os.environ.get(ENV_API_KEY) or "unused", max_retries=2
    )


def _print_calibration(result: Result, sources: list[str], path: Path) -> None:
    figures_ = result.figures
    click.echo(f"questions: {result.calibration.questions} (from {', '.join(sources) or 'the paraphrase file'})")
    click.echo(f"positives: {figures_.paraphrases} paraphrases ({result.generated} generated, {result.from_file} from the file)")
    click.echo(
        f"negatives: {figures_.negatives} ({result.other_questions} other questions, {result.swapped} number/name/word swaps)"
    )
    click.echo(f"threshold: {figures_.threshold:.3f} (the lowest with no wrong answer)")
    click.echo(f"precision: {figures_.precision:.1%} ({figures_.wrong} wrong answers)")
    click.echo(f"recall:    {figures_.recall:.1%} ({figures_.right} of {figures_.paraphrases} paraphrases answered)")
    click.echo(f"saved to {path} (seedreplay proxy --similar auto reads it)")


@command.command("verify")
@click.option(
    "--paraphrases",
    "paraphrase_file",
    required=True,
    type=click.Path(dir_okay=False, exists=True),
    help='JSONL: {"question": "...", "paraphrases": ["...", ...]} per line.',
)
@click.option(
    "--negatives",
    "negative_file",
    type=click.Path(dir_okay=False, exists=True),
    default=None,
    help='JSONL: {"question": "...", "negatives": ["...", ...], "kind": "..."} per line.',
)
@click.option("--threshold", default=None, help=f"A number, or `auto` for the saved calibration (default {DEFAULT_THRESHOLD}).")
@store_options
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
def verify_command(paraphrase_file, negative_file, threshold, cache_dir, store_url, as_json) -> None:
    """Measure precision and recall on your own sets.

    Exits 1 on any wrong answer. Each paraphrase must get its question's answer; each negative must get no answer at all. The
    questions of both files are the recordings. Lines starting with # are skipped."""
    positives = _read(read_paraphrases, paraphrase_file)
    negatives = _read(read_negatives, negative_file) if negative_file else []
    value = _threshold(threshold, cache_dir, store_url)
    questions = [p.question for p in positives + negatives]
    outcomes = ask(question_index(questions), positives + negatives)
    result = figures(outcomes, value)
    alone_threshold, alone_recall = score_alone(questions, positives + negatives)
    if as_json:
        click.echo(
            json.dumps(
                {**result.to_dict(), "score_alone": {"threshold": alone_threshold, "recall": round(alone_recall, 4)}}, indent=2
            )
        )
    else:
        _print_table(result)
        click.echo(
            f"without the guards, a threshold alone needs {alone_threshold:.3f} for no wrong answer "
            f"and then answers {alone_recall:.1%} of the paraphrases"
        )
    if result.wrong:
        raise SystemExit(1)


def _threshold(value: str | None, cache_dir: str | None, store_url: str | None) -> float:
    if value is None:
        return DEFAULT_THRESHOLD
    if value == "auto":
        try:
            return load_calibration(calibration_path(store_target(cache_dir, store_url), current_namespace())).threshold
        except CalibrationError as exc:
            raise click.ClickException(str(exc)) from None
    try:
        number = float(value)
    except ValueError:
        number = -1.0
    if not 0.0 <= number <= 1.0:
        raise click.BadParameter(f"{value!r}: give a number from 0 to 1, or auto", param_hint="--threshold")
    return number


def _print_table(result: Figures) -> None:
    rows = [("kind", "probes", "answered", "right", "wrong")]
    for kind, tally in result.by_kind.items():
        rows.append((kind, str(tally["probes"]), str(tally["hits"]), str(tally["right"]), str(tally["wrong"])))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    for row in rows:
        click.echo("  ".join(cell.ljust(widths[0]) if i == 0 else cell.rjust(widths[i]) for i, cell in enumerate(row)))
    click.echo(f"threshold: {result.threshold:.3f}")
    click.echo(f"precision: {result.precision:.1%} ({result.wrong} wrong answers of {result.hits})")
    click.echo(f"recall:    {result.recall:.1%} ({result.right} of {result.paraphrases} paraphrases answered)")
    for example in result.wrong_examples:
        click.echo(f"wrong: {example['asked']!r} got the answer of {example['answered_with']!r} (score {example['score']})")


def _read(reader: Any, path: str) -> list:
    try:
        return reader(path)
    except SetError as exc:
        raise click.ClickException(str(exc)) from None


# --- seedreplay proxy --similar ------------------------------------------------------------------

SIMILAR_DEFAULT = "default"  # `--similar` given without a value


def proxy_tiers(
    value: str | None,
    embeddings_model: str | None,
    cache_dir: str | None,
    store_url: str | None,
    store: Any,
    namespace: str | None = None,
) -> list:
    """The similar tier `seedreplay proxy --similar [auto|THRESHOLD] [--similar-embeddings MODEL]`
    asks for (empty when off), indexing in its own thread from now on."""
    if value is None:
        if embeddings_model:
            raise click.ClickException("--similar-embeddings MODEL goes with --similar auto|THRESHOLD: add --similar")
        return []
    from ..proxy.tier_similar import SimilarTier

    tier = SimilarTier(store, _proxy_threshold(value, embeddings_model, cache_dir, store_url, namespace), embeddings_model)
    tier.start()
    return [tier]


def _proxy_threshold(
    value: str, embeddings_model: str | None, cache_dir: str | None, store_url: str | None, namespace: str | None
) -> float:
    measure = f"embeddings:{embeddings_model}" if embeddings_model else "builtin"
    calibrate_hint = "seedreplay similar calibrate" + (f" --similar-embeddings {embeddings_model}" if embeddings_model else "")
    if value == SIMILAR_DEFAULT:
        if embeddings_model:
            raise click.ClickException(
                f"--similar-embeddings scores by the cosine of {embeddings_model}'s vectors, which has no default threshold: "
                f"give --similar auto (after `{calibrate_hint}`) or --similar THRESHOLD"
            )
        return DEFAULT_THRESHOLD
    if value != "auto":
        try:
            number = float(value)
        except ValueError:
            number = -1.0
        if not 0.0 <= number <= 1.0:
            raise click.BadParameter(f"{value!r}: give auto or a threshold from 0 to 1", param_hint="--similar")
        return number
    path = calibration_path(store_target(cache_dir, store_url), namespace)
    try:
        calibration = load_calibration(path)
    except CalibrationError as exc:
        raise click.ClickException(f"--similar auto: {exc}") from None
    if calibration.measure != measure:
        raise click.ClickException(
            f"--similar auto: the calibration at {path} was made with the {calibration.measure} measure, not {measure}; "
            f"run `{calibrate_hint}` (same --cache-dir/--store) or give --similar THRESHOLD"
        )
    return calibration.threshold
