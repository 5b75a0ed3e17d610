"""A real project's test suite with and without seedreplay installed: the same pass/fail, or not?

Installed must not mean active: a project that has not opted in should see no change at all. This
script measures it on a checkout of any project whose suite runs offline (pytest-httpx mocks,
vcrpy / pytest-recording cassettes): it runs the suite in a virtualenv without seedreplay, installs
seedreplay from a source tree into the same virtualenv, runs the suite again, uninstalls it, and prints
both outcomes and every test whose outcome changed. Nothing is fetched but PyPI packages (pip).

    python benchmarks/real_suites.py CHECKOUT --seedreplay SRC [--venv DIR] [--install SPEC ...]
        [--opted-in ARGS ...] [-- pytest ARGS]

CHECKOUT: the project's source tree (the suite runs there). SRC: a seedreplay source tree (this
repository, or another worktree). --venv: a virtualenv with the project and its test dependencies
already installed; without it one is made at CHECKOUT/.venv-real-suites and `pip install` is given
the --install SPECs, run in CHECKOUT (default `-e .`; e.g. --install '-e .[test]' --install
'datasette==1.0a26'). The
command after `--` (default `pytest -q -p no:cacheprovider`) runs with the venv's python; a leading
`pytest` becomes `python -m pytest`, and a JUnit XML report is added to read each test's outcome.
Each --opted-in ARGS (repeatable, run in order while seedreplay is installed) runs the suite once more
with those pytest arguments appended, e.g. --opted-in '--seedreplay=record --seedreplay-upstream sim
-o seedreplay_cassette_dir=/tmp/c' --opted-in '-o seedreplay_mode=replay -o seedreplay_cassette_dir=/tmp/c':
its outcome is listed against the run without seedreplay (the exit status counts only the not-opted-in run).
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ElementTree
from collections import Counter
from pathlib import Path

DEFAULT_COMMAND = ["pytest", "-q", "-p", "no:cacheprovider"]
# A shell's seedreplay settings would opt the project in: the measurement is of a clean environment.
CLEARED_ENV = ("OPENAI_BASE_URL", "PYTEST_ADDOPTS", "PYTEST_PLUGINS")


def main() -> int:
    args = parse_args()
    checkout = args.checkout.resolve()
    venv = args.venv.resolve() if args.venv else make_venv(checkout, args.install)
    python = venv / "bin" / "python"
    command = args.command or DEFAULT_COMMAND
    pip(python, "uninstall", "-y", "pytest-seedreplay", check=False)

    print(f"project:    {checkout} @ {commit_of(checkout)}")
    print(f"seedreplay: {args.seedreplay} @ {commit_of(args.seedreplay)}")
    print(f"command:    {' '.join(command)}  (in {checkout}, python {venv}/bin/python)")
    without = run_suite(python, checkout, command)
    pip(python, "install", "-q", "-e", str(args.seedreplay))
    try:
        with_it = run_suite(python, checkout, command)
        opted_in = [(extra, run_suite(python, checkout, [*command, *shlex.split(extra)])) for extra in args.opted_in]
    finally:
        pip(python, "uninstall", "-y", "-q", "pytest-seedreplay", check=False)

    print(f"without seedreplay: {counts_line(without)}")
    changed = compare("with seedreplay", without, with_it)
    for extra, found in opted_in:
        # Opted in, a test may rightly change (a replay miss of an unmocked call): listed, not counted.
        compare(f"opted in, {extra}", without, found)
    return 0 if not changed else 1


def compare(label: str, without: dict[str, str], found: dict[str, str]) -> list[str]:
    """Print a run's counts and every test whose outcome differs from the run without seedreplay."""
    print(f"{label}: {counts_line(found)}")
    changed = sorted(name for name in without.keys() | found.keys() if without.get(name) != found.get(name))
    for name in changed:
        print(f"  {name}: {without.get(name, 'not run')} -> {found.get(name, 'not run')}")
    print("  same outcome for every test" if not changed else f"  {len(changed)} test(s) changed outcome")
    return changed


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkout", type=Path, help="the project's source tree")
    parser.add_argument("--seedreplay", type=Path, required=True, help="a seedreplay source tree to install")
    parser.add_argument("--venv", type=Path, help="a virtualenv with the project and its test deps installed")
    parser.add_argument("--install", action="append", default=[], metavar="SPEC", help="pip install it in a new venv")
    parser.add_argument(
        "--opted-in",
        action="append",
        default=[],
        metavar="ARGS",
        help="after the two runs, run again with seedreplay installed and these pytest args (in order)",
    )
    argv = sys.argv[1:]
    split = argv.index("--") if "--" in argv else len(argv)
    args = parser.parse_args(joined_values(argv[:split], "--opted-in"))
    args.command = argv[split + 1 :]
    return args


def joined_values(argv: list[str], flag: str) -> list[str]:
    """`FLAG VALUE` as `FLAG=VALUE`: argparse takes a value such as '-o x=y' for an option otherwise."""
    joined: list[str] = []
    words = iter(argv)
    for word in words:
        joined.append(f"{word}={next(words, '')}" if word == flag else word)
    return joined


def make_venv(checkout: Path, install: list[str]) -> Path:
    venv = checkout / ".venv-real-suites"
    if not (venv / "bin" / "python").exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        specs = [word for spec in install or ["-e ."] for word in shlex.split(spec)]
        pip(venv / "bin" / "python", "install", "-q", *specs, cwd=checkout)
    return venv


def pip(python: Path, *args: str, check: bool = True, cwd: Path | None = None) -> None:
    done = subprocess.run([str(python), "-m", "pip", *args], cwd=cwd, capture_output=True, text=True, check=False)
    if check and done.returncode != 0:
        raise SystemExit(f"pip {' '.join(args)} failed:\n{done.stderr[-3000:]}")


def commit_of(tree: Path) -> str:
    done = subprocess.run(["git", "-C", str(tree), "rev-parse", "HEAD"], capture_output=True, text=True, check=False)
    return done.stdout.strip() or "(not a git checkout)"


def run_suite(python: Path, checkout: Path, command: list[str]) -> dict[str, str]:
    """Each test's outcome (passed, failed, error, skipped) as JUnit XML reports it."""
    if command[0] == "pytest":
        command = [str(python), "-m", "pytest", *command[1:]]
    env = {name: value for name, value in os.environ.items() if name not in CLEARED_ENV and not name.startswith("SEEDREPLAY_")}
    env["PATH"] = f"{python.parent}{os.pathsep}{env.get('PATH', '')}"
    with tempfile.TemporaryDirectory() as folder:
        report = Path(folder) / "junit.xml"
        done = subprocess.run(
            [*command, f"--junitxml={report}"], cwd=checkout, env=env, capture_output=True, text=True, check=False
        )
        last = done.stdout.strip().splitlines()[-1:] or ["(no output)"]
        print(f"  pytest said: {last[0]} (exit {done.returncode})")
        found = outcomes(report) if report.exists() else {}
        if not found and done.returncode not in (0, 5):  # 5: no tests collected
            # A crash before any test ran (an INTERNALERROR, a usage error): that is the outcome.
            print("\n".join(f"    {line}" for line in (done.stdout + done.stderr).strip().splitlines()[-5:]))
            found = {"(the whole run)": f"crashed, exit {done.returncode}"}
        return found


def outcomes(report: Path) -> dict[str, str]:
    found = {}
    for case in ElementTree.parse(report).getroot().iter("testcase"):
        name = f"{case.get('classname')}::{case.get('name')}"
        kinds = {child.tag for child in case}
        found[name] = next((_SAID[kind] for kind in ("error", "failure", "skipped") if kind in kinds), "passed")
    return found


_SAID = {"error": "error", "failure": "failed", "skipped": "skipped"}  # JUnit's words, as pytest says them


def counts_line(found: dict[str, str]) -> str:
    counts = Counter(found.values())
    said = [f"{counts[kind]} {kind}" for kind in ("passed", "failed", "error", "skipped") if counts[kind]]
    return ", ".join(said) or "nothing ran"


if __name__ == "__main__":
    raise SystemExit(main())
