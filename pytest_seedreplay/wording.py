"""The plugin's words: what a test's report says of its recording (replay misses, blocked calls, drift),
and the proxy's refusals in a test's words. Loaded with the proxy, once a test needs it. The
end-of-session figures live in `summary`; the network guard around each test is `guard`'s."""

from __future__ import annotations

import importlib.util
import os
import shlex
from types import TracebackType
from typing import TYPE_CHECKING, Any

from .core.constants import CACHEABLE_ENDPOINTS
from .policy import Mode
from .proxy.binding import ReplayMiss, Wording
from .recorder import TestRecording, shown

if TYPE_CHECKING:
    from .drift import Drift
    from .guard import Blocked

_SEES = {Mode.RECORD: "record", Mode.REWRITE: "record", Mode.LIVE: "compare"}  # what each mode does with a call it sees


def miss_text(recording: TestRecording, misses: list[ReplayMiss]) -> str:
    lines = [f"seedreplay: no recording in cassette {shown(recording.cassette)} (mode {recording.mode})"]
    lines += [f"  {m.message}" for m in misses]
    lines.append("To record it, run:")
    lines.append(f"  {recording.record_command()}")
    if recording.mode_from_marker:
        lines.append("  (this test's @pytest.mark.seedreplay sets mode='replay': change or drop it first)")
    return "\n".join(lines)


def drift_text(recording: TestRecording, drifted: list[Drift]) -> str:
    from .shapes import excerpt

    lines = [f"seedreplay: live answers drifted from cassette {shown(recording.cassette)}"]
    for d in drifted:
        lines.append(f"  {d.describe()}")
        lines.append(f"    recorded: {excerpt(d.recorded_text)}")
        lines.append(f"    live:     {excerpt(d.live_text)}")
    lines.append(f"To accept the new answers, run: pytest --seedreplay=rewrite {shlex.quote(recording.nodeid)}")
    return "\n".join(lines)


def blocked_text(recording: TestRecording, blocked: list[Blocked], proxy_url: str) -> str:
    mode = recording.mode
    if mode == Mode.REPLAY:
        lines = ["seedreplay: blocked network access in replay mode:"]
    else:
        sees = _SEES[Mode(mode)]
        lines = [f"seedreplay: blocked an OpenAI call that bypasses the seedreplay proxy ({mode} mode would not {sees} it):"]
    lines += [f"  {b.method} {b.url}" for b in blocked]
    lines.append(
        f"Send OpenAI calls through the seedreplay proxy: leave base_url unset so OPENAI_BASE_URL "
        f"({proxy_url}) is used, or take the openai_client fixture (an Azure client: leave azure_endpoint unset, "
        f"AZURE_OPENAI_ENDPOINT points there too; an Anthropic client: leave base_url unset, ANTHROPIC_BASE_URL "
        f"points there too). Then record: {recording.record_command()}"
    )
    return "\n".join(lines)


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
        problems.append(("seedreplay replay miss", miss_text(recording, misses)))
    blocked = recording.new_blocked()
    if blocked:
        problems.append(("seedreplay blocked network", blocked_text(recording, blocked, proxy_url)))
    warnings: list[str] = []
    drifted = recording.new_drift()
    if drifted:
        from .drift import fails

        text = drift_text(recording, drifted)
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
