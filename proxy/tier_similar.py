"""The similar tier: a reworded chat question gets the recorded answer of the question it rewords.

On an exact miss, a chat request (Chat Completions, Anthropic's Messages or the Responses API) is
answered from a recorded request to the same endpoint with the same everything
but the last user message, when that message passes every guard against the new one and scores at
least the threshold (`pytest_seedreplay.similar`). The answer is the recording, verbatim, with
`X-Seedreplay-Cache: similar`, the key it came from and the score. It needs no upstream: it answers in
replay mode too. Nothing is stored for the reworded request; each one is looked up again (sub-ms).

The index is built in a thread of its own, so the proxy listens at once and serves exact hits
meanwhile; an exact miss waits for the first build (its answer must not depend on how fast the
build ran). The index then follows the proxy's own recordings as they are stored (`heard_stored`)
and other processes' writes to the store (the indexing thread lists the store's keys periodically).
Only short texts are analysed on the proxy's loop (0.1-0.5 ms): a long prompt is looked up, or
indexed, in a thread.

With an embeddings model, the score is the cosine of the two questions' vectors from any
OpenAI-compatible /v1/embeddings (the guards still decide first). A vector is read from the store
when recorded there, else asked of the upstream with the caller's credentials and recorded as an
ordinary embeddings recording, so a replay needs no network.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from pytest_seedreplay.core.constants import (
    CACHE_SIMILAR,
    EMBEDDINGS,
    HEADER_SIMILAR_KEY,
    HEADER_SIMILAR_SCORE,
    SIMILAR_SYNC_SECONDS,
)
from pytest_seedreplay.core.key import key_of_canonical
from pytest_seedreplay.policy import Fate
from pytest_seedreplay.similar import DEFAULT_THRESHOLD, SimilarIndex
from pytest_seedreplay.similar.embeddings import BATCH, cosine, embedding_entry, embedding_request, vector_of
from pytest_seedreplay.similar.index import Match, Question, last_user_text, turns
from pytest_seedreplay.similar.text import analyse

from .tiers import TierAnswer

if TYPE_CHECKING:
    from pytest_seedreplay.core.entry import Entry
    from pytest_seedreplay.similar.text import Analysis
    from pytest_seedreplay.store import Store

    from .incoming import Call
    from .tiers import Ask

__all__ = ["SimilarCounts", "SimilarTier"]

log = logging.getLogger("seedreplay.proxy.similar")

SCAN_SHARE = 20  # the store is listed again after at least 20x as long as its last listing took (<= 5% of a core)
VECTORS_KEPT = 4096  # embedding vectors held in memory (most recently used); the rest are in the store
# How long an exact miss waits for the first build of the index before it is passed on (a store of
# 10,000 recordings builds in 5-9 s; a far bigger one should not hold a client for minutes).
BUILD_WAIT_SECONDS = 30.0
UNSCORED = -1.0  # the score of a pair whose vectors are not known: below every threshold
# A request up to this size is looked up on the loop (0.1-0.5 ms), and a recorded question this short
# indexed there; bigger ones (a long prompt takes tens of ms to analyse) in a thread, so the loop every
# client shares stays free. (Under load a thread hop costs more than a short question's analysis.)
ON_LOOP_BYTES = 8 * 1024
ON_LOOP_CHARS = 1_000
ON_LOOP_MESSAGES = 16


@dataclass
class SimilarCounts:
    """What the tier did, served under `tiers.similar` in /seedreplay/stats (counted on the proxy's loop)."""

    asked: int = 0  # exact misses of any request the tier was asked about
    answered: int = 0  # answered with a recording of a reworded question
    passed: int = 0  # passed on: no recording close enough, or none of the caller's
    vectors_fetched: int = 0  # embeddings asked of the upstream (the rest came from memory or the store)


class SimilarTier:
    """The `similar` learned tier over one store. `threshold`: the lowest score that answers (see
    `seedreplay similar calibrate`); `embeddings_model`: score by the cosine of that model's vectors
    instead of the built-in measure; `build_wait`: how long an exact miss waits for the first build of
    the index before it is passed on. `start()` begins indexing (the first answer starts it too);
    `close()` stops the indexing thread before the store is closed."""

    name = CACHE_SIMILAR
    needs_upstream = False  # it answers from recordings; only a missing vector is asked for, where allowed
    keeps_tenants_apart = True  # a recording answers only a caller of its own namespace (`_recording`)

    def __init__(
        self,
        store: Store,
        threshold: float = DEFAULT_THRESHOLD,
        embeddings_model: str | None = None,
        sync_seconds: float = SIMILAR_SYNC_SECONDS,
        build_wait: float = BUILD_WAIT_SECONDS,
    ):
        self.store = store
        self.threshold = threshold
        self.embeddings_model = embeddings_model
        self.sync_seconds = sync_seconds
        self.build_wait = build_wait
        self.vectors = _Vectors(VECTORS_KEPT) if embeddings_model else None
        scorer = _VectorScorer(self.vectors, embeddings_model) if self.vectors is not None and embeddings_model else None
        self.index = SimilarIndex(threshold, scorer)
        self.measure = self.index.scorer.name
        self.counts = SimilarCounts()
        self._seen: set[str] = set()  # every key of the store looked at, chat or not
        self._seen_lock = threading.Lock()
        self._ready = _Ready()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._listing_seconds = 0.0
        # Long recordings heard stored are analysed here, off the loop; a lookup first waits for those
        # heard before it, so a rewording sent after its original was stored finds it.
        self._adder = ThreadPoolExecutor(1, thread_name_prefix="seedreplay-similar-add")
        self._adding: set[Future[bool]] = set()
        self._adding_lock = threading.Lock()

    # --- the indexing thread ---------------------------------------------------------------------

    def start(self) -> None:
        """Start indexing the store in a thread of its own (once; later calls do nothing)."""
        with self._start_lock:
            if self._thread is None and not self._stop.is_set():
                self._thread = threading.Thread(target=self._run, name="seedreplay-similar-index", daemon=True)
                self._thread.start()

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Wait until the first build of the index is over; False if it took longer than `timeout`."""
        self.start()
        return self._ready.event.wait(timeout)

    def close(self, timeout: float = 10.0) -> None:
        """Stop the indexing thread (it stops between two recordings) and answer nothing more."""
        self._stop.set()
        self._ready.set()  # a request still waiting for the build goes on without it
        self._adder.shutdown(wait=False, cancel_futures=True)
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def _run(self) -> None:
        started = time.monotonic()
        try:
            self._build()
        except Exception as exc:  # the tier answers from what it indexed; the proxy goes on
            log.error("similar tier: reading the recordings of %s failed: %s", self.store.location, exc)
        finally:
            self._ready.set()
        if not self._stop.is_set():
            log.info(
                "similar tier: %d recorded chat questions indexed in %.1f s (measure %s, threshold %.3f)",
                len(self.index),
                time.monotonic() - started,
                self.measure,
                self.threshold,
            )
        while not self._stop.wait(max(self.sync_seconds, SCAN_SHARE * self._listing_seconds)):
            try:
                self.sync()
            except Exception as exc:  # a store briefly unreadable: try again next time
                log.warning("similar tier: listing %s failed: %s", self.store.location, exc)

    def _build(self) -> None:
        analyse("warm up")  # the word lists load on first use: here, never on the loop
        for key, canonical in self.store.iter_requests():
            if self._stop.is_set():
                return
            with self._seen_lock:
                self._seen.add(key)
            self.index.add(key, canonical)

    def sync(self) -> tuple[int, int]:
        """Follow other processes' writes: index the store's new recordings, drop the deleted ones.
        Returns (added, removed). The indexing thread calls it every `sync_seconds` or so."""
        with self._seen_lock:
            before = set(self._seen)
        # Listed after the snapshot: a key heard stored since is in the listing, so never dropped.
        started = time.monotonic()
        keys = set(self.store.iter_keys())
        self._listing_seconds = time.monotonic() - started  # the cost paid again at every sync
        added = 0
        for key in sorted(keys - before):
            if self._stop.is_set():
                break
            try:
                entry = self.store.get(key)
            except Exception as exc:  # one unreadable entry (a newer format) must not stop the others
                log.warning("similar tier: skipping %s: %s", key[:15], exc)
                continue
            if entry is not None:
                added += self.index.add(key, entry.request)
        gone = before - keys
        for key in gone:
            self.index.remove(key)
        with self._seen_lock:
            self._seen = (self._seen | keys) - gone
        return added, len(gone)

    # --- the tier ----------------------------------------------------------------------------------

    def describe(self) -> str:
        """One line for the proxy's start: what the tier answers, and how strictly."""
        return (
            f"similar tier: a reworded chat question gets the recording of the question it rewords "
            f"(threshold {self.threshold:.3f}, measure {self.measure}); indexing {self.store.location} in the background"
        )

    def stats(self) -> dict[str, int]:
        return {**asdict(self.counts), "questions": len(self.index), "building": int(not self._ready.event.is_set())}

    def heard_stored(self, entry: Entry) -> None:
        if self._stop.is_set():
            return
        with self._seen_lock:
            self._seen.add(entry.key)
        text = last_user_text(entry.request) if isinstance(entry.request, dict) else None
        if text is None:
            return  # not a chat question this tier can answer with
        if len(text) <= ON_LOOP_CHARS and turns(entry.request) <= ON_LOOP_MESSAGES:
            self.index.add(entry.key, entry.request)  # 0.1-0.5 ms: cheaper here than a thread hop
            return
        try:
            added = self._adder.submit(self.index.add, entry.key, entry.request)
        except RuntimeError:  # closed meanwhile
            return
        with self._adding_lock:
            self._adding.add(added)
        added.add_done_callback(self._added)

    def _added(self, future: Future[bool]) -> None:
        with self._adding_lock:
            self._adding.discard(future)
        if not future.cancelled() and future.exception() is not None:
            log.warning("similar tier: indexing a new recording failed: %s", future.exception())

    async def _heard(self) -> None:
        """Wait until the recordings heard stored so far are in the index."""
        with self._adding_lock:
            pending = list(self._adding)
        if pending:
            await asyncio.wait([asyncio.wrap_future(f) for f in pending])

    async def answer(self, call: Call, store: Store, ask: Ask) -> TierAnswer | None:
        if store is not self.store or self._stop.is_set():
            return None  # another binding's store (a cassette): its recordings are not indexed here
        self.counts.asked += 1
        found = await self._lookup(call, ask)
        if found is None:
            self.counts.passed += 1
        else:
            self.counts.answered += 1
        return found

    async def _lookup(self, call: Call, ask: Ask) -> TierAnswer | None:
        self.start()
        if not await self._ready.wait(self.build_wait):
            log.warning(
                "similar tier: the index of %s is still being built after %.0f s; this request is passed on",
                self.store.location,
                self.build_wait,
            )
            return None
        await self._heard()
        if len(call.payload) <= ON_LOOP_BYTES:
            found = self.index.passing(call.canonical)
        else:
            found = await asyncio.to_thread(self.index.passing, call.canonical)
        if found is None or not found[1]:
            return None
        query, questions = found
        # Only the caller's own recordings are candidates (--isolate-by-auth): another namespace's
        # question is never scored, so its text is never sent upstream on this caller's key.
        own = self._own([q.key for q in questions], call.namespace)
        questions = [q for q in questions if q.key in own]
        if not questions:
            return None
        if self.vectors is not None:
            await self._fetch_vectors(call, [query.text, *(q.analysis.text for q in questions)], ask)
        for match in self._ranked(query, questions, call.namespace):
            entry = own[match.key]
            if self._usable(entry, call):
                return TierAnswer(entry, {HEADER_SIMILAR_KEY: match.key, HEADER_SIMILAR_SCORE: f"{match.score:.3f}"})
        return None

    def _own(self, keys: list[str], namespace: str | None) -> dict[str, Entry]:
        """The recordings under `keys` that are still there and the caller's own, by key."""
        found = {}
        for key in keys:
            entry = self._recording(key, namespace)
            if entry is not None:
                found[key] = entry
        return found

    def _ranked(self, query: Analysis, questions: list[Question], namespace: str | None) -> list[Match]:
        """`questions` scoring at least the threshold, best first; with embeddings, by the vectors
        computed under the caller's namespace."""
        if self.vectors is None:
            return self.index.ranked(query, questions, self.threshold)
        scored = [Match(q.key, self.vectors.cosine(namespace, query.text, q.analysis.text), q.analysis.text) for q in questions]
        return sorted((m for m in scored if m.score >= self.threshold), key=lambda m: -m.score)

    def _recording(self, key: str, namespace: str | None) -> Entry | None:
        """The recording under `key`, if it is still there and the caller's own (--isolate-by-auth)."""
        try:
            entry = self.store.get(key)
        except Exception as exc:  # the exact tier reports a broken store; this one passes
            log.warning("similar tier: reading %s failed: %s", key[:15], exc)
            return None
        if entry is None or not isinstance(entry.request, dict):
            return None
        return entry if key_of_canonical(entry.request, namespace) == key else None

    def _usable(self, entry: Entry, call: Call) -> bool:
        """As for an exact hit: not past its TTL, and within the request's Cache-Control: max-age."""
        return not entry.expired() and call.policy.fresh(entry.recorded_at, time.time())

    # --- embeddings --------------------------------------------------------------------------------

    async def _fetch_vectors(self, call: Call, texts: list[str], ask: Ask) -> None:
        """Make the vectors of `texts` (the caller's question and its own recordings') known under the
        caller's namespace: from memory, the store, else the upstream on the caller's key (where the
        request may call it). A text left without one scores below every threshold."""
        assert self.vectors is not None and self.embeddings_model is not None
        namespace = call.namespace
        missing = self.vectors.missing(namespace, texts)
        if missing:
            self.vectors.update(namespace, await asyncio.to_thread(self._recorded_vectors, missing, namespace))
            missing = self.vectors.missing(namespace, missing)
        if not missing or not call.policy.call_upstream:
            return
        for start in range(0, len(missing), BATCH):
            batch = missing[start : start + BATCH]
            self.counts.vectors_fetched += len(batch)
            asked = await ask({"model": self.embeddings_model, "input": batch, "encoding_format": "float"}, EMBEDDINGS)
            vectors = _vectors_of(asked.body, batch) if asked.status == 200 else None
            if vectors is None:
                log.warning(
                    "similar tier: the upstream gave no embeddings of model %r (status %s); the question goes on",
                    self.embeddings_model,
                    asked.status,
                )
                return
            self.vectors.update(namespace, vectors)
            if call.policy.fate is Fate.STORE:
                answered_by = asked.body.get("model") if isinstance(asked.body.get("model"), str) else None
                await asyncio.to_thread(self._record_vectors, vectors, answered_by, namespace)

    def _recorded_vectors(self, texts: list[str], namespace: str | None) -> dict[str, list[float]]:
        assert self.embeddings_model is not None
        found = {}
        for text in texts:
            key, _ = embedding_request(self.embeddings_model, text, namespace)
            try:
                entry = self.store.get(key)
            except Exception as exc:
                log.warning("similar tier: reading the vector %s failed: %s", key[:15], exc)
                continue
            vector = vector_of(entry.body) if entry is not None else None
            if vector is not None:
                found[text] = vector
        return found

    def _record_vectors(self, vectors: dict[str, list[float]], answered_by: str | None, namespace: str | None) -> None:
        assert self.embeddings_model is not None
        for text, vector in vectors.items():
            entry = embedding_entry(self.embeddings_model, text, vector, answered_by, "", namespace)
            try:
                self.store.put(entry)
            except Exception as exc:  # a secret-shaped question, a full disk: the vector stays in memory
                log.warning("similar tier: the vector of a question was not recorded: %s", exc)
                continue
            with self._seen_lock:
                self._seen.add(entry.key)


def _vectors_of(body: Any, texts: list[str]) -> dict[str, list[float]] | None:
    """{text: vector} from an embeddings answer to `texts`, or None when it is not one."""
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, list) or len(data) != len(texts):
        return None
    found = {}
    for position, item in enumerate(data):
        index = item.get("index", position) if isinstance(item, dict) else None
        vector = vector_of(body, position)
        if not isinstance(index, int) or not 0 <= index < len(texts) or vector is None:
            return None
        found[texts[index]] = vector
    return found if len(found) == len(set(texts)) else None


class _Vectors:
    """Embedding vectors by (namespace, text), the `limit` most recently used kept: a vector one
    caller paid for never scores another's question. Shared by the loop and the indexing thread."""

    def __init__(self, limit: int):
        self.limit = limit
        self._kept: OrderedDict[tuple[str | None, str], list[float]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, namespace: str | None, text: str) -> list[float] | None:
        with self._lock:
            vector = self._kept.get((namespace, text))
            if vector is not None:
                self._kept.move_to_end((namespace, text))
            return vector

    def missing(self, namespace: str | None, texts: list[str]) -> list[str]:
        with self._lock:
            return [t for t in dict.fromkeys(texts) if (namespace, t) not in self._kept]

    def update(self, namespace: str | None, vectors: dict[str, list[float]]) -> None:
        with self._lock:
            for text, vector in vectors.items():
                self._kept[(namespace, text)] = vector
                self._kept.move_to_end((namespace, text))
            while len(self._kept) > self.limit:
                self._kept.popitem(last=False)

    def cosine(self, namespace: str | None, a_text: str, b_text: str) -> float:
        """Cosine of two texts' vectors under `namespace`, as far as they are known."""
        a, b = self.get(namespace, a_text), self.get(namespace, b_text)
        if a is None or b is None or len(a) != len(b):
            return UNSCORED
        return max(0.0, cosine(a, b))


class _VectorScorer:
    """Cosine of two questions' vectors, as far as they are known (the tier fetches them first); the
    tier scores by namespace itself (`_ranked`), this one names the measure and scores outside one."""

    def __init__(self, vectors: _Vectors, model: str):
        self.vectors = vectors
        self.name = f"embeddings:{model}"

    def score(self, query: Analysis, recorded: Analysis) -> float:
        return self.vectors.cosine(None, query.text, recorded.text)


class _Ready:
    """Set once, from any thread; awaited on any loop without holding a thread while waiting."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self._lock = threading.Lock()
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []

    def set(self) -> None:
        with self._lock:
            self.event.set()
            waiters, self._waiters = self._waiters, []
        for loop, future in waiters:
            try:
                loop.call_soon_threadsafe(_release, future)
            except RuntimeError:  # that loop is closed: nobody waits there any more
                pass

    async def wait(self, timeout: float) -> bool:
        """True once set; False if `timeout` seconds passed first."""
        with self._lock:
            if self.event.is_set():
                return True
            loop = asyncio.get_running_loop()
            future: asyncio.Future[None] = loop.create_future()
            self._waiters.append((loop, future))
        try:
            await asyncio.wait_for(future, timeout)
        except asyncio.TimeoutError:
            return False
        return True


def _release(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
