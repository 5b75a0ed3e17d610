"""`seedreplay proxy`: run the caching, replaying OpenAI-compatible proxy in the foreground."""

from __future__ import annotations

import logging
import os
import shutil
import stat
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from click.core import ParameterSource

from ..core.constants import (
    DEFAULT_ANTHROPIC_UPSTREAM,
    DEFAULT_BODY_TIMEOUT,
    DEFAULT_CACHE_DIR,
    DEFAULT_CASSETTE_DIR,
    DEFAULT_HEADER_TIMEOUT,
    DEFAULT_HOST,
    DEFAULT_LOCK_EXPIRY,
    DEFAULT_MAX_ANSWER,
    DEFAULT_MAX_BODY,
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MEMORY_CACHE,
    DEFAULT_PROXY_PORT,
    DEFAULT_UPSTREAM,
    DEFAULT_UPSTREAM_TIMEOUT,
    DEFAULT_WRITE_BACKLOG,
    DEFAULT_WRITE_BACKLOG_ENTRIES,
    ENV_ANTHROPIC_UPSTREAM,
    ENV_PRICES,
    ENV_STORE,
    ENV_TOKEN,
    ENV_UPSTREAM,
    FINETUNE_MANIFEST,
    MEMORY_CACHE_MAX_AGE,
    SIMILAR_DEFAULT_THRESHOLD,
)
from ..core.environ import choose_anthropic_upstream
from ..policy import DEFAULT_PROXY_MODE, PROXY_MODES
from ..savings import PricesError, prices_from
from ..store import open_store, store_target
from .cache import Duration
from .similar import SIMILAR_DEFAULT
from .similar import proxy_tiers as proxy_similar_tiers

if TYPE_CHECKING:
    from pytest_seedreplay.proxy.workers import Worker

LOG_LEVELS = ("debug", "info", "warning", "error")


class _Size(click.ParamType):
    name = "SIZE"

    def __init__(self, allow_zero: bool = False):
        self.allow_zero = allow_zero

    def convert(self, value, param, ctx):
        if isinstance(value, int):
            return value
        from pytest_seedreplay.proxy.config import parse_size

        try:
            return parse_size(str(value), allow_zero=self.allow_zero)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


@click.command("proxy")
@click.option("--host", default=DEFAULT_HOST, show_default=True, help="Address to listen on. Non-loopback needs --token.")
@click.option(
    "--port", default=DEFAULT_PROXY_PORT, show_default=True, type=click.IntRange(0, 65535), help="Port; 0 picks a free one."
)
@click.option(
    "--upstream",
    envvar=ENV_UPSTREAM,
    default=DEFAULT_UPSTREAM,
    show_default=True,
    help=f"Upstream base URL (incl. /v1), default ${ENV_UPSTREAM}; the word 'sim' starts the simulator in-process.",
)
@click.option(
    "--anthropic-upstream",
    default=None,
    metavar="URL|sim",
    help=f"Where Anthropic's API (/v1/messages, requests with anthropic-version) goes: its root URL "
    f"[default: ${ENV_ANTHROPIC_UPSTREAM}, else 'sim' when --upstream is, else {DEFAULT_ANTHROPIC_UPSTREAM}].",
)
@click.option(
    "--mode",
    type=click.Choice([m.value for m in PROXY_MODES]),
    default=DEFAULT_PROXY_MODE.value,
    show_default=True,
    help="record, replay, passthrough or refresh.",
)
@click.option(
    "--cache-dir",
    type=click.Path(file_okay=False),
    default=None,
    help=f"Cache directory [default: ${ENV_STORE} or {DEFAULT_CACHE_DIR}].",
)
@click.option("--store", "store_url", default=None, help="Store URL (e.g. redis://host:6379/0) instead of --cache-dir.")
@click.option(
    "--namespace",
    default=None,
    metavar="NAME",
    help="Keep these recordings apart from other teams' or projects' on the same store (also ?namespace=NAME in store URLs).",
)
@click.option(
    "--ttl", type=Duration(), default=None, help="New recordings answer for this long (30d, 12h, 90m, 45s); default: for ever."
)
@click.option(
    "--lock-expiry",
    type=click.FloatRange(min=0),
    default=DEFAULT_LOCK_EXPIRY,
    show_default=True,
    help="Proxies sharing a store make one upstream call per key; one that dies mid-call is replaced "
    "after this many seconds (0: off).",
)
@click.option(
    "--prices",
    "prices_file",
    type=click.Path(dir_okay=False),
    envvar=ENV_PRICES,
    default=None,
    help=f"JSON prices for the dollars hits save, over genai-prices' for the models it names [default: ${ENV_PRICES}].",
)
@click.option(
    "--sim-strict-models",
    is_flag=True,
    help="With --upstream sim: 404 for a model name outside the simulator's catalogue, as the API does "
    "(by default any name answers, as its family would).",
)
@click.option("--require-seed", is_flag=True, help="Answer 400 to chat/completions requests that carry no seed.")
@click.option(
    "--allow-mode-override",
    is_flag=True,
    help="Let a request's X-Seedreplay-Mode widen the proxy's --mode (by default it may only tighten it: "
    "a replay proxy never reaches the upstream or writes).",
)
@click.option(
    "--isolate-by-auth", is_flag=True, help="Separate recordings per API key (keys namespaced by a hash of the credential)."
)
@click.option(
    "--token",
    envvar=ENV_TOKEN,
    default=None,
    help=f"Require this value in the X-Seedreplay-Token header of every request. Prefer ${ENV_TOKEN} or "
    "--token-file: a command-line value is visible to every user of the machine (ps).",
)
@click.option(
    "--token-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Read the token from this file (its first line), instead of --token.",
)
@click.option(
    "--max-body",
    type=_Size(),
    default=DEFAULT_MAX_BODY,
    show_default="32MiB",
    help="Largest JSON request body (bytes, or 8MiB, 512k...).",
)
@click.option(
    "--max-answer",
    type=_Size(),
    default=DEFAULT_MAX_ANSWER,
    show_default="128MiB",
    help="Largest upstream answer recorded (bytes, or 64MiB, 512k...); a bigger one is relayed to the client, not recorded.",
)
@click.option(
    "--header-timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=DEFAULT_HEADER_TIMEOUT,
    show_default=True,
    help="Seconds a client has to send a request's head; past it the connection gets a 408.",
)
@click.option(
    "--body-timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=DEFAULT_BODY_TIMEOUT,
    show_default=True,
    help="Seconds a request body may go without a byte; past it the request gets a 408.",
)
@click.option(
    "--max-connections",
    type=click.IntRange(min=1),
    default=DEFAULT_MAX_CONNECTIONS,
    show_default=True,
    help="Clients connected at once; one more gets a 503 (lowered to the open-file limit, ulimit -n, minus 64).",
)
@click.option(
    "--upstream-timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=DEFAULT_UPSTREAM_TIMEOUT,
    show_default=True,
    help="Seconds the upstream may stay silent.",
)
@click.option(
    "--memory-cache",
    type=_Size(allow_zero=True),
    default=DEFAULT_MEMORY_CACHE,
    show_default="64MiB",
    help="Memory for recently served hits, kept ready to send (0 turns it off). A change another "
    f"process makes to the store shows within {MEMORY_CACHE_MAX_AGE:g} s.",
)
@click.option(
    "--similar",
    is_flag=False,
    flag_value=SIMILAR_DEFAULT,
    default=None,
    metavar="[auto|THRESHOLD]",
    help="Answer a reworded chat question with the recording of the question it rewords (off by default): "
    "auto = the threshold `seedreplay similar calibrate` saved, "
    f"else 0-1 ({SIMILAR_DEFAULT_THRESHOLD:g} when no value is given).",
)
@click.option(
    "--similar-embeddings",
    metavar="MODEL",
    default=None,
    help="Score --similar by this embeddings model's vectors (recorded in the store).",
)
@click.option(
    "--finetune",
    "finetune_spec",
    metavar="latest|VERSION|MODEL",
    default=None,
    help="Learned tier: on an exact miss of its base model, ask this manifest version's fine-tuned model with its seed.",
)
@click.option(
    "--finetune-guard",
    type=click.Choice(["on", "off"]),
    default="on",
    show_default=True,
    help="on: serve the fine-tune's answer only when it is verbatim a trained one; off: serve what it says.",
)
@click.option("--store-finetune-answers", is_flag=True, help="Keep the fine-tune's served answers as exact recordings.")
@click.option(
    "--finetune-manifest",
    type=click.Path(dir_okay=False),
    default=f"{DEFAULT_CASSETTE_DIR}/{FINETUNE_MANIFEST}",
    show_default=True,
    help="The fine-tune manifest --finetune reads.",
)
@click.option(
    "--durable",
    is_flag=True,
    help="Answer a miss only once its answer is in the store (a crash loses no answer sent), instead of writing behind it.",
)
@click.option(
    "--write-backlog",
    type=_Size(),
    default=DEFAULT_WRITE_BACKLOG,
    show_default="64MiB",
    help="Bytes of answers sent but not yet stored; past it a new miss waits for the store before its answer goes out.",
)
@click.option(
    "--write-backlog-entries",
    type=click.IntRange(min=1),
    default=DEFAULT_WRITE_BACKLOG_ENTRIES,
    show_default=True,
    help="The same bound, in answers.",
)
@click.option(
    "--log-level",
    type=click.Choice(LOG_LEVELS, case_sensitive=False),
    default="info",
    show_default=True,
    help="info: a line per miss, error and passthrough request, and the hits summed up every 5 s; debug: a line per hit too.",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Serve the port from this many processes (one core each), sharing the store, its single-flight claims and the stats.",
)
def command(
    host: str,
    port: int,
    upstream: str,
    anthropic_upstream: str | None,
    mode: str,
    cache_dir: str | None,
    store_url: str | None,
    namespace: str | None,
    ttl: float | None,
    lock_expiry: float,
    prices_file: str | None,
    sim_strict_models: bool,
    require_seed: bool,
    allow_mode_override: bool,
    isolate_by_auth: bool,
    token: str | None,
    token_file: Path | None,
    max_body: int,
    max_answer: int,
    header_timeout: float,
    body_timeout: float,
    max_connections: int,
    upstream_timeout: float,
    memory_cache: int,
    similar: str | None,
    similar_embeddings: str | None,
    finetune_spec: str | None,
    finetune_guard: str,
    store_finetune_answers: bool,
    finetune_manifest: str,
    durable: bool,
    write_backlog: int,
    write_backlog_entries: int,
    log_level: str,
    workers: int,
) -> None:
    """Run the caching proxy. Point clients at it with OPENAI_BASE_URL=http://HOST:PORT/v1 (OpenAI) and
    ANTHROPIC_BASE_URL=http://HOST:PORT (Anthropic)."""
    from pytest_seedreplay.core.urls import check_upstream, is_loopback, public_url
    from pytest_seedreplay.proxy.app import PROXY_STATE, ProxyConfig, make_proxy_app
    from pytest_seedreplay.proxy.serve import run_until_signal
    from pytest_seedreplay.proxy.tiers import check_tenants

    token = _the_token(token, token_file)
    if not is_loopback(host) and not token:
        raise click.ClickException(
            f"refusing to listen on {host} without --token: anyone who can reach it could use your "
            f"upstream credentials and read the cache. Set {ENV_TOKEN}=SECRET or pass --token-file FILE "
            "(clients send it as X-Seedreplay-Token), or bind 127.0.0.1."
        )
    try:
        upstream = check_upstream(upstream)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--upstream") from None
    try:
        anthropic_upstream = check_upstream(choose_anthropic_upstream(anthropic_upstream, upstream))
    except ValueError:
        raise click.BadParameter(
            f"{public_url(anthropic_upstream or '')!r} is not an http(s) URL; give Anthropic's root, like "
            f"{DEFAULT_ANTHROPIC_UPSTREAM}, or the word 'sim' for the built-in simulator",
            param_hint="--anthropic-upstream",
        ) from None
    try:
        prices = prices_from(prices_file)
    except PricesError as exc:
        raise click.BadParameter(str(exc), param_hint="--prices") from None
    sim = _sim_config(sim_strict_models, upstream, anthropic_upstream)
    logging.basicConfig(level=log_level.upper(), stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from pytest_seedreplay.proxy.writer import switch_briskly

    switch_briskly()  # this process is the proxy's own: its threads may hand the GIL back sooner
    config = ProxyConfig(
        upstream=upstream,
        anthropic_upstream=anthropic_upstream,
        mode=mode,
        require_seed=require_seed,
        allow_mode_override=allow_mode_override,
        isolate_by_auth=isolate_by_auth,
        token=token,
        max_body=max_body,
        max_answer=max_answer,
        header_timeout=header_timeout,
        body_timeout=body_timeout,
        max_connections=max_connections,
        upstream_timeout=upstream_timeout,
        memory_cache=memory_cache,
        durable=durable,
        write_backlog_bytes=write_backlog,
        write_backlog_entries=write_backlog_entries,
        ttl=ttl,
        lock_expiry=lock_expiry,
        prices=prices,
        sim=sim,
    )
    created = _missing_dir(store_target(cache_dir, store_url))
    # A replay proxy that may not be widened never calls the upstream: naming one would mislead.
    called = "none" if mode == "replay" and not allow_mode_override else public_url(upstream)
    started = threading.Event()

    def shown(location: str) -> str:
        return f"(mode={mode}, upstream={called}, cache={location})"

    def announce(root: str, location: str, lines: list[str]) -> None:
        started.set()
        click.echo(f"seedreplay proxy listening on {root}/v1 {shown(location)}")
        for line in lines:
            click.echo(line)
        # On stderr: stdout's first line is the listening line, and the tiers' lines follow it there.
        click.echo(f"Anthropic clients: ANTHROPIC_BASE_URL={root} (upstream={public_url(anthropic_upstream)})", err=True)
        sys.stdout.flush()

    def serve(worker: Worker | None = None, listening: Callable[[str], None] | None = None) -> None:
        """One proxy: the whole of it, or one of --workers N processes."""
        try:
            store = open_store(cache_dir, store_url, namespace)
        except Exception as exc:
            raise click.ClickException(f"cannot open the store: {exc}") from None
        if mode in ("record", "refresh"):
            _warm_secret_scan()
        tiers: list[Any] = []

        def on_listening(root: str) -> None:
            if listening is not None:  # a worker: the parent says it once they all listen
                listening(root)
                if worker is not None and worker.number == 0:
                    for tier in tiers:
                        logging.getLogger("seedreplay.proxy").info("%s", tier.describe())
                return
            announce(root, store.location, [tier.describe() for tier in tiers])

        def app() -> Any:
            made = make_proxy_app(config, store, tiers)
            if worker is not None:
                made[PROXY_STATE].siblings = worker.siblings
            return made

        try:
            if finetune_spec:
                tiers.append(
                    _finetune_tier(finetune_spec, finetune_manifest, finetune_guard == "on", store_finetune_answers, store)
                )
            # Tier order: exact, similar, fine-tune, general model.
            tiers[:0] = proxy_similar_tiers(similar, similar_embeddings, cache_dir, store_url, store, namespace)
            try:
                check_tenants(tiers, isolate_by_auth)
            except ValueError as exc:
                raise click.UsageError(f"--finetune with --isolate-by-auth: {exc}") from None
            sock, private = (worker.sock, worker.private) if worker is not None else (None, None)
            try:
                run_until_signal(app, host, port, on_listening, sock, private)
            except OSError as exc:
                raise click.ClickException(
                    f"cannot listen on {host}:{port}: {exc.strerror or exc}; pick another --port (0 picks a free one)"
                ) from None
        finally:
            for tier in tiers:
                getattr(tier, "close", lambda: None)()  # a tier's threads stop before the store closes
            store.close()

    try:
        if workers == 1:
            serve()
        else:
            _serve_workers(workers, host, port, serve, announce, lambda: _store_location(cache_dir, store_url, namespace))
    finally:
        if not started.is_set():
            _remove(created)  # a proxy that never started leaves no cache directory behind


def _sim_config(strict_models: bool, upstream: str, anthropic_upstream: str) -> Any:
    """The in-process simulator's settings (None: its defaults); --sim-strict-models needs one."""
    from pytest_seedreplay.core.constants import SIM_UPSTREAM

    if not strict_models:
        return None
    if SIM_UPSTREAM not in (upstream, anthropic_upstream):
        raise click.UsageError("--sim-strict-models applies to the built-in simulator: add --upstream sim")
    from pytest_seedreplay.proxy.sim import SimConfig

    return SimConfig(strict_models=True)


def _missing_dir(target: str) -> Path | None:
    """The outermost directory that opening a disk store at `target` would create, or None."""
    if "://" in target:
        return None
    path = Path(target).absolute()
    if path.exists():
        return None
    while not path.parent.exists():
        path = path.parent
    return path


def _remove(created: Path | None) -> None:
    if created is not None:
        shutil.rmtree(created, ignore_errors=True)


def _store_location(cache_dir: str | None, store_url: str | None, namespace: str | None) -> str:
    """Open the store once before the workers start (a store that cannot open is said once, not by
    each of them) and say where it is."""
    try:
        store = open_store(cache_dir, store_url, namespace)
    except Exception as exc:
        raise click.ClickException(f"cannot open the store: {exc}") from None
    try:
        return store.location
    finally:
        store.close()


def _serve_workers(
    count: int,
    host: str,
    port: int,
    serve: Any,
    announce: Callable[[str, str, list[str]], None],
    location: Callable[[], str],
) -> None:
    """--workers N: fork N workers on one port (see pytest_seedreplay.proxy.workers); exit as they did."""
    from pytest_seedreplay.proxy.workers import run_workers

    where = location()

    def one(worker: Any, listening: Callable[[str], None]) -> None:
        # Each worker's log lines say which worker they come from.
        for handler in logging.getLogger().handlers:
            handler.setFormatter(logging.Formatter(f"%(asctime)s %(levelname)s %(name)s[worker {worker.number}]: %(message)s"))
        try:
            serve(worker, listening)
        except click.ClickException as exc:
            exc.show()
            raise SystemExit(exc.exit_code) from None

    def on_listening(root: str) -> None:
        announce(root, where, [f"serving from {count} worker processes"])

    try:
        status = run_workers(count, host, port, one, on_listening)
    except OSError as exc:
        raise click.ClickException(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}; pick another --port (0 picks a free one)"
        ) from None
    if status:
        raise click.exceptions.Exit(status)


def _warm_secret_scan() -> None:
    """Build the catalogue of credential shapes (detect-secrets: ~0.1-0.3 s) beside the startup, not on
    the first miss, which searches its request with it before recording."""
    from ..core.redact import catalogue

    def warm() -> None:
        try:
            catalogue()
        except Exception as exc:  # out of file descriptors, say: the first miss builds it (lru_cache keeps no failure)
            logging.getLogger("seedreplay.proxy").warning(
                "building the secret catalogue at start failed (%s); the first miss builds it", exc
            )

    threading.Thread(target=warm, name="seedreplay-warm-up", daemon=True).start()


def _finetune_tier(spec: str, manifest: str, guard: bool, store_answers: bool, store):
    """--finetune: the manifest version's tier, or a one-line error naming what to fix."""
    from ..finetune.manifest import ManifestError
    from ..finetune.serving import finetune_tier, other_models_warning

    try:
        tier = finetune_tier(spec, manifest, guard=guard, store_answers=store_answers, recordings=store)
    except ManifestError as exc:
        raise click.ClickException(f"--finetune {spec}: {exc}") from None
    warning = other_models_warning(tier.finetune.base_model, store)
    if warning:
        click.echo(warning, err=True)
    return tier


def _the_token(token: str | None, token_file: Path | None) -> str | None:
    """The token from --token / $SEEDREPLAY_TOKEN or from --token-file (not both); warns when it was
    typed on the command line, where every user of the machine can read it."""
    source = click.get_current_context().get_parameter_source("token")
    if token_file is not None:
        if token:
            where = f"${ENV_TOKEN}" if source == ParameterSource.ENVIRONMENT else "--token"
            raise click.UsageError(f"give the token once: --token-file {token_file} or {where}, not both")
        return _read_token_file(token_file)
    if token and source == ParameterSource.COMMANDLINE:
        click.echo(
            f"warning: --token on the command line is visible to other users (ps); set {ENV_TOKEN} or use --token-file",
            err=True,
        )
    if token is not None and not token.strip():
        raise click.BadParameter("the token is empty", param_hint=f"--token / ${ENV_TOKEN}")
    return _checked(token.strip(), f"--token / ${ENV_TOKEN}") if token else None


def _checked(token: str, where: str) -> str:
    from pytest_seedreplay.proxy.config import check_token

    try:
        return check_token(token)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=where) from None


def _read_token_file(path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8")
        mode = path.stat().st_mode
    except (OSError, UnicodeDecodeError) as exc:
        raise click.BadParameter(
            f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}", param_hint="--token-file"
        ) from None
    lines = text.splitlines()
    token = lines[0].strip() if lines else ""
    if not token:
        raise click.BadParameter(f"{path} is empty; write the token on its first line", param_hint="--token-file")
    _checked(token, f"--token-file {path}")
    if os.name == "posix" and mode & (stat.S_IRGRP | stat.S_IROTH):
        click.echo(f"warning: {path} can be read by other users; chmod 600 {path}", err=True)
    return token
