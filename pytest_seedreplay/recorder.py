"""One test's cassette as a proxy store, cassette naming, and safe (locked, merged) cassette writes."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

from .store.cassette import CassetteError, read_cassette, write_cassette
from .core.constants import LIVE, OFF, RECORD, REPLAY, REWRITE
from .drift import Drift, compare
from .core.entry import Entry
from .core.redact import SecretRefused
from .store import StoreStats, check_no_secret

# pytest mode -> the proxy mode that does it (live: always forward, the store compares instead of writing).
PROXY_MODE = {REPLAY: "replay", RECORD: "record", REWRITE: "refresh", LIVE: "refresh", OFF: "passthrough"}

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
    shared `cassette=` name (a name ending in .yaml/.yml or an absolute path is taken as given)."""
    if name:
        given = Path(name)
        if given.suffix not in (".yaml", ".yml"):
            given = given.with_name(given.name + ".yaml")
        return given if given.is_absolute() else cassette_dir / given
    module, _, rest = nodeid.partition("::")
    module_dir = Path(module).with_suffix("")
    parts = [p for p in module_dir.parts if p not in ("..", ".")]
    test = rest.replace("::", ".") or module_dir.name
    return cassette_dir.joinpath(*parts, file_safe(test) + ".yaml")


# --- locking and merging ------------------------------------------------------------------------


def _lock_file(path: Path) -> Path:
    # Locks live outside the cassette directory so no stray files land next to cassettes.
    digest = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:32]
    folder = Path(tempfile.gettempdir()) / "seedreplay-locks"
    folder.mkdir(exist_ok=True)
    return folder / f"{digest}.lock"


@contextlib.contextmanager
def cassette_lock(path: Path, timeout: float = 60.0) -> Iterator[None]:
    """Exclusive across processes (pytest-xdist workers) while a cassette is re-read, merged, written."""
    handle = open(_lock_file(path), "a+b")
    try:
        _acquire(handle, path, timeout)
        yield
    finally:
        handle.close()  # closing releases the lock


def _acquire(handle, path: Path, timeout: float) -> None:
    try:
        import fcntl
    except ImportError:  # Windows
        import msvcrt

        deadline = time.monotonic() + timeout
        while True:
            try:
                msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise SeedreplayError(f"timed out after {timeout:.0f}s waiting to write {path}") from None
                time.sleep(0.01)
    fcntl.flock(handle.fileno(), fcntl.LOCK_EX)


def merge(current: list[Entry], ours: list[tuple[int, Entry]], replace: bool) -> list[Entry]:
    """`current` (the file as it is now) plus our (occurrence index, entry) recordings.

    The n-th recording of a key answers its n-th request. An occurrence the file already holds is
    replaced when `replace` (ours is newer: rewrite, or an overwrite), else kept (another test or
    worker recorded the same request first)."""
    merged = list(current)
    positions: dict[str, list[int]] = {}
    for at, entry in enumerate(merged):
        positions.setdefault(entry.key, []).append(at)
    for occurrence, entry in ours:
        held = positions.setdefault(entry.key, [])
        if occurrence < len(held):
            if replace:
                merged[held[occurrence]] = entry
        else:
            held.append(len(merged))
            merged.append(entry)
    return merged


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


# --- the store ----------------------------------------------------------------------------------


@dataclass
class Interaction:
    """One request of a test, as the cassette answered it."""

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


@dataclass
class CassetteStore:
    """The proxy's store for one test: that test's cassette, in memory, played in order.

    The proxy calls `get` once per request and `put` once per complete 2xx answer; this class turns
    that into cassette semantics per pytest mode (see `get` and `put`). Thread-safe: the proxy runs
    in its own thread."""

    path: Path | None
    mode: str
    entries: list[Entry] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.location = str(self.path) if self.path else "(no test running)"
        self._lock = threading.Lock()
        self._by_key: dict[str, list[Entry]] = {}
        for entry in self.entries:
            self._by_key.setdefault(entry.key, []).append(entry)
        self._gets: Counter[str] = Counter()
        self._puts: Counter[str] = Counter()
        self.interactions: list[Interaction] = []
        self.recorded: list[tuple[int, Entry]] = []  # (occurrence, entry) to write
        self.overwrote = False
        self.drift: list[Drift] = []
        self.misses: list[Miss] = []
        self.upstream_errors: list[tuple[int, str]] = []  # (status, message) of error answers, never recorded
        self.errors: list[str] = []

    # The Store protocol -------------------------------------------------------------------------

    def get(self, key: str) -> Entry | None:
        """replay: the n-th request plays the n-th recording, then repeats the last one;
        record: the n-th recording, or None (a miss, recorded next); rewrite/live: always None."""
        with self._lock:
            n = self._gets[key]
            self._gets[key] += 1
            held = self._by_key.get(key, [])
            if self.mode == REPLAY and held:
                n = min(n, len(held) - 1)
            elif self.mode != RECORD or n >= len(held):
                return None
            self.interactions.append(Interaction(key, n, "replayed", held[n]))
            return held[n]

    def put(self, entry: Entry) -> None:
        """record/rewrite: keep the answer for the cassette; live: compare it with the recording."""
        try:
            check_no_secret(entry)
        except SecretRefused as exc:
            self.errors.append(str(exc))
            raise
        with self._lock:
            if self.mode == LIVE:
                self._compare(entry)
            elif self.mode == RECORD:
                self._record(entry)
            elif self.mode == REWRITE:
                n = self._puts[entry.key]
                self._puts[entry.key] += 1
                self.recorded.append((n, entry))
                self.interactions.append(Interaction(entry.key, n, "recorded", entry))

    def _record(self, entry: Entry) -> None:
        # The answer to the request that just missed: the occurrence `get` was asked for.
        n = max(self._gets[entry.key] - 1, 0)
        held = self._by_key.setdefault(entry.key, [])
        if n < len(held):  # forced refresh (Cache-Control: no-cache) of an existing recording
            held[n] = entry
            self.overwrote = True
        else:
            n = len(held)
            held.append(entry)
        self.recorded.append((n, entry))
        self.interactions.append(Interaction(entry.key, n, "recorded", entry))

    def _compare(self, entry: Entry) -> None:
        n = self._puts[entry.key]
        self._puts[entry.key] += 1
        held = self._by_key.get(entry.key, [])
        recorded = held[min(n, len(held) - 1)] if held else None
        self.drift.append(compare(recorded, entry))
        self.interactions.append(Interaction(entry.key, n, "live", entry))

    def delete(self, key: str) -> bool:
        with self._lock:
            return self._by_key.pop(key, None) is not None

    def iter_entries(self) -> Iterator[Entry]:
        with self._lock:
            entries = [e for held in self._by_key.values() for e in held]
        return iter(entries)

    def iter_requests(self) -> Iterator[tuple[str, dict]]:
        return ((e.key, e.request) for e in self.iter_entries())

    def stats(self) -> StoreStats:
        return StoreStats(entries=sum(1 for _ in self.iter_entries()), bytes=0, location=self.location)

    def close(self) -> None:
        pass

    # What the plugin reads ----------------------------------------------------------------------

    def note_miss(self, key: str, message: str) -> None:
        with self._lock:
            self.misses.append(Miss(key, message))

    def note_upstream_error(self, status: int, message: str) -> None:
        with self._lock:
            self.upstream_errors.append((status, message))

    def count(self, source: str) -> int:
        return sum(1 for i in self.interactions if i.source == source)

    def used(self) -> list[tuple[str, int]]:
        return [(i.key, i.occurrence) for i in self.interactions]

    # Writing ------------------------------------------------------------------------------------

    def save(self, passed: bool, keep_failed: bool, registry: RunRegistry) -> bool:
        """Write what this test recorded, merged with the file as it is now; True when written.

        record: new answers only, and only if the test passed (or `keep_failed`); rewrite: exactly
        the interactions used (merged with other tests of this run sharing the cassette)."""
        if self.path is None or self.mode not in (RECORD, REWRITE) or not (passed or keep_failed):
            return False
        if not self.recorded and (self.mode == RECORD or not self.path.exists()):
            return False
        with cassette_lock(self.path):
            fresh = self.mode == REWRITE and registry.first_rewrite(self.path)
            current = [] if fresh else read_cassette(self.path)
            entries = merge(current, self.recorded, replace=self.mode == REWRITE or self.overwrote)
            if not entries:
                # A rewrite that used nothing leaves no cassette behind.
                self.path.unlink(missing_ok=True)
                return False
            write_cassette(self.path, entries)
        return True


def load_store(path: Path, mode: str) -> CassetteStore:
    """The store for a test, holding its cassette's recordings (a rewrite starts from none)."""
    return CassetteStore(path, mode, [] if mode == REWRITE else read_cassette(path))


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
