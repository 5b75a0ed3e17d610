"""The offline paraphrase generator: deterministic, distinct, meaning kept, and recognised by the simulator."""

from __future__ import annotations

import re
from pathlib import Path

from pytest_seedreplay.paraphrase import paraphrases
from pytest_seedreplay.proxy.sim.learned import MATCH_THRESHOLD, similarity
from pytest_seedreplay.similar import explain
from pytest_seedreplay.similar.evaluate import read_paraphrases

QUESTIONS = sorted({p.question for p in read_paraphrases(Path(__file__).parent / "data" / "similar" / "paraphrases.jsonl")})


def test_the_same_seed_gives_the_same_paraphrases_and_another_seed_others() -> None:
    text = "How long should I boil an egg for a soft yolk?"
    first = paraphrases(text, 5, seed=3)
    assert first == paraphrases(text, 5, seed=3)
    assert first != paraphrases(text, 5, seed=4)


def test_paraphrases_are_distinct_and_never_the_question_itself() -> None:
    for question in QUESTIONS:
        found = paraphrases(question, 4)
        assert 1 <= len(found) <= 4
        assert question not in found
        assert len({" ".join(p.split()) for p in found}) == len(found)
    assert paraphrases("How do I reset my password?", 0) == []


def test_numbers_quoted_strings_and_names_are_kept() -> None:
    for question in QUESTIONS:
        for text in paraphrases(question, 5, seed=1):
            assert re.findall(r"\d+", question) == re.findall(r"\d+", text), text
            assert re.findall(r"'[^']+'(?!\w)|`[^`]+`", question) == re.findall(r"'[^']+'(?!\w)|`[^`]+`", text), text
            for name in ("York", "Leeds", "Python", "Canada", "Spain", "Git", "alice@example.com"):
                assert (name.lower() in question.lower()) == (name.lower() in text.lower()), text


def test_generated_paraphrases_pass_the_guards_and_the_simulators_bar() -> None:
    generated = [(q, p) for q in QUESTIONS for p in paraphrases(q, 5)]
    assert len(generated) >= 200
    ours = sum(not explain(q, p).vetoed for q, p in generated) / len(generated)
    sim = sum(similarity(q, p) >= MATCH_THRESHOLD for q, p in generated) / len(generated)
    # Measured on the shipped questions: 100% pass the guards, 96.8% reach the simulator's 0.65 (the
    # misses are typos in short questions: one word of three misspelt is a third of the content words).
    assert ours == 1.0
    assert sim >= 0.95
