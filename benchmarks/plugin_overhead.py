"""What the pytest plugin costs a project that makes no OpenAI call, and what loading a cassette costs.

Part 1, the plugin's overhead: a small project whose tests make no OpenAI call (`--tests`, default 1)
is run as whole `python -m pytest` processes with the plugin (opted in with `--seedreplay=replay`, and
installed but not opted in) and without it,
alternating, `--runs` times each (default 9), in two environments:
- as installed: every pytest plugin of this environment loads; the run without ours is `-p no:seedreplay`;
- pytest + seedreplay only: `PYTEST_DISABLE_PLUGIN_AUTOLOAD=1`, ours loaded with `-p pytest_seedreplay.plugin`
  against plain pytest, as in a project that installs only us.
Printed: the median wall time of each, the ratio, and each one's median peak RSS (from `os.wait4`, the
child's own rusage). Target: with / without <= 1.1x.

Part 2, loading a cassette: 1,000 seeded chat answers (`--interactions`) are recorded from the
simulator (its own process) and written with `write_cassette`, once plain and once streamed. Each
cassette is then loaded `--loads` times (default 7), alternating, by:
- `read_cassette`: what a test pays for its cassette (YAML, re-keying every interaction, SSE parsing);
- `yaml.load` with libyaml's CSafeLoader (`yaml.safe_load` when PyYAML lacks libyaml): the YAML alone,
  the baseline;
- vcrpy's own cassette loader (`vcr.serialize.deserialize`), what plain vcrpy pays for the same file.
Target: `read_cassette` of 1,000 plain interactions <= 150 ms.

`--imports` also prints the imports on the plugin's load path, from `python -X importtime -m pytest`
in the same project: the modules the plugin brings in that a run without it does not, costliest first.

Bytecode: the runs have .pyc files, as an installed package has (pip writes them); `--no-bytecode`
times runs that compile the plugin's source every time (PYTHONDONTWRITEBYTECODE=1, as some CI images set).

Run: python benchmarks/plugin_overhead.py [--runs 9] [--tests 1] [--interactions 1000] [--loads 7] [--imports] [--no-bytecode]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import _load
import aiohttp
import vcr
import vcr.serialize
import yaml
from _load import AUTH, CHAT, ServerProcess, chat_body, median, sim_app, table
from vcr.serializers import yamlserializer

from pytest_seedreplay.store.cassette import interaction_to_entry, read_cassette, write_cassette

RECORD_CONCURRENCY = 16


# --- part 1: a pytest run with and without the plugin ---------------------------------------------


def make_project(root: Path, tests: int) -> Path:
    """A project whose tests make no OpenAI call: what most projects with the plugin installed are."""
    project = root / "project"
    project.mkdir()
    (project / "pytest.ini").write_text("[pytest]\n")
    body = "\n\n".join(f"def test_{i}():\n    assert sum(range({i + 10})) > 0" for i in range(tests))
    (project / "test_plain.py").write_text(body + "\n")
    return project


@dataclass(frozen=True)
class Setup:
    """One way to run the project with and without the plugin."""

    name: str
    with_plugin: tuple[str, ...]
    without: tuple[str, ...]
    only_named_plugins: bool  # PYTEST_DISABLE_PLUGIN_AUTOLOAD: no other installed plugin loads


BYTECODE = True  # --no-bytecode: every timed run compiles the plugin's source (PYTHONDONTWRITEBYTECODE=1)

SETUPS = [
    # Every pytest plugin of this environment loads in both runs (here pytest-aiohttp, -asyncio, -xdist, ...).
    # Opted in for the whole run (the port reserved, the environment set, the guard armed) ...
    Setup("as installed, opted in", ("--seedreplay=replay",), ("-p", "no:seedreplay"), False),
    # ... and installed but not opted in: the plugin must change nothing, and cost next to nothing.
    Setup("as installed, not opted in", (), ("-p", "no:seedreplay"), False),
    # A project that installs only pytest and seedreplay: the plugin's whole cost.
    Setup("pytest + seedreplay only, opted in", ("-p", "pytest_seedreplay.plugin", "--seedreplay=replay"), (), True),
    Setup("pytest + seedreplay only, not opted in", ("-p", "pytest_seedreplay.plugin"), (), True),
]


def pytest_command(setup: Setup, plugin: bool) -> list[str]:
    return [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *(setup.with_plugin if plugin else setup.without)]


def project_env(setup: Setup) -> dict[str, str]:
    # The project's own run: no pytest options or seedreplay settings inherited from the caller.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "SEEDREPLAY_", "OPENAI_"))}
    # Bytecode as a user has it: pip writes .pyc files at install (pytest's own are there too), so the
    # warm-up run may write ours; PYTHONDONTWRITEBYTECODE in the caller's shell would make every timed
    # run compile the plugin's source instead (--no-bytecode measures that case).
    if BYTECODE:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
    else:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    if setup.only_named_plugins:
        env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    return env


def run_once(setup: Setup, plugin: bool, cwd: Path) -> tuple[float, float]:
    """(seconds, peak RSS in MiB) of one whole pytest process; the rusage is this child's own."""
    command = pytest_command(setup, plugin)
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=project_env(setup))
    output = process.stdout.read() if process.stdout else b""
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({process.returncode}):\n{output.decode(errors='replace')}")
    return seconds, usage.ru_maxrss / 1024  # KiB on Linux


def plugin_overhead(setup: Setup, project: Path, runs: int) -> dict[bool, list[tuple[float, float]]]:
    """{with the plugin?: [(seconds, peak MiB)]}, `runs` of each, alternating which goes first."""
    results: dict[bool, list[tuple[float, float]]] = {True: [], False: []}
    run_once(setup, True, project)  # warm the file cache and .pyc files: not measured
    run_once(setup, False, project)
    for r in range(runs):
        for plugin in [True, False] if r % 2 == 0 else [False, True]:
            results[plugin].append(run_once(setup, plugin, project))
    return results


# --- the plugin's imports ---------------------------------------------------------------------------

_IMPORT_LINE = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)")


def imported(project: Path, plugin: bool) -> list[tuple[str, int, int, int]]:
    """(module, self µs, cumulative µs, depth) for each import of a pytest run, in the order Python reports them."""
    setup = SETUPS[1]  # only the plugin loads: every extra import is ours
    command = pytest_command(setup, plugin)
    # -s: pytest's capture of fd 2 would swallow what is imported once the session has started.
    process = subprocess.run(
        [command[0], "-X", "importtime", *command[1:], "-s"],
        cwd=project,
        capture_output=True,
        text=True,
        env=project_env(setup),
        check=True,
    )
    rows = []
    for line in process.stderr.splitlines():
        match = _IMPORT_LINE.match(line)
        if match:
            rows.append((match[4], int(match[1]), int(match[2]), len(match[3]) // 2))
    return rows


def plugin_imports(project: Path, limit: int = 25) -> str:
    """The modules imported on the plugin's load path that a run without the plugin does not import."""
    without = {name for name, *_ in imported(project, plugin=False)}
    extra = [row for row in imported(project, plugin=True) if row[0] not in without]
    by_package: dict[str, int] = {}
    for name, own, _, _ in extra:
        by_package[name.split(".")[0]] = by_package.get(name.split(".")[0], 0) + own
    total_ms = sum(own for _, own, _, _ in extra) / 1000
    lines = [f"modules imported only with the plugin: {len(extra)}, {total_ms:.0f} ms of import time in all"]
    lines.append(
        "by package (own import time): "
        + ", ".join(
            f"{name} {us / 1000:.0f} ms" for name, us in sorted(by_package.items(), key=lambda item: -item[1]) if us >= 1000
        )
    )
    heavy = sorted(extra, key=lambda row: -row[2])[:limit]
    lines.append(
        table(
            ["module (costliest first, by cumulative time)", "depth", "cumulative ms", "own ms"],
            [[name, depth, cumulative / 1000, own / 1000] for name, own, cumulative, depth in heavy],
        )
    )
    return "\n".join(lines)


# --- part 2: loading a cassette -----------------------------------------------------------------------


async def _ask_all(sim: str, bodies: list[dict[str, Any]]) -> list[tuple[int, dict[str, str], bytes]]:
    gate = asyncio.Semaphore(RECORD_CONCURRENCY)

    async def one(session: aiohttp.ClientSession, body: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
        async with gate, session.post(sim + CHAT, data=json.dumps(body), headers=AUTH) as response:
            return response.status, dict(response.headers), await response.read()

    async with aiohttp.ClientSession() as session:
        return await asyncio.gather(*(one(session, body) for body in bodies))


def record_cassette(sim: str, path: Path, n: int, stream: bool) -> None:
    """n distinct seeded chat answers from the simulator, written as one cassette by `write_cassette`."""
    bodies = [chat_body(seed, content=f"Question {seed}: name a fact about the moon.", stream=stream) for seed in range(1, n + 1)]
    entries = []
    for body, (status, headers, answer) in zip(bodies, asyncio.run(_ask_all(sim, bodies)), strict=True):
        if status != 200:
            raise SystemExit(f"the simulator answered HTTP {status}: {answer[:200]!r}")
        interaction = {
            "request": {"method": "POST", "uri": sim + CHAT, "body": json.dumps(body), "headers": {}},
            "response": {
                "status": {"code": status, "message": "OK"},
                "headers": {name.lower(): [value] for name, value in headers.items()},
                "body": {"string": answer.decode("utf-8")},
            },
        }
        entry = interaction_to_entry(interaction)
        if entry is None:
            raise SystemExit(f"the simulator's answer to seed {body['seed']} is not a whole answer")
        entries.append(entry)
    write_cassette(path, entries)


def libyaml_load(path: Path) -> Any:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return yaml.load(path.read_text(encoding="utf-8"), Loader=loader)


def vcrpy_load(path: Path) -> Any:
    return vcr.serialize.deserialize(path.read_text(encoding="utf-8"), yamlserializer)


@dataclass
class Loads:
    wall_ms: list[float]
    cpu_ms: list[float]  # this process's CPU time: what a busy machine adds to the wall time is not in it


def load_times(path: Path, loads: int, n: int) -> dict[str, Loads]:
    readers: dict[str, Callable[[Path], Any]] = {
        "read_cassette": read_cassette,
        "yaml.load, " + ("CSafeLoader" if yaml.__with_libyaml__ else "SafeLoader") + " (YAML only)": libyaml_load,
        "vcrpy's cassette loader": vcrpy_load,
    }
    if len(read_cassette(path)) != n:
        raise SystemExit(f"{path}: read_cassette did not find the {n} recorded answers")
    times = {name: Loads([], []) for name in readers}
    for r in range(loads):
        names = list(readers) if r % 2 == 0 else list(reversed(readers))
        for name in names:
            started, cpu = time.perf_counter(), time.process_time()
            readers[name](path)
            times[name].wall_ms.append((time.perf_counter() - started) * 1000)
            times[name].cpu_ms.append((time.process_time() - cpu) * 1000)
    return times


# --- report ---------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=9, help="pytest processes of each kind, alternating (default 9)")
    parser.add_argument("--tests", type=int, default=1, help="tests in the project, none calls OpenAI (default 1)")
    parser.add_argument("--interactions", type=int, default=1000, help="interactions per cassette (default 1000)")
    parser.add_argument("--loads", type=int, default=7, help="loads of each cassette by each reader (default 7)")
    parser.add_argument("--imports", action="store_true", help="also list the imports on the plugin's load path")
    parser.add_argument(
        "--no-bytecode",
        action="store_true",
        help="time runs that write no .pyc (PYTHONDONTWRITEBYTECODE=1, as some CI images set)",
    )
    args = parser.parse_args()
    global BYTECODE
    BYTECODE = not args.no_bytecode
    work = Path(_load.scratch_dir())
    print(f"plugin overhead and cassette loading | {_load.machine()} | libyaml {yaml.__with_libyaml__} | {_load.load_average()}")

    project = make_project(work, args.tests)
    bytecode = ".pyc written by the warm-up run" if BYTECODE else "no .pyc: every run compiles"
    print(
        f"\n1. pytest, {args.tests} test(s) making no OpenAI call: {args.runs} whole-process runs of each, "
        f"alternating ({bytecode})"
    )
    rows, verdicts = [], []
    for setup in SETUPS:
        runs = plugin_overhead(setup, project, args.runs)
        for plugin, label in ((True, "with the plugin"), (False, "without")):
            seconds = [s for s, _ in runs[plugin]]
            rows.append(
                [
                    setup.name,
                    label + " " + " ".join(pytest_command(setup, plugin)[6:]),
                    median(seconds),
                    min(seconds),
                    max(seconds),
                    median(m for _, m in runs[plugin]),
                ]
            )
        ours, bare = median(s for s, _ in runs[True]), median(s for s, _ in runs[False])
        extra_mib = median(m for _, m in runs[True]) - median(m for _, m in runs[False])
        verdicts.append(
            f"{setup.name}: plugin / without {ours / bare:.2f}x, +{(ours - bare) * 1000:.0f} ms, "
            f"+{extra_mib:.0f} MiB peak RSS (target <= 1.1x: {'OK' if ours / bare <= 1.1 else 'MISSED'})"
        )
    print(table(["environment", "pytest run", "median s", "min s", "max s", "peak RSS MiB"], rows))
    print("\n".join(verdicts))

    print(f"\n2. loading a cassette of {args.interactions} chat answers: median of {args.loads} loads each, alternating")
    rows = []
    with ServerProcess(sim_app) as sim:
        cassettes = {}
        for stream in (False, True):
            path = work / f"{'streamed' if stream else 'plain'}.yaml"
            record_cassette(sim, path, args.interactions, stream)
            cassettes[stream] = path
    plain_ms = None
    for stream, path in cassettes.items():
        times = load_times(path, args.loads, args.interactions)
        kind = f"{'streamed' if stream else 'plain'} ({path.stat().st_size / 1e6:.1f} MB)"
        for name, loads in times.items():
            rows.append([kind, name, median(loads.wall_ms), min(loads.wall_ms), median(loads.cpu_ms)])
        if not stream:
            plain_ms = median(times["read_cassette"].wall_ms)
    print(table(["cassette", "reader", "median ms", "min ms", "median CPU ms"], rows))
    verdict = "OK" if plain_ms is not None and plain_ms <= 150 else "MISSED"
    print(f"read_cassette, {args.interactions} plain interactions: {plain_ms:.0f} ms (target <= 150 ms: {verdict})")

    if args.imports:
        print("\n3. imports on the plugin's load path (python -X importtime -m pytest, same project)")
        print(textwrap.indent(plugin_imports(project), "  "))
    print(f"\n{_load.load_average()}")


if __name__ == "__main__":
    main()
