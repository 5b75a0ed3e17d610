"""pytest wiring for seedreplay: options, ini, markers, fixtures and hooks. The logic lives in
`session` (the port, the environment, the guard, and the proxy bound to each test's cassette once a
test needs it), `recorder` (cassette names, each test's recording), `wording` (what its report says), `guard`,
`summary` and `report`.

A run whose tests make no OpenAI call must cost next to nothing: what this module imports at the top
is only what every run needs; `wording` (the proxy, aiohttp, the cassettes) comes with the first
test that needs it."""

from __future__ import annotations

import os
import shlex
import uuid
import warnings
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from .core.constants import (
    DEFAULT_ANTHROPIC_UPSTREAM,
    DEFAULT_CASSETTE_DIR,
    DEFAULT_DRIFT_POLICY,
    DEFAULT_UPSTREAM,
    DRIFT_POLICIES,
    ENV_ANTHROPIC_BASE_URL,
    ENV_ANTHROPIC_UPSTREAM,
    ENV_API_KEY,
    ENV_BASE_URL,
    ENV_MODE,
    ENV_PRICES,
    ENV_UPSTREAM,
)
from .core.environ import DUMMY_API_KEY, choose_upstream, recording_anthropic_upstream
from .core.urls import check_upstream, public_url
from .policy import DEFAULT_PYTEST_MODE, PYTEST_MODES, Mode
from .recorder import RunRegistry, SeedreplayError, TestRecording, cassette_path, marker_drift, marker_options
from .session import NO_REQUESTS, Session
from .settings import Settings

if TYPE_CHECKING:
    from .finetune.live import TestFinetune
    from .summary import Tally


class SeedreplayDriftWarning(UserWarning):
    """A live answer differs from its recording (`--seedreplay-drift=warn`)."""


@dataclass(eq=False)  # hashable by identity: pytest (8.4) keeps registered plugins in a set
class _State:
    """The plugin's state for one pytest process, registered as a plugin to see every report."""

    settings: Settings
    session: Session  # not serving on the xdist controller (its workers run the tests) or with the plugin off
    worker: bool
    payloads: list[dict[str, Any]] = field(default_factory=list)  # each finished test's figures
    report_paths: tuple = ()
    # cassette -> nodeids of every collected test that maps to it (deselected ones too), for orphans.
    collected: dict[str, set[str]] = field(default_factory=dict)

    def note_collected(self, collected: dict[str, Any]) -> None:
        for cassette, nodeids in collected.items():
            self.collected.setdefault(cassette, set()).update(nodeids)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Keep each finished test's figures (on the xdist controller: the reports its workers send)."""
        payload = getattr(report, "seedreplay", None)
        if payload and report.when == "teardown":
            self.payloads.append(payload)

    @property
    def quiet(self) -> bool:
        """No test of the run needed the proxy: there is nothing to add up."""
        return all(payload.get("quiet") for payload in self.payloads)

    def tally(self) -> Tally:
        from .summary import Tally  # a run whose tests never needed the proxy has no figures to add up

        tally = Tally()
        for payload in self.payloads:
            tally.add(payload)
        return tally


LOOPBACK_HOST_PATTERN = r"127\.0\.0\.1$"

_STATE = pytest.StashKey[_State]()
_TEST = pytest.StashKey[TestRecording]()
_DRIFT = pytest.StashKey[str]()  # the drift policy the `seedreplay_config` fixture set for a test

# Asking for one of these opts a test in (as the marker does); the other two only configure.
PLUGIN_FIXTURES = frozenset({"seedreplay", "openai_client", "async_openai_client", "seedreplay_proxy", "seedreplay_finetune"})
# Another way of faking OpenAI (pytest-httpx, respx): seedreplay leaves such a test alone.
# Fixtures of the other ways of faking OpenAI: a test that asks for one is left alone (pytest-httpx,
# respx, openai-responses' `openai_mock`, which its decorator passes the test); ini
# `seedreplay_other_fakes` adds a project's own.
OTHER_FAKES = frozenset({"httpx_mock", "respx_mock", "openai_mock"})


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("seedreplay", "seedreplay: record and replay the OpenAI API")
    group.addoption(
        "--seedreplay",
        dest="seedreplay_mode",
        choices=[m.value for m in PYTEST_MODES],
        default=None,
        help=f"opt the whole run in (also ini seedreplay_mode, ${ENV_MODE}). replay: cassettes only, no network; "
        "record: record what is missing; rewrite: re-record everything used; live: call the upstream and compare; "
        "off: do nothing, not even for marked tests",
    )
    group.addoption(
        "--seedreplay-upstream",
        dest="seedreplay_upstream",
        metavar="URL",
        default=None,
        help=f"API base URL to record from (default: ${ENV_UPSTREAM}, else the "
        f"{ENV_BASE_URL} in effect, else {DEFAULT_UPSTREAM})",
    )
    group.addoption(
        "--seedreplay-anthropic-upstream",
        dest="seedreplay_anthropic_upstream",
        metavar="URL",
        default=None,
        help=f"Anthropic's API root to record /v1/messages from (default: sim when --seedreplay-upstream is sim, "
        f"else ${ENV_ANTHROPIC_UPSTREAM}, else the {ENV_ANTHROPIC_BASE_URL} in effect, else {DEFAULT_ANTHROPIC_UPSTREAM})",
    )
    group.addoption(
        "--seedreplay-cassette-dir",
        dest="seedreplay_cassette_dir",
        metavar="DIR",
        default=None,
        help=f"directory of cassettes, relative to the current directory (default: ini seedreplay_cassette_dir, "
        f"relative to rootdir, else {DEFAULT_CASSETTE_DIR})",
    )
    group.addoption(
        "--seedreplay-drift",
        dest="seedreplay_drift",
        choices=DRIFT_POLICIES,
        default=None,
        help="live mode: warn (default) or fail when an answer differs from its recording; fail-on-change "
        "fails only when its behaviour changed (tool calls, JSON shape, finish reason, refusal), not its words",
    )
    group.addoption(
        "--seedreplay-report",
        dest="seedreplay_report",
        metavar="PATH",
        default=None,
        help="write a JSON report to PATH and a readable HTML page next to it",
    )
    group.addoption(
        "--seedreplay-keep-failed",
        dest="seedreplay_keep_failed",
        action="store_true",
        help="record mode: save new interactions of failing tests too",
    )
    group.addoption(
        "--seedreplay-orphans",
        dest="seedreplay_orphans",
        action="store_true",
        help="list cassette files no collected test uses, and recordings no request asked for",
    )
    group.addoption(
        "--seedreplay-block-network",
        dest="seedreplay_block_network",
        action="store_true",
        help="stop every connection to a non-loopback host, not only those meant for the OpenAI API",
    )
    parser.addini(
        "seedreplay_block_network",
        "stop every non-loopback connection (as --seedreplay-block-network)",
        type="bool",
        default=False,
    )
    group.addoption(
        "--seedreplay-finetune",
        dest="seedreplay_finetune",
        metavar="latest|VERSION|MODEL",
        default=None,
        help="live mode: ask this manifest version's fine-tuned model (with its seed) every request for its "
        "base model, and compare each answer with its recording (verbatim recall per test)",
    )
    group.addoption(
        "--seedreplay-finetune-manifest",
        dest="seedreplay_finetune_manifest",
        metavar="PATH",
        default=None,
        help="the fine-tune manifest (default: finetunes.json in the cassette dir)",
    )
    group.addoption(
        "--seedreplay-prices",
        dest="seedreplay_prices",
        metavar="FILE",
        default=None,
        help=f"a price table (JSON) for the money the summary says replays saved (default: ${ENV_PRICES}, "
        "else the dated built-in table)",
    )
    parser.addini("seedreplay_prices", f"a price table for the money saved, relative to rootdir (as ${ENV_PRICES})", default="")
    parser.addini("seedreplay_mode", "opt the whole run in, in this mode (replay|record|rewrite|live|off)", default="")
    parser.addini("seedreplay_cassette_dir", "directory of cassettes, relative to rootdir", default=DEFAULT_CASSETTE_DIR)
    parser.addini("seedreplay_upstream", "API base URL to record from", default="")
    parser.addini("seedreplay_anthropic_upstream", "Anthropic's API root to record from", default="")
    parser.addini(
        "seedreplay_other_fakes",
        "fixtures of other ways of faking the API: a test asking for one is left alone",
        type="linelist",
        default=[],
    )
    parser.addini(
        "seedreplay_drift",
        "live mode: warn, fail, or fail-on-change on drift",
        default=DEFAULT_DRIFT_POLICY,
    )


def _option(config: pytest.Config, name: str) -> Any:
    # Early on only the known-args namespace holds the command line (config.option has defaults).
    known = config.known_args_namespace
    return getattr(known, name) if hasattr(known, name) else getattr(config.option, name, None)


def _is_xdist_controller(config: pytest.Config) -> bool:
    """The xdist controller runs no test, so it needs no proxy (its workers start their own)."""
    if hasattr(config, "workerinput") or "PYTEST_XDIST_WORKER" in os.environ:
        return False
    return bool(_option(config, "numprocesses")) or (_option(config, "dist") or "no") != "no"


def _setup(config: pytest.Config) -> _State:
    """Read the settings and, unless the plugin is off, start the proxy and point OPENAI_BASE_URL at it."""
    state = config.stash.get(_STATE, None)
    if state is not None:
        return state
    # Installed is not active: only these opt the whole run in (the command line wins, then the
    # environment, then the ini, as pytest-django reads its settings); a test can opt in on its own.
    given = _option(config, "seedreplay_mode") or os.environ.get(ENV_MODE) or config.getini("seedreplay_mode")
    mode = given or DEFAULT_PYTEST_MODE
    drift = _option(config, "seedreplay_drift") or config.getini("seedreplay_drift")
    if mode not in PYTEST_MODES:
        raise pytest.UsageError(f"seedreplay_mode = {mode!r}: use one of {', '.join(PYTEST_MODES)}")
    mode = Mode(mode)
    if drift not in DRIFT_POLICIES:
        raise pytest.UsageError(f"seedreplay_drift = {drift!r}: use {' or '.join(DRIFT_POLICIES)}")
    upstream = _option(config, "seedreplay_upstream") or config.getini("seedreplay_upstream")
    # --seedreplay-finetune needs live mode: checked once the hook may have changed the mode (`_configured`).
    finetune = _option(config, "seedreplay_finetune")
    manifest = _option(config, "seedreplay_finetune_manifest")
    prices = _prices_file(config)
    upstream = choose_upstream(upstream, os.environ)
    anthropic = _option(config, "seedreplay_anthropic_upstream") or config.getini("seedreplay_anthropic_upstream")
    settings = Settings(
        mode=mode,
        cassette_dir=_cassette_dir(config),
        upstream=upstream,
        # Read before the session points ANTHROPIC_BASE_URL at the proxy: the user's own is the upstream.
        anthropic_upstream=recording_anthropic_upstream(anthropic, upstream, os.environ),
        drift_policy=drift,
        keep_failed=bool(_option(config, "seedreplay_keep_failed")),
        run_id=uuid.uuid4().hex,
        block_network=bool(_option(config, "seedreplay_block_network") or config.getini("seedreplay_block_network")),
        finetune=finetune,
        finetune_manifest=config.invocation_params.dir / manifest if manifest else None,
        prices=prices,
        session_wide=bool(given) and mode != Mode.OFF,
        record_options=_record_options(config),
    )
    session = Session(settings)
    state = _State(settings, session, worker=False)
    config.stash[_STATE] = state
    config.add_cleanup(session.stop)  # runs even when pytest stops before configure (--version)
    if not settings.session_wide:
        return state  # nothing changes unless a test opts in
    session.use_prices()
    idle = _option(config, "collectonly") or _option(config, "help") or _option(config, "version")
    if idle or _is_xdist_controller(config):
        # No proxy here (--collect-only, an xdist controller), but conftest.py and the app it imports
        # may build `openai.OpenAI()`: in replay that must work without a key, as in the tests.
        session.lend_key()
    else:
        session.start()
        session.cover_process()
    return state


def _configured(config: pytest.Config, state: _State) -> None:
    """Once conftest.py files are loaded (so theirs is called too): `pytest_seedreplay_configure`, then
    what the settings it may have changed must hold, said before any test runs."""
    settings, session = state.settings, state.session
    config.hook.pytest_seedreplay_configure(config=config, settings=settings)
    if settings.mode == Mode.OFF:  # turned off by the hook
        settings.session_wide = False
        session.stop()
        return
    if settings.finetune:
        if settings.mode != Mode.LIVE:
            raise pytest.UsageError(
                f"--seedreplay-finetune compares live answers with the cassettes: add --seedreplay=live (mode is {settings.mode})"
            )
        from .finetune.live import FinetuneUnavailable, manifest_path, resolve  # only a run that names a fine-tune

        try:  # a version that does not exist is said once, before any test runs
            resolve(settings.finetune, manifest_path(settings.cassette_dir, settings.finetune_manifest), live=True)
        except FinetuneUnavailable as exc:
            raise pytest.UsageError(f"--seedreplay-finetune: {exc}") from None
    if session.serving:
        try:
            _check_upstreams(settings)
        except ValueError as exc:
            raise pytest.UsageError(f"seedreplay: {exc}") from None
        _allow_loopback(config)


def _check_upstreams(settings: Settings) -> None:
    """ValueError naming the upstream (OpenAI's or Anthropic's) that is not a usable URL."""
    check_upstream(settings.upstream)
    try:
        check_upstream(settings.anthropic_upstream)
    except ValueError:
        raise ValueError(
            f"the Anthropic upstream {public_url(settings.anthropic_upstream)!r} is not an http(s) URL "
            f"(--seedreplay-anthropic-upstream, ini seedreplay_anthropic_upstream, ${ENV_ANTHROPIC_UPSTREAM}): "
            f"give Anthropic's root, like {DEFAULT_ANTHROPIC_UPSTREAM}, or the word 'sim' for the built-in simulator"
        ) from None


def _cassette_dir(config: pytest.Config) -> Path:
    """--seedreplay-cassette-dir (from where pytest was run), else the ini's (from the rootdir). normpath:
    a dir beside the rootdir (`../cassettes`) reads as the user would write it."""
    given = _option(config, "seedreplay_cassette_dir")
    base = config.invocation_params.dir if given else config.rootpath
    return Path(os.path.normpath(base / (given or config.getini("seedreplay_cassette_dir"))))


def _record_options(config: pytest.Config) -> str:
    """The options of this run a printed record command must repeat to record the same way."""
    words = []
    for flag in ("--seedreplay-upstream", "--seedreplay-anthropic-upstream", "--seedreplay-cassette-dir"):
        given = _option(config, flag.removeprefix("--").replace("-", "_"))
        if given:
            words += [flag, given]
    for override in _option(config, "override_ini") or ():
        if override.startswith("seedreplay_") and not override.startswith("seedreplay_mode="):
            words += ["-o", override]
    return shlex.join(words)


def _allow_loopback(config: pytest.Config) -> None:
    """pytest-recording's --block-network stops every socket but --allowed-hosts: our proxy is on
    loopback, so add it (the user's own hosts kept)."""
    if not getattr(config.option, "block_network", False) or getattr(config.option, "allow_private_ips", False):
        return
    allowed = getattr(config.option, "allowed_hosts", None)
    if isinstance(allowed, str) or allowed is None:
        config.option.allowed_hosts = ",".join(filter(None, [allowed, LOOPBACK_HOST_PATTERN]))


def _prices_file(config: pytest.Config) -> str | None:
    """The price table the run names (--seedreplay-prices, else the ini's, else $SEEDREPLAY_PRICES),
    checked now: a file that cannot be read is said before any test runs, not at the first replay."""
    given, flag = _option(config, "seedreplay_prices"), "--seedreplay-prices"
    in_ini = config.getini("seedreplay_prices")
    if given:
        path = str(config.invocation_params.dir / given)
    elif in_ini:
        path, flag = str(config.rootpath / in_ini), "seedreplay_prices (ini)"
    elif os.environ.get(ENV_PRICES):
        path, flag = os.environ[ENV_PRICES], f"${ENV_PRICES}"
    else:
        return None
    from .savings import PricesError, prices_from  # the price table: only when a file is named

    try:
        prices_from(path)
    except PricesError as exc:
        raise pytest.UsageError(f"{flag}: {exc}") from None
    return path


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config) -> None:
    # Before conftest.py files are imported: an app module they import that builds
    # `openai.OpenAI()` at import time must already see the proxy's OPENAI_BASE_URL.
    _setup(early_config)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "seedreplay(cassette=None, mode=None, seed=None, finetune=None, drift=None): this test's cassette name "
        "(shareable), mode, a seed injected into requests that carry none, and in live mode a fine-tune to compare "
        "with ('latest', 'v2') and what drift does (warn, fail, fail-on-change)",
    )
    state = _setup(config)  # already done, unless the plugin was registered late (pytest_plugins)
    _configured(config, state)
    worker_input = getattr(config, "workerinput", None)
    if worker_input is not None:
        state.worker = True
        state.settings.run_id = worker_input.get("seedreplay_run_id") or state.settings.run_id
    config.pluginmanager.register(state, "seedreplay-state")


def pytest_unconfigure(config: pytest.Config) -> None:
    state = config.stash.get(_STATE, None)
    if state is not None and not state.worker:
        RunRegistry(state.settings.run_id).remove()


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """xdist: every worker of this run shares the run id (shared-cassette rewrites merge by it)."""
    node.workerinput["seedreplay_run_id"] = node.config.stash[_STATE].settings.run_id


def pytest_report_header(config: pytest.Config) -> str | None:
    state = config.stash.get(_STATE, None)
    if state is None or not state.settings.session_wide:
        return None
    s = state.settings
    return f"seedreplay: mode={s.mode}, cassettes={s.cassette_dir}, upstream={public_url(s.upstream)}"


# --- collection ---------------------------------------------------------------------------------


def pytest_itemcollected(item: pytest.Item) -> None:
    """Remember each collected test's cassette before `-k`/`-m` deselect any: a deselected test still
    owns its cassette, so `--seedreplay-orphans` must not list it."""
    state = item.config.stash.get(_STATE, None)
    if state is None or state.settings.mode == Mode.OFF or not item.config.getoption("seedreplay_orphans"):
        return
    marker = item.get_closest_marker("seedreplay")
    try:
        name = marker_options(dict(marker.kwargs), marker.args)[1] if marker else None
        path = str(cassette_path(state.settings.cassette_dir, item.nodeid, name))
    except SeedreplayError:
        return  # the test's setup reports the bad marker or cassette name
    state.collected.setdefault(path, set()).add(item.nodeid)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    """xdist controller: the workers collected the tests, and say which cassettes they map to."""
    state = node.config.stash.get(_STATE, None)
    if state is not None:
        state.note_collected(getattr(node, "workeroutput", {}).get("seedreplay_collected", {}))


# --- per test -----------------------------------------------------------------------------------


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    from . import hooks

    pluginmanager.add_hookspecs(hooks)


def _begin(item: pytest.Item, state: _State, overrides: dict[str, Any] | None = None) -> TestRecording:
    """This test's recording: the marker's mode/cassette/seed, else the `seedreplay_config` fixture's
    (`overrides`), else the session's; the cassette dir from `seedreplay_cassette_dir`. Served at once
    if the test is marked (or a plugin wants to see its recording), else when something needs it."""
    given = overrides or {}
    marker = item.get_closest_marker("seedreplay")
    mode, name, seed, finetune = marker_options(dict(marker.kwargs), marker.args) if marker else (None, None, None, None)
    mode, name = mode or given.get("mode"), name or given.get("cassette")
    seed = seed if seed is not None else given.get("seed")
    finetune = finetune if finetune is not None else given.get("finetune")
    cassette_dir = Path(given.get("cassette_dir") or state.settings.cassette_dir)
    path = item.config.hook.pytest_seedreplay_cassette_path(item=item, cassette_dir=cassette_dir, name=name)
    path = Path(path) if path is not None else cassette_path(cassette_dir, item.nodeid, name)
    effective = Mode(mode or state.settings.mode) if state.session.serving else Mode.OFF
    test = state.session.begin(
        TestRecording(item.nodeid, path, effective, seed, mode is not None, finetune), needed=marker is not None
    )
    if item.config.hook.pytest_seedreplay_recording.get_hookimpls():  # a plugin wants each test's recording: make it
        item.config.hook.pytest_seedreplay_recording(item=item, recording=state.session.serve(test))
    return test


def _served(item: pytest.Item, settings: Settings) -> bool:
    """Does seedreplay serve this test? Only in a run or for a test that opted in, and never a test
    that fakes OpenAI another way (its environment stays exactly what it was without us).
    SeedreplayError: its marker is wrong."""
    if settings.mode == Mode.OFF:
        return False
    marker = item.get_closest_marker("seedreplay")
    fixtures = set(getattr(item, "fixturenames", ()))
    if marker is not None and marker_options(dict(marker.kwargs), marker.args)[0] == Mode.OFF:
        return False
    if fixtures & (OTHER_FAKES | set(item.config.getini("seedreplay_other_fakes"))):
        return False
    # pytest-recording fakes nothing under its --disable-recording: then a vcr test is ours like any other.
    if item.get_closest_marker("vcr") is not None and not item.config.getoption("disable_recording", False):
        return False
    return settings.session_wide or marker is not None or bool(fixtures & PLUGIN_FIXTURES)


def _cover_test(item: pytest.Item, state: _State) -> None:
    """A test opted in on its own: the proxy's port reserved (the first time), and the client
    environment pointed at it for this test only."""
    session = state.session
    if not session.serving:
        try:
            _check_upstreams(state.settings)
        except ValueError as exc:
            raise SeedreplayError(f"seedreplay: {exc}") from None
        session.use_prices()
        session.start()
        _allow_loopback(item.config)
    marker = item.get_closest_marker("seedreplay")
    mode = marker_options(dict(marker.kwargs), marker.args)[0] if marker else None
    session.cover(replay=(mode or state.settings.mode) == Mode.REPLAY)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> Iterator[None]:
    # Before any fixture: a session fixture calling the API lands in the first test's cassette.
    state = item.config.stash[_STATE]
    problem = None
    try:
        if _served(item, state.settings):
            if not state.settings.session_wide:
                _cover_test(item, state)
            item.stash[_TEST] = _begin(item, state)
        elif state.settings.session_wide and state.session.serving:
            state.session.lift()
    except SeedreplayError as exc:
        problem = str(exc)
        item.stash[_TEST] = TestRecording(item.nodeid, Path(), Mode.OFF)
    result = yield  # pytest's own setup must run either way, or its teardown bookkeeping breaks
    if problem:
        pytest.fail(problem, pytrace=False)
    return result


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    # After the fixtures' teardown: their requests are part of the test's cassette.
    state = item.config.stash[_STATE]
    test = item.stash.get(_TEST, None)
    if test is None:
        try:
            return (yield)
        finally:
            state.session.uncover()
    try:
        result = yield
    except BaseException:
        test.fail()
        try:
            state.session.finish(test)
        except SeedreplayError:
            pass  # the teardown error already fails the test, and nothing is written for it
        finally:
            state.session.uncover()
        raise
    try:
        state.session.finish(test)
    except SeedreplayError as exc:
        problem = str(exc)
    else:
        return result
    finally:
        state.session.uncover()
    pytest.fail(problem, pytrace=False)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    test = item.stash.get(_TEST, None)
    if test is None or test.mode == Mode.OFF:
        return report
    session = item.config.stash[_STATE].session
    session.settle()
    if session.told(test):  # the test used the proxy (or was guarded): what happened goes on its report
        _annotate(item, call, report, test, session)
    if report.failed or hasattr(report, "wasxfail"):
        test.fail()
    elif call.when == "call" and report.passed:
        test.complete()
    if call.when == "teardown":
        report.seedreplay = test.payload()  # type: ignore[attr-defined]  # travels to the xdist controller with the report
    return report


def _annotate(
    item: pytest.Item, call: pytest.CallInfo[None], report: pytest.TestReport, recording: TestRecording, session: Session
) -> None:
    from .wording import annotate, without_client_frames  # loaded already: the test has a recording

    if report.failed and call.excinfo is not None and recording.new_miss_pending and not item.config.getoption("fulltrace"):
        # The SDK raised for the miss: show the test's own frames, then the miss, not the SDK's internals.
        cut = without_client_frames(call.excinfo.tb)
        if cut is not None:
            report.longrepr = item.repr_failure(pytest.ExceptionInfo.from_exc_info((call.excinfo.type, call.excinfo.value, cut)))
    marker = item.get_closest_marker("seedreplay")
    # The marker wins over the seedreplay_config fixture, which wins over the session's option.
    from_marker = marker_drift(dict(marker.kwargs)) if marker else None
    policy = from_marker or item.stash.get(_DRIFT, None) or session.settings.drift_policy
    for text in annotate(report, recording, policy, session.url):
        # Attributed to the test itself, not to this hook, in pytest's warnings summary.
        warnings.warn_explicit(SeedreplayDriftWarning(text), SeedreplayDriftWarning, str(item.path), (item.location[1] or 0) + 1)


# --- end of session -----------------------------------------------------------------------------


def pytest_sessionfinish(session: pytest.Session) -> None:
    state = session.config.stash.get(_STATE, None)
    path = session.config.getoption("seedreplay_report")
    if state is not None and state.worker:
        # Sent to the controller with the worker's other output (plain lists travel over execnet).
        collected = {k: sorted(v) for k, v in state.collected.items()}
        session.config.workeroutput["seedreplay_collected"] = collected  # type: ignore[attr-defined]  # set by xdist
        return
    if state is None or not path:
        return
    settings, tally = state.settings, state.tally()
    from .report import build_report, write_report  # only asked for with --seedreplay-report

    report = build_report(settings.mode, public_url(settings.upstream), tally.counts, tally.tests, session.config.rootpath)
    state.report_paths = write_report(session.config.invocation_params.dir / path, report)


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    state = config.stash.get(_STATE, None)
    if state is None or state.worker or not (state.settings.session_wide or state.payloads):
        return  # not opted in, nor any test: no section
    tr = terminalreporter
    tr.write_sep("-", f"seedreplay ({state.settings.mode})")
    orphans = config.getoption("seedreplay_orphans")
    if state.quiet and not orphans and not state.report_paths:
        tr.write_line(NO_REQUESTS)  # what the tally would say, without loading it
        return
    tally = state.tally()
    for line in tally.summary_lines(state.settings.mode, state.settings.cassette_dir, state.settings.record_options):
        tr.write_line(line)
    for path in state.report_paths:
        tr.write_line(f"report: {path}")
    if orphans:
        from .summary import orphan_lines  # loaded with the tally

        for line in orphan_lines(state.settings.cassette_dir, tally, state.collected):
            tr.write_line(line)


# --- fixtures -----------------------------------------------------------------------------------


@dataclass
class ProxyHandle:
    """What the `seedreplay_proxy` fixture hands a test: the base URL to give any client."""

    url: str  # with /v1, as OPENAI_BASE_URL wants it
    cassette: Path
    mode: str

    @property
    def root(self) -> str:
        return self.url.removesuffix("/v1")


def client_options(key_variable: str = ENV_API_KEY) -> dict[str, Any]:
    """Keyword arguments for the fixtures' clients (OpenAI's; Anthropic's with its key variable): no
    retries (a replay miss fails at once) and a dummy key when none is set (replay needs no real one)."""
    return {"api_key": os.environ.get(key_variable) or DUMMY_API_KEY, "max_retries": 0}


@pytest.fixture
def seedreplay_config() -> dict[str, Any]:
    """Override (in a conftest.py or a module) to set `mode`, `cassette`, `seed`, `finetune` or `drift` for the tests it
    covers, as the marker does for one test; the marker wins over it."""
    return {}


@pytest.fixture
def seedreplay_cassette_dir(request: pytest.FixtureRequest) -> Path:
    """Override to keep some tests' cassettes elsewhere (e.g. next to their module)."""
    return request.config.stash[_STATE].settings.cassette_dir


@pytest.fixture(autouse=True)
def _seedreplay_overrides(
    request: pytest.FixtureRequest, seedreplay_config: dict[str, Any], seedreplay_cassette_dir: Path
) -> None:
    """Where `seedreplay_config` or `seedreplay_cassette_dir` is overridden, serve the cassette they
    name from here on (the test's recording began with the session's settings, before any fixture)."""
    item = request.node
    state = item.config.stash[_STATE]
    test = item.stash.get(_TEST, None)
    if test is None or (not seedreplay_config and Path(seedreplay_cassette_dir) == state.settings.cassette_dir):
        return  # a test seedreplay leaves alone, or nothing overridden
    given = dict(seedreplay_config)
    try:
        marker_options(given)  # the same keys and checks as the marker's
    except SeedreplayError as exc:
        pytest.fail(str(exc).replace("@pytest.mark.seedreplay", "the seedreplay_config fixture"), pytrace=False)
    drift = marker_drift(given)
    if drift is not None:
        item.stash[_DRIFT] = drift
    given["cassette_dir"] = seedreplay_cassette_dir
    state.session.abandon(test)
    item.stash[_TEST] = _begin(item, state, given)


def _recording(item: pytest.Item) -> TestRecording:
    """The test's recording, its cassette served from now on: a test that asks for it uses the proxy."""
    test = item.stash.get(_TEST, None) or TestRecording(item.nodeid, Path(), Mode.OFF)  # a test seedreplay leaves alone
    try:
        return item.config.stash[_STATE].session.serve(test)
    except SeedreplayError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture
def seedreplay(request: pytest.FixtureRequest) -> TestRecording:
    """This test's handle: `.cassette`, `.mode`, `.interactions`, `.drift` (live), `.misses`."""
    return _recording(request.node)


@pytest.fixture
def seedreplay_finetune(request: pytest.FixtureRequest) -> TestFinetune | None:
    """The fine-tune this test compares with (`--seedreplay-finetune`, marker `finetune=`): `.model`,
    `.seed`, `.version`, `.base_model`, `.live` (its requests really go to the fine-tune); None for none."""
    return _recording(request.node).finetune


@pytest.fixture
def seedreplay_proxy(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> ProxyHandle:
    """The proxy serving this test's cassette; OPENAI_BASE_URL (and ANTHROPIC_BASE_URL, its `.root`)
    point at it for subprocesses too."""
    session = request.config.stash[_STATE].session
    recording = _recording(request.node)
    served = session.serving and recording.mode != Mode.OFF
    url = session.url if served else session.settings.upstream
    if served:
        monkeypatch.setenv(ENV_BASE_URL, url)
        monkeypatch.setenv(ENV_ANTHROPIC_BASE_URL, url.removesuffix("/v1"))
    return ProxyHandle(url=url, cassette=recording.cassette, mode=recording.mode)


@pytest.fixture
def openai_client(seedreplay_proxy: ProxyHandle) -> Iterator[Any]:
    """`openai.OpenAI` wired to the seedreplay proxy, `max_retries=0`."""
    import openai

    client = openai.OpenAI(base_url=seedreplay_proxy.url, **client_options())
    yield client
    client.close()


@pytest.fixture
def async_openai_client(seedreplay_proxy: ProxyHandle) -> Any:
    """`openai.AsyncOpenAI` wired to the seedreplay proxy, `max_retries=0`."""
    import openai

    # No kept-alive connections: nothing is left to close on an event loop that may be gone by teardown.
    limits = type(openai.DEFAULT_CONNECTION_LIMITS)(max_connections=100, max_keepalive_connections=0)
    http_client = openai.DefaultAsyncHttpxClient(limits=limits)
    return openai.AsyncOpenAI(base_url=seedreplay_proxy.url, http_client=http_client, **client_options())
