"""One convention for every command's options, applied in one place: a value's placeholder names
what it is (URL, SECONDS, N, MODEL...), the same for the same flag in every command, never click's
generic type name (TEXT, INTEGER RANGE). An option that sets its own metavar keeps it."""

from __future__ import annotations

import click

METAVARS = {
    "--base-url": "URL",
    "--store": "URL",
    "--upstream": "URL",
    "--host": "HOST",
    "--port": "PORT",
    "--path": "PATH",
    "--model": "MODEL",
    "--version": "VERSION",
    "--seed": "SEED",
    "--suffix": "SUFFIX",
    "--token": "TOKEN",
    "--threshold": "auto|THRESHOLD",
    "--poll": "SECONDS",
    "--job-seconds": "SECONDS",
    "--lock-expiry": "SECONDS",
    "--upstream-timeout": "SECONDS",
    "--header-timeout": "SECONDS",
    "--body-timeout": "SECONDS",
    "--max-connections": "N",
    "--latency-ms": "MS",
    "--fault-rate": "RATE",
    "--holdout": "FRACTION",
    "--min-recall": "FRACTION",
    "--tokens-per-s": "N",
    "--limit": "N",
    "--epochs": "N",
    "--concurrency": "N",
    "--workers": "N",
    "--paraphrase-count": "N",
    "--per-question": "N",
    "--write-backlog-entries": "N",
}


def apply(command: click.Command) -> None:
    """Give every value option of `command` and its subcommands its conventional metavar."""
    for param in command.params:
        if not isinstance(param, click.Option) or param.is_flag or param.metavar is not None:
            continue
        if isinstance(param.type, click.Choice):
            continue  # [a|b] lists the choices: clearer than any name
        named = next((METAVARS[opt] for opt in param.opts if opt in METAVARS), None)
        if named is not None:
            param.metavar = named
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            apply(sub)
