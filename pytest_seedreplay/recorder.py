"""Cassettes as the plugin sees them: naming a test's cassette, the run-wide rewrite registry, what
a test did with its cassette (interactions, misses), and finding recordings no test uses."""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from .core.entry import Entry

_UNSAFE = re.compile(r"[^A-Za-z0-9._\-\[\]]+")
_MAX_NAME = 120  # file name length kept before a hash suffix takes over (filesystems stop at 255)


class SeedreplayError(Exception):
    """A cassette problem the test's report shows as a plain message (no plugin traceback)."""


# --- naming -------------------------------------------------------------------------------------


def file_safe(name: str) -> str:
    """A test name usable as a file name on every OS: `test_x[gpt-4o/a b]` -> `test_x[gpt-4o_a_b]`."""
    safe = _UNSAFE.sub("_", name).strip(". ") or "_"
    if len(safe) > _MAX_NAME:
        digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:12]
        safe = f"{safe[:_MAX_NAME]}-{digest}"
    return safe


def cassette_path(cassette_dir: Path, nodeid: str, name: str | None = None) -> Path:
    """`<cassette_dir>/<module path>/<test name>.yaml`, or `<cassette_dir>/<name>.yaml` for a marker's
    shared `cassette=` name (a name ending in .yaml/.yml keeps it). A marker's name always stays inside
    the cassette dir: `..` is refused, and an absolute path only names a file under the cassette dir."""
    if name:
        return cassette_dir / _marker_name(cassette_dir, name)
    module, _, rest = nodeid.partition("::")
    module_dir = Path(module).with_suffix("")
    parts = [p for p in module_dir.parts if p not in ("..", ".")]
    test = rest.replace("::", ".") or module_dir.name
    return cassette_dir.joinpath(*parts, file_safe(test) + ".yaml")


def _marker_name(cassette_dir: Path, name: str) -> Path:
    """A marker's `cassette=` as a path relative to the cassette dir; SeedreplayError names what is wrong."""
    given = Path(name)
    if ".." in given.parts:
        raise _outside(cassette_dir, name, "drop the '..' parts")
    if given.drive or given.root:
        # An absolute path is accepted when it points into the cassette dir (built from it, say).
        inside, target = os.path.abspath(cassette_dir), os.path.abspath(given)
        if not _within(target, inside):
            raise _outside(cassette_dir, name, "give a name relative to it")
        given = Path(os.path.relpath(target, inside))
    if not given.name or given.name == "." or "\0" in name:
        raise SeedreplayError(f"@pytest.mark.seedreplay(cassette={name!r}): give a cassette name such as 'shared_answers'")
    return given if given.suffix in (".yaml", ".yml") else given.with_name(given.name + ".yaml")


def _within(path: str, folder: str) -> bool:
    try:
        return os.path.commonpath([folder, path]) == folder
    except ValueError:  # Windows: another drive
        return False


def _outside(cassette_dir: Path, name: str, fix: str) -> SeedreplayError:
    return SeedreplayError(
        f"@pytest.mark.seedreplay(cassette={name!r}): a cassette name must stay inside the cassette dir "
        f"{cassette_dir}; {fix}, or move the cassette dir with the ini option seedreplay_cassette_dir"
    )


@dataclass
class Interaction:
    """One request of a test, as its cassette answered it."""

    key: str
    occurrence: int  # the n-th request with this key in the test (0-based)
    source: str  # replayed | recorded | live
    entry: Entry

    @property
    def endpoint(self) -> str:
        return self.entry.endpoint


@dataclass
class Miss:
    """A request the cassette had no answer for (replay), with the proxy's closest-recording diff."""

    key: str
    message: str


class RunRegistry:
    """Cassettes a rewrite already reset during this run, shared by all xdist workers of the run.

    The first test to rewrite a cassette replaces it; later tests sharing it merge into that."""

    def __init__(self, run_id: str):
        self.folder = Path(tempfile.gettempdir()) / f"seedreplay-run-{run_id}"

    def first_rewrite(self, path: Path) -> bool:
        """True once per cassette per run (call it under the cassette's lock)."""
        self.folder.mkdir(exist_ok=True)
        marker = self.folder / hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:32]
        try:
            os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            return True
        except FileExistsError:
            return False

    def remove(self) -> None:
        if self.folder.is_dir():
            for item in self.folder.iterdir():
                item.unlink(missing_ok=True)
            self.folder.rmdir()


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
    from .store.cassette import CassetteError, read_cassette

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
