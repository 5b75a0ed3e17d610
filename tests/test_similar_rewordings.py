"""The general rewordings of issue 21 item 8: each one lets a rewording through and still keeps the
near miss it could be mistaken for apart (the pairs in the second list of each test)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_seedreplay.similar.evaluate import ask, figures, question_index, question_request, read_negatives, read_paraphrases
from pytest_seedreplay.similar.index import DEFAULT_THRESHOLD
from pytest_seedreplay.similar.measure import explain
from pytest_seedreplay.similar.text import analyse, lemma

DATA = Path(__file__).parent / "data" / "similar"


def same(a: str, b: str) -> bool:
    verdict = explain(a, b)
    return not verdict.vetoed and verdict.score >= DEFAULT_THRESHOLD


@pytest.mark.parametrize(
    "a, b",
    [
        ("How do I open the sun roof?", "How do I open the sunroof?"),  # the dictionary knows one word
        ("How do I change my user name?", "How do I change my username?"),
        ("How long does a soft-yolk egg need to boil?", "How long should I boil an egg for a soft yolk?"),
        ("Which city is the capital of Australia?", "What is the capital of Australia?"),  # a kind noun
        ("Is the museum open on a Monday?", "Is the museum open on Mondays?"),
        ("How do I cancel order number 48213?", "How do I cancel order 48213?"),
        ("What does the term 'ephemeral' mean?", "What does 'ephemeral' mean?"),
        ("Delete the file named 'notes.txt'", "Delete the file 'notes.txt'"),
        ("What is the boiling point of water at an altitude of 2000 m?", "What is the boiling point of water at 2000 metres?"),
        ("What's the terminal command to delete 'notes.txt'?", "How do I delete 'notes.txt' in the terminal?"),  # frames
        ("Where's the setting to turn on dark mode?", "How do I turn on dark mode?"),
        ("What should I do to cancel order 48213?", "How do I cancel order 48213?"),
        ("Any idea how to reset my password?", "How do I reset my password?"),
        ("Password reset - how does it work?", "How do I reset my password?"),
        ("What's the calorie count of 100 g of rice?", "How many calories are in 100 grams of rice?"),
        ("What are the consequences of missing a payment?", "What happens if I miss a payment?"),
        ("List vs tuple in Python: what's the difference?", "What is the difference between a list and a tuple in Python?"),
        ("Clearing the cache in Chrome - how do I do it?", "How do I clear the cache in Chrome?"),  # a gerund
        ("My flight got cancelled, what should I do?", "What should I do if my flight is cancelled?"),
        ("My cat keeps scratching the sofa, how do I stop it?", "How do I stop my cat from scratching the sofa?"),
        ("Can sale items be returned with no receipt?", "Can I return a sale item without a receipt?"),
        ("How can I get a red wine stain out of the carpet?", "How do I remove a red wine stain from a carpet?"),
        ("How long can I keep cooked rice in the fridge?", "How many days can I keep cooked rice in the fridge?"),
        ("How can I remove 'notes.txt' using the command line?", "How do I delete 'notes.txt' in the terminal?"),
        ("How do I reserve a table for four?", "How do I book a table for 4?"),  # the broader synonym table
        ("How can I halt the download?", "How do I stop the download?"),
        ("Can I take my bicycle on the train?", "Can I take my bike on the train?"),
        ("Where do I turn on dark mode?", "How do I turn on dark mode?"),  # in an app, where is how
        ("How do I turn off my laptop?", "How do I shut down my laptop?"),
        ("How do I apply a promo code?", "How do I apply a discount code?"),
        ("How can I get in touch with customer service?", "How do I contact customer service?"),
        ("What are your customer service hours?", "When is customer service open?"),
        ("Tips for lowering my electricity bill?", "How do I lower my electricity bill?"),
        ("Can paracetamol and ibuprofen be taken together?", "Can I take paracetamol with ibuprofen?"),
        ("How can I speed up my WiFi?", "How do I make my WiFi faster?"),
        ("How many hours of sleep do adults need?", "How much sleep do adults need?"),
        ("What are the signs of dehydration?", "What are the symptoms of dehydration?"),
        ("How do I get a visa for India?", "How can I get an Indian visa?"),
        ("Remind me at 9 p.m. to call Sam", "Remind me at 9 pm to call Sam"),  # a time's meridiem
        ("Set the heating for 6:30 am tomorrow", "Set the heating for 6:30 tomorrow morning"),
        ("How many calories does 200 grams of pasta have?", "How many calories are in 200 grams of pasta?"),
        # Terse and whole rephrasings, abbreviations, quoted words, times (issue 21 item 8, second round).
        ("how do i remove a file named notes.txt in terminal", "How do I delete a file called 'notes.txt' in the terminal?"),
        ("ephemeral meaning", "What does the word 'ephemeral' mean?"),
        ("what's the meaning of the word ephemeral", "What does the word 'ephemeral' mean?"),
        ("Can you explain the difference between 'affect' and 'effect'?", "What is the difference between affect and effect?"),
        ("how many kcal in 100 g of rice", "How many calories are in 100 grams of rice?"),
        ("what's the max temp setting on the toaster", "What is the maximum temperature setting on the toaster?"),
        ("updating the app to v3.2", "How do I update the app to version 3.2?"),
        ("alarm 7.30 tomorrow morning", "Set an alarm for 7:30 tomorrow morning."),
        ("set me an alarm for half past seven tomorrow morning", "Set an alarm for 7:30 tomorrow morning."),
        ("Wake me at quarter to 8", "Wake me at 7:45"),
        ("who were the world cup champions in 2018", "Who won the World Cup in 2018?"),
        (
            "In Python, how can I order a list of dictionaries by their 'age' key?",
            "How do I sort a list of dictionaries by the key 'age' in Python?",
        ),
        ("How can I get my printer onto the wireless network?", "How do I connect my printer to the Wi-Fi network?"),
        ("Could you walk me through connecting my printer to the WiFi?", "How do I connect my printer to the Wi-Fi network?"),
        ("What time does the York branch open and close?", "What are the opening hours of the York branch?"),
        ("last bus to the airport time", "What time does the last bus to the airport leave?"),
        ("consequences of missing a credit card payment", "What happens if I miss a payment on my credit card?"),
        ("Is there anywhere to park close to the Leeds office?", "Where can I park near the Leeds office?"),
        ("python script 100% cpu usage why", "Why is my Python script using 100% CPU?"),
        ("Can I bring liquids in my carry-on bag?", "Can I bring liquids in my hand luggage?"),
        ("How can I print on both sides of the page in Word?", "How do I print double-sided in Word?"),
        # Formal and casual request frames.
        ("Could you advise me on how to reset my password?", "How do I reset my password?"),
        ("Please let me know how to reset my password.", "How do I reset my password?"),
        ("Would you be able to tell me how to reset my password?", "How do I reset my password?"),
        ("Guide me through resetting my password", "How do I reset my password?"),
        ("Instructions for resetting my password", "How do I reset my password?"),
        ("I'm trying to reset my password, how do I do that?", "How do I reset my password?"),
        ("Wondering how to reset my password", "How do I reset my password?"),
        ("I require assistance resetting my password.", "How do I reset my password?"),
        ("How would one reset my password?", "How do I reset my password?"),
        ("how do u reset ur password", "How do I reset my password?"),
        ("Why is my phone getting hot while charging?", "Why does my phone get hot when charging?"),
        ("library opening time saturday", "When does the library open on Saturday?"),
        ("On Saturday, when does the library open?", "When does the library open on Saturday?"),
        ("pasta boiling time", "How long should I boil pasta?"),
        ("How much time should I boil pasta for?", "How long should I boil pasta?"),
        ("What's the fee for renewing a passport?", "How much does it cost to renew a passport?"),
        ("In summer, is it best to water tomatoes daily?", "Should I water my tomato plants every day in summer?"),
        # A quoted string of several words, unquoted: its words in the same order.
        ("Why does pip install fail with a permission error?", "Why does `pip install` fail with a permission error?"),
        ("pip install fails with permission denied, why?", "Why does `pip install` fail with a permission error?"),
        ("translate good morning into French", "Translate 'good morning' into French."),
        ("notifications off", "How do I turn off notifications?"),
        ("Can I pay by Apple Pay?", "Can I pay with Apple Pay?"),
        ("How's the weather looking in Glasgow tomorrow?", "What is the weather forecast for Glasgow tomorrow?"),
        ("Number of calories in a banana?", "How many calories are in a banana?"),
        ("Who is the author of Pride and Prejudice?", "Who wrote Pride and Prejudice?"),
        ("Pride and Prejudice author?", "Who wrote Pride and Prejudice?"),
        ("Who was Pride and Prejudice written by?", "Who wrote Pride and Prejudice?"),
        ("How can I edit my email address?", "How do I change my email address?"),
        ("How long is the flight from London to Rome?", "How long does it take to fly from London to Rome?"),
        ("What's the flight duration from London to Rome?", "How long does it take to fly from London to Rome?"),
        ("Best Italian restaurant in Bath?", "Can you recommend a good Italian restaurant in Bath?"),
        ("10 mi in km", "Convert 10 miles to kilometres."),
        ("Can I buy stamps anywhere near the station?", "Where can I buy stamps near the station?"),
        ("Reasons my internet is slow?", "Why is my internet so slow?"),
        ("pancake recipe", "How do I make pancakes?"),
        ("What's the recipe for pancakes?", "How do I make pancakes?"),
        ("Teach me to make pancakes", "How do I make pancakes?"),
        ("How many people live in Canada?", "What is the population of Canada?"),
        ("Can I take my own food into the cinema?", "Can I bring food into the cinema?"),
        ("How do I erase my browsing history?", "How do I delete my browser history?"),
        ("Age limit for renting a car in Spain?", "What is the minimum age to rent a car in Spain?"),
        ("What does it cost to post a parcel to Canada?", "How much does it cost to ship a parcel to Canada?"),
        ("How expensive is shipping a parcel to Canada?", "How much does it cost to ship a parcel to Canada?"),
        ("What are the consequences of a missed credit card payment?", "What happens if I miss a payment on my credit card?"),
    ],
)
def test_a_general_rewording_matches(a: str, b: str) -> None:
    assert same(a, b), explain(a, b)


@pytest.mark.parametrize(
    "a, b",
    [
        ("How do I paint a green house?", "How do I paint a greenhouse?"),  # an adjective is not half a compound
        ("How do I plan a work out?", "How do I plan a workout?"),  # nor is a particle
        ("How long should I boil an egg for a hard yolk?", "How long should I boil an egg for a soft yolk?"),
        ("Which city is the largest in Australia?", "What is the capital of Australia?"),
        ("Is the museum open every day?", "Is the museum open on Mondays?"),  # no weekday: "day" counts
        ("Are there no 5 star hotels in York?", "Are there 5 star hotels in York?"),  # "no" is not "number"
        ("How do I go to the language school?", "How do I go to the school?"),  # "go" is no language
        ("How do I get paid?", "How do I pay?"),  # "get" + participle is a passive only after a thing
        ("How do I delete a folder called 'notes.txt'?", "How do I delete a file called 'notes.txt'?"),
        ("What's the protein content of 100 g of rice?", "How many calories are in 100 grams of rice?"),
        ("Where's the setting to turn off dark mode?", "How do I turn on dark mode?"),
        ("Password change - how does it work?", "How do I reset my password?"),
        ("My flight got delayed, what should I do?", "What should I do if my flight is cancelled?"),
        ("Can I return a sale item with a receipt?", "Can I return a sale item without a receipt?"),
        ("How do I log out of my account on this device?", "How do I log out of my account on all devices?"),
        ("What are the steps to disconnect the printer from Wi-Fi?", "How do I connect my printer to the Wi-Fi network?"),
        # A frame noun where a word was left out is a swapped noun.
        ("What are the fees to cancel order 48213 online?", "What are the steps to cancel order 48213 online?"),
        ("What is the main cause of a dishwasher not draining?", "What is the main fix for a dishwasher not draining?"),
        ("How do I upgrade the app?", "How do I update the app?"),  # near synonyms naming different things
        ("How do I change my password?", "How do I reset my password?"),
        ("Can I pause my membership?", "Can I pause my subscription?"),
        ("What is the return policy?", "What is the refund policy?"),
        ("How do I start the download?", "How do I stop the download?"),  # antonyms
        ("How do I unlink my bank account?", "How do I link my bank account?"),
        # Another kind of answer wanted: a time, a reason, a person.
        ("When can I contact customer service?", "How do I contact customer service?"),
        ("Why do I need to reset my password?", "How do I reset my password?"),
        ("Who can reset my password?", "How do I reset my password?"),
        ("Can I take paracetamol and alcohol together?", "Can I take paracetamol with ibuprofen?"),
        ("How can I speed up my laptop?", "How do I make my WiFi faster?"),
        ("How do I get a visa for Indonesia?", "How can I get an Indian visa?"),
        ("What are the causes of dehydration?", "What are the symptoms of dehydration?"),
        # The same number counting another thing: the same words, asked the other way round.
        ("How many pounds is 10 kilograms?", "How many kilograms is 10 pounds?"),
        # am and pm are two times: "pm" left out is not a word left out.
        ("Turn the heating on at 6 am", "Turn the heating on at 6 pm"),
        ("Wake me up at 7:15 am", "Wake me up at 7:15 pm"),
        ("Wake me up at 7:15 in the evening", "Wake me up at 7:15 am"),
        # The same rephrasings with one thing swapped.
        ("ethereal meaning", "What does the word 'ephemeral' mean?"),
        ("what's the meaning of the word ethereal", "What does the word 'ephemeral' mean?"),
        ("how do i remove a file named todo.txt in terminal", "How do I delete a file called 'notes.txt' in the terminal?"),
        ("Can you explain the difference between 'affect' and 'infect'?", "What is the difference between affect and effect?"),
        ("updating the app to v3.1", "How do I update the app to version 3.2?"),
        ("alarm 7.30 tomorrow evening", "Set an alarm for 7:30 tomorrow morning."),
        ("set me an alarm for half past eight tomorrow morning", "Set an alarm for 7:30 tomorrow morning."),
        ("Wake me at quarter past 8", "Wake me at 7:45"),
        ("who were the world cup champions in 2014", "Who won the World Cup in 2018?"),
        (
            "How can I order a list of dictionaries by their 'name' key?",
            "How do I sort a list of dictionaries by the key 'age' in Python?",
        ),
        ("How can I get my laptop onto the wireless network?", "How do I connect my printer to the Wi-Fi network?"),
        ("What time does the Leeds branch open and close?", "What are the opening hours of the York branch?"),
        ("last train to the airport time", "What time does the last bus to the airport leave?"),
        ("first bus to the airport time", "What time does the last bus to the airport leave?"),
        ("consequences of missing a mortgage payment", "What happens if I miss a payment on my credit card?"),
        ("Is there anywhere to eat close to the Leeds office?", "Where can I park near the Leeds office?"),
        ("Can I carry liquids in my checked bag?", "Can I bring liquids in my hand luggage?"),
        ("How can I print on one side of the page in Word?", "How do I print double-sided in Word?"),
        ("Could you advise me on how to reset my router?", "How do I reset my password?"),
        ("Please let me know how to change my password.", "How do I reset my password?"),
        ("Instructions for resetting my router", "How do I reset my password?"),
        ("How would one reset a router?", "How do I reset my password?"),
        ("Why is my phone getting cold while charging?", "Why does my phone get hot when charging?"),
        ("library opening time sunday", "When does the library open on Saturday?"),
        ("When does the library close on Saturday?", "When does the library open on Saturday?"),
        ("pasta cooling time", "How long should I boil pasta?"),
        ("What's the fee for renewing a driving licence?", "How much does it cost to renew a passport?"),
        ("In summer, is it best to water tomatoes weekly?", "Should I water my tomato plants every day in summer?"),
        ("Why does pip uninstall fail with a permission error?", "Why does `pip install` fail with a permission error?"),
        ("Why does install pip fail with a permission error?", "Why does `pip install` fail with a permission error?"),
        ("translate good evening into French", "Translate 'good morning' into French."),
        ("Translate 'a b' to 'c d'", "Translate 'c d' to 'a b'"),
        ("Translate a b to c d", "Translate 'c d' to 'a b'"),
        ("notifications on", "How do I turn off notifications?"),
        ("Can I pay by bank transfer?", "Can I pay with Apple Pay?"),
        ("How's the weather looking in Glasgow today?", "What is the weather forecast for Glasgow tomorrow?"),
        ("Number of calories in an apple?", "How many calories are in a banana?"),
        ("Who is the director of Pride and Prejudice?", "Who wrote Pride and Prejudice?"),
        ("Who is the author of Sense and Sensibility?", "Who wrote Pride and Prejudice?"),
        ("How can I edit my phone number?", "How do I change my email address?"),
        ("How long is the flight from Rome to London?", "How long does it take to fly from London to Rome?"),
        ("What's the train journey time from London to Rome?", "How long does it take to fly from London to Rome?"),
        ("Best Indian restaurant in Bath?", "Can you recommend a good Italian restaurant in Bath?"),
        ("10 km in mi", "Convert 10 miles to kilometres."),
        ("Can I buy stamps anywhere near the airport?", "Where can I buy stamps near the station?"),
        ("Reasons my internet is fast?", "Why is my internet so slow?"),
        ("waffle recipe", "How do I make pancakes?"),
        ("Teach me to make waffles", "How do I make pancakes?"),
        ("How many people live in Mexico?", "What is the population of Canada?"),
        ("How many dogs live in Canada?", "What is the population of Canada?"),
        ("Can I take my own drink into the cinema?", "Can I bring food into the cinema?"),
        ("Age limit for renting a car in France?", "What is the minimum age to rent a car in Spain?"),
        ("What does it cost to post a letter to Canada?", "How much does it cost to ship a parcel to Canada?"),
        ("How expensive is shipping a parcel to Mexico?", "How much does it cost to ship a parcel to Canada?"),
        ("What are the consequences of a late credit card payment?", "What happens if I miss a payment on my credit card?"),
    ],
)
def test_a_near_miss_still_gets_nothing(a: str, b: str) -> None:
    assert explain(a, b).vetoed


def test_gerunds_fold_to_their_verb_but_nouns_in_ing_stay() -> None:
    assert [lemma(w) for w in ("clearing", "closing", "pricing", "hoping", "hopping")] == [
        "clear",
        "close",
        "price",
        "hope",
        "hop",
    ]
    # The dictionary's own slips: an e where none belongs.
    assert [lemma(w) for w in ("growing", "fixing", "playing")] == ["grow", "fix", "play"]
    assert [lemma(w) for w in ("building", "morning", "evening", "ceiling")] == ["building", "morning", "evening", "ceiling"]


def test_a_restated_word_counts_once_only_in_a_short_message() -> None:
    assert analyse("List vs tuple: what's the difference?").content["differ"] == 1
    # Each line of a long message is its own item: "blue" twice is not "blue" once.
    items = "".join(f"Order {n}: a blue kettle.\n" for n in range(1, 6))
    assert analyse(items).content["blue"] == 5


def test_m_after_a_number_is_metres_not_am() -> None:
    assert analyse("at 2000 m").content == analyse("at 2000 metres").content


def test_the_recording_with_the_fewest_words_apart_answers() -> None:
    index = question_index(["How long should I boil an egg for a soft yolk?", "How long should I boil an egg?"])
    match = index.lookup(question_request("What's the boiling time for an egg?"))
    assert match is not None and match.question == "How long should I boil an egg?"


def test_the_second_development_set_gets_no_wrong_answer() -> None:
    # Written for item 8: a near miss for each loosening (added details, near-synonym swaps, antonyms,
    # kind nouns and frames used as content) and rewordings on questions of its own.
    paraphrases = read_paraphrases(DATA / "dev2_paraphrases.jsonl")
    negatives = read_negatives(DATA / "dev2_negatives.jsonl")
    shipped = {p.question for p in read_paraphrases(DATA / "paraphrases.jsonl")}
    questions = shipped | {p.question for p in paraphrases} | {n.question for n in negatives}
    assert len(negatives) >= 260 and len(paraphrases) >= 220
    result = figures(ask(question_index(questions), paraphrases + negatives), DEFAULT_THRESHOLD)
    assert result.wrong == 0, result.wrong_examples
    # 0.70: its 90 rewordings of 30 customer-support questions (kind "support") and 75 of 25 everyday ones
    # (kind "everyday") were written to find what the tables miss, and 41% of them still are (another
    # verb: "use" for "apply", "close" for "delete", "cure" for "get rid of").
    assert result.recall >= 0.68
    assert result.by_kind["paraphrase"]["right"] == result.by_kind["paraphrase"]["probes"]


def test_questions_unlike_the_shipped_ones_get_no_wrong_answer() -> None:
    # dev3: 20 questions of other kinds (home, travel, phones, food) and 60 rewordings, written during item 8
    # and not tuned on (measured, figures only): 48% before item 8, 58% after; 60% after its second round,
    # which read dev3's misses too (one rule came of them: "both sides" = "double-sided").
    paraphrases = read_paraphrases(DATA / "dev3_paraphrases.jsonl")
    negatives = read_negatives(DATA / "dev3_negatives.jsonl")
    questions = {p.question for p in paraphrases}
    assert len(questions) == 20 and len(paraphrases) == 60 and {n.question for n in negatives} <= questions
    result = figures(ask(question_index(questions), paraphrases + negatives), DEFAULT_THRESHOLD)
    assert result.wrong == 0, result.wrong_examples
    assert result.recall >= 0.59
