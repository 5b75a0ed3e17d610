"""`seedreplay sim`: run the offline OpenAI-compatible simulator in the foreground."""

from __future__ import annotations

from pathlib import Path

import click

from ..core.constants import DEFAULT_HOST, DEFAULT_SIM_PORT


@click.command("sim")
@click.option("--host", default=DEFAULT_HOST, show_default=True, help="Interface to listen on.")
@click.option(
    "--port",
    default=DEFAULT_SIM_PORT,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port to listen on (0 = pick a free one).",
)
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Keep files, fine-tuning jobs and fine-tuned models here, so they survive a restart.",
)
@click.option(
    "--latency-ms",
    type=click.FloatRange(min=0),
    default=0,
    show_default=True,
    help="Delay before the first token of every answer.",
)
@click.option(
    "--tokens-per-s",
    type=click.FloatRange(min=0),
    default=0,
    show_default=True,
    help="Pace streamed tokens (and plain answers as long); 0 = as fast as possible.",
)
@click.option(
    "--drift",
    metavar="SALT",
    default="",
    help="Change every model's outputs and system_fingerprint, like a provider updating its models.",
)
@click.option(
    "--job-seconds",
    type=click.FloatRange(min=0),
    default=2.0,
    show_default=True,
    help="How long a fine-tuning job takes from creation to success.",
)
@click.option(
    "--fault-rate",
    type=click.FloatRange(0, 1),
    default=0.0,
    show_default=True,
    help="Share of /v1 requests that fail at random with 500, 429 or 503.",
)
@click.option("--require-auth", is_flag=True, help="Answer 401 to /v1 requests without 'Authorization: Bearer ...'.")
@click.option(
    "--strict-models",
    is_flag=True,
    help="Answer 404 model_not_found to a model outside the simulator's catalogue (default: any name answers).",
)
def command(
    host: str,
    port: int,
    state_dir: Path | None,
    latency_ms: float,
    tokens_per_s: float,
    drift: str,
    job_seconds: float,
    fault_rate: float,
    require_auth: bool,
    strict_models: bool,
) -> None:
    """Run the offline OpenAI-compatible simulator.

    It serves until SIGINT/SIGTERM. Point any client at it with OPENAI_BASE_URL=http://HOST:PORT/v1. Per request, the header
    X-Sim-Fault: 500|429|503|timeout|cut-stream|slow injects a fault; GET /sim/stats counts requests.
    """
    from pytest_seedreplay.proxy.serve import run_until_signal
    from pytest_seedreplay.proxy.sim import SimConfig, make_sim_app

    config = SimConfig(
        latency_ms=latency_ms,
        tokens_per_s=tokens_per_s,
        drift=drift,
        job_seconds=job_seconds,
        fault_rate=fault_rate,
        require_auth=require_auth,
        state_dir=state_dir,
        strict_models=strict_models,
    )

    def on_listening(root: str) -> None:
        click.echo(f"seedreplay sim listening on {root}/v1")

    try:
        run_until_signal(lambda: make_sim_app(config), host, port, on_listening)
    except OSError as exc:
        raise click.ClickException(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}; pick another --port (0 picks a free one)"
        ) from None
    except RuntimeError as exc:  # unreadable --state-dir
        raise click.ClickException(str(exc)) from None
