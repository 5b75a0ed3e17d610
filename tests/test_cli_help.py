"""Every command's --help follows one convention: a summary that is a whole sentence in the command
lists, and a placeholder that names what each option's value is, the same for the same flag everywhere."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import click
from click.testing import CliRunner

from pytest_seedreplay.cli import main

GENERIC = re.compile(r"\b(TEXT|INTEGER|FLOAT|BOOLEAN|UUID|RANGE)\b")


def commands(group: click.Group = main, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    yield path, group
    for name, sub in group.commands.items():
        if isinstance(sub, click.Group):
            yield from commands(sub, (*path, name))
        else:
            yield (*path, name), sub


def option_lines(text: str) -> list[str]:
    """The lines of a help page's Options section that start an option (`  --store URL  ...`)."""
    section = text.split("Options:", 1)[1].split("Commands:", 1)[0]
    return [line.strip() for line in section.splitlines() if line.lstrip().startswith("-")]


def placeholder(line: str) -> tuple[str, str]:
    """(the long flag, its placeholder) of an option line: `--store URL  Store...` -> ("--store", "URL")."""
    head = re.split(r"\s{2,}", line, maxsplit=1)[0]
    flags = [part for part in head.split(", ")]
    long, _, shown = flags[-1].partition(" ")
    return long, shown


def test_every_help_page_names_each_value_and_the_same_flag_the_same_way() -> None:
    seen: dict[str, set[str]] = defaultdict(set)
    pages = 0
    for path, _command in commands():
        result = CliRunner().invoke(main, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)
        pages += 1
        for line in option_lines(result.output):
            long, shown = placeholder(line)
            assert not GENERIC.search(shown), f"seedreplay {' '.join(path)} {long} {shown}: name the value, not its type"
            if shown:
                seen[long].add(shown)
    assert pages > 20
    differing = {flag: shown for flag, shown in seen.items() if len(shown) > 1}
    assert differing == {}, differing
    for flag in ("--store", "--upstream", "--base-url"):
        assert seen[flag] == {"URL"}, flag
    assert seen["--paraphrases"] == {"FILE"} and seen["--paraphrase-count"] == {"N"}


def test_every_command_list_shows_whole_summaries() -> None:
    for path, command in commands():
        if not isinstance(command, click.Group):
            continue
        text = CliRunner().invoke(main, [*path, "--help"]).output
        listed = text.split("Commands:", 1)[1].strip().splitlines()
        assert len(listed) == len(command.commands)
        for line in listed:
            assert not line.endswith("..."), f"seedreplay {' '.join(path)}: {line.strip()} is cut"


def readme_invocations() -> Iterator[tuple[str, list[str], list[str]]]:
    """(line, command path, --flags) of every `seedreplay ...` command in the README's code blocks."""
    text = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    fence = None  # the language of the code block we are in, or None outside one
    for line in text.splitlines():
        if line.startswith("```"):
            fence = None if fence is not None else (line[3:].strip() or "text")
            continue
        if fence in ("bash", "sh", "text"):
            for found in re.finditer(r"(?:^|[\s/])seedreplay ((?:[a-z]+ ?){1,2})(.*?)(?:#|&&|\||$)", line):
                words = found.group(1).split()
                flags = re.findall(r"(?<![\w-])(--[a-z][a-z-]*)", found.group(2))
                yield line, words, flags


def test_the_readme_uses_only_flags_the_commands_have() -> None:
    checked = 0
    for line, words, flags in readme_invocations():
        command: click.Command = main
        for word in words:
            if isinstance(command, click.Group) and word in command.commands:
                command = command.commands[word]
        if command is main:
            continue  # `seedreplay proxy listening on ...`: output, not a command
        known = {opt for param in command.params for opt in getattr(param, "opts", [])} | {"--help"}
        for flag in flags:
            assert flag in known, f"README: {line.strip()!r}: seedreplay {command.name} has no {flag}"
            checked += 1
    assert checked > 20
