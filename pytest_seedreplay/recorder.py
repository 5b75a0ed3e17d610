"""Cassettes as the plugin sees them: naming a test's cassette (and showing its path), the marker's
options, the run-wide rewrite registry, and each test's `TestRecording` (its cassette, mode and seed,
how it went, what the proxy did with its requests). What the report says of it is `wording`'s; finding
recordings no test uses, `summary`'s."""

from __future__ import annotations

import hashlib
import os
import re
import shlex
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from .core.constants import DRIFT_POLICIES
from .policy import PYTEST_MODES, Mode

if TYPE_CHECKING:
    from .cassettes import CassetteSession, Heard, Interaction
    from .drift import Drift
    from .finetune.live import Recall, TestFinetune
    from .guard import Blocked
    from .proxy.binding import ReplayMiss
    from .store.cassette_store import CassetteStore

_UNSAFE = re.compile(r"[^A-Za-z0-9._\-\[\]]+")
_MAX_NAME = 120  # file name length kept before a hash suffix takes over (filesystems stop at 255)


class SeedreplayError(Exception):
    """A cassette problem the test's report shows as a plain message (no plugin traceback)."""


# --- naming -------------------------------------------------------------------------------------


def shown(path: Path | str) -> str:
    """A path as a user wants to read it: relative to the current directory when inside it."""
    try:
        return str(Path(path).relative_to(Path.cwd()))
    except ValueError:
        return str(path)


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


# --- the marker ---------------------------------------------------------------------------------

MARKER_ARGS = ("cassette", "mode", "seed", "finetune", "drift")


class MarkerOptions(NamedTuple):
    mode: str | None
    cassette: str | None
    seed: int | None
    finetune: str | bool | None = None  # a manifest version to compare with in live mode; False: none


def marker_options(kwargs: dict[str, Any], args: tuple = ()) -> MarkerOptions:
    """The arguments of `@pytest.mark.seedreplay(...)`, checked; SeedreplayError says what is wrong."""
    unknown = sorted(set(kwargs) - set(MARKER_ARGS))
    if args or unknown:
        given = ", ".join([repr(a) for a in args] + unknown)
        raise SeedreplayError(f"@pytest.mark.seedreplay takes only keyword arguments {', '.join(MARKER_ARGS)}; got {given}")
    mode, cassette, seed = kwargs.get("mode"), kwargs.get("cassette"), kwargs.get("seed")
    if mode is not None and mode not in PYTEST_MODES:
        raise SeedreplayError(f"@pytest.mark.seedreplay(mode={mode!r}): mode must be one of {', '.join(PYTEST_MODES)}")
    if cassette is not None and (not isinstance(cassette, (str, os.PathLike)) or not str(cassette).strip()):
        raise SeedreplayError(f"@pytest.mark.seedreplay(cassette={cassette!r}): give a cassette name such as 'shared_answers'")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise SeedreplayError(f"@pytest.mark.seedreplay(seed={seed!r}): seed must be an integer")
    finetune = kwargs.get("finetune")
    if finetune is not None and finetune is not False and (not isinstance(finetune, str) or not finetune.strip()):
        raise SeedreplayError(
            f"@pytest.mark.seedreplay(finetune={finetune!r}): name a manifest version ('latest', 'v2', "
            "a fine-tuned model), or False for none"
        )
    drift = kwargs.get("drift")
    if drift is not None and drift not in DRIFT_POLICIES:
        raise SeedreplayError(f"@pytest.mark.seedreplay(drift={drift!r}): drift must be one of {', '.join(DRIFT_POLICIES)}")
    return MarkerOptions(mode, (os.fspath(cassette) if cassette is not None else None), seed, finetune)


def marker_drift(kwargs: dict[str, Any]) -> str | None:
    """The drift policy a test's marker sets (`drift=`; checked by marker_options), None: the session's."""
    drift = kwargs.get("drift")
    return drift if drift in DRIFT_POLICIES else None


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


class TestRecording:
    """One test with the proxy, and what the `seedreplay` fixture shows: the cassette, mode and seed it
    is served (noted at its setup), how it went, and — once something needed the proxy (`serve`) — what
    the proxy did with its requests (`heard`). Its report and the run's tally read it from here."""

    __test__ = False  # not a test class, whatever its name says to pytest

    def __init__(
        self,
        nodeid: str,
        cassette: Path,
        mode: str,
        seed: int | None = None,
        mode_from_marker: bool = False,
        finetune: str | bool | None = None,
    ):
        self.nodeid = nodeid
        self.cassette = cassette
        self.mode = str(mode)  # plain text: it travels to the xdist controller
        self.seed = seed
        self.mode_from_marker = mode_from_marker
        self.finetune_asked = finetune  # the marker's `finetune=` (a manifest version, False: none); None: the run's
        self.failed = False
        self.completed = False  # the test body ran to its end and passed
        self.problem = ""  # its cassette could not be served when a client or the guard needed it
        self.blocked: list[Blocked] = []  # what the guard stopped
        self.heard: Heard | None = None  # None: nothing needed the proxy yet (a quiet test)
        self.tape: CassetteSession | None = None  # its cassette under its mode (None: off, nothing is kept)
        self.finetune: TestFinetune | None = None  # the fine-tune this test compares with (asked only in live mode)
        self.record_options = ""  # the run's options the printed record command repeats
        self.written = False
        self._shown_misses = self._shown_drift = self._shown_blocked = 0

    def serve(self, tape: CassetteSession | None = None, finetune: TestFinetune | None = None, record_options: str = "") -> None:
        """Its cassette is served from now on (`tape`; None: off, passed through, nothing kept)."""
        from .cassettes import Heard  # loaded with the proxy

        self.tape, self.finetune, self.record_options = tape, finetune, record_options
        self.heard = tape.heard if tape is not None else Heard(self.mode, None)

    @property
    def served(self) -> bool:
        return self.heard is not None

    def fail(self) -> None:
        self.failed = True  # record mode keeps nothing of a failing test

    def complete(self) -> None:
        self.completed = True

    @property
    def store(self) -> CassetteStore | None:
        return self.tape.store if self.tape is not None else None

    @property
    def interactions(self) -> list[Interaction]:
        return list(self.heard.interactions) if self.heard else []

    @property
    def drift(self) -> list[Drift]:
        """Every live comparison of this test (live mode); `d.drifted` says which answers changed."""
        return list(self.heard.drift) if self.heard else []

    @property
    def drifted(self) -> list[Drift]:
        return [d for d in self.drift if d.drifted]

    @property
    def misses(self) -> list[ReplayMiss]:
        return list(self.heard.misses) if self.heard else []

    @property
    def recall(self) -> Recall:
        """Live fine-tune comparison: how many of the fine-tune's answers matched their recordings verbatim."""
        from .finetune.live import Recall

        return Recall.of(d.to_dict() for d in self.drift)

    @property
    def new_miss_pending(self) -> bool:
        """A replay miss this phase has not reported yet."""
        return len(self.misses) > self._shown_misses

    def record_command(self) -> str:
        return record_command(self.record_options, self.nodeid)

    # Report text, each shown once: a phase's report takes what is new since the last phase.

    def new_misses(self) -> list[ReplayMiss]:
        misses = self.misses[self._shown_misses :]
        self._shown_misses += len(misses)
        return misses

    def new_drift(self) -> list[Drift]:
        drifted = self.drifted[self._shown_drift :]
        self._shown_drift += len(drifted)
        return drifted

    def new_blocked(self) -> list[Blocked]:
        blocked = self.blocked[self._shown_blocked :]
        self._shown_blocked += len(blocked)
        return blocked

    def finetune_payload(self) -> dict[str, Any] | None:
        """The fine-tune this test's live answers came from, and its verbatim recall (None: not asked)."""
        if self.finetune is None or not self.finetune.live:
            return None
        recall = self.recall
        figures = {
            "compared": recall.compared,
            "verbatim": recall.verbatim,
            "reworded": recall.reworded,
            "changed": recall.changed,
            "recall": round(recall.share, 4),
        }
        return {**self.finetune.to_dict(), **figures}

    def payload(self) -> dict[str, Any]:
        """This test's figures as plain JSON data (they travel from xdist workers on the report); a
        test that never needed the proxy is `quiet`, and every count of it the default: none."""
        heard = self.heard
        if heard is None:
            return {
                "nodeid": self.nodeid,
                "cassette": str(self.cassette),
                "mode": self.mode,
                "written": False,
                "failed": self.failed,
                "completed": self.completed and not self.failed,
                "quiet": True,
            }
        return {
            "nodeid": self.nodeid,
            "cassette": str(self.cassette),
            "mode": self.mode,
            "replayed": heard.count("replayed"),
            "recorded": heard.count("recorded"),
            "live_compared": sum(1 for d in self.drift if d.recorded),
            "drifted": len(self.drifted),
            "missing": len(self.misses) + sum(1 for d in self.drift if not d.recorded),
            "written": self.written,
            "failed": self.failed,
            "completed": self.completed and not self.failed,
            "used": [list(u) for u in heard.used()],
            "drift": [d.to_dict() for d in self.drift],
            "finetune": self.finetune_payload(),
            "misses": [m.message for m in self.misses],
            "saved": heard.saved().to_dict(),
            "upstream_errors": len(heard.upstream_errors),
            "upstream_error": f"{heard.upstream_errors[0][0]} {heard.upstream_errors[0][1]}" if heard.upstream_errors else None,
            # Recorded from the upstream, then not written (the test failed, or the write was refused).
            "unsaved": len(self.store.recorded)
            if self.store is not None and self.mode in (Mode.RECORD, Mode.REWRITE) and not self.written
            else 0,
        }


def record_command(options: str, nodeid: str = "") -> str:
    """The command that records what a run missed, with the options that made the run record the way it did."""
    return " ".join(filter(None, ["pytest --seedreplay=record", options, shlex.quote(nodeid) if nodeid else ""]))
