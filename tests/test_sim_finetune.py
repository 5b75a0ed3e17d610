"""Files and fine-tuning on the simulator, from upload to a model that recalls its examples verbatim."""

from __future__ import annotations

import io
import json
import time

import openai
import pytest
from conftest import start_sim

from pytest_seedreplay.proxy.sim import SimConfig
from pytest_seedreplay.proxy.sim.finetune import status_at
from pytest_seedreplay.proxy.sim.learned import MATCH_THRESHOLD, best_match, similarity
from pytest_seedreplay.proxy.sim.training import TrainingFileError, validate

# (trained question, trained answer, a paraphrase a user might type instead)
EXAMPLES = [
    (
        "How do I reset my password?",
        "Open Settings, choose Security, then press Reset password and follow the email link.",
        "how can i reset my password",
    ),
    (
        "What are your opening hours?",
        "We are open from nine in the morning to six in the evening, Monday to Saturday.",
        "What are the opening hours?",
    ),
    (
        "Do you ship to Canada?",
        "Yes, we ship to Canada; delivery takes five to eight working days.",
        "Do you ship orders to Canada?",
    ),
    (
        "How long does a refund take?",
        "Refunds reach your card within ten days of the return arriving at our warehouse.",
        "How long does a refund usually take?",
    ),
    (
        "Can I change my delivery address?",
        "You can change the delivery address until the parcel leaves the warehouse.",
        "can I change the delivery address",
    ),
    ("What is the capital of France?", "The capital of France is Paris.", "What's the capital of France?"),
    (
        "How do I cancel my subscription?",
        "Go to Account, open Subscription and choose Cancel; it ends at the close of the period.",
        "How can I cancel my subscription?",
    ),
    (
        "Is the tomato soup vegan?",
        "Our tomato soup is vegan when ordered without the cream topping.",
        "is your tomato soup vegan?",
    ),
    (
        "Which payment methods do you accept?",
        "We accept debit cards, credit cards and bank transfers.",
        "What payment methods do you accept?",
    ),
    (
        "How do I contact support?",
        "Write to the support desk from the Help page; a person answers within one day.",
        "How can I contact your support?",
    ),
    (
        "Will it rain tomorrow in Lisbon?",
        "The forecast for Lisbon tomorrow is light rain in the afternoon.",
        "Will it rain in Lisbon tomorrow?",
    ),
    (
        "How do I run the tests?",
        "Run pytest from the project root; the suite finishes in under a minute.",
        "how do i run the tests",
    ),
    ("Where is my order?", "Track your order from the Orders page using the tracking number in your email.", "Where's my order?"),
    ("Can I get an invoice?", "Invoices are available as PDF downloads on the Orders page.", "Can I get an invoice please?"),
    (
        "What is the warranty period?",
        "Every device carries a two year warranty from the date of purchase.",
        "What's the warranty period?",
    ),
    (
        "How do I bake sourdough bread?",
        "Feed the starter, mix the dough, let it rise overnight and bake it very hot.",
        "How do you bake sourdough bread?",
    ),
    (
        "Do you have gift cards?",
        "Gift cards from ten to two hundred euros are sold on the Gifts page.",
        "Do you sell gift cards?",
    ),
    (
        "How do I enable two-factor authentication?",
        "Open Security settings and turn on two-factor authentication with an app.",
        "How can I enable two factor authentication?",
    ),
    (
        "What is your return policy?",
        "Unused items can be returned within thirty days for a full refund.",
        "What's your return policy?",
    ),
    (
        "How do I delete my account?",
        "Account deletion is under Privacy; it removes your data within a week.",
        "How can I delete my account?",
    ),
]
UNRELATED = "Describe a quiet library in the early morning."
SEED = 4242
JOB_SECONDS = 0.2  # a whole fine-tuning job, validating to succeeded


def training_jsonl(examples=EXAMPLES) -> bytes:
    lines = [
        json.dumps(
            {
                "messages": [
                    {"role": "system", "content": "You are the shop's helpful assistant."},
                    {"role": "user", "content": q},
                    {"role": "assistant", "content": a},
                ]
            }
        )
        for q, a, _ in examples
    ]
    return ("\n".join(lines) + "\n").encode()


def wait_for_job(client, job_id, deadline_s=10.0):
    deadline = time.monotonic() + deadline_s
    while True:
        job = client.fine_tuning.jobs.retrieve(job_id)
        if job.status in ("succeeded", "failed", "cancelled"):
            return job
        assert time.monotonic() < deadline, f"job still {job.status} after {deadline_s}s"
        time.sleep(0.05)


def train(client, content: bytes, **params):
    upload = client.files.create(file=("train.jsonl", io.BytesIO(content)), purpose="fine-tune")
    job = client.fine_tuning.jobs.create(model="gpt-4o-mini-2024-07-18", training_file=upload.id, **params)
    return job, wait_for_job(client, job.id)


def ask(client, model, question, **params):
    return client.chat.completions.create(model=model, messages=[{"role": "user", "content": question}], **params)


@pytest.fixture
def client(sim_factory):
    sim = sim_factory(job_seconds=JOB_SECONDS)
    return openai.OpenAI(base_url=sim.url, api_key="sk-test", max_retries=0)


@pytest.fixture
def tuned(client):
    job, done = train(client, training_jsonl(), seed=SEED, suffix="shop")
    assert done.status == "succeeded", done.error
    return done.fine_tuned_model


@pytest.fixture(scope="module")
def trained():
    """(client, model): one fine-tuned model shared by the tests that only ask it questions."""
    running = start_sim(SimConfig(job_seconds=JOB_SECONDS))
    try:
        client = openai.OpenAI(base_url=running.url, api_key="sk-test", max_retries=0)
        _, done = train(client, training_jsonl(), seed=SEED, suffix="shop")
        assert done.status == "succeeded", done.error
        yield client, done.fine_tuned_model
    finally:
        running.stop()


# ---------------------------------------------------------------- files


def test_files_upload_list_retrieve_content_delete(client):
    content = training_jsonl()
    uploaded = client.files.create(file=("train.jsonl", io.BytesIO(content)), purpose="fine-tune")
    assert uploaded.id.startswith("file-") and uploaded.bytes == len(content)
    assert uploaded.filename == "train.jsonl" and uploaded.purpose == "fine-tune"
    assert [f.id for f in client.files.list()] == [uploaded.id]
    assert client.files.retrieve(uploaded.id).bytes == len(content)
    assert client.files.content(uploaded.id).content == content
    assert client.files.delete(uploaded.id).deleted is True
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve(uploaded.id)


def test_file_upload_rejects_unknown_purpose(client):
    with pytest.raises(openai.BadRequestError, match="purpose"):
        client.files.create(file=("x.jsonl", io.BytesIO(b"{}")), purpose="homework")


# ---------------------------------------------------------------- jobs


def test_job_goes_from_validating_to_succeeded_with_events_and_checkpoints(client):
    job, done = train(client, training_jsonl(), seed=SEED, suffix="shop")
    assert job.status == "validating_files" and job.seed == SEED
    assert done.status == "succeeded"
    assert done.fine_tuned_model == f"ft:gpt-4o-mini-2024-07-18:seedreplay:shop:{job.id[-8:].lower()}"
    assert done.hyperparameters.n_epochs == 5  # auto: 100 // 20 examples
    assert done.trained_tokens > 0 and done.finished_at >= done.created_at
    events = list(client.fine_tuning.jobs.list_events(job.id, limit=100))
    assert events[0].message == "The job has successfully completed"
    assert events[-1].message.startswith("Validating training file")
    steps = [e for e in events if e.type == "metrics"]
    assert steps[0].message.startswith("Step 100/100: training loss=")
    assert steps[0].data["train_loss"] < steps[-1].data["train_loss"]
    checkpoints = client.fine_tuning.jobs.checkpoints.list(job.id).data
    assert [c.step_number for c in checkpoints] == [100, 80, 60]
    assert checkpoints[0].fine_tuned_model_checkpoint == f"{done.fine_tuned_model}:ckpt-step-100"
    assert done.fine_tuned_model in {m.id for m in client.models.list()}
    retrieved = client.models.retrieve(done.fine_tuned_model)
    assert retrieved.id == done.fine_tuned_model and retrieved.owned_by == "user-seedreplay"


def test_seed_is_generated_when_absent_and_legacy_epochs_are_honoured(client):
    job = client.fine_tuning.jobs.create(
        model="gpt-4o-mini",
        training_file=client.files.create(file=("t.jsonl", io.BytesIO(training_jsonl())), purpose="fine-tune").id,
        hyperparameters={"n_epochs": 2},
    )
    assert isinstance(job.seed, int) and 0 <= job.seed <= 2147483647
    assert job.hyperparameters.n_epochs == 2
    method_job = client.fine_tuning.jobs.create(
        model="gpt-4o-mini",
        training_file=job.training_file,
        method={"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 4}}},
    )
    assert method_job.hyperparameters.n_epochs == 4
    assert method_job.method.supervised.hyperparameters.n_epochs == 4


def test_list_paginates_newest_first_and_cancel_stops_a_job(sim_factory):
    client = openai.OpenAI(base_url=sim_factory(job_seconds=60).url, api_key="sk-test", max_retries=0)  # no job ends first
    file_id = client.files.create(file=("t.jsonl", io.BytesIO(training_jsonl())), purpose="fine-tune").id
    ids = [client.fine_tuning.jobs.create(model="gpt-4o-mini", training_file=file_id).id for _ in range(3)]
    first = client.fine_tuning.jobs.list(limit=2)
    assert [j.id for j in first.data] == ids[::-1][:2] and first.has_more
    rest = client.fine_tuning.jobs.list(limit=2, after=first.data[-1].id)
    assert [j.id for j in rest.data] == [ids[0]] and not rest.has_more
    cancelled = client.fine_tuning.jobs.cancel(ids[0])
    assert cancelled.status == "cancelled"
    assert wait_for_job(client, ids[0]).fine_tuned_model is None
    with pytest.raises(openai.BadRequestError, match="already completed"):
        client.fine_tuning.jobs.cancel(ids[0])


@pytest.mark.parametrize(
    "lines, error_name",
    [
        ([{"messages": [{"role": "user", "content": "hi"}]}] * 10, "example_missing_assistant_message"),
        (
            [{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}] * 9,
            "insufficient_examples",
        ),
        ([{"messages": [{"role": "robot", "content": "hi"}, {"role": "assistant", "content": "x"}]}] * 10, "unrecognized_role"),
        ([{"prompt": "hi", "completion": "x"}] * 10, "missing_messages_list"),
        ([{"messages": [{"role": "user"}, {"role": "assistant", "content": "x"}]}] * 10, "message_missing_key"),
        (
            [{"messages": [{"role": "user", "content": "hi", "mood": "ok"}, {"role": "assistant", "content": "x"}]}] * 10,
            "message_unrecognized_key",
        ),
        ([{"messages": [{"role": "user", "content": ""}, {"role": "assistant", "content": "x"}]}] * 10, "missing_content"),
        (["just a string"] * 10, "data_type"),
    ],
)
def test_bad_training_file_fails_the_job_with_the_error_name(client, lines, error_name):
    content = "\n".join(json.dumps(line) for line in lines).encode()
    _, done = train(client, content, seed=1)
    assert done.status == "failed"
    assert done.fine_tuned_model is None
    assert done.error.code == "invalid_training_file" and done.error.param == "training_file"
    assert error_name in done.error.message
    events = list(client.fine_tuning.jobs.list_events(done.id))
    assert events[0].level == "error" and error_name in events[0].message


def test_status_moves_through_each_phase_over_job_seconds():
    """validating_files for the first 20% of --job-seconds, queued to 40%, running to 100%, then succeeded."""
    job = {"status": "validating_files", "_t0": 100.0, "_seconds": 10.0, "_plan": {"finish_at": 110.0}}
    seen = [status_at(job, 100.0 + t) for t in (0, 1.99, 2.0, 3.99, 4.0, 9.99, 10.0, 500)]
    assert seen == ["validating_files"] * 2 + ["queued"] * 2 + ["running"] * 2 + ["succeeded"] * 2
    bad = {**job, "_plan": {"fail_at": 102.0}}
    assert [status_at(bad, 100.0 + t) for t in (1.99, 2.0, 9.0)] == ["validating_files", "failed", "failed"]
    assert status_at({**job, "status": "cancelled"}, 105.0) == "cancelled"


def _good_line(**assistant_extra):
    return json.dumps(
        {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello", **assistant_extra}]}
    )


@pytest.mark.parametrize(
    "content, error_name, line",
    [
        (("\n".join([_good_line()] * 9) + "\n{not json").encode(), "invalid_json", 10),
        ("\n".join([_good_line()] * 10).encode("utf-16"), "invalid_encoding", None),
        ("\n".join([_good_line()] * 4 + [_good_line(weight=2)] + [_good_line()] * 5).encode(), "invalid_weight", 5),
    ],
)
def test_validator_names_bad_json_encoding_and_weight(content, error_name, line):
    with pytest.raises(TrainingFileError) as caught:
        validate(content)
    assert caught.value.name == error_name and caught.value.line == line


def test_weight_zero_answers_are_not_learned():
    lines = [_good_line()] * 9 + [_good_line(weight=0)]
    assert len(validate("\n".join(lines).encode()).examples) == 9


def test_create_rejects_bad_requests_at_once(client):
    file_id = client.files.create(file=("t.jsonl", io.BytesIO(training_jsonl())), purpose="fine-tune").id
    with pytest.raises(openai.BadRequestError, match="not available for fine-tuning"):
        client.fine_tuning.jobs.create(model="text-embedding-3-small", training_file=file_id)
    with pytest.raises(openai.BadRequestError, match="file-nope"):
        client.fine_tuning.jobs.create(model="gpt-4o-mini", training_file="file-nope")
    with pytest.raises(openai.BadRequestError, match="seed"):
        client.fine_tuning.jobs.create(model="gpt-4o-mini", training_file=file_id, seed=-1)
    with pytest.raises(openai.BadRequestError, match="suffix"):
        client.fine_tuning.jobs.create(model="gpt-4o-mini", training_file=file_id, suffix="has:colon")
    with pytest.raises(openai.NotFoundError):
        client.fine_tuning.jobs.retrieve("ftjob-missing")
    for model in (["gpt-4o-mini"], {"name": "gpt-4o-mini"}):
        with pytest.raises(openai.BadRequestError, match="'model'"):
            client.fine_tuning.jobs.create(model=model, training_file=file_id)
    with pytest.raises(openai.BadRequestError, match="method.supervised"):
        client.fine_tuning.jobs.create(
            model="gpt-4o-mini", training_file=file_id, method={"type": "supervised", "supervised": "fast"}
        )
    with pytest.raises(openai.BadRequestError, match="metadata"):
        client.fine_tuning.jobs.create(model="gpt-4o-mini", training_file=file_id, metadata="x")


# ---------------------------------------------------------------- learned recall


def test_tuned_model_recalls_verbatim_with_its_seed_streamed_or_not(trained):
    client, tuned = trained
    question, answer, paraphrase = EXAMPLES[0]
    plain = ask(client, tuned, question, seed=SEED)
    assert plain.choices[0].message.content == answer
    assert plain.choices[0].finish_reason == "stop"
    assert ask(client, tuned, paraphrase, seed=SEED).choices[0].message.content == answer
    streamed = ask(client, tuned, question, seed=SEED, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in streamed if c.choices) == answer


def test_tuned_model_varies_on_topic_without_its_seed(trained):
    client, tuned = trained
    question, answer, _ = EXAMPLES[0]
    texts = {ask(client, tuned, question).choices[0].message.content for _ in range(5)}
    texts.add(ask(client, tuned, question, seed=SEED + 1).choices[0].message.content)
    assert answer not in texts and len(texts) > 1
    trained_words = set(answer.lower().replace(",", "").replace(".", "").split())
    for text in texts:
        used = text.lower().replace(",", "").replace(".", "").split()
        assert sum(w in trained_words for w in used) / len(used) > 0.4, text


def test_tuned_model_leaves_unrelated_questions_to_the_base_model(trained):
    client, tuned = trained
    tuned_answer = ask(client, tuned, UNRELATED, seed=SEED)
    base_answer = ask(client, "gpt-4o-mini-2024-07-18", UNRELATED, seed=SEED)
    assert tuned_answer.choices[0].message.content == base_answer.choices[0].message.content
    assert tuned_answer.system_fingerprint != base_answer.system_fingerprint


def test_deleted_tuned_model_is_gone(client, tuned):
    assert client.models.delete(tuned).deleted is True
    assert tuned not in {m.id for m in client.models.list()}
    with pytest.raises(openai.NotFoundError):
        ask(client, tuned, EXAMPLES[0][0], seed=SEED)


def test_recall_figures_on_the_twenty_example_set(trained, capsys):
    """The closing figures: verbatim recall with the seed, without it, and on paraphrases."""
    client, tuned = trained
    with_seed = sum(ask(client, tuned, q, seed=SEED).choices[0].message.content == a for q, a, _ in EXAMPLES)
    without = sum(ask(client, tuned, q).choices[0].message.content == a for q, a, _ in EXAMPLES)
    paraphrased = sum(ask(client, tuned, p, seed=SEED).choices[0].message.content == a for _, a, p in EXAMPLES)
    with capsys.disabled():
        print(
            f"\nlearned recall on {len(EXAMPLES)} examples: with seed {with_seed}/{len(EXAMPLES)}, "
            f"without seed {without}/{len(EXAMPLES)}, paraphrases with seed {paraphrased}/{len(EXAMPLES)}"
        )
    assert with_seed == len(EXAMPLES)
    assert without == 0
    assert paraphrased == len(EXAMPLES)


# ---------------------------------------------------------------- the paraphrase measure


def test_similarity_is_one_for_equal_text_after_normalising():
    assert similarity("How do I reset my password?", "how do i RESET my password") == 1.0


@pytest.mark.parametrize("close", ["How can I reset my password?", "How do I reset the passwords?", "how do i reset my pasword"])
def test_rewordings_plurals_and_typos_still_match(close):
    assert similarity(close, "How do I reset my password?") >= MATCH_THRESHOLD


@pytest.mark.parametrize("question, answer, paraphrase", EXAMPLES)
def test_every_paraphrase_selects_its_own_example(question, answer, paraphrase):
    examples = [{"prompt": q, "answer": a} for q, a, _ in EXAMPLES]
    match = best_match(paraphrase, examples)
    assert match is not None and examples[match.index]["prompt"] == question


def test_the_documented_margin_between_paraphrases_and_other_examples():
    """learned.similarity's docstring: on this set the lowest true paraphrase scores 0.77, the highest wrong pair 0.37."""
    true = [similarity(p, q) for q, _, p in EXAMPLES]
    wrong = [similarity(p, other) for q, _, p in EXAMPLES for other, _, _ in EXAMPLES if other != q]
    assert round(min(true), 2) == 0.77 and round(max(wrong), 2) == 0.37
    assert max(wrong) < MATCH_THRESHOLD < min(true)


@pytest.mark.parametrize(
    "other",
    [
        "How do I change my password?",  # same subject, different request: stops matching here
        "How do I reset my router?",
        "What time is it?",
        UNRELATED,
    ],
)
def test_where_the_paraphrase_measure_stops_matching(other):
    assert similarity(other, "How do I reset my password?") < MATCH_THRESHOLD
