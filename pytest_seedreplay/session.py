"""The plugin's session, free of pytest hooks: one owner per pytest process of the port, the client
environment, the network guard around each test and the proxy bound to each test's cassette.

Most runs of most projects make no OpenAI call, and pay only for what those still need — a loopback
port reserved with OPENAI_BASE_URL (and friends) pointed at it, the dummy replay keys, and the guard.
The proxy, aiohttp and the cassette code (`wording`, `cassettes`) are loaded the first time
something needs them: a test with the marker, a cassette file or one of the plugin's fixtures; a
client connecting to the port; the guard stopping a call. Until then a test's cassette is only noted
(its `TestRecording`, not yet served)."""

from __future__ import annotations

import contextlib
import importlib.abc
import os
import select
import socket
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .core.constants import DEFAULT_HOST, ENV_PRICES, GUARDED_TRANSPORTS
from .core.environ import ClientEnvironment
from .policy import Mode
from .recorder import RunRegistry, SeedreplayError, TestRecording, record_command, shown
from .settings import Settings

if TYPE_CHECKING:
    from .finetune.live import TestFinetune
    from .guard import Blocked, NetworkGuard
    from .proxy.running import Proxy

NO_REQUESTS = "no OpenAI requests in this run"  # the summary of a run whose tests never needed the proxy
IDLE_TIMEOUT = 10.0  # seconds a test's end waits for its in-flight requests to finish


class Session:
    """One per pytest process (each xdist worker has its own). `start()` reserves the port; `begin`,
    `serve`, `finish` follow each test; `proxy` serves on the port, None until a test needs it
    (then it is bound to each test's cassette in turn, and to none between tests)."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.proxy: Proxy | None = None
        self.url = ""  # the proxy's base URL (ends in /v1), once the port is reserved
        self._env = ClientEnvironment()  # the whole process's clients: a session-wide opt-in
        self._prices = ClientEnvironment()
        self._covered: ClientEnvironment | None = None  # a per-test opt-in's environment, the test under way's
        self._lifted = False  # the test under way is left alone: the whole process's environment lifted
        self._lock = threading.RLock()  # the proxy starts once, whichever thread needs it first
        self._sock: socket.socket | None = None
        self._wake: tuple[int, int] | None = None  # tells the watcher to stop waiting for a client
        self._watcher: threading.Thread | None = None
        self._stopping = False
        self._failure: BaseException | None = None  # the proxy could not start: said to whoever needs it
        self._test: TestRecording | None = None  # the test under way
        self._guard: NetworkGuard | None = None
        self._watch: _TransportWatch | None = None  # stands in for the guard until a transport is imported
        self._finetunes: dict[tuple[str, bool], TestFinetune] = {}

    @property
    def serving(self) -> bool:
        """A proxy is on the port for the tests (the plugin is on, and this process runs tests)."""
        return bool(self.url)

    # --- the process ---------------------------------------------------------------------------

    def start(self) -> None:
        """Reserve the proxy's port (once). Nothing serves on it until a client connects or a test
        needs the proxy."""
        if self.serving:
            return
        self._sock = socket.create_server((DEFAULT_HOST, 0))
        self.url = f"http://{DEFAULT_HOST}:{self._sock.getsockname()[1]}/v1"
        self._wake = os.pipe()
        self._watcher = threading.Thread(target=self._wait_for_a_client, name="seedreplay-standby", daemon=True)
        self._watcher.start()

    def cover_process(self) -> None:
        """A session-wide opt-in: OPENAI_BASE_URL (and friends) at the proxy for the whole run, set
        before conftest.py is imported so clients built at import time are covered."""
        self._env.point_at(self.url)
        self.lend_key()

    def lift(self) -> None:
        """A test that fakes OpenAI its own way sees the environment as it was without us (until `uncover`)."""
        self._env.lift()
        self._lifted = True

    def cover(self, replay: bool) -> None:
        """A test that opted in on its own: the client environment points at the proxy for this test
        only (until `uncover`), with a dummy key where no real one is needed."""
        s = self.settings
        self._covered = ClientEnvironment()
        self._covered.point_at(self.url)
        self._covered.lend_keys_for(replay, s.upstream, s.anthropic_upstream)

    def uncover(self) -> None:
        """The test is over: the environment is what it was before `cover` or `lift`."""
        if self._covered is not None:
            self._covered.restore()
            self._covered = None
        if self._lifted:
            self._env.reapply()
            self._lifted = False

    def use_prices(self) -> None:
        """The run's price table reaches every reader of $SEEDREPLAY_PRICES (the summary, the tests'
        recordings, xdist workers, a `seedreplay` command a test starts) until the run ends."""
        if self.settings.prices:
            self._prices.set(ENV_PRICES, self.settings.prices)

    def lend_key(self) -> None:
        """Replay needs no API key, but the SDK refuses to build a client without one: lend a dummy.
        (Also on the xdist controller, which runs no proxy but imports conftest.py and the app.)"""
        s = self.settings
        self._env.lend_keys_for(s.mode == Mode.REPLAY, s.upstream, s.anthropic_upstream)

    def stop(self) -> None:
        with self._lock:
            self._stopping = True
            self._stop_watching()
        if self._watcher is not None:
            self._watcher.join()
            self._watcher = None
        if self.proxy is not None:
            self.proxy.stop()  # it closes the port
            self.proxy = None
        elif self._sock is not None:
            self._sock.close()
        self._sock = None
        self._env.restore()
        self._prices.restore()

    def _wait_for_a_client(self) -> None:
        """The watcher: wait, at no cost, for the first client to connect (then start the proxy, which
        answers it from the cassette of the test under way) or for the proxy to start anyway."""
        assert self._sock is not None and self._wake is not None
        port = self._sock.fileno()
        try:
            ready, _, _ = select.select([port, self._wake[0]], [], [])
            if port in ready:
                self._start_for_a_client()
        finally:
            with self._lock:
                wake, self._wake = self._wake, None
                for fd in wake or ():
                    os.close(fd)

    def _start_for_a_client(self) -> None:
        with self._lock:
            if self._stopping or self.proxy is not None or self._failure is not None:
                return
            test = self._test if self._test is not None and not self._test.served else None
            try:
                self._start_proxy(test)
            except SeedreplayError as exc:  # this test's cassette: its teardown says so
                if test is not None:
                    test.problem = str(exc)
            except BaseException as exc:
                self._failure = exc
                if self.proxy is None and self._sock is not None:
                    self._sock.close()  # refused at once, rather than a client waiting for ever
                    self._sock = None

    def _stop_watching(self) -> None:
        if self._wake is not None:  # the watcher closes it when it is done
            os.write(self._wake[1], b"x")

    def _start_proxy(self, test: TestRecording | None) -> None:
        """The proxy on the reserved port, bound to `test`'s cassette before it serves (a client already
        waiting is answered from it). Called with the lock held."""
        if self._failure is not None:
            raise self._failure
        from .proxy.running import Proxy  # the proxy and the cassettes: only once a test needs them
        from .store.cassette_store import CassetteStore

        self._stop_watching()
        s = self.settings
        # Writes are durable: a test's next request (and its end) must find what the last one recorded.
        self.proxy = Proxy(
            s.upstream,
            store=CassetteStore(None),
            mode=Mode.REPLAY,
            allow_mode_override=True,
            durable=True,
            sock=self._sock,
            anthropic_upstream=s.anthropic_upstream or None,
        )
        self._sock = None  # the proxy owns the port now
        self._idle()  # no cassette, replay, words for a call outside any test: until a test's is bound
        try:
            if test is not None:
                self._serve(test)
        finally:
            self.proxy.start(lazily=True)  # the server is built when the first request arrives (at once if one waits)

    def _serve(self, test: TestRecording) -> TestRecording:
        """Serve this test's cassette from the proxy (before or after it started). The test's
        `finetune_asked`: the marker's `finetune=` (a manifest version, or False for none); None: the
        command line's. Called with the lock held."""
        from .wording import PytestWording

        assert self.proxy is not None
        if test.mode == Mode.OFF:  # passed through, nothing kept
            from .store.cassette_store import CassetteStore

            test.serve()
            assert test.heard is not None
            self.proxy.bind(CassetteStore(None), Mode.PASSTHROUGH, test.seed, test.heard, PytestWording(), durable=True)
            return test
        from .cassettes import CassetteSession
        from .store.cassette import CassetteError

        spec = self.settings.finetune if test.finetune_asked is None else test.finetune_asked
        tuned = self._finetune_for(spec, live=test.mode == Mode.LIVE)
        options = self.settings.record_options
        try:
            tape = CassetteSession(test.cassette, Mode(test.mode), test.seed, tuned if tuned is not None and tuned.live else None)
        except CassetteError as exc:
            raise SeedreplayError(f"{exc}\nFix or delete the file, then: {record_command(options, test.nodeid)}") from None
        tape.bind(self.proxy, PytestWording())
        test.serve(tape, tuned, options)
        return test

    def _idle(self) -> None:
        from .proxy.binding import Observer
        from .store.cassette_store import CassetteStore
        from .wording import OutsideATest

        assert self.proxy is not None
        self.proxy.bind(CassetteStore(None), Mode.REPLAY, None, Observer(), OutsideATest(), durable=True)

    def _finetune_for(self, spec: str | bool | None, live: bool) -> TestFinetune | None:
        """The fine-tune `spec` names in the manifest (read once per run); None for none."""
        if not spec:
            return None
        key = (str(spec), live)
        if key not in self._finetunes:
            from .finetune.live import FinetuneUnavailable, manifest_path, resolve  # only a run that names a fine-tune

            try:
                manifest = manifest_path(self.settings.cassette_dir, self.settings.finetune_manifest)
                self._finetunes[key] = resolve(str(spec), manifest, live)
            except FinetuneUnavailable as exc:
                raise SeedreplayError(f"seedreplay: {exc}") from None
        return self._finetunes[key]

    # --- each test --------------------------------------------------------------------------------

    def begin(self, test: TestRecording, needed: bool = False) -> TestRecording:
        """A test starts: guard the network, and serve its cassette now if the test needs the proxy
        (`needed`: it is marked; or it has a cassette file or a fine-tune, or the proxy runs already:
        what it does is served as before), else only note it."""
        with self._lock:
            self._test = test
            if self.serving and (
                needed or self.proxy is not None or bool(test.finetune_asked or self.settings.finetune) or test.cassette.exists()
            ):
                self.serve(test)
        if self.serving and test.mode != Mode.OFF:
            if self.settings.block_network or any(name in sys.modules for name in GUARDED_TRANSPORTS):
                self._start_guard(test)
            else:
                self._watch = _TransportWatch(lambda: self._start_guard(test))
                sys.meta_path.insert(0, self._watch)
        return test

    def _start_guard(self, test: TestRecording) -> NetworkGuard:
        from .guard import NetworkGuard  # a transport to guard is there: the guard is needed now

        s = self.settings
        on_block = lambda blocked: self._blocked(test, blocked)  # noqa: E731
        guard = NetworkGuard(self.url, test.mode, on_block, s.upstream, s.block_network, s.anthropic_upstream)
        self._guard = guard.__enter__()
        return guard

    def serve(self, test: TestRecording) -> TestRecording:
        """The test's recording, served now if it is not yet (the proxy started for it if need be).
        SeedreplayError: its cassette cannot be read."""
        with self._lock:
            if test.served:
                return test
            if not self.serving or test.mode == Mode.OFF:
                test.serve()  # seedreplay leaves this test alone: a recording that says so
                return test
            if self.proxy is None:
                self._start_proxy(test)
                return test
            return self._serve(test)

    def _blocked(self, test: TestRecording, blocked: Blocked) -> None:
        """The guard stopped a call meant for the OpenAI API: the test's report says so. Only noted
        here: the call may run on the test's event loop, which must not wait for the proxy to start
        (threads, a cassette read); the report serves the recording (`told`)."""
        test.blocked.append(blocked)

    def told(self, test: TestRecording) -> bool:
        """Has the test a recording for its report? Served now if the guard stopped a call before it was."""
        if not test.served and test.blocked:
            try:
                self.serve(test)
            except SeedreplayError as exc:
                test.problem = str(exc)
        return test.served

    def settle(self) -> None:
        """Let in-flight answers land in the store before anything reads it."""
        with self._lock:
            proxy = self.proxy
        if proxy is not None:
            proxy.settle(IDLE_TIMEOUT)  # no request being answered, every answer stored or compared

    def abandon(self, test: TestRecording) -> None:
        """Stop serving a recording replaced before its test ran (nothing of it is written)."""
        self._unguard()
        with self._lock:
            self._test = None
            if test.served and self.proxy is not None:
                self.settle()
                self._idle()

    def finish(self, test: TestRecording) -> None:
        """The test is over: stop guarding, stop serving its cassette and write what it recorded
        (record, rewrite). SeedreplayError says what could not be written, or read."""
        self._unguard()
        with self._lock:
            self._test = None
            if test.tape is not None and self.proxy is not None:
                self.settle()
                self._idle()
                self._save(test)
        if test.problem:
            raise SeedreplayError(test.problem)

    def _save(self, recording: TestRecording) -> None:
        """Write what the test recorded, merged with the file as it is now. record: new answers only,
        and only if the test passed (or `--seedreplay-keep-failed`); rewrite: exactly the interactions
        used (merged with other tests of this run sharing the cassette)."""
        from .core.redact import SecretRefused
        from .store.cassette import CassetteError

        assert recording.tape is not None
        problem = "; ".join(recording.tape.heard.errors)
        if not problem and not (recording.failed and not self.settings.keep_failed):
            registry = RunRegistry(self.settings.run_id)  # an xdist worker learns the run id after start
            try:
                recording.written = recording.tape.save(start_fresh=registry.first_rewrite)
            except (SecretRefused, CassetteError) as exc:
                problem = str(exc)
            except OSError as exc:  # a directory that cannot be made, a full disk: say so, no traceback
                problem = f"{exc.strerror or exc} ({exc.filename or recording.cassette})"
        if problem:
            raise SeedreplayError(f"seedreplay did not write {shown(recording.cassette)}: {problem}")

    def _unguard(self) -> None:
        if self._watch is not None:
            with contextlib.suppress(ValueError):
                sys.meta_path.remove(self._watch)
            self._watch = None
        if self._guard is not None:
            self._guard.__exit__()
            self._guard = None


class _TransportWatch(importlib.abc.MetaPathFinder):
    """Around a test that began with no transport imported: the first import of one starts the network
    guard, which guards that very import (so a test that never touches httpx never loads the guard)."""

    def __init__(self, start_guard: Callable[[], NetworkGuard]):
        self.start_guard = start_guard
        self.guard: NetworkGuard | None = None

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        if fullname not in GUARDED_TRANSPORTS:
            return None
        if self.guard is None:
            self.guard = self.start_guard()
        return self.guard.find_spec(fullname, path, target)
