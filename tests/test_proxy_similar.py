"""The similar tier in the proxy, end to end: the real openai SDK through a real proxy against the
simulator. A reworded question gets the recorded answer verbatim (plain and streamed, record and
replay), a near miss never does, the index follows recordings as they land, from this proxy or
another process, and is built without holding up the proxy."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import openai
import pytest
from click.testing import CliRunner

from pytest_seedreplay import Proxy
from pytest_seedreplay.cli import main
from pytest_seedreplay.proxy.incoming import auth_namespace
from pytest_seedreplay.proxy.tier_similar import SimilarTier
from pytest_seedreplay.similar import load_calibration
from pytest_seedreplay.similar.embeddings import embedding_request
from pytest_seedreplay.store import DiskStore, open_store
from pytest_seedreplay.store.cassette_store import CassetteStore

from plugin_inner import TEST_KEY, cassette_dir, run, setup_project
from proxy_support import API_KEY, MODEL, RunningProxy, http, upstream_calls
from test_proxy_cli import ProxyProcess

DEAD_UPSTREAM = "http://127.0.0.1:9/v1"  # nothing listens there: a request that reached it would fail
SYSTEM = "You are the support assistant of a hardware shop. Answer briefly."
PASSWORD = "How do I reset my password?"
HOURS = "What are the opening hours of the York branch?"
PAUSE = "Can I pause my subscription for 2 months?"
REWORDED = {
    PASSWORD: "could you tell me how to reset my pasword, please",
    HOURS: "what are the York branch's opening hours",
    PAUSE: "is it possible to pause my subscription for two months?",
}
NEAR_MISSES = {  # one content word, one name, one number away from a recorded question
    "How do I reset my router?": PASSWORD,
    "What are the opening hours of the Leeds branch?": HOURS,
    "Can I pause my subscription for 3 months?": PAUSE,
}
EMBEDDINGS_MODEL = "text-embedding-3-small"


def ask(client: openai.OpenAI, text: str, **options: Any) -> Any:
    """The raw answer (headers, bytes) to one chat question with the shop's system prompt and a seed."""
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": text}]
    return client.chat.completions.with_raw_response.create(model=MODEL, messages=messages, seed=7, **options)


def content(raw: Any) -> str:
    return raw.parse().choices[0].message.content


def streamed_content(raw: Any) -> str:
    return "".join(chunk.choices[0].delta.content or "" for chunk in raw.parse() if chunk.choices)


def wait_for(condition: Callable[[], bool], what: str, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@pytest.fixture
def similar_proxy(tmp_path: Path) -> Iterator[Callable[..., tuple[RunningProxy, SimilarTier]]]:
    """similar_proxy(upstream, cache_dir=None, store=None, threshold=0.7, embeddings=None, **Proxy options)
    -> (a running proxy with the similar tier over its store, the tier)."""
    started: list[tuple[RunningProxy, SimilarTier]] = []

    def factory(
        upstream: str,
        cache_dir: Path | None = None,
        store: DiskStore | None = None,
        threshold: float = 0.7,
        embeddings: str | None = None,
        **options: Any,
    ) -> tuple[RunningProxy, SimilarTier]:
        directory = cache_dir or tmp_path / "cache"
        store = store or DiskStore(directory)
        tier = SimilarTier(
            store,
            threshold,
            embeddings,
            sync_seconds=options.pop("sync_seconds", 2.0),
            build_wait=options.pop("build_wait", 30.0),
        )
        proxy = Proxy(upstream, store=store, tiers=[tier], **options)
        proxy.start()
        started.append((RunningProxy(proxy, store, Path(directory)), tier))
        return started[-1]

    yield factory
    for running, tier in reversed(started):
        running.stop()
        tier.close()
        running.own_store.close()


def record(upstream: str, cache_dir: Path, questions: list[str]) -> dict[str, tuple[str, str]]:
    """Record `questions` through a plain proxy (no tier): {question: (key, answer text)}."""
    with Proxy(upstream, store=str(cache_dir)) as proxy:
        client = openai.OpenAI(base_url=proxy.url, api_key=API_KEY, max_retries=0)
        found = {}
        for question in questions:
            raw = ask(client, question)
            found[question] = (raw.headers["x-seedreplay-key"], content(raw))
        client.close()
    return found


def test_a_reworded_question_gets_the_recording_verbatim_plain_and_streamed(sim, similar_proxy):
    running, _ = similar_proxy(sim.url)
    client = running.client()
    first = ask(client, PASSWORD)
    assert first.headers["x-seedreplay-cache"] == "miss"
    running.settle()  # stored, and heard by the tier: no restart needed
    calls = upstream_calls(sim)

    plain = ask(client, REWORDED[PASSWORD])
    assert plain.headers["x-seedreplay-cache"] == "similar"
    assert plain.headers["x-seedreplay-similar-key"] == first.headers["x-seedreplay-key"]
    assert 0.7 <= float(plain.headers["x-seedreplay-similar-score"]) < 1
    assert plain.headers["x-seedreplay-key"] != first.headers["x-seedreplay-key"]  # its own key, not stored
    hit = ask(client, PASSWORD)
    assert hit.headers["x-seedreplay-cache"] == "hit"
    assert plain.http_response.content == hit.http_response.content  # the recording, byte for byte

    streamed = ask(client, REWORDED[PASSWORD], stream=True)
    assert streamed.headers["x-seedreplay-cache"] == "similar"
    assert streamed_content(streamed) == content(first)

    assert upstream_calls(sim) == calls
    stats = running.stats()
    assert stats["hits_by_tier"] == {"similar": 2} and stats["hits"] == 1
    # Asked on each exact miss: the first question (nothing indexed yet: passed) and its rewordings.
    assert stats["tiers"]["similar"] == {
        "asked": 3,
        "answered": 2,
        "passed": 1,
        "vectors_fetched": 0,
        "questions": 1,
        "building": 0,
    }
    assert running.store.get(plain.headers["x-seedreplay-key"]) is None


def test_a_long_question_is_looked_up_off_the_loop_and_answered_alike(sim, similar_proxy):
    context = "".join(
        f"Order {n}: a {colour} kettle, delivered on day {n} of the month.\n"
        for n, colour in zip(range(1, 200), ["red", "blue", "green", "white"] * 50)
    )
    running, _ = similar_proxy(sim.url)
    client = running.client()
    first = ask(client, context + PASSWORD)
    assert len(first.http_request.content) > 8 * 1024  # over the size looked up on the loop
    running.settle()
    reworded = ask(client, context + REWORDED[PASSWORD])
    assert reworded.headers["x-seedreplay-cache"] == "similar" and content(reworded) == content(first)
    other = context.replace("Order 7: a green", "Order 7: a blue")
    assert other != context
    assert ask(client, other + PASSWORD).headers["x-seedreplay-cache"] == "miss"  # one word of the context changed


def test_near_misses_go_to_the_upstream_when_recording_and_get_a_404_in_replay(sim, similar_proxy, tmp_path):
    record(sim.url, tmp_path / "cache", [PASSWORD, HOURS, PAUSE])
    running, tier = similar_proxy(sim.url)
    assert tier.wait_ready(20) and len(tier.index) == 3
    client = running.client()
    for near, recorded in NEAR_MISSES.items():
        calls = upstream_calls(sim)
        replayed = client.with_options(default_headers={"X-Seedreplay-Mode": "replay"})
        with pytest.raises(openai.NotFoundError) as refused:
            ask(replayed, near)
        assert refused.value.response.headers["x-seedreplay-cache"] == "miss", near
        assert upstream_calls(sim) == calls
        answered = ask(client, near)
        assert answered.headers["x-seedreplay-cache"] == "miss", near
        assert upstream_calls(sim) == calls + 1
        assert ask(client, REWORDED[recorded]).headers["x-seedreplay-cache"] == "similar"  # the rewording still is
    assert running.stats()["hits_by_tier"] == {"similar": 3}


def test_replay_answers_rewordings_with_no_upstream_at_all(sim, similar_proxy, tmp_path):
    recorded = record(sim.url, tmp_path / "cache", [PASSWORD, HOURS, PAUSE])
    sim.stop()
    running, _ = similar_proxy(DEAD_UPSTREAM, mode="replay")
    client = running.client()
    for question, reworded in REWORDED.items():
        raw = ask(client, reworded, stream=question == HOURS)
        assert raw.headers["x-seedreplay-cache"] == "similar"
        assert raw.headers["x-seedreplay-similar-key"] == recorded[question][0]
        text = streamed_content(raw) if question == HOURS else content(raw)
        assert text == recorded[question][1]
    with pytest.raises(openai.NotFoundError) as refused:
        ask(client, "How do I reset my router?")
    assert refused.value.code == "cache_miss" and "password" in refused.value.message  # the closest recording, as ever


def test_the_index_follows_another_process_recording_and_deleting(sim, similar_proxy, tmp_path):
    running, tier = similar_proxy(DEAD_UPSTREAM, mode="replay", sync_seconds=0.1)
    assert tier.wait_ready(20) and len(tier.index) == 0
    client = running.client()
    with pytest.raises(openai.NotFoundError):
        ask(client, REWORDED[PAUSE])
    recorded = record(sim.url, tmp_path / "cache", [PAUSE])  # another proxy, its own store handle

    def answered() -> bool:
        try:
            return ask(client, REWORDED[PAUSE]).headers["x-seedreplay-cache"] == "similar"
        except openai.NotFoundError:
            return False

    wait_for(answered, "the other proxy's recording to be indexed")
    with DiskStore(tmp_path / "cache") as other:
        assert other.delete(recorded[PAUSE][0])
    wait_for(lambda: recorded[PAUSE][0] not in tier.index, "the deleted recording to leave the index")
    assert not answered()


class GatedStore(DiskStore):
    """A real store whose listing for the similar index waits for the test to open the gate (a store
    that is slow to list)."""

    def __init__(self, directory: Path):
        super().__init__(directory)
        self.gate = threading.Event()

    def iter_requests(self):
        if threading.current_thread().name == "seedreplay-similar-index":  # the index's build only
            assert self.gate.wait(30), "the test never opened the gate"
        yield from super().iter_requests()


def test_the_index_is_built_in_a_thread_exact_hits_go_on_meanwhile_and_a_miss_waits_for_it(sim, similar_proxy, tmp_path):
    recorded = record(sim.url, tmp_path / "cache", [PASSWORD])
    store = GatedStore(tmp_path / "cache")
    running, tier = similar_proxy(DEAD_UPSTREAM, store=store, mode="replay")
    client = running.client()
    assert ask(client, PASSWORD).headers["x-seedreplay-cache"] == "hit"  # served while the index is not built
    assert not tier.wait_ready(0)
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(ask, client, REWORDED[PASSWORD])
        wait_for(lambda: running.state.active == 1, "the reworded request to arrive")
        assert not pending.done() and not tier.wait_ready(0)  # it waits for the build, not a 404
        store.gate.set()
        raw = pending.result(timeout=20)
    assert raw.headers["x-seedreplay-cache"] == "similar" and content(raw) == recorded[PASSWORD][1]


def test_a_miss_waits_for_a_slow_build_only_so_long_then_goes_on(sim, similar_proxy, tmp_path):
    record(sim.url, tmp_path / "cache", [PASSWORD])
    store = GatedStore(tmp_path / "cache")
    running, tier = similar_proxy(DEAD_UPSTREAM, store=store, mode="replay", build_wait=0.2)
    client = running.client()
    with pytest.raises(openai.NotFoundError):  # passed on after 0.2 s: the usual replay miss
        ask(client, REWORDED[PASSWORD])
    assert not tier.wait_ready(0) and running.stats()["tiers"]["similar"]["passed"] == 1
    store.gate.set()
    assert tier.wait_ready(20)
    assert ask(client, REWORDED[PASSWORD]).headers["x-seedreplay-cache"] == "similar"


def test_a_recording_older_than_the_requests_max_age_answers_no_rewording(sim, similar_proxy):
    running, tier = similar_proxy(sim.url)
    client = running.client()
    ask(client, PASSWORD)
    running.settle()
    strict = client.with_options(default_headers={"Cache-Control": "max-age=0"})
    assert ask(strict, REWORDED[PASSWORD]).headers["x-seedreplay-cache"] != "similar"  # as an exact hit would not be
    assert tier.counts.passed == 2
    # (That rewording was fetched and recorded itself; another one is still the tier's.)
    lenient = client.with_options(default_headers={"Cache-Control": "max-age=3600"})
    assert ask(lenient, "How can I reset my password please?").headers["x-seedreplay-cache"] == "similar"


def test_a_caller_is_never_answered_from_another_callers_recording(sim, similar_proxy):
    running, _ = similar_proxy(sim.url, isolate_by_auth=True)
    mine = running.client()
    ask(mine, PASSWORD)
    running.settle()
    assert ask(mine, REWORDED[PASSWORD]).headers["x-seedreplay-cache"] == "similar"
    theirs = running.client(api_key="sk-proj-anotherTEAMkey0123456789abcdefXYZ", default_headers={"X-Seedreplay-Mode": "replay"})
    with pytest.raises(openai.NotFoundError):
        ask(theirs, REWORDED[PASSWORD])


def test_embeddings_stay_in_their_callers_namespace(sim, similar_proxy):
    running, tier = similar_proxy(sim.url, isolate_by_auth=True, embeddings=EMBEDDINGS_MODEL, threshold=0.8)
    mine = running.client()
    ask(mine, PASSWORD)
    running.settle()
    # Another caller's rewording: my recording is no candidate of theirs, so its text is never sent
    # upstream on their key (nor theirs scored against it).
    other_key = "sk-proj-anotherTEAMkey0123456789abcdefXYZ"
    theirs = running.client(api_key=other_key)
    assert ask(theirs, "how can i reset my password").headers["x-seedreplay-cache"] == "miss"
    assert upstream_calls(sim, "POST /v1/embeddings") == 0 and tier.counts.vectors_fetched == 0
    # My own rewording is scored with vectors asked on my key and recorded in my namespace only.
    assert ask(mine, "how can i reset my password please").headers["x-seedreplay-cache"] == "similar"
    assert upstream_calls(sim, "POST /v1/embeddings") == 1 and tier.counts.vectors_fetched == 2
    mine_ns = auth_namespace({"authorization": f"Bearer {API_KEY}"})
    vectors = {e.key for e in running.store.iter_entries() if e.endpoint == "/v1/embeddings"}
    assert vectors == {
        embedding_request(EMBEDDINGS_MODEL, t, mine_ns)[0] for t in (PASSWORD, "how can i reset my password please")
    }


def test_bound_to_another_store_the_tier_answers_nothing_from_the_one_it_indexes(sim, similar_proxy, tmp_path):
    running, _ = similar_proxy(sim.url)
    client = running.client()
    ask(client, PASSWORD)
    running.settle()
    with DiskStore(tmp_path / "other") as other:
        running.proxy.bind(store=other, mode="replay")  # as use_cassette binds a cassette
        with pytest.raises(openai.NotFoundError):
            ask(client, REWORDED[PASSWORD])
        running.proxy.bind()
    assert ask(client, REWORDED[PASSWORD]).headers["x-seedreplay-cache"] == "similar"


def test_embeddings_score_with_vectors_recorded_in_the_store_and_replay_offline(sim, spawn_proxy, tmp_path):
    cache = str(tmp_path / "cache")
    flags = ("--cache-dir", cache, "--similar", "0.8", "--similar-embeddings", EMBEDDINGS_MODEL)
    recording = spawn_proxy("--upstream", sim.url, *flags)
    client = recording.client()
    first = ask(client, PASSWORD)
    http(f"{recording.root}/seedreplay/stats", "GET")  # answers once the recording's write has landed
    reworded = ask(client, "how can i reset my password")
    assert reworded.headers["x-seedreplay-cache"] == "similar", recording.log()
    assert content(reworded) == content(first)
    assert float(reworded.headers["x-seedreplay-similar-score"]) >= 0.8
    assert upstream_calls(sim, "POST /v1/embeddings") == 1  # both vectors in one call
    similar = http(f"{recording.root}/seedreplay/stats", "GET").json()["tiers"]["similar"]
    assert similar["vectors_fetched"] == 2 and similar["answered"] == 1
    client.close()
    assert recording.stop() == 0
    with DiskStore(cache) as store:
        vectors = [e for e in store.iter_entries() if e.endpoint == "/v1/embeddings"]
    assert sorted(e.request["params"]["input"] for e in vectors) == sorted([PASSWORD, "how can i reset my password"])
    sim.stop()

    replaying = spawn_proxy("--upstream", DEAD_UPSTREAM, "--mode", "replay", *flags)
    client = replaying.client()
    again = ask(client, "how can i reset my password")
    assert again.headers["x-seedreplay-cache"] == "similar" and content(again) == content(first)
    with pytest.raises(openai.NotFoundError):  # a rewording whose vector was never recorded: no network to ask
        ask(client, "How can I reset my password please?")
    client.close()


def test_similar_auto_uses_the_threshold_calibrate_saved(sim, spawn_proxy, tmp_path):
    cache = tmp_path / "cache"
    recorded = record(sim.url, cache, [PASSWORD, HOURS, PAUSE])
    sim.stop()
    calibrated = CliRunner().invoke(main, ["similar", "calibrate", "--cache-dir", str(cache)])
    assert calibrated.exit_code == 0, calibrated.output
    threshold = load_calibration(cache / "similar.json").threshold

    proxy = spawn_proxy("--upstream", DEAD_UPSTREAM, "--mode", "replay", "--cache-dir", str(cache), "--similar", "auto")
    assert proxy.lines.get(timeout=10).startswith(
        f"similar tier: a reworded chat question gets the recording of the question "
        f"it rewords (threshold {threshold:.3f}, measure builtin)"
    )
    wait_for(lambda: "indexed" in proxy.log(), "the index to be built")
    assert "3 recorded chat questions indexed" in proxy.log() and f"threshold {threshold:.3f}" in proxy.log()
    client = proxy.client()
    raw = ask(client, REWORDED[HOURS])
    assert raw.headers["x-seedreplay-cache"] == "similar" and content(raw) == recorded[HOURS][1]
    assert float(raw.headers["x-seedreplay-similar-score"]) >= threshold
    client.close()

    # A stricter calibration, and the same rewording gets nothing: `auto` is the saved threshold.
    saved = json.loads((cache / "similar.json").read_text())
    (cache / "similar.json").write_text(json.dumps({**saved, "threshold": 0.99}))
    strict = spawn_proxy("--upstream", DEAD_UPSTREAM, "--mode", "replay", "--cache-dir", str(cache), "--similar", "auto")
    client = strict.client()
    with pytest.raises(openai.NotFoundError):
        ask(client, REWORDED[HOURS])
    client.close()


def test_each_namespace_has_its_own_calibration(sim, spawn_proxy, tmp_path):
    cache = tmp_path / "cache"
    store = open_store(str(cache), namespace="team-a")
    with Proxy(sim.url, store=store) as proxy:
        client = openai.OpenAI(base_url=proxy.url, api_key=API_KEY, max_retries=0)
        recorded = {q: content(ask(client, q)) for q in (PASSWORD, HOURS, PAUSE)}
        client.close()
    store.close()
    sim.stop()
    calibrated = CliRunner().invoke(main, ["similar", "calibrate", "--cache-dir", str(cache), "--namespace", "team-a"])
    assert calibrated.exit_code == 0, calibrated.output
    assert "questions: 3" in calibrated.output and (cache / "namespaces" / "team-a" / "similar.json").exists()
    assert not (cache / "similar.json").exists()

    other = CliRunner().invoke(
        main, ["proxy", "--port", "0", "--cache-dir", str(cache), "--namespace", "team-b", "--similar", "auto"]
    )
    assert (
        other.exit_code == 1
        and f"no similar-questions calibration at {cache / 'namespaces' / 'team-b' / 'similar.json'}" in other.output
    )
    proxy = spawn_proxy(
        "--upstream", DEAD_UPSTREAM, "--mode", "replay", "--cache-dir", str(cache), "--namespace", "team-a", "--similar", "auto"
    )
    client = proxy.client()
    raw = ask(client, REWORDED[PAUSE])
    assert raw.headers["x-seedreplay-cache"] == "similar" and content(raw) == recorded[PAUSE]
    client.close()


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--similar", "auto"], "--similar auto: no similar-questions calibration at"),
        (["--similar-embeddings", EMBEDDINGS_MODEL], "--similar-embeddings MODEL goes with --similar auto|THRESHOLD"),
        (["--similar", "--similar-embeddings", EMBEDDINGS_MODEL], "which has no default threshold: give --similar auto"),
        (["--similar", "2"], "'2': give auto or a threshold from 0 to 1"),
        (["--similar", "often"], "'often': give auto or a threshold from 0 to 1"),
    ],
)
def test_similar_flags_are_checked_before_serving(tmp_path, flags, message):
    result = CliRunner().invoke(main, ["proxy", "--port", "0", "--cache-dir", str(tmp_path / "cache"), *flags])
    assert result.exit_code != 0 and message in result.output and "Traceback" not in result.output


def test_auto_with_embeddings_needs_a_calibration_made_with_them(tmp_path, sim):
    cache = tmp_path / "cache"
    record(sim.url, cache, [PASSWORD, PAUSE])
    assert CliRunner().invoke(main, ["similar", "calibrate", "--cache-dir", str(cache)]).exit_code == 0
    result = CliRunner().invoke(
        main, ["proxy", "--port", "0", "--cache-dir", str(cache), "--similar", "auto", "--similar-embeddings", EMBEDDINGS_MODEL]
    )
    assert result.exit_code == 1
    assert f"was made with the builtin measure, not embeddings:{EMBEDDINGS_MODEL}" in result.output
    assert f"seedreplay similar calibrate --similar-embeddings {EMBEDDINGS_MODEL}" in result.output


INNER_TEST = """
QUESTION = {question!r}


def test_reset(openai_client):
    messages = [{{"role": "system", "content": {system!r}}}, {{"role": "user", "content": QUESTION}}]
    answer = openai_client.chat.completions.create(model="gpt-4o-mini", messages=messages, seed=7)
    assert answer.choices[0].message.content
"""


def test_the_pytest_plugin_stays_exact_a_rewording_is_a_replay_miss(pytester, sim, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", TEST_KEY)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    setup_project(pytester, test_app=INNER_TEST.format(question=PASSWORD, system=SYSTEM))
    run(pytester, "--seedreplay=record", f"--seedreplay-upstream={sim.url}").assert_outcomes(passed=1)
    run(pytester).assert_outcomes(passed=1)

    pytester.makepyfile(test_app=INNER_TEST.format(question=REWORDED[PASSWORD], system=SYSTEM))
    replayed = run(pytester)
    replayed.assert_outcomes(failed=1)
    replayed.stdout.fnmatch_lines(["*seedreplay replay miss*", "*differs in: messages?1?.content*"])

    # The same cassette, as the store of a proxy with the similar tier, answers that rewording:
    # the plugin's miss is the plugin staying exact, not a rewording too far.
    cassette = CassetteStore.load(cassette_dir(pytester) / "test_app" / "test_reset.yaml")
    tier = SimilarTier(cassette)
    try:
        with Proxy(DEAD_UPSTREAM, store=cassette, mode="replay", tiers=[tier]) as proxy:
            client = openai.OpenAI(base_url=proxy.url, api_key=API_KEY, max_retries=0)
            assert ask(client, REWORDED[PASSWORD]).headers["x-seedreplay-cache"] == "similar"
            client.close()
    finally:
        tier.close()


def test_tier_order_exact_similar_finetune_general_through_the_cli(spawn_proxy, tmp_path):
    """`--similar` and `--finetune` together: a rewording of a recording is the similar tier's (the
    fine-tuned model is not asked), a rewording of a trained question that nobody recorded is the
    fine-tune's, and the rest goes to the general model."""
    from finetune_support import BASE, question, tuned_sim

    tuned = tuned_sim(tmp_path)
    try:
        proxy = spawn_proxy(
            "--upstream",
            tuned.sim.url,
            "--cache-dir",
            str(tmp_path / "cache"),
            "--similar",
            "--finetune",
            "latest",
            "--finetune-manifest",
            str(tuned.manifest),
        )
        assert proxy.lines.get(timeout=10).startswith("similar tier: ")
        assert proxy.lines.get(timeout=10).startswith("fine-tune tier: ")
        client = proxy.client()

        def asked(text: str) -> Any:
            return client.chat.completions.with_raw_response.create(model=BASE, messages=question(text), seed=1)

        def tier_stats() -> dict[str, Any]:
            return http(f"{proxy.root}/seedreplay/stats", "GET").json()["tiers"]

        recorded = asked("Where can I park near the York shop?")  # untrained: the fine-tune falls through
        assert recorded.headers["x-seedreplay-cache"] == "miss"
        assert tier_stats()["finetune"]["fell_through"] == 1  # (the stats wait for the recording's write)
        reworded = asked("where can I park near the York shop, please?")
        assert reworded.headers["x-seedreplay-cache"] == "similar" and content(reworded) == content(recorded)
        assert tier_stats()["finetune"]["asked"] == 1  # the similar tier answered first
        trained = asked("how can i reset my password")  # a rewording of a trained question, never recorded
        assert trained.headers["x-seedreplay-cache"] == "finetune"
        assert tier_stats()["similar"]["passed"] == 2 and tier_stats()["finetune"]["served"] == 1
        client.close()
    finally:
        tuned.sim.stop()


@pytest.fixture
def spawn_proxy() -> Iterator[Callable[..., ProxyProcess]]:
    started: list[ProxyProcess] = []

    def factory(*args: str) -> ProxyProcess:
        started.append(ProxyProcess(*args))
        return started[-1]

    yield factory
    for running in started:
        running.stop()


def test_anthropic_messages_a_reworded_question_gets_the_recording_plain_and_streamed(sim, similar_proxy):
    # The real anthropic SDK: the tier reads a Messages request's last user turn as it reads a chat one's,
    # and groups by everything else (system, model, max_tokens, the anthropic-version header).
    import anthropic

    running, _ = similar_proxy(sim.url, anthropic_upstream=sim.root)
    client = anthropic.Anthropic(base_url=running.root, api_key="sk-ant-api03-similarTEST0123456789abcdefABCD", max_retries=0)

    def ask_claude(text: str, **options: Any) -> Any:
        return client.messages.with_raw_response.create(
            model="claude-sonnet-4-5", system=SYSTEM, max_tokens=200, messages=[{"role": "user", "content": text}], **options
        )

    first = ask_claude(PASSWORD)
    assert first.headers["x-seedreplay-cache"] == "miss"
    answer = first.parse().content[0].text
    running.settle()
    calls = upstream_calls(sim)

    reworded = ask_claude(REWORDED[PASSWORD])
    assert reworded.headers["x-seedreplay-cache"] == "similar"
    assert reworded.headers["x-seedreplay-similar-key"] == first.headers["x-seedreplay-key"]
    assert reworded.parse().content[0].text == answer
    blocks = [{"type": "text", "text": REWORDED[PASSWORD], "cache_control": {"type": "ephemeral"}}]
    with client.messages.stream(
        model="claude-sonnet-4-5", system=SYSTEM, max_tokens=200, messages=[{"role": "user", "content": blocks}]
    ) as stream:
        assert stream.response.headers["x-seedreplay-cache"] == "similar"
        assert stream.get_final_text() == answer
    assert upstream_calls(sim) == calls

    # A near miss, another system prompt, or the chat endpoint: each its own question.
    assert ask_claude("How do I reset my router?").headers["x-seedreplay-cache"] == "miss"
    other = client.messages.with_raw_response.create(
        model="claude-sonnet-4-5", system="Be terse.", max_tokens=200, messages=[{"role": "user", "content": REWORDED[PASSWORD]}]
    )
    assert other.headers["x-seedreplay-cache"] == "miss"
    assert ask(running.client(), REWORDED[PASSWORD]).headers["x-seedreplay-cache"] == "miss"
    client.close()


def test_responses_api_a_reworded_input_gets_the_recording_plain_and_streamed(sim, similar_proxy):
    # The Responses API's `input` as a string is one user turn; as a list, its last user message counts.
    running, _ = similar_proxy(sim.url)
    client = running.client()

    def respond(text: Any, **options: Any) -> Any:
        return client.responses.with_raw_response.create(model=MODEL, instructions=SYSTEM, input=text, **options)

    first = respond(PASSWORD)
    assert first.headers["x-seedreplay-cache"] == "miss"
    answer = first.parse().output_text
    running.settle()
    calls = upstream_calls(sim)

    reworded = respond(REWORDED[PASSWORD])
    assert reworded.headers["x-seedreplay-cache"] == "similar"
    assert reworded.headers["x-seedreplay-similar-key"] == first.headers["x-seedreplay-key"]
    assert reworded.parse().output_text == answer
    streamed = respond(REWORDED[PASSWORD], stream=True)
    assert streamed.headers["x-seedreplay-cache"] == "similar"
    assert "".join(e.delta for e in streamed.parse() if e.type == "response.output_text.delta") == answer
    assert upstream_calls(sim) == calls

    # Another instruction or a near miss: each its own question.
    other = client.responses.with_raw_response.create(model=MODEL, instructions="Be terse.", input=REWORDED[PASSWORD])
    assert other.headers["x-seedreplay-cache"] == "miss"
    assert respond("How do I reset my router?").headers["x-seedreplay-cache"] == "miss"
    turns = [{"role": "user", "content": [{"type": "input_text", "text": PASSWORD}]}]
    assert respond(turns).headers["x-seedreplay-cache"] == "miss"  # another key (input as a list) ...
    running.settle()
    worded = [{"role": "user", "content": [{"type": "input_text", "text": REWORDED[PASSWORD]}]}]
    assert respond(worded).headers["x-seedreplay-cache"] == "similar"  # ... which answers its rewordings
