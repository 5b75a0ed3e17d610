"""The `seedreplay` command: one click group, `key` here, each feature's subcommands in their own module."""

from __future__ import annotations

import json

import click

from ..core.constants import CHAT
from ..core.key import UnkeyableRequest, canonical_json, canonical_request, key_of_canonical
from ..core.version import __version__
from . import conventions
from .cache import command as cache_command
from .demo import command as demo_command
from .finetune import command as finetune_command
from .proxy import command as proxy_command
from .sim import command as sim_command
from .similar import command as similar_command


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="seedreplay")
def main() -> None:
    """Record/replay cache for the OpenAI API: proxy, simulator, cache tools and pytest plugin.

    Each command has its own --help."""


@main.command("key")
@click.option("--path", "path", default=CHAT, show_default=True, help="Endpoint the body is sent to.")
@click.option(
    "--header",
    "headers",
    multiple=True,
    metavar="NAME:VALUE",
    help="A request header the key takes (Anthropic's anthropic-version and anthropic-beta on /v1/messages); repeatable.",
)
@click.argument("request_file", type=click.File("rb"), default="-")
def key_command(path: str, headers: tuple[str, ...], request_file) -> None:
    """Print the request key of a JSON body.

    The body is REQUEST_FILE's (stdin when none); the canonical form it hashed follows the key."""
    pairs = []
    for header in headers:
        name, colon, value = header.partition(":")
        if not colon or not name.strip():
            raise click.BadParameter(f"{header!r} is not NAME:VALUE (e.g. anthropic-version:2023-06-01)", param_hint="--header")
        pairs.append((name.strip(), value.strip()))
    # Bytes in: json.loads detects UTF-8/16/32 itself, and bad bytes become an error line, not a traceback.
    text = request_file.read()
    source = getattr(request_file, "name", "<stdin>")
    # What the file holds is not a usage error: like every command's, it exits 1 with click's `Error:`.
    try:
        body = json.loads(text)
        canonical = canonical_request(path, body, pairs)
    except json.JSONDecodeError as exc:
        raise click.ClickException(f"{source} is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    except UnicodeDecodeError as exc:
        raise click.ClickException(f"{source} is not valid JSON (not UTF-8 text: {exc.reason} at byte {exc.start})") from None
    except UnkeyableRequest as exc:
        raise click.ClickException(f"{source}: {exc}") from None
    click.echo(key_of_canonical(canonical))
    # The exact bytes hashed (surrogatepass: a lone "\ud800" escape is valid JSON but not UTF-8).
    click.echo(canonical_json(canonical).encode("utf-8", "surrogatepass"))


main.add_command(sim_command)
main.add_command(proxy_command)
main.add_command(cache_command)
main.add_command(demo_command)
main.add_command(finetune_command)
main.add_command(similar_command)
conventions.apply(main)
