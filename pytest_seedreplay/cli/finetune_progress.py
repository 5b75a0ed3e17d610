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


def event_line(event: Any) -> str:
    level = getattr(event, "level", "info")
    mark = "!" if level == "error" else ("~" if level == "warn" else "·")
    return f"{mark} {event.message}"


class PlainDisplay:
    """One line per status change and per event, prefixed with the elapsed seconds."""

    def __init__(self, job_id: str):
        self.job_id = job_id
        self.status: str | None = None

    def start(self) -> None:
        return None

    def stop(self) -> None:
        return None

    def update(self, progress: JobProgress) -> None:
        stamp = f"[{progress.elapsed:6.1f}s]"
        if progress.status != self.status:
            self.status = progress.status
            tokens = f", {progress.job.trained_tokens} trained tokens" if progress.job.trained_tokens else ""
            click.echo(f"{stamp} job {self.job_id}: {progress.status}{tokens}")
        for event in progress.events:
            click.echo(f"{stamp} {event_line(event)}")


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

    def start(self) -> None:
        self.bar.start()

    def stop(self) -> None:
        self.bar.stop()

    def update(self, progress: JobProgress) -> None:
        for event in progress.events:
            style = "red" if getattr(event, "level", "") == "error" else "dim"
            self.console.print(event_line(event), style=style, markup=False, highlight=False)
        tokens = f"{progress.job.trained_tokens} trained tokens" if progress.job.trained_tokens else ""
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
