"""One test's recording (what the `seedreplay` fixture shows) and what its report says, made by the
`session` once a test needs the proxy; the proxy's refusals in a test's words. The end-of-session
figures live in `summary`; the network guard around each test is `guard`'s."""

from __future__ import annotations

import importlib.util
import os
import shlex
from types import TracebackType
from typing import TYPE_CHECKING, Any

from .cassettes import CassetteSession, Heard, Interaction
from .core.constants import CACHEABLE_ENDPOINTS
from .policy import Mode
from .proxy.binding import ReplayMiss, Wording
from .recorder import Turn, shown
from .store.cassette_store import CassetteStore

if TYPE_CHECKING:
    from .drift import Drift
    from .finetune.live import Recall, TestFinetune
    from .guard import Blocked

_SEES = {Mode.RECORD: "record", Mode.REWRITE: "record", Mode.LIVE: "compare"}  # what each mode does with a call it sees


# --- one test -----------------------------------------------------------------------------------


class TestRecording:
    """What the `seedreplay` fixture hands a test: its cassette, mode, interactions and drift."""

    __test__ = False  # not a test class, whatever its name says to pytest

    def __init__(
        self, turn: Turn, tape: CassetteSession | None = None, finetune: TestFinetune | None = None, record_options: str = ""
    ):
        self.turn = turn  # the test's cassette, mode, seed and how it went: read from there, never copied
        self.tape = tape  # the test's cassette under its mode (None: off, nothing is kept)
        self.finetune = finetune  # the fine-tune this test compares with (asked only in live mode)
        self.record_options = record_options  # the run's options the printed record command repeats
        self.heard = tape.heard if tape is not None else Heard(turn.mode, None)
        self.written = False
        self._shown_misses = 0
        self._shown_drift = 0
        self._shown_blocked = 0

    nodeid = property(lambda self: self.turn.nodeid)
    cassette = property(lambda self: self.turn.cassette)
    mode = property(lambda self: str(self.turn.mode))  # plain text: it travels to the xdist controller
    seed = property(lambda self: self.turn.seed)
    mode_from_marker = property(lambda self: self.turn.mode_from_marker)
    blocked = property(lambda self: self.turn.blocked)
    failed = property(lambda self: self.turn.failed)
    # the test body ran to its end and passed (orphans judge only those)
    completed = property(lambda self: self.turn.completed)

    @property
    def store(self) -> CassetteStore | None:
        return self.tape.store if self.tape is not None else None

    @property
    def interactions(self) -> list[Interaction]:
        return list(self.heard.interactions)

    @property
    def drift(self) -> list[Drift]:
        """Every live comparison of this test (live mode); `d.drifted` says which answers changed."""
        return list(self.heard.drift)

    @property
    def drifted(self) -> list[Drift]:
        return [d for d in self.drift if d.drifted]

    @property
    def misses(self) -> list[ReplayMiss]:
        return list(self.heard.misses)

    @property
    def recall(self) -> Recall:
        """Live fine-tune comparison: how many of the fine-tune's answers matched their recordings verbatim."""
        from .finetune.live import Recall

        return Recall.of(d.to_dict() for d in self.drift)

    @property
    def new_miss_pending(self) -> bool:
        """A replay miss this phase has not reported yet."""
        return len(self.misses) > self._shown_misses

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

    def miss_text(self, misses: list[ReplayMiss]) -> str:
        lines = [f"seedreplay: no recording in cassette {shown(self.cassette)} (mode {self.mode})"]
        lines += [f"  {m.message}" for m in misses]
        lines.append("To record it, run:")
        lines.append(f"  {self.record_command()}")
        if self.mode_from_marker:
            lines.append("  (this test's @pytest.mark.seedreplay sets mode='replay': change or drop it first)")
        return "\n".join(lines)

    def drift_text(self, drifted: list[Drift]) -> str:
        from .shapes import excerpt

        lines = [f"seedreplay: live answers drifted from cassette {shown(self.cassette)}"]
        for d in drifted:
            lines.append(f"  {d.describe()}")
            lines.append(f"    recorded: {excerpt(d.recorded_text)}")
            lines.append(f"    live:     {excerpt(d.live_text)}")
        lines.append(f"To accept the new answers, run: pytest --seedreplay=rewrite {shlex.quote(self.nodeid)}")
        return "\n".join(lines)

    def blocked_text(self, blocked: list[Blocked], proxy_url: str) -> str:
        if self.mode == Mode.REPLAY:
            lines = ["seedreplay: blocked network access in replay mode:"]
        else:
            lines = [
                "seedreplay: blocked an OpenAI call that bypasses the seedreplay proxy "
                f"({self.mode} mode would not {_SEES[Mode(self.mode)]} it):"
            ]
        lines += [f"  {b.method} {b.url}" for b in blocked]
        lines.append(
            f"Send OpenAI calls through the seedreplay proxy: leave base_url unset so OPENAI_BASE_URL "
            f"({proxy_url}) is used, or take the openai_client fixture (an Azure client: leave azure_endpoint unset, "
            f"AZURE_OPENAI_ENDPOINT points there too; an Anthropic client: leave base_url unset, ANTHROPIC_BASE_URL "
            f"points there too). Then record: {self.record_command()}"
        )
        return "\n".join(lines)

    def payload(self) -> dict[str, Any]:
        """This test's figures as plain JSON data (travels from xdist workers on the report)."""
        heard = self.heard
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


class PytestWording(Wording):
    """The proxy's refusals in a test's words: what to do in the test."""

    def not_replayable(self, method: str, path: str) -> str:
        return (
            f"seedreplay: {method} {path} cannot be replayed: cassettes hold only POST "
            f"{', '.join(CACHEABLE_ENDPOINTS)}. Fake this call in the test, or let the test reach the API with "
            "@pytest.mark.seedreplay(mode='off')"
        )


class OutsideATest(PytestWording):
    """Between tests (at import or collection time) no cassette is active."""

    def replay_miss(self, miss: ReplayMiss) -> str:
        return (
            "seedreplay: this request was made outside any test (at import or collection time), where no "
            "cassette is active, so it can be neither replayed nor recorded: make it inside a test or a "
            f"fixture (request key {miss.key})"
        )


# The HTTP client libraries a replay miss is raised through: their frames say nothing about the test.
CLIENT_PACKAGES = ("openai", "anthropic", "httpx", "httpx2", "httpcore", "anyio")


def _package_dirs(names: tuple[str, ...]) -> tuple[str, ...]:
    dirs = []
    for name in names:
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            spec = None
        if spec is not None:
            dirs += [os.path.join(d, "") for d in spec.submodule_search_locations or []]
    return tuple(dirs)


def without_client_frames(tb: TracebackType | None) -> TracebackType | None:
    """The traceback of a replay miss without the client libraries' frames, so it ends at the call
    the test (or the app) made; None when there is nothing to cut. The exception is left untouched."""
    dirs = _package_dirs(CLIENT_PACKAGES)
    frames = []
    while tb is not None:
        frames.append(tb)
        tb = tb.tb_next
    kept = [f for f in frames if not f.tb_frame.f_code.co_filename.startswith(dirs)] if dirs else frames
    if not kept or len(kept) == len(frames):
        return None
    cut = None
    for frame in reversed(kept):
        cut = TracebackType(cut, frame.tb_frame, frame.tb_lasti, frame.tb_lineno)
    return cut


def annotate(report: Any, recording: TestRecording, drift_policy: str, proxy_url: str) -> list[str]:
    """Put this phase's misses, blocked requests and drift on its report. A phase that passed
    fails for a miss or a blocked request (even if the code under test swallowed the error), and
    for drift under `--seedreplay-drift=fail` (`fail-on-change`: a changed behaviour only). Returns
    drift texts to be issued as warnings."""
    problems: list[tuple[str, str]] = []
    misses = recording.new_misses()
    if misses:
        problems.append(("seedreplay replay miss", recording.miss_text(misses)))
    blocked = recording.new_blocked()
    if blocked:
        problems.append(("seedreplay blocked network", recording.blocked_text(blocked, proxy_url)))
    warnings: list[str] = []
    drifted = recording.new_drift()
    if drifted:
        from .drift import fails

        text = recording.drift_text(drifted)
        if fails(drift_policy, drifted):
            problems.append(("seedreplay drift", text))
        else:
            warnings.append(text)
    if problems and report.passed:
        # The problem is the failure itself: said once, as the test's failure text.
        report.outcome = "failed"
        report.longrepr = "\n\n".join(text for _, text in problems)
    else:
        # The test failed on its own (e.g. the SDK raised for the miss): explain it below the traceback.
        report.sections.extend(problems)
    return warnings


def record_command(options: str, nodeid: str = "") -> str:
    """The command that records what a run missed, with the options that made the run record the way it did."""
    return " ".join(filter(None, ["pytest --seedreplay=record", options, shlex.quote(nodeid) if nodeid else ""]))
