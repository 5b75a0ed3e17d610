"""`/v1/fine_tuning/jobs`: create, list, retrieve, events, checkpoints, cancel.

A job's whole life is planned when it is created (validation outcome, phase times, loss curve,
events, checkpoints) and revealed as the wall clock passes: validating_files for the first 20% of
`job_seconds`, queued until 40%, running until 100%, then succeeded (or failed right after
validation). No background task is needed, and a restarted simulator picks up where it was.
"""

from __future__ import annotations

import math
import random
import re
import secrets
import time
from typing import Any

from aiohttp import web

from . import catalog
from .errors import APIError, bad_request, invalid_type, invalid_value, missing
from .files import add_file, new_id, paginate, public
from .runtime import CONFIG, STATE, read_json
from .state import SimState
from .training import TrainingData, TrainingFileError, validate

SEED_MAX = 2147483647
SUFFIX_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
VALIDATED, STARTED = 0.2, 0.4  # phase boundaries, as fractions of job_seconds
MAX_STEP_EVENTS = 100
TERMINAL = frozenset({"succeeded", "failed", "cancelled"})
ORG = "seedreplay"


# ---------------------------------------------------------------- planning (pure)


def auto_epochs(examples: int) -> int:
    """The provider's default: 3 epochs, more for small sets (10 examples -> 10), fewer for huge ones."""
    if examples * 3 < 100:
        return min(25, max(1, 100 // examples))
    if examples * 3 > 25000:
        return max(1, 25000 // examples)
    return 3


def model_name(base: str, suffix: str | None, job_id: str) -> str:
    return f"ft:{base}:{ORG}:{suffix or ''}:{job_id[-8:].lower()}"


def _loss(step: int, total: int, rng: random.Random) -> float:
    return round(2.4 * math.exp(-4.0 * step / max(total, 1)) + 0.05 + rng.uniform(0, 0.08), 4)


def plan(job: dict[str, Any], data: TrainingData | None, error: dict[str, Any] | None, seconds: float) -> None:
    """Fill a new job's private timeline, events, checkpoints and outcome."""
    t0 = job["_t0"]
    validated, started, finished = t0 + seconds * VALIDATED, t0 + seconds * STARTED, t0 + seconds
    events: list[dict[str, Any]] = [
        _event(t0, "info", f"Validating training file: {job['training_file']}"),
    ]
    if error is not None:
        events.append(_event(validated, "error", error["message"]))
        job["_plan"] = {"fail_at": validated, "events": events, "checkpoints": []}
        return
    assert data is not None
    epochs = job["hyperparameters"]["n_epochs"]
    total = data.example_count * epochs
    rng = random.Random(job["seed"])
    events += [
        _event(validated, "info", "Files validated, moving job to queued state"),
        _event(started, "info", "Fine-tuning job started"),
    ]
    every = max(1, math.ceil(total / MAX_STEP_EVENTS))
    checkpoints, losses = [], {}
    for step in range(1, total + 1):
        losses[step] = _loss(step, total, rng)
        at = started + (finished - started) * step / total * 0.95
        if step % every == 0 or step == total:
            events.append(
                _event(
                    at,
                    "info",
                    f"Step {step}/{total}: training loss={losses[step]:.2f}",
                    "metrics",
                    {
                        "step": step,
                        "train_loss": losses[step],
                        "total_steps": total,
                        "train_mean_token_accuracy": round(1 - losses[step] / 3, 4),
                    },
                )
            )
        if step % data.example_count == 0:
            checkpoints.append({"at": at, "step": step, "loss": losses[step]})
    events += [
        _event(finished, "info", f"New fine-tuned model created: {job['_model']}"),
        _event(finished, "info", "The job has successfully completed"),
    ]
    job["_plan"] = {
        "finish_at": finished,
        "events": events,
        "checkpoints": checkpoints[-3:],
        "trained_tokens": data.tokens * epochs,
    }


def _event(at: float, level: str, message: str, kind: str = "message", data: dict | None = None) -> dict[str, Any]:
    return {
        "object": "fine_tuning.job.event",
        "id": new_id("ftevent-", 24),
        "created_at": int(at),
        "_at": at,
        "level": level,
        "message": message,
        "data": data or {},
        "type": kind,
    }


def status_at(job: dict[str, Any], now: float) -> str:
    if job["status"] in TERMINAL:
        return job["status"]
    seconds = job["_seconds"]
    elapsed = now - job["_t0"]
    if elapsed < seconds * VALIDATED:
        return "validating_files"
    if "fail_at" in job["_plan"]:
        return "failed"
    if elapsed < seconds * STARTED:
        return "queued"
    if elapsed < seconds:
        return "running"
    return "succeeded"


# ---------------------------------------------------------------- settling (state changes)


def settle(state: SimState, job: dict[str, Any], now: float | None = None) -> None:
    """Move a job to its current status; on success register its model. Persisted once per change."""
    now = time.time() if now is None else now
    status = status_at(job, now)
    if status == job["status"]:
        return
    job["status"] = status
    if status == "failed":
        job["finished_at"] = int(job["_plan"]["fail_at"])
        job["error"] = job["_error"]
    elif status == "succeeded":
        _succeed(state, job)
    state.save()


def settle_all(state: SimState) -> None:
    now = time.time()
    for job in list(state.jobs.values()):
        if job["status"] not in TERMINAL:
            settle(state, job, now)


def _succeed(state: SimState, job: dict[str, Any]) -> None:
    job_plan = job["_plan"]
    job["finished_at"] = int(job_plan["finish_at"])
    job["fine_tuned_model"] = job["_model"]
    job["trained_tokens"] = job_plan["trained_tokens"]
    metrics = "step,train_loss,train_mean_token_accuracy\n" + "".join(
        f"{e['data']['step']},{e['data']['train_loss']},{e['data']['train_mean_token_accuracy']}\n"
        for e in job_plan["events"]
        if e["type"] == "metrics"
    )
    result = add_file(state, "step_metrics.csv", "fine-tune-results", metrics.encode())
    job["result_files"] = [result["id"]]
    state.models[job["_model"]] = {
        "id": job["_model"],
        "created": job["finished_at"],
        "owned_by": f"user-{ORG}",
        "base": job["model"],
        "job_id": job["id"],
        "seed": job["seed"],
        "examples": job["_examples"],
    }


# ---------------------------------------------------------------- request parsing


def _file_param(state: SimState, body: dict[str, Any], name: str, required: bool) -> str | None:
    file_id = body.get(name)
    if file_id is None:
        if required:
            raise missing(name)
        return None
    if not isinstance(file_id, str):
        raise invalid_type(name, "a string", file_id)
    meta = state.files.get(file_id)
    if meta is None:
        raise bad_request(
            f"invalid {name}: no file with id {file_id!r}; upload it first with purpose 'fine-tune'.", name, "invalid_file_id"
        )
    if meta["purpose"] != "fine-tune":
        raise bad_request(
            f"File {file_id} has purpose {meta['purpose']!r}; fine-tuning needs purpose 'fine-tune'.",
            name,
            "invalid_file_purpose",
        )
    return file_id


def _hyperparameters(body: dict[str, Any]) -> dict[str, Any]:
    method = body.get("method")
    if method is not None:
        if not isinstance(method, dict):
            raise invalid_type("method", "an object", method)
        kind = method.get("type", "supervised")
        if kind != "supervised":
            raise invalid_value("method.type", f"'{kind}'. The simulator fine-tunes with 'supervised' only.")
        supervised = method.get("supervised") or {}
        if not isinstance(supervised, dict):
            raise invalid_type("method.supervised", "an object", supervised)
        hyper = supervised.get("hyperparameters") or {}
        param = "method.supervised.hyperparameters"
    else:
        hyper = body.get("hyperparameters") or {}
        param = "hyperparameters"
    if not isinstance(hyper, dict):
        raise invalid_type(param, "an object", hyper)
    epochs = hyper.get("n_epochs", "auto")
    if epochs != "auto" and (isinstance(epochs, bool) or not isinstance(epochs, int) or not 1 <= epochs <= 50):
        raise invalid_value(f"{param}.n_epochs", f"{epochs!r}; use 'auto' or an integer from 1 to 50.")
    batch = hyper.get("batch_size", "auto")
    if batch != "auto" and (isinstance(batch, bool) or not isinstance(batch, int) or not 1 <= batch <= 256):
        raise invalid_value(f"{param}.batch_size", f"{batch!r}; use 'auto' or an integer from 1 to 256.")
    rate = hyper.get("learning_rate_multiplier", "auto")
    if rate != "auto" and (isinstance(rate, bool) or not isinstance(rate, (int, float)) or rate <= 0):
        raise invalid_value(f"{param}.learning_rate_multiplier", f"{rate!r}; use 'auto' or a positive number.")
    return {"n_epochs": epochs, "batch_size": batch, "learning_rate_multiplier": rate}


def _seed(body: dict[str, Any]) -> int:
    seed = body.get("seed")
    if seed is None:
        return secrets.randbelow(SEED_MAX + 1)  # generated and returned, as upstream
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise invalid_type("seed", "an integer", seed)
    if not 0 <= seed <= SEED_MAX:
        raise invalid_value("seed", f"{seed} is out of range; use an integer from 0 to {SEED_MAX}.")
    return seed


def _suffix(body: dict[str, Any]) -> str | None:
    suffix = body.get("suffix")
    if suffix is None or suffix == "":
        return None
    if not isinstance(suffix, str):
        raise invalid_type("suffix", "a string", suffix)
    if not SUFFIX_RE.match(suffix):
        raise invalid_value("suffix", f"{suffix!r}; use at most 64 letters, digits, '-', '_' or '.'.")
    return suffix


# ---------------------------------------------------------------- handlers


async def create_job(request: web.Request) -> web.Response:
    body = await read_json(request)
    state = request.app[STATE]
    base = body.get("model")
    if base is None:
        raise missing("model")
    if not isinstance(base, str):
        raise invalid_type("model", "a string", base)
    metadata = body.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise invalid_type("metadata", "an object", metadata)
    if base not in catalog.FINE_TUNABLE:
        raise bad_request(
            f"Model {base!r} is not available for fine-tuning or does not exist. "
            f"Fine-tunable models: {', '.join(sorted(catalog.FINE_TUNABLE))}.",
            "model",
            "model_not_available",
        )
    training_file = _file_param(state, body, "training_file", required=True)
    assert training_file is not None  # a required one that is missing was refused
    validation_file = _file_param(state, body, "validation_file", required=False)
    hyper, seed, suffix = _hyperparameters(body), _seed(body), _suffix(body)
    data, error = _validate_files(state, training_file, validation_file)
    if hyper["n_epochs"] == "auto":
        hyper["n_epochs"] = auto_epochs(data.example_count) if data else 3
    hyper["batch_size"] = 1 if hyper["batch_size"] == "auto" else hyper["batch_size"]
    hyper["learning_rate_multiplier"] = 1.8 if hyper["learning_rate_multiplier"] == "auto" else hyper["learning_rate_multiplier"]
    job_id = new_id("ftjob-", 24)
    now = time.time()
    seconds = request.app[CONFIG].job_seconds
    job: dict[str, Any] = {
        "id": job_id,
        "object": "fine_tuning.job",
        "model": base,
        "created_at": int(now),
        "finished_at": None,
        "fine_tuned_model": None,
        "organization_id": f"org-{ORG}",
        "result_files": [],
        "status": "validating_files",
        "validation_file": validation_file,
        "training_file": training_file,
        "hyperparameters": hyper,
        "trained_tokens": None,
        "error": None,
        "seed": seed,
        "suffix": suffix,
        "user_provided_suffix": suffix,
        "estimated_finish": int(now + seconds),
        "integrations": [],
        "metadata": body.get("metadata"),
        "method": {"type": "supervised", "supervised": {"hyperparameters": hyper}},
        "_t0": now,
        "_seconds": seconds,
        "_model": model_name(base, suffix, job_id),
        "_examples": data.examples if data else [],
        "_error": error,
    }
    plan(job, data, error, seconds)
    state.jobs[job_id] = job
    state.save()
    return web.json_response(view(job))


def _validate_files(state: SimState, training: str, validation: str | None) -> tuple[TrainingData | None, dict[str, Any] | None]:
    """Validate the training (and validation) file; on failure return the job's `error` object."""
    data = None
    for param, file_id in (("training_file", training), ("validation_file", validation)):
        if file_id is None:
            continue
        try:
            checked = validate(state.file_content(file_id) or b"")
        except TrainingFileError as exc:
            label = param.replace("_", " ")
            return None, {
                "code": f"invalid_{param}",
                "param": param,
                "message": f"The job failed due to an invalid {label}. {label.capitalize()} {file_id}, {exc}.",
            }
        data = data or checked
    return data, None


def view(job: dict[str, Any]) -> dict[str, Any]:
    return public(job)


def _job(request: web.Request) -> dict[str, Any]:
    state = request.app[STATE]
    job_id = request.match_info["job_id"]
    job = state.jobs.get(job_id)
    if job is None:
        raise APIError(404, f"Could not find fine-tune job: {job_id}", param="fine_tuning_job_id", code="fine_tune_not_found")
    settle(state, job)
    return job


async def retrieve_job(request: web.Request) -> web.Response:
    return web.json_response(view(_job(request)))


async def list_jobs(request: web.Request) -> web.Response:
    state = request.app[STATE]
    settle_all(state)
    jobs = sorted(state.jobs.values(), key=lambda j: j["_t0"], reverse=True)
    page, has_more = paginate(jobs, request.query, default_limit=20)
    return web.json_response({"object": "list", "data": [view(j) for j in page], "has_more": has_more})


async def list_events(request: web.Request) -> web.Response:
    job = _job(request)
    now = time.time()
    limit_time = job.get("_cancelled_at") or now
    shown = [e for e in job["_plan"]["events"] if e["_at"] <= limit_time] + job.get("_extra_events", [])
    shown.reverse()  # planned in time order; the API lists newest first
    page, has_more = paginate(shown, request.query, default_limit=20)
    return web.json_response({"object": "list", "data": [public(e) for e in page], "has_more": has_more})


async def list_checkpoints(request: web.Request) -> web.Response:
    job = _job(request)
    now = time.time() if job["status"] != "cancelled" else job.get("_cancelled_at", 0)
    checkpoints = [
        {
            "object": "fine_tuning.job.checkpoint",
            "id": f"ftckpt_{job['id'][-12:]}{c['step']:06d}",
            "created_at": int(c["at"]),
            "fine_tuned_model_checkpoint": f"{job['_model']}:ckpt-step-{c['step']}",
            "step_number": c["step"],
            "metrics": {"step": c["step"], "train_loss": c["loss"], "train_mean_token_accuracy": round(1 - c["loss"] / 3, 4)},
            "fine_tuning_job_id": job["id"],
        }
        for c in reversed(job["_plan"]["checkpoints"])
        if c["at"] <= now
    ]
    page, has_more = paginate(checkpoints, request.query, default_limit=10)
    return web.json_response(
        {
            "object": "list",
            "data": page,
            "has_more": has_more,
            "first_id": page[0]["id"] if page else None,
            "last_id": page[-1]["id"] if page else None,
        }
    )


async def cancel_job(request: web.Request) -> web.Response:
    job = _job(request)
    if job["status"] in TERMINAL:
        raise bad_request(
            f"Job {job['id']} has already completed with status {job['status']!r}; it cannot be cancelled.",
            "fine_tuning_job_id",
            "job_not_cancellable",
        )
    now = time.time()
    job["status"] = "cancelled"
    job["finished_at"] = int(now)
    job["_cancelled_at"] = now
    job["_extra_events"] = [_event(now, "info", "Job cancelled by the user")]
    request.app[STATE].save()
    return web.json_response(view(job))


def add_routes(app: web.Application) -> None:
    app.router.add_post("/v1/fine_tuning/jobs", create_job)
    app.router.add_get("/v1/fine_tuning/jobs", list_jobs)
    app.router.add_get("/v1/fine_tuning/jobs/{job_id}", retrieve_job)
    app.router.add_get("/v1/fine_tuning/jobs/{job_id}/events", list_events)
    app.router.add_get("/v1/fine_tuning/jobs/{job_id}/checkpoints", list_checkpoints)
    app.router.add_post("/v1/fine_tuning/jobs/{job_id}/cancel", cancel_job)
