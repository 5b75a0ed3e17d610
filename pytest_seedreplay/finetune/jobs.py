"""Fine-tuning jobs on any OpenAI-compatible provider, through the real openai SDK.

The provider is whatever `--base-url`, else OPENAI_BASE_URL, names (OpenAI, the simulator, a
seedreplay proxy in front of either). A job carries in its metadata what it was trained from, so
`finetune status JOB` can finish the manifest entry from another terminal or machine.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import openai

from ..core.constants import DEFAULT_UPSTREAM
from ..core.urls import is_loopback as host_is_loopback
from .manifest import Manifest, Version, public_base_url

TERMINAL = frozenset({"succeeded", "failed", "cancelled"})
SEED_MAX = 2147483647
NO_KEY = "seedreplay-no-key"  # what a loopback provider (the simulator, a local proxy) is sent when no key is set
METADATA_VALUE_MAX = 512
META_SHA, META_EXAMPLES, META_DATASET, META_FROM = (
    "seedreplay_dataset_sha256",
    "seedreplay_examples",
    "seedreplay_dataset",
    "seedreplay_exported_from",
)


class JobError(RuntimeError):
    """The provider refused or could not be reached; the message says what it said and what to do."""


def base_url_of(base_url: str | None = None) -> str:
    return (base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_UPSTREAM).rstrip("/")


def is_loopback(url: str) -> bool:
    """True when the provider at `url` runs on this machine (the simulator, a local server)."""
    return host_is_loopback(urlsplit(url).hostname or "")


def api_key_for(base_url: str) -> str:
    """OPENAI_API_KEY, or a placeholder for a provider on this machine (the simulator needs none)."""
    key = os.environ.get("OPENAI_API_KEY")
    if key:
        return key
    if is_loopback(base_url):
        return NO_KEY
    raise JobError(
        f"OPENAI_API_KEY is not set, and {public_base_url(base_url)} is not on this machine; "
        "export OPENAI_API_KEY=... (or point --base-url / OPENAI_BASE_URL at the simulator or a proxy)"
    )


def client_for(base_url: str | None = None, max_retries: int = 2) -> openai.OpenAI:
    url = base_url_of(base_url)
    return openai.OpenAI(base_url=url, api_key=api_key_for(url), max_retries=max_retries)


def async_client_for(base_url: str | None = None, max_retries: int = 0) -> openai.AsyncOpenAI:
    url = base_url_of(base_url)
    return openai.AsyncOpenAI(base_url=url, api_key=api_key_for(url), max_retries=max_retries)


def provider_error(exc: openai.OpenAIError, doing: str, base_url: str) -> JobError:
    """An SDK error as one line: what we were doing, where, and what the provider said."""
    where = public_base_url(base_url)
    if isinstance(exc, openai.APIConnectionError):
        return JobError(f"{doing}: cannot reach {where} ({exc}); is the provider running? check --base-url / OPENAI_BASE_URL")
    if isinstance(exc, openai.AuthenticationError):
        return JobError(f"{doing}: {where} refused the key (401); check OPENAI_API_KEY")
    if isinstance(exc, openai.APIStatusError):
        message = exc.message
        body = exc.body if isinstance(exc.body, dict) else {}
        inner = body.get("error") if isinstance(body.get("error"), dict) else body
        if isinstance(inner, dict) and isinstance(inner.get("message"), str):
            message = inner["message"]
        return JobError(f"{doing}: {where} answered {exc.status_code}: {message}")
    return JobError(f"{doing}: {exc}")


# --- what a job was trained from ------------------------------------------------------------------


@dataclass
class Dataset:
    """What a version records about its training data."""

    sha256: str | None
    examples: int | None
    path: str | None = None  # as the manifest writes it
    exported_from: dict[str, Any] | None = None

    def metadata(self) -> dict[str, str]:
        """The job's metadata: strings of at most 512 characters, as the provider requires."""
        meta = {META_SHA: self.sha256 or "", META_EXAMPLES: str(self.examples or 0)}
        if self.path:
            meta[META_DATASET] = self.path[-METADATA_VALUE_MAX:]
        if self.exported_from:
            meta[META_FROM] = sources_text(self.exported_from)
        return meta

    @classmethod
    def from_metadata(cls, metadata: dict[str, Any] | None) -> Dataset:
        metadata = metadata or {}
        examples = metadata.get(META_EXAMPLES)
        origin = metadata.get(META_FROM)
        return cls(
            sha256=metadata.get(META_SHA) or None,
            examples=int(examples) if isinstance(examples, str) and examples.isdigit() else None,
            path=metadata.get(META_DATASET) or None,
            exported_from={"sources": origin} if origin else None,
        )


def sources_text(record: dict[str, Any]) -> str:
    """The export's sources in one short line (`store .seedreplay/cache (12), cassettes cassettes (3)`)."""
    parts = [
        f"{s.get('kind')} {s.get('location')} ({s.get('entries')})" for s in record.get("sources") or [] if isinstance(s, dict)
    ]
    text = ", ".join(parts) or json.dumps(record, ensure_ascii=False)
    return text if len(text) <= METADATA_VALUE_MAX else text[: METADATA_VALUE_MAX - 1] + "…"


# --- starting a job -------------------------------------------------------------------------------


@dataclass
class JobRequest:
    file: Path
    model: str
    seed: int
    dataset: Dataset
    suffix: str | None = None
    epochs: int | None = None
    validation_file: Path | None = None


def upload(client: openai.OpenAI, path: Path) -> str:
    with path.open("rb") as handle:
        return client.files.create(file=(path.name, handle), purpose="fine-tune").id


def start(client: openai.OpenAI, request: JobRequest) -> Any:
    """Upload the file(s) and create the job; returns the job as the provider answered it."""
    url = str(client.base_url)
    try:
        training = upload(client, request.file)
        validation = upload(client, request.validation_file) if request.validation_file else None
    except openai.OpenAIError as exc:
        raise provider_error(exc, f"uploading {request.file}", url) from None
    params: dict[str, Any] = {
        "model": request.model,
        "training_file": training,
        "seed": request.seed,
        "metadata": request.dataset.metadata(),
    }
    if request.suffix:
        params["suffix"] = request.suffix
    if validation:
        params["validation_file"] = validation
    if request.epochs:
        params["method"] = {"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": request.epochs}}}
    try:
        return client.fine_tuning.jobs.create(**params)
    except openai.OpenAIError as exc:
        raise provider_error(exc, "creating the fine-tuning job", url) from None


# --- following a job ------------------------------------------------------------------------------


@dataclass
class Progress:
    """One look at a job: its state and the events that arrived since the last look (oldest first)."""

    job: Any
    events: list[Any]
    elapsed: float
    step: int | None = None
    total_steps: int | None = None
    all_events: list[Any] = field(default_factory=list)

    @property
    def status(self) -> str:
        return str(self.job.status)

    @property
    def done(self) -> bool:
        return self.status in TERMINAL


def _steps(events: list[Any]) -> tuple[int | None, int | None]:
    for event in reversed(events):  # the newest metrics event says how far training is
        data = getattr(event, "data", None) or {}
        if isinstance(data, dict) and isinstance(data.get("step"), int):
            total = data.get("total_steps")
            return data["step"], total if isinstance(total, int) else None
    return None, None


def follow(
    client: openai.OpenAI, job_id: str, poll: float = 1.0, sleep: Callable[[float], None] = time.sleep
) -> Iterator[Progress]:
    """Look at a job every `poll` seconds until it ends; each look yields the events that are new."""
    url = str(client.base_url)
    started = time.monotonic()
    seen: set[str] = set()
    history: list[Any] = []
    step = total = None
    while True:
        try:
            job = client.fine_tuning.jobs.retrieve(job_id)
            fresh = new_events(client, job_id, seen)
        except openai.OpenAIError as exc:
            raise provider_error(exc, f"following job {job_id}", url) from None
        seen.update(e.id for e in fresh)
        history += fresh
        new_step, new_total = _steps(fresh)
        step, total = (new_step, new_total) if new_step is not None else (step, total)
        progress = Progress(
            job=job, events=fresh, elapsed=time.monotonic() - started, step=step, total_steps=total, all_events=history
        )
        yield progress
        if progress.done:
            return
        sleep(poll)


def new_events(client: openai.OpenAI, job_id: str, seen: set[str]) -> list[Any]:
    """The events not seen yet, oldest first. The provider lists newest first, a page at a time: read
    pages until a seen event (a job that ran far between two looks has more than one page of news)."""
    fresh = []
    for event in client.fine_tuning.jobs.list_events(job_id, limit=100):  # the SDK fetches further pages as needed
        if event.id in seen:
            break
        fresh.append(event)
    fresh.reverse()
    return fresh


def cancel(client: openai.OpenAI, job_id: str) -> Any:
    try:
        return client.fine_tuning.jobs.cancel(job_id)
    except openai.OpenAIError as exc:
        raise provider_error(exc, f"cancelling job {job_id}", str(client.base_url)) from None


def retrieve(client: openai.OpenAI, job_id: str) -> Any:
    try:
        return client.fine_tuning.jobs.retrieve(job_id)
    except openai.OpenAIError as exc:
        raise provider_error(exc, f"looking up job {job_id}", str(client.base_url)) from None


# --- the manifest entry of a finished job ---------------------------------------------------------


def record(manifest: Manifest, job: Any, base_url: str, dataset: Dataset) -> Version:
    """Append the version a succeeded job made (once: a job already in the manifest is returned as it is)."""
    for version in manifest.versions:
        if version.job_id == job.id:
            return version
    hyper = getattr(job, "hyperparameters", None)
    epochs = getattr(hyper, "n_epochs", None)
    return manifest.append(
        {
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(job.finished_at or time.time())),
            "base_model": job.model,
            "fine_tuned_model": job.fine_tuned_model,
            "seed": job.seed,
            "job_id": job.id,
            "training_file": job.training_file,
            "validation_file": job.validation_file,
            "dataset_sha256": dataset.sha256,
            "examples": dataset.examples,
            "dataset": dataset.path,
            "suffix": getattr(job, "user_provided_suffix", None) or getattr(job, "suffix", None),
            "epochs": epochs if isinstance(epochs, int) else None,
            "trained_tokens": job.trained_tokens,
            "base_url": public_base_url(base_url),
            "exported_from": dataset.exported_from,
        }
    )


def error_text(job: Any) -> str:
    error = getattr(job, "error", None)
    message = getattr(error, "message", None) if error is not None else None
    code = getattr(error, "code", None) if error is not None else None
    if message:
        return f"{message}" + (f" ({code})" if code else "")
    return f"the job ended {job.status}"
