"""The guards of the similar-questions tier: each one vetoes its own kind of difference, and only that."""

from __future__ import annotations

import pytest

from pytest_seedreplay.similar import guards
from pytest_seedreplay.similar.measure import explain
from pytest_seedreplay.similar.text import analyse


def check(guard, a: str, b: str) -> str | None:
    return guard(analyse(a), analyse(b))


@pytest.mark.parametrize(
    "a, b",
    [
        ("Can I pause my subscription for 2 months?", "Can I pause my subscription for 3 months?"),
        ("What is 15% of 240?", "What is 240% of 15?"),  # the same numbers in another order
        ("Set an alarm for 7:30", "Set an alarm for 7:45"),
        ("What happens if I miss a payment?", "What happens if I miss two payments?"),
        ("How many days do I get in my first year?", "How many days do I get in my second year?"),
        ("How do I update to version 3.2?", "How do I update to version 3.10?"),
    ],
)
def test_numbers_guard_vetoes_another_number(a: str, b: str) -> None:
    assert check(guards.numbers, a, b) is not None
    assert explain(a, b).guard == "numbers"


@pytest.mark.parametrize(
    "a, b",
    [
        ("Can I pause it for 2 months?", "can i pause it for two months"),
        ("the boiling point at 2000 metres", "the boiling point at 2,000 metres"),
        ("in my first year", "in my 1st year"),
        ("cancel order 48213", "cancel order #48213"),
        ("lights off at 11 pm", "lights off at 11pm"),
    ],
)
def test_numbers_guard_lets_the_same_number_written_otherwise_through(a: str, b: str) -> None:
    assert check(guards.numbers, a, b) is None


def test_quoted_guard_vetoes_another_quoted_string_and_ignores_the_quote_style() -> None:
    assert check(guards.quoted, "Why does `pip install` fail?", "Why does `pip uninstall` fail?") is not None
    assert check(guards.quoted, "Translate 'a b' to 'c d'", "Translate 'c d' to 'a b'") is not None  # order counts
    # A quoted string of one word is that word named, as a name is: another one is another name, and
    # its place still counts (the directions guard).
    assert check(guards.entities, "What does 'ephemeral' mean?", "What does 'ethereal' mean?") is not None
    assert explain("Translate 'a b' to 'c'", "Translate 'c' to 'a b'").guard == "directions"
    assert explain("Delete the file named notes.txt", "Delete the file called 'notes.txt'").guard is None
    assert explain("What's the meaning of the word ephemeral?", "What does the word 'ephemeral' mean?").guard is None
    assert explain("What's the meaning of the word ethereal?", "What does the word 'ephemeral' mean?").guard == "entities"
    assert check(guards.quoted, "What does 'ephemeral' mean?", "what does \u201cephemeral\u201d mean") is None
    assert check(guards.quoted, "Delete 'notes.txt'", 'delete "notes.txt"') is None
    # An apostrophe is not a quote.
    assert check(guards.quoted, "Why won't it start?", "Why will it not start?") is None


@pytest.mark.parametrize(
    "a, b",
    [
        ("What are the opening hours of the York branch?", "What are the opening hours of the Leeds branch?"),
        ("Send the report to alice@example.com", "Send the report to alicia@example.com"),
        ("Open https://example.com/a please", "Open https://example.com/b please"),
        ("Why is my Python script slow?", "Why is my Node script slow?"),
        ("Export it to CSV", "Export it to PDF"),
        ("Which model is gpt-4o?", "Which model is gpt-4o-mini?"),
        ("What does user_id hold?", "What does userId hold?"),
    ],
)
def test_entities_guard_vetoes_another_name(a: str, b: str) -> None:
    assert check(guards.entities, a, b) is not None


def test_entities_guard_ignores_case_and_possessives() -> None:
    assert check(guards.entities, "the York branch", "the york branch") is None
    assert check(guards.entities, "near King's Cross", "near Kings Cross") is None
    assert check(guards.entities, "Is it open on Mondays?", "is it open on Monday") is None


@pytest.mark.parametrize(
    "a, b",
    [
        ("How do I reset my password?", "How do I reset my router?"),
        ("What is the maximum setting on the toaster?", "What is the maximum setting on the kettle?"),
        ("Can I pause my subscription?", "Can I cancel my subscription?"),
        ("What is the minimum age?", "What is the maximum age?"),
        ("How do I open the sunroof?", "How do I close the sunroof?"),
        ("How do I turn on dark mode?", "How do I turn off dark mode?"),
        ("Why is my package not delivered?", "Why is my package delivered?"),
        ("Is it safe with coffee?", "Is it safe without coffee?"),
        ("What was the price?", "What is the price?"),  # tense
        ("Is the train cheaper?", "Is the train cheap?"),  # degree
        ("Where is the toaster?", "Where is the roaster?"),  # one letter apart, but both are words
    ],
)
def test_content_guard_vetoes_another_content_word(a: str, b: str) -> None:
    assert check(guards.content, a, b) is not None


@pytest.mark.parametrize(
    "a, b",
    [
        ("How do I reset my password?", "how can i reset my password"),
        ("How do I reset my password?", "Could you tell me how to reset my password, please?"),
        ("How do I reset my password?", "How do I reset my pasword?"),  # one typo
        ("How long should I boil an egg?", "how long do i boil eggs"),  # inflection
        ("Why isn't my package delivered yet?", "why is my package not delivered yet"),  # contraction
        ("What will happen if I miss a payment?", "What happens if I miss a payment?"),
        ("Can I pause my subscription?", "Is it possible to pause my subscription?"),
    ],
)
def test_content_guard_lets_rewordings_through(a: str, b: str) -> None:
    assert check(guards.content, a, b) is None


def test_content_guard_allows_one_typo_only_and_never_in_a_name() -> None:
    assert check(guards.content, "reset my password for the account", "reset my pasword for the acount") is not None
    assert explain("the opening hours of the York branch", "the opening hours of the Yrok branch").vetoed


@pytest.mark.parametrize(
    "a, b",
    [
        ("Can I take the train from York to Leeds?", "Can I take the train from Leeds to York?"),
        ("Convert 5 kilometres to miles", "Convert 5 miles to kilometres"),
        ("Is the train cheaper than the bus?", "Is the bus cheaper than the train?"),
        ("Upgrade from the Basic plan to the Pro plan", "Upgrade from the Pro plan to the Basic plan"),
    ],
)
def test_directions_guard_vetoes_the_other_way_round(a: str, b: str) -> None:
    assert check(guards.content, a, b) is None  # the same words ...
    assert check(guards.directions, a, b) is not None  # ... the other way round


def test_directions_guard_lets_reordered_phrases_through() -> None:
    assert check(guards.directions, "from York to Leeds", "to Leeds from York") is None
    assert check(guards.directions, "convert 5 kilometres to miles", "convert 5 kilometres into miles") is None


@pytest.mark.parametrize(
    "a, b",
    [
        ("How do I delete a restored file?", "How do I restore a deleted file?"),
        ("How do I stop a running process?", "How do I run a stopped process?"),
        ("How do I undo a merged commit?", "How do I merge an undone commit?"),
    ],
)
def test_roles_guard_vetoes_the_same_words_in_other_roles(a: str, b: str) -> None:
    assert check(guards.content, a, b) is None  # the same words ...
    assert check(guards.roles, a, b) is not None  # ... each in the other's role


@pytest.mark.parametrize(
    "a, b",
    [
        ("How can a deleted file be restored?", "How do I restore a deleted file?"),
        ("restore deleted file", "How do I restore a deleted file?"),
        ("deleting files, how to", "How do I delete files?"),
        ("Can the date of my reservation be changed?", "Can I change my booking date?"),
        ("At 2000 m altitude, what temperature does water boil at?", "What is the boiling point of water at 2000 metres?"),
    ],
)
def test_roles_guard_lets_a_word_keep_its_role_in_another_form(a: str, b: str) -> None:
    assert check(guards.roles, a, b) is None


def test_empty_guard_matches_a_question_without_content_words_only_to_itself() -> None:
    assert check(guards.empty, "Thanks!", "Hello!") is not None
    assert check(guards.empty, "Thanks!", "thanks") is None


def test_typo_rule_needs_one_known_word_and_one_unknown_word() -> None:
    password, pasword = analyse("password"), analyse("pasword")
    assert guards.is_typo("password", password, "pasword", pasword)
    assert not guards.is_typo("toaster", analyse("toaster"), "roaster", analyse("roaster"))
    assert guards.edit_distance("recieve", "receive", limit=2) == 1  # a swap is one edit
    assert guards.edit_distance("abc", "abcdef", limit=2) == 3  # capped at limit + 1


@pytest.mark.parametrize(
    "a, b",
    [
        ("Convert 5 kilometres to miles.", "How many miles is 5 km?"),  # question <-> imperative, unit names
        ("Convert 5 kilometres to miles.", "What is 5 kilometres in miles?"),
        ("Can I pause my subscription for 2 months?", "Am I allowed to pause my subscription for 2 months?"),
        ("How do I turn on dark mode?", "How do I enable dark mode?"),
        ("How do I turn on dark mode?", "How do I switch dark mode on?"),
        ("What time does the last bus leave?", "When does the final bus depart?"),  # synonyms
        ("What does the word 'ephemeral' mean?", "Define the word 'ephemeral'."),
        ("What are the opening hours of the York branch?", "When is the York branch open?"),
        ("What is the difference between affect and effect?", "How is affect different from effect?"),
        ("Translate 'good morning' into French.", "How do you say 'good morning' in French?"),
        ("How long should I boil an egg for a soft yolk?", "For a soft yolk, how long should I boil an egg?"),
    ],
)
def test_everyday_rewordings_pass_every_guard(a: str, b: str) -> None:
    verdict = explain(a, b)
    assert verdict.guard is None, verdict.reason


@pytest.mark.parametrize(
    "a, b, guard",
    [
        ("Convert 5 kilometres to miles.", "How many kilometres is 5 miles?", "directions"),
        ("Convert 5 kilometres to miles.", "How many miles is 8 km?", "numbers"),
        ("How do I turn on dark mode?", "How do I switch off dark mode?", "content"),
        ("How do I reset my password?", "How do I change my password?", "content"),  # a near synonym stays apart
        ("What are the opening hours of the York branch?", "When is the York branch closed?", "content"),
        ("What does the word 'ephemeral' mean?", "Define the word 'eternal'.", "entities"),
        ("Translate 'good morning' into French.", "How do you say 'good morning' in Spanish?", "entities"),
    ],
)
def test_the_same_rewordings_with_one_thing_swapped_are_vetoed(a: str, b: str, guard: str) -> None:
    assert explain(a, b).guard == guard


@pytest.mark.parametrize(
    "new, recorded",
    [
        ("How do I reset my work password?", "How do I reset my password?"),  # a modifier on a noun
        ("How do I reset my password without my phone?", "How do I reset my password?"),  # a condition
        ("Is it safe for children to take ibuprofen with coffee?", "Is it safe to take ibuprofen with coffee?"),
        ("How do I open the sunroof manually?", "How do I open the sunroof?"),  # a manner
        ("Can I bring my dog on the night train from York to Leeds?", "Can I bring my dog on the train from York to Leeds?"),
        ("Is the museum shop open on Mondays?", "Is the museum open on Mondays?"),
        ("How much does it cost to ship a parcel back from Canada?", "How much does it cost to ship a parcel to Canada?"),
    ],
)
def test_content_guard_vetoes_a_question_that_adds_a_detail(new: str, recorded: str) -> None:
    assert check(guards.content, new, recorded) is not None


@pytest.mark.parametrize(
    "new, recorded",
    [
        ("I forgot my password, how can I reset it?", "How do I reset my password?"),
        ("What are the steps to reset my password?", "How do I reset my password?"),
        ("How do I get my printer connected to the Wi-Fi network?", "How do I connect my printer to the Wi-Fi network?"),
        ("What's causing my Python script to use 100% CPU?", "Why is my Python script using 100% CPU?"),
        ("Is the museum still open on Mondays?", "Is the museum open on Mondays?"),  # a hedge
        ("calories in 100 grams of rice?", "How many calories are in 100 grams of rice?"),  # a word left out
    ],
)
def test_content_guard_lets_a_question_add_only_words_that_ask_the_same(new: str, recorded: str) -> None:
    assert check(guards.content, new, recorded) is None
