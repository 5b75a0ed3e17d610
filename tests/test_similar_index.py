"""The similar-questions index: only the last user message may differ, the shipped set's figures, a real store."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_seedreplay.core.entry import Entry
from pytest_seedreplay.core.key import canonical_request, key_of_canonical
from pytest_seedreplay.similar import DEFAULT_THRESHOLD, SimilarIndex, split_request
from pytest_seedreplay.similar.evaluate import ask, figures, question_index, read_negatives, read_paraphrases
from pytest_seedreplay.store import DiskStore

DATA = Path(__file__).parent / "data" / "similar"
CHAT = "/v1/chat/completions"


def chat(text: str, **overrides) -> dict:
    body = {
        "model": "gpt-4o-mini",
        "seed": 7,
        "messages": [{"role": "system", "content": "You answer customers of a bakery chain."}, {"role": "user", "content": text}],
        **overrides,
    }
    return canonical_request(CHAT, body)


def indexed(*texts: str, **overrides) -> tuple[SimilarIndex, dict[str, str]]:
    index = SimilarIndex()
    keys = {}
    for text in texts:
        canonical = chat(text, **overrides)
        keys[text] = key_of_canonical(canonical)
        assert index.add(keys[text], canonical)
    return index, keys


def test_a_reworded_question_gets_the_recording_of_its_question() -> None:
    index, keys = indexed("How do I reset my password?", "How do I reset my router?")
    match = index.lookup(chat("could you tell me how to reset my pasword, please"))
    assert match is not None and match.key == keys["How do I reset my password?"]
    assert match.question == "How do I reset my password?" and DEFAULT_THRESHOLD <= match.score < 1


def test_a_different_question_gets_nothing() -> None:
    index, _ = indexed("What are the opening hours of the York branch?")
    assert index.lookup(chat("What are the opening hours of the Leeds branch?")) is None
    assert index.lookup(chat("What are the opening hours of the York branch?")) is not None


@pytest.mark.parametrize(
    "change",
    [
        {"model": "gpt-4o"},
        {"seed": 8},
        {"temperature": 0.2},
        {"response_format": {"type": "json_object"}},
        {"tools": [{"type": "function", "function": {"name": "hours", "parameters": {"type": "object"}}}]},
        {
            "messages": [
                {"role": "system", "content": "You answer customers of a bank."},
                {"role": "user", "content": "how can i reset my password"},
            ]
        },
        {
            "messages": [
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": "Hello!"},
                {"role": "user", "content": "how can i reset my password"},
            ]
        },
    ],
)
def test_only_the_last_user_message_may_differ(change: dict) -> None:
    index, _ = indexed("How do I reset my password?")
    assert index.lookup(chat("how can i reset my password")) is not None
    assert index.lookup(chat("how can i reset my password", **change)) is None


def test_requests_the_tier_cannot_answer_are_not_indexed() -> None:
    index = SimilarIndex()
    image = [{"type": "text", "text": "What is this?"}, {"type": "image_url", "image_url": {"url": "https://x/y.png"}}]
    assert not index.add("k1", chat("x", messages=[{"role": "user", "content": image}]))
    assert not index.add("k2", chat("x", messages=[{"role": "user", "content": "hi"}, {"role": "assistant", "content": "Hello"}]))
    assert not index.add("k3", canonical_request("/v1/embeddings", {"model": "m", "input": "How do I reset my password?"}))
    assert len(index) == 0
    parts = [{"type": "text", "text": "How do I reset"}, {"type": "text", "text": "my password?"}]
    assert split_request(chat("x", messages=[{"role": "user", "content": parts}]))[1] == "How do I reset\nmy password?"


def test_remove_and_sync_keep_the_index_in_step_with_the_store() -> None:
    index, keys = indexed("How do I reset my password?", "Is the museum open on Mondays?")
    assert index.remove(keys["How do I reset my password?"])
    assert index.lookup(chat("how can i reset my password")) is None
    assert not index.remove("v1:nothing")
    added, removed = index.sync([(keys["How do I reset my password?"], chat("How do I reset my password?"))])
    assert (added, removed) == (1, 1)
    assert index.lookup(chat("how can i reset my password")) is not None
    assert index.lookup(chat("is the museum open on monday")) is None
    assert len(index) == 1 and index.groups == 1


def test_a_typo_in_the_recorded_question_is_found_too() -> None:
    index, keys = indexed("How do I reset my pasword?")
    match = index.lookup(chat("How do I reset my password?"))
    assert match is not None and match.key == keys["How do I reset my pasword?"]


def test_the_threshold_is_applied() -> None:
    index, _ = indexed("How do I reset my password?")
    wordy = chat("Hello! Quick question: could you please tell me how to reset my password? Thanks in advance.")
    match = index.lookup(wordy, threshold=0.0)
    assert match is not None
    assert index.lookup(wordy, threshold=match.score + 0.001) is None


def answer(text: str) -> dict:
    """A chat answer (a store holds answers: a body with no `choices` list is a corrupt entry)."""
    return {"choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}]}


def test_an_index_built_from_a_real_store_answers_from_its_recordings(tmp_path: Path) -> None:
    with DiskStore(tmp_path / "cache") as store:
        for text in ("How do I reset my password?", "Is the museum open on Mondays?"):
            canonical = chat(text)
            store.put(Entry(key=key_of_canonical(canonical), endpoint=CHAT, request=canonical, body=answer(text)))
        embedding = canonical_request("/v1/embeddings", {"model": "e", "input": "x"})
        store.put(Entry(key=key_of_canonical(embedding), endpoint="/v1/embeddings", request=embedding, body={"data": []}))
        index = SimilarIndex.from_requests(store.iter_requests())
        match = index.lookup(chat("is the museum open on monday"))
        assert len(index) == 2
        assert match is not None and store.get(match.key).body == answer("Is the museum open on Mondays?")


def test_the_shipped_set_gets_no_wrong_answer_and_most_paraphrases() -> None:
    paraphrases = read_paraphrases(DATA / "paraphrases.jsonl")
    negatives = read_negatives(DATA / "negatives.jsonl")
    questions = {p.question for p in paraphrases}
    assert len(questions) >= 40 and len(paraphrases) >= 3 * 40 and len(negatives) >= 80
    assert {n.question for n in negatives} <= questions
    result = figures(ask(question_index([p.question for p in paraphrases]), paraphrases + negatives), DEFAULT_THRESHOLD)
    assert result.wrong == 0, result.wrong_examples
    assert result.precision == 1.0
    assert result.recall >= 0.95
    assert set(result.by_kind) >= {"paraphrase", "number", "entity", "quoted", "content", "direction"}


def test_the_development_set_written_apart_gets_no_wrong_answer_and_most_paraphrases() -> None:
    # Everyday rewordings of the same questions (synonyms, reordered clauses, "am I allowed to",
    # question <-> imperative) with near misses, written after the first set to tune the synonym tables.
    paraphrases = read_paraphrases(DATA / "dev_paraphrases.jsonl")
    negatives = read_negatives(DATA / "dev_negatives.jsonl")
    shipped = {p.question for p in read_paraphrases(DATA / "paraphrases.jsonl")}
    assert {p.question for p in paraphrases} == shipped and {n.question for n in negatives} <= shipped
    assert len(paraphrases) >= 340 and len(negatives) >= 180
    result = figures(ask(question_index(shipped), paraphrases + negatives), DEFAULT_THRESHOLD)
    assert result.wrong == 0, result.wrong_examples
    # 0.82 before issue 21 item 8 (a question may not add a content word, since that is also how a
    # question adds a detail: "my work password"); 0.896 with the general rewordings of item 8 (kind
    # nouns, frames such as "what's the terminal command to ...", compounds, gerunds, more synonyms);
    # 0.899 after its second round.
    assert result.recall >= 0.88
    # Each half of the questions (even, odd) alike: 0.885 / 0.908 (0.828 / 0.821 before item 8). Item 8 read
    # the misses of both, so this guards against one half regressing, not against overfitting (dev3 does).
    ordered = list(dict.fromkeys(p.question for p in read_paraphrases(DATA / "paraphrases.jsonl")))
    for half in (0, 1):
        kept = set(ordered[half::2])
        probes = [p for p in paraphrases if p.question in kept] + [n for n in negatives if n.question in kept]
        result = figures(ask(question_index(shipped), probes), DEFAULT_THRESHOLD)
        assert result.wrong == 0 and result.recall >= 0.86, (half, result.recall)
    assert set(result.by_kind) >= {"paraphrase", "number", "entity", "quoted", "content", "direction", "detail"}


def test_questions_that_add_a_detail_get_no_answer() -> None:
    # A modifier, a condition, a person, a part, a time, a place or a quantity added to a recorded
    # question makes another question; each of the development set's 100+ such near misses gets nothing.
    details = [n for n in read_negatives(DATA / "dev_negatives.jsonl") if n.kind == "detail"]
    shipped = {p.question for p in read_paraphrases(DATA / "paraphrases.jsonl")}
    assert len(details) >= 100 and len({n.question for n in details}) == len(shipped)
    result = figures(ask(question_index(shipped), details), DEFAULT_THRESHOLD)
    assert result.hits == 0, result.wrong_examples


def test_the_held_out_set_gets_no_wrong_answer() -> None:
    # Written by someone who had read neither the tier's code nor the other sets, and never tuned on:
    # 100 everyday rewordings of the 50 questions, 84 one-word swaps and 25 added details. The tier
    # was measured on it a few times while it was built (figures only): recall 2% before issue 21,
    # 64% with 10 added details answered wrongly, then 57% with none; 72% with item 8's general
    # rewordings (built on the development sets' misses, so no longer unseen either); 76% with the
    # second round of item 8 (general request frames, terse queries, abbreviations, quoted words).
    result = _held_out("heldout")
    assert result.wrong == 0, result.wrong_examples
    assert result.recall >= 0.75
    assert result.by_kind["detail"]["hits"] == 0


def test_the_second_held_out_set_gets_no_wrong_answer() -> None:
    # Written for issue 21 item 8 by someone who saw neither the tier's code nor any other set, from the
    # 50 questions alone: 150 rewordings and 131 near misses (41 added details, 19 rewordings that ask
    # something else). Measured twice, never tuned on: 62.0% with 2 wrong answers before item 8's
    # general rewordings, 69.3% after them; the two wrong answers ("11 am" for "11 pm", "grams of rice
    # in 100 calories" for "calories in 100 grams") were pre-existing, and were closed by two general
    # guards (a time's meridiem, what a number counts), which cost no rewording on any set. Then used as a
    # development set by item 8's second round (its misses read): 82.7%, with no wrong answer.
    result = _held_out("heldout2")
    assert result.wrong == 0, result.wrong_examples
    assert result.recall >= 0.82
    assert result.by_kind["detail"]["hits"] == 0


def test_the_third_held_out_set_meets_the_issue_target() -> None:
    # Written for issue 21 item 8 by someone who saw neither the tier's code nor any other set, from the
    # 50 questions alone: 150 rewordings and 122 near misses (41 added details, 16 rewordings that ask
    # something else). Never read while building: its figures were taken once before item 8's second
    # round (67.3%, 0 wrong) and once after it (78.0%, 0 wrong); the target was 75% with 0 wrong.
    result = _held_out("heldout3")
    assert result.wrong == 0, result.wrong_examples
    assert result.recall >= 0.78
    assert result.by_kind["detail"]["hits"] == 0


def _held_out(name: str):
    """The figures of a held-out set of the 50 shipped questions (NAME_paraphrases/negatives.jsonl)."""
    paraphrases = read_paraphrases(DATA / f"{name}_paraphrases.jsonl")
    negatives = read_negatives(DATA / f"{name}_negatives.jsonl")
    shipped = {p.question for p in read_paraphrases(DATA / "paraphrases.jsonl")}
    assert {p.question for p in paraphrases} == shipped and {n.question for n in negatives} <= shipped
    return figures(ask(question_index(shipped), paraphrases + negatives), DEFAULT_THRESHOLD)
