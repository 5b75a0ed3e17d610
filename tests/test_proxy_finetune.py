"""The fine-tune tier end to end: a real fine-tune job on the simulator, a real proxy, the real SDK.

On an exact miss a request for the base model is asked of the fine-tuned model with its seed; the
guard serves only trained answers, verbatim, and lets anything else fall through to the general model."""

from __future__ import annotations

import json

import openai
import pytest
from click.testing import CliRunner

from pytest_seedreplay.cli import main
from pytest_seedreplay.finetune.manifest import ManifestError
from pytest_seedreplay.finetune.serving import finetune_tier
from pytest_seedreplay.proxy.app import ProxyConfig, make_proxy_app
from pytest_seedreplay.proxy.tier_finetune import Finetune, FinetuneTier
from pytest_seedreplay.store import DiskStore

from finetune_support import BASE, SEED, question, tuned_sim
from proxy_support import upstream_calls
from test_sim_finetune import EXAMPLES

TRAINED = {q: a for q, a, _ in EXAMPLES}
UNTRAINED = "What colour is the sky on Mars at noon?"


@pytest.fixture(scope="module")
def tuned(tmp_path_factory):
    made = tuned_sim(tmp_path_factory.mktemp("tier"))
    yield made
    made.sim.stop()


def ask(client: openai.OpenAI, text: str, model: str = BASE, stream: bool = False, seed: int = 1):
    """(answer text, response headers) of one chat request through the proxy."""
    raw = client.chat.completions.with_raw_response.create(model=model, messages=question(text), seed=seed, stream=stream)
    answer = raw.parse()
    if stream:
        text = "".join(c.choices[0].delta.content or "" for c in answer if c.choices)
    else:
        text = answer.choices[0].message.content
    return text, raw.headers


def test_a_trained_question_is_answered_by_the_fine_tune_plain_and_streamed(tuned, proxy_factory):
    proxy = proxy_factory(tuned.sim.url, tiers=[finetune_tier("latest", tuned.manifest)])
    client = proxy.client()
    model = tuned.version()["fine_tuned_model"]
    question_text, trained = EXAMPLES[0][0], EXAMPLES[0][1]

    text, headers = ask(client, question_text)
    assert text == trained
    assert headers["x-seedreplay-cache"] == "finetune"
    assert headers["x-seedreplay-finetune-model"] == model and headers["x-seedreplay-finetune-version"] == "v1"
    streamed, headers = ask(client, EXAMPLES[1][0], stream=True)
    assert streamed == EXAMPLES[1][1] and headers["x-seedreplay-cache"] == "finetune"

    stats = proxy.stats()
    assert stats["hits_by_tier"] == {"finetune": 2}
    assert stats["tiers"]["finetune"] == {"asked": 2, "served": 2, "fell_through": 0, "failed": 0}
    assert len(proxy.store) == 0  # a learned answer is not a recording unless asked for


def test_the_fine_tune_is_asked_with_its_own_seed_whatever_the_request_carries(tuned, proxy_factory):
    proxy = proxy_factory(tuned.sim.url, tiers=[finetune_tier("latest", tuned.manifest)])
    text, headers = ask(proxy.client(), EXAMPLES[2][0], seed=999)
    assert (text, headers["x-seedreplay-cache"]) == (EXAMPLES[2][1], "finetune")


def test_a_paraphrase_gets_the_trained_answer(tuned, proxy_factory):
    proxy = proxy_factory(tuned.sim.url, tiers=[finetune_tier("latest", tuned.manifest)])
    for _trained, answer, paraphrase in EXAMPLES[:4]:
        text, headers = ask(proxy.client(), paraphrase)
        assert (text, headers["x-seedreplay-cache"]) == (answer, "finetune"), paraphrase


def test_the_guard_lets_an_untrained_answer_fall_through_to_the_general_model(tuned, proxy_factory):
    proxy = proxy_factory(tuned.sim.url, tiers=[finetune_tier("latest", tuned.manifest)])
    before = upstream_calls(tuned.sim)
    text, headers = ask(proxy.client(), UNTRAINED)
    assert headers["x-seedreplay-cache"] == "miss" and "x-seedreplay-finetune-model" not in headers
    # The general model's own answer: what the base model says to the very same request.
    direct = openai.OpenAI(base_url=tuned.sim.url, api_key="k", max_retries=0)
    general = direct.chat.completions.create(model=BASE, messages=question(UNTRAINED), seed=1).choices[0].message.content
    assert text == general and text not in TRAINED.values()
    assert upstream_calls(tuned.sim) == before + 2 + 1  # the fine-tune, the general model, our direct ask
    stats = proxy.stats()
    assert stats["tiers"]["finetune"] == {"asked": 1, "served": 0, "fell_through": 1, "failed": 0}
    assert stats["hits_by_tier"] == {} and stats["misses"] == 1 and stats["stored"] == 1  # an ordinary miss, recorded
    again, headers = ask(proxy.client(), UNTRAINED)
    assert (again, headers["x-seedreplay-cache"]) == (text, "hit")


def test_the_guard_falls_through_when_the_fine_tuned_model_answers_otherwise(tuned, proxy_factory):
    # The tier asks a model that was not trained on these answers (the base model stands in): its
    # answer to a trained question is not the trained one, so it is never served.
    stand_in = Finetune(BASE, BASE, SEED, "v1", tuple({"role": "assistant", "content": a} for a in TRAINED.values()))
    tier = FinetuneTier(stand_in)
    proxy = proxy_factory(tuned.sim.url, tiers=[tier])
    text, headers = ask(proxy.client(), EXAMPLES[0][0])
    assert headers["x-seedreplay-cache"] == "miss" and text != EXAMPLES[0][1]
    assert tier.counts.fell_through == 1 and tier.counts.served == 0


def test_guard_off_serves_whatever_the_fine_tune_says(tuned, proxy_factory):
    proxy = proxy_factory(tuned.sim.url, tiers=[finetune_tier("latest", tuned.manifest, guard=False)])
    text, headers = ask(proxy.client(), UNTRAINED)
    assert headers["x-seedreplay-cache"] == "finetune" and text not in TRAINED.values()
    assert proxy.stats()["tiers"]["finetune"]["served"] == 1


def test_requests_for_other_models_never_reach_the_fine_tune(tuned, proxy_factory):
    proxy = proxy_factory(tuned.sim.url, tiers=[finetune_tier("latest", tuned.manifest)])
    text, headers = ask(proxy.client(), EXAMPLES[0][0], model="gpt-4o")
    assert headers["x-seedreplay-cache"] == "miss" and text != EXAMPLES[0][1]
    assert proxy.stats()["tiers"]["finetune"]["asked"] == 0


def test_a_learned_answer_is_stored_only_with_store_finetune_answers(tuned, proxy_factory):
    keeping = proxy_factory(tuned.sim.url, tiers=[finetune_tier("latest", tuned.manifest, store_answers=True)])
    text, headers = ask(keeping.client(), EXAMPLES[3][0])
    assert headers["x-seedreplay-cache"] == "finetune"
    (stored,) = list(keeping.store.iter_entries())
    assert stored.key == headers["x-seedreplay-key"] and stored.request["params"]["model"] == BASE
    before = upstream_calls(tuned.sim)
    again, headers = ask(keeping.client(), EXAMPLES[3][0], stream=True)
    assert (again, headers["x-seedreplay-cache"]) == (text, "hit") and upstream_calls(tuned.sim) == before


def test_replay_never_asks_the_fine_tune(tuned, proxy_factory):
    proxy = proxy_factory(tuned.sim.url, mode="replay", tiers=[finetune_tier("latest", tuned.manifest)])
    with pytest.raises(openai.NotFoundError):
        ask(proxy.client(), EXAMPLES[0][0])
    assert proxy.stats()["tiers"]["finetune"]["asked"] == 0


def test_the_guard_refuses_a_dataset_changed_since_training(tuned, tmp_path):
    manifest = tmp_path / "finetunes.json"
    dataset = tmp_path / "train.jsonl"
    dataset.write_bytes(tuned.dataset.read_bytes().replace(b"Paris", b"Lyon"))
    document = json.loads(tuned.manifest.read_text())
    document["versions"][0]["dataset"] = "train.jsonl"
    manifest.write_text(json.dumps(document))
    with pytest.raises(ManifestError, match="changed since v1 was trained"):
        finetune_tier("latest", manifest)
    assert finetune_tier("latest", manifest, guard=False).guard is False  # no answers needed without the guard


def test_proxy_command_names_a_bad_finetune_flag_in_one_line(tuned, tmp_path):
    result = CliRunner().invoke(
        main, ["proxy", "--finetune", "v7", "--finetune-manifest", str(tuned.manifest), "--cache-dir", str(tmp_path / "c")]
    )
    assert result.exit_code == 1
    assert "Error: --finetune v7: no version 'v7' in" in result.output and "(it has v1)" in result.output
    assert "Traceback" not in result.output


def test_a_fine_tune_is_refused_where_api_keys_are_kept_apart(tuned, tmp_path, sim):
    # It learned every key's recordings and answers whoever asks: it would hand one key another's.
    result = CliRunner().invoke(
        main,
        ["proxy", "--isolate-by-auth", "--finetune", "latest", "--finetune-manifest", str(tuned.manifest)]
        + ["--cache-dir", str(tmp_path / "c"), "--upstream", sim.url],
    )
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "--isolate-by-auth" in result.output and "the finetune tier cannot keep API keys apart" in result.output
    with pytest.raises(ValueError, match="cannot keep API keys apart"):
        make_proxy_app(
            ProxyConfig(upstream=sim.url, isolate_by_auth=True),
            DiskStore(tmp_path / "d"),
            [finetune_tier("latest", tuned.manifest)],
        )


def test_seedreplay_proxy_finetune_serves_the_learned_tier_and_says_so(tuned, tmp_path):
    from test_proxy_cli import ProxyProcess

    running = ProxyProcess(
        "--upstream",
        tuned.sim.url,
        "--cache-dir",
        str(tmp_path / "cache"),
        "--finetune",
        "latest",
        "--finetune-manifest",
        str(tuned.manifest),
    )
    try:
        model = tuned.version()["fine_tuned_model"]
        assert running.lines.get(timeout=10) == (
            f"fine-tune tier: {BASE} or gpt-4o-mini requests asked of {model} (v1, seed {SEED}); "
            "guard on: only its 20 trained answers are served"
        )
        client = running.client()
        text, headers = ask(client, EXAMPLES[5][2])
        assert (text, headers["x-seedreplay-cache"]) == (EXAMPLES[5][1], "finetune")
        _, headers = ask(client, UNTRAINED)
        assert headers["x-seedreplay-cache"] == "miss"
        client.close()
    finally:
        assert running.stop() == 0
    log = running.log()
    assert "cache=finetune" in log and "gave an answer it was not trained on; asking the general model" in log


def test_a_version_without_its_dataset_is_guarded_by_the_recorded_answers(tuned, proxy_factory, tmp_path):
    from pytest_seedreplay.core.entry import Entry
    from pytest_seedreplay.core.key import canonical_request, key_of_canonical
    from pytest_seedreplay.store import DiskStore

    manifest = tmp_path / "finetunes.json"
    document = json.loads(tuned.manifest.read_text())
    document["versions"][0].update(dataset=None, dataset_sha256=None)  # as `finetune status` records a foreign job
    manifest.write_text(json.dumps(document))
    with pytest.raises(ManifestError, match="names no dataset"):
        finetune_tier("latest", manifest)
    # The store holds one recorded answer of the base model: the trained answer to the first question.
    request = canonical_request("/v1/chat/completions", {"model": BASE, "messages": question(EXAMPLES[0][0]), "seed": 1})
    answer = {"choices": [{"index": 0, "message": {"role": "assistant", "content": EXAMPLES[0][1]}, "finish_reason": "stop"}]}
    store = DiskStore(tmp_path / "recorded")
    store.put(Entry(key=key_of_canonical(request), endpoint="/v1/chat/completions", request=request, body=answer))
    tier = finetune_tier("latest", manifest, recordings=store)
    assert tier.trained_answers == 1
    proxy = proxy_factory(tuned.sim.url, tiers=[tier])
    assert ask(proxy.client(), EXAMPLES[0][2])[1]["x-seedreplay-cache"] == "finetune"  # its recorded answer
    assert ask(proxy.client(), EXAMPLES[1][0])[1]["x-seedreplay-cache"] == "miss"  # trained, but not recorded here
    store.close()


def test_a_request_naming_the_alias_of_the_base_model_is_the_fine_tunes(tuned, proxy_factory):
    # Trained on the snapshot gpt-4o-mini-2024-07-18; the app asks for gpt-4o-mini, the same model.
    proxy = proxy_factory(tuned.sim.url, tiers=[finetune_tier("latest", tuned.manifest)])
    text, headers = ask(proxy.client(), EXAMPLES[3][0], model="gpt-4o-mini")
    assert (text, headers["x-seedreplay-cache"]) == (EXAMPLES[3][1], "finetune")
    assert proxy.stats()["tiers"]["finetune"]["served"] == 1


def test_the_proxy_warns_at_start_when_the_recordings_ask_for_another_model(tuned, tmp_path, proxy_factory):
    from test_proxy_cli import ProxyProcess

    cache = tmp_path / "cache"
    recorder = proxy_factory(tuned.sim.url, cache_dir=cache)
    for number, model in enumerate(("gpt-4o", "gpt-4o", "gpt-4o-mini")):
        ask(recorder.client(), f"{UNTRAINED} ({number})", model=model)
    recorder.stop()
    running = ProxyProcess(
        "--upstream", tuned.sim.url, "--cache-dir", str(cache), "--finetune", "latest", "--finetune-manifest", str(tuned.manifest),
    )  # fmt: skip
    try:
        assert running.lines.get(timeout=10).startswith(f"fine-tune tier: {BASE} or gpt-4o-mini requests")
    finally:
        assert running.stop() == 0
    assert (
        f"warning: the fine-tune tier answers only {BASE} or gpt-4o-mini; recordings in {cache} ask for gpt-4o (2): "
        "requests for those models never reach the fine-tune"
    ) in running.log()
