"""The end of the session: the figures every test sent (from xdist workers too), the summary lines
the terminal shows, and the `--seedreplay-orphans` listing (cassettes and recordings no test uses)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .policy import Mode
from .recorder import shown
from .savings import SavingsTally, prices_from
from .session import NO_REQUESTS
from .store.cassette import CassetteError, read_cassette

if TYPE_CHECKING:
    from .core.entry import Entry

SHOWN_LINES = 20  # paths or drifted answers listed in the summary before "... and N more"
CATEGORIES = ("replayed", "recorded", "live_compared", "drifted", "missing", "upstream_errors", "unsaved")


@dataclass
class Tally:
    """The session's figures, added up from each test's payload (local or from xdist workers)."""

    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CATEGORIES, 0))
    tests: list[dict[str, Any]] = field(default_factory=list)
    saved: SavingsTally = field(default_factory=SavingsTally)

    def add(self, payload: dict[str, Any]) -> None:
        for name in CATEGORIES:
            self.counts[name] += int(payload.get(name, 0))
        self.saved.merge(payload.get("saved") or {})
        self.tests.append(payload)

    @property
    def written(self) -> list[str]:
        return sorted({t["cassette"] for t in self.tests if t.get("written")})

    def used_by_cassette(self) -> dict[str, set[tuple[str, int]]]:
        used: dict[str, set[tuple[str, int]]] = {}
        for test in self.tests:
            if test.get("mode") != Mode.OFF:
                used.setdefault(test["cassette"], set()).update((k, int(n)) for k, n in test.get("used", []))
        return used

    def fully_run(self, collected: dict[str, set[str]]) -> list[str]:
        """Cassettes whose every test (every collected one that maps to it, deselected ones too) ran
        to its end: only in those is a recording that nobody asked for really unused."""
        ran: dict[str, list[dict[str, Any]]] = {}
        for test in self.tests:
            if test.get("mode") != Mode.OFF:
                ran.setdefault(test["cassette"], []).append(test)
        done = []
        for cassette, tests in ran.items():
            finished = {t["nodeid"] for t in tests if t.get("completed")}
            if len(finished) == len(tests) and collected.get(cassette, set()) <= finished:
                done.append(cassette)
        return sorted(done)

    def summary_lines(self, mode: str, cassette_dir: Path, record_options: str = "") -> list[str]:
        c = self.counts
        if not any(c.values()) and not self.written:
            return [NO_REQUESTS]
        lines = [
            f"replayed: {c['replayed']} interaction(s)",
            f"recorded: {c['recorded']} interaction(s)",
            f"live-compared: {c['live_compared']} interaction(s)",
            f"drifted: {c['drifted']} interaction(s)",
            *self._verdicts(),
            f"missing: {c['missing']} interaction(s)" + (self._record_hint(mode, record_options) if c["missing"] else ""),
        ]
        if self.saved.hits:
            lines.append(f"saved: {self.saved.line(prices_from())}")
        if c["upstream_errors"]:
            lines.append(f"upstream errors: {c['upstream_errors']} request(s) got an error answer (never recorded)")
            first = next(t for t in self.tests if t.get("upstream_error"))
            lines.append(f"  first, in {first['nodeid']}: HTTP {first['upstream_error']}")
        if c["unsaved"]:
            lines.append(f"not saved: {c['unsaved']} interaction(s) of failing tests (--seedreplay-keep-failed saves them)")
        written = self.written
        if written:
            lines.append(f"cassettes written: {len(written)} under {shown(cassette_dir)}")
            lines += [f"  {shown(path)}" for path in written[:SHOWN_LINES]]
            if len(written) > SHOWN_LINES:
                lines.append(f"  ... and {len(written) - SHOWN_LINES} more")
        elif mode == Mode.LIVE:
            lines.append("cassettes written: none (live mode writes nothing)")
        else:
            lines.append(f"cassettes written: none (cassette dir {shown(cassette_dir)})")
        return lines + self.drift_lines() + self.finetune_lines()

    def _verdicts(self) -> list[str]:
        """A line per verdict of the live comparisons, worst first (none when nothing was compared)."""
        counts: dict[str, int] = {}
        for test in self.tests:
            for data in test.get("drift", []):
                if data.get("recorded", True):
                    verdict = str(data.get("verdict") or ("changed" if data.get("drifted") else "identical"))
                    counts[verdict] = counts.get(verdict, 0) + 1
        if not counts:
            return []
        meaning = {"changed": "the behaviour differs", "reworded": "the same behaviour, other words", "identical": ""}
        return [f"  {v}: {counts.get(v, 0)}" + (f" ({meaning[v]})" if meaning[v] else "") for v in meaning]

    @staticmethod
    def _record_hint(mode: str, options: str) -> str:
        command = " ".join(filter(None, ["pytest --seedreplay=record", options]))
        if mode == Mode.LIVE:
            return f" (no recording to compare with; record them: {command})"
        return f" (record them: {command})"

    def finetune_lines(self) -> list[str]:
        """The live fine-tune comparison's verbatim recall, for the run and per test."""
        if not any(t.get("finetune") for t in self.tests):
            return []
        from .finetune.live import summary_lines  # only a live fine-tune run has recall to show

        return summary_lines(self.tests, SHOWN_LINES)

    def drift_lines(self) -> list[str]:
        """One line per drifted answer, by test: what changed and how similar it still is."""
        found = [
            (test["nodeid"], _drift(data))
            for test in sorted(self.tests, key=lambda t: t["nodeid"])
            for data in test.get("drift", [])
            if data.get("drifted")
        ]
        lines = [f"drift: {nodeid}: {d.endpoint} {', '.join(d.changes())}" for nodeid, d in found[:SHOWN_LINES]]
        if len(found) > SHOWN_LINES:
            lines.append(f"drift: ... and {len(found) - SHOWN_LINES} more (--seedreplay-report=PATH lists them all)")
        return lines


def cassette_files(cassette_dir: Path) -> Iterable[Path]:
    if not cassette_dir.is_dir():
        return []
    return sorted(p for p in cassette_dir.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())


def find_orphans(
    cassette_dir: Path,
    used: dict[str, set[tuple[str, int]]],
    known: Iterable[str] = (),
    judged: Iterable[str] | None = None,
) -> tuple[list[Path], list[tuple[Path, Entry]]]:
    """Cassette files that no test used and no collected test maps to (`known`, deselected tests
    included), and recordings that no request asked for inside the used cassettes listed in `judged`
    (default: all of them; leave out a cassette whose tests did not all run to the end).
    `used`: cassette path -> the (key, occurrence) pairs the tests played."""
    owned = {Path(p).resolve() for p in [*used, *known]}
    files = [f for f in cassette_files(cassette_dir) if f.resolve() not in owned]
    checked = None if judged is None else {Path(p).resolve() for p in judged}
    unused: list[tuple[Path, Entry]] = []
    for name, pairs in sorted(used.items()):
        path = Path(name)
        if checked is not None and path.resolve() not in checked:
            continue
        seen: Counter[str] = Counter()
        try:
            entries = read_cassette(path)
        except CassetteError:
            continue  # a broken cassette already failed its test with the reason
        for entry in entries:
            n = seen[entry.key]
            seen[entry.key] += 1
            if (entry.key, n) not in pairs:
                unused.append((path, entry))
    return files, unused


def orphan_lines(cassette_dir: Path, tally: Tally, collected: dict[str, set[str]]) -> list[str]:
    """`--seedreplay-orphans`: cassette files no collected test maps to, and recordings no request
    asked for in cassettes whose tests all ran to the end (`collected`: cassette -> nodeids)."""
    files, unused = find_orphans(cassette_dir, tally.used_by_cassette(), collected, tally.fully_run(collected))
    lines = [f"orphan cassettes (no collected test uses them): {len(files)}"]
    lines += [f"  {shown(path)}" for path in files]
    lines.append(f"orphan interactions (recorded, never requested by tests that ran to the end): {len(unused)}")
    for path, entry in unused:
        model = entry.model or entry.request.get("params", {}).get("model")
        lines.append(f"  {shown(path)}: {entry.key} {entry.endpoint} model {model}")
    tests = len({nodeid for nodeids in collected.values() for nodeid in nodeids})
    lines.append(f"(judged against the {tests} tests collected in this run: run the whole suite before deleting any)")
    return lines


def _drift(data: dict[str, Any]) -> Any:
    from .drift import Drift  # only a live run has drift to read

    return Drift.from_dict(data)
