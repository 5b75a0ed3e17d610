"""How `finetune create` / `status` show a job while it runs: a rich live display on a terminal,
plain timestamped lines otherwise (CI logs, pipes), so either reads well."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from ..finetune.jobs import Progress as JobProgress

STEP_LINES = 10  # a long job prints a metrics line about every tenth of its steps, not one per step


def is_metrics(event: Any) -> bool:
    return getattr(event, "type", None) == "metrics"


def loss_of(events: list[Any]) -> str:
    for event in reversed(events):
        data = getattr(event, "data", None) or {}
        if is_metrics(event) and isinstance(data, dict) and isinstance(data.get("train_loss"), (int, float)):
            return f"loss {data['train_loss']:.2f}"
    return ""


def worth_a_line(event: Any, last_step: int) -> bool:
    """Messages always; a metrics event when it has moved a tenth of the steps on (or is the last)."""
    data = getattr(event, "data", None) or {}
    if not is_metrics(event) or not isinstance(data, dict):
        return True
    step, total = data.get("step"), data.get("total_steps")
    if not isinstance(step, int) or not isinstance(total, int) or total <= 0:
        return True
    return step == total or step - last_step >= max(1, total // STEP_LINES)


def event_line(event: Any) -> str:
    level = getattr(event, "level", "info")
    mark = "!" if level == "error" else ("~" if level == "warn" else "·")
    return f"{mark} {event.message}"


class PlainDisplay:
    """One line per status change and per event, prefixed with the elapsed seconds."""

    def __init__(self, job_id: str):
        self.job_id = job_id
        self.status: str | None = None
        self.last_step = 0

    def start(self) -> None:
        return None

    def stop(self) -> None:
        return None

    def update(self, progress: JobProgress) -> None:
        stamp = f"[{progress.elapsed:6.1f}s]"
        for event in progress.events:
            if worth_a_line(event, self.last_step):
                click.echo(f"{stamp} {event_line(event)}")
                if is_metrics(event):
                    self.last_step = event.data["step"]
        if progress.status != self.status:
            self.status = progress.status
            tokens = f", {progress.job.trained_tokens} trained tokens" if progress.job.trained_tokens else ""
            click.echo(f"{stamp} job {self.job_id}: {progress.status}{tokens}")


class LiveDisplay:
    """A live bar (status, steps, elapsed, trained tokens) with the job's events scrolling above it."""

    def __init__(self, job_id: str, console: Console):
        self.job_id = job_id
        self.console = console
        self.bar = Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.fields[status]}[/bold]"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("steps"),
            TimeElapsedColumn(),
            TextColumn("{task.fields[tokens]}"),
            console=console,
            transient=False,
        )
        self.task = self.bar.add_task(job_id, total=None, status="starting", tokens="")
        self.loss = ""
        self.status: str | None = None
        self.last_step = 0

    def start(self) -> None:
        self.bar.start()

    def stop(self) -> None:
        self.bar.stop()

    def update(self, progress: JobProgress) -> None:
        # The steps scroll above the bar as the plain display prints them: a job that moved on a lot
        # between two looks (a fast simulator, a long --poll) shows how it got there, not a jump.
        for event in progress.events:
            if not worth_a_line(event, self.last_step):
                continue
            if is_metrics(event):
                self.last_step = event.data["step"]
            style = "red" if getattr(event, "level", "") == "error" else "dim"
            self.console.print(event_line(event), style=style, markup=False, highlight=False)
        if progress.status != self.status:
            self.status = progress.status
            self.console.print(f"job {self.job_id}: {progress.status}", markup=False, highlight=False)
        self.loss = loss_of(progress.events) or self.loss
        trained = f"{progress.job.trained_tokens} trained tokens" if progress.job.trained_tokens else ""
        tokens = " · ".join(part for part in (self.loss, trained) if part)
        total = progress.total_steps
        completed = progress.step or 0
        if progress.status == "succeeded" and total:
            completed = total
        self.bar.update(self.task, status=f"{self.job_id} {progress.status}", total=total, completed=completed, tokens=tokens)


@contextmanager
def showing(job_id: str) -> Iterator[PlainDisplay | LiveDisplay]:
    """The display that suits stdout, stopped (the bar left as it was last drawn) however the block ends."""
    console = Console(file=sys.stdout)
    display = LiveDisplay(job_id, console) if console.is_terminal else PlainDisplay(job_id)
    display.start()
    try:
        yield display
    finally:
        display.stop()
