"""The shop's FAQ: the recordings the example fine-tune was trained on (cassettes/finetune/train.jsonl).

pytest examples                                          # replay the cassettes, offline
pytest examples --seedreplay=live --seedreplay-finetune latest --seedreplay-upstream URL
                                                         # ask the fine-tune instead, compare verbatim
"""

import pytest
import shop

QUESTIONS = [
    "How do I reset my password?",
    "What are your opening hours?",
    "Do you ship to Canada?",
    "How long does a refund take?",
    "Can I change my delivery address?",
    "How do I cancel my subscription?",
    "Is the tomato soup vegan?",
    "Which payment methods do you accept?",
    "How do I contact support?",
    "Where is my order?",
]


@pytest.mark.parametrize("question", QUESTIONS)
def test_faq(question, seedreplay):
    assert shop.answer(question)
    assert len(seedreplay.interactions) == 1
    assert not [d for d in seedreplay.drift if d.drifted]  # live: the answer is the recorded one, verbatim


def test_streamed_answers_read_like_plain_ones(seedreplay):
    streamed = shop.answer("Can I get an invoice?", stream=True)
    plain = shop.answer("What is the warranty period?")
    assert streamed and plain
    assert [i.source for i in seedreplay.interactions] in (["replayed"] * 2, ["recorded"] * 2, ["live"] * 2)


@pytest.mark.seedreplay(finetune="latest")
def test_the_example_fine_tune_is_recorded_in_the_manifest(seedreplay, seedreplay_finetune):
    # The manifest is committed with the cassettes: which model holds this cache, and its seed.
    assert seedreplay_finetune.base_model == shop.MODEL and seedreplay_finetune.seed == 4242
    assert seedreplay_finetune.model.startswith(f"ft:{shop.MODEL}:") and seedreplay_finetune.version == "v1"
    assert seedreplay_finetune.live == (seedreplay.mode == "live")
    assert shop.answer(QUESTIONS[0])
