"""Everyday rewordings folded into one form before the guards compare two questions.

Two small, curated tables: `REWRITES`, whole phrasings that say the same thing ("how many miles is
5 km" = "convert 5 km to miles", "am I allowed to" = "can I", "switch on" = "turn on"), and
`SYNONYMS`, single words with one everyday meaning shared by another ("depart" = "leave", "final" =
"last"). Only words whose every common sense is the same as their representative's are listed:
"change" is not "reset", "close" is not "near", "membership" is not "subscription". A word not here
keeps its own meaning, so a swapped content word still keeps two questions apart.

WordNet (and thesauri built on it) were the first choice, but what ships offline on PyPI gives only
word lists without synonym sets, and WordNet's synonym sets join words by rare senses ("change" and
"switch" and "shift" and "reset"), which would answer near misses; a short table is the safer default.
"""

from __future__ import annotations

import re

# A rewrite matches the whole clause's text (words as lower case, a number as its digits, a quoted string
# or a name as one placeholder); `\\N` in the replacement stands for the words of group N, unchanged.
_REWRITES_SRC: list[tuple[str, str]] = [
    # Permission, ability and need: the same request.
    (r"(.*?)\b(?:am i|are we|is one) (?:allowed|permitted) to (.*)", r"\1 can i \2"),
    (r"(.*?)\bis it (?:ok|okay|alright|all right|fine|allowed|permitted) (?:for me )?(?:if i |to )(.*)", r"\1 can i \2"),
    (r"(.*?)\b(?:do i need to|do i have to|ought i to|do we need to|do we have to) (.*)", r"\1 should i \2"),
    (r"(.*?)\bcan i safely (.*)", r"\1 is it safe to \2"),
    # Manner: "what's the way to X" = "how do I X".
    (r"(.*?)\bwhat is (?:the|a) (?:way|procedure|process|steps?) (?:to|for) (.*)", r"\1 how i \2"),
    (r"(.*?)\bhow does (?:one|#1) (.*)", r"\1 how i \2"),
    (r"(.*?)\bhow would i (.*)", r"\1 how i \2"),
    # Units: "how many miles is 5 km" = "what is 5 km in miles" = "convert 5 km to miles".
    (r"how many (\S+) (?:is|are|in|make|makes|equals?) (N) (\S+)", r"convert \2 \3 to \1"),
    (r"(?:what is|how much is) (N) (\S+) (?:in|as|to) (\S+)", r"convert \1 \2 to \3"),
    (r"(?:change|turn) (N) (\S+) (?:in)?to (\S+)", r"convert \1 \2 to \3"),
    # Imperatives and questions for the same thing.
    (r"(?:calculate|compute|work out|figure out) (.*)", r"what is \1"),
    (r"(?:define|give me the definition of|give the definition of) (.+)", r"what does \1 mean"),
    (r"what is the (?:meaning|definition) of (.+)", r"what does \1 mean"),
    (r"what (?:do|does) (.+) stand for", r"what does \1 mean"),
    (r"how (?:do you|do i|would you|would i|can i|can you|to|i) say (Q) in (\S+)", r"translate \1 to \2"),
    (r"what is (Q) in (\S+)", r"translate \1 to \2"),
    (r"how (?:is|are) (.+?) different from (.+)", r"what is the difference between \1 and \2"),
    (r"how (?:do|does) (.+?) differ from (.+)", r"what is the difference between \1 and \2"),
    (r"what (?:is|are) the differences? between (.+)", r"what is the difference between \1"),
    (r"(?:do you have|have you got|do you offer) (.+)", r"is there \1"),
    # Cost: "what does it cost" = "how much does it cost".
    (r"(.*?)\bwhat (?:does|will|would) it cost\b(.*)", r"\1 how much does it cost \2"),
    (r"(.*?)\bwhat is the (?:cost|price) (?:to|of) (.*)", r"\1 how much does it cost to \2"),
    # Opening hours: "when is X open" = "what are the opening hours of X" (the form that keeps "hours",
    # so that "the opening pause of X" stays another question).
    (r"(?:when|what time|what hours) (?:is|are|does|do) (.+) open", r"what are the opening hours of \1"),
    (r"what (?:are|is) (.+) (?:opening hours|opening times)", r"what are the opening hours of \1"),
    (r"(.*?)\b(?:opening times|hours of opening)\b(.*)", r"\1 opening hours \2"),
    # "turn on" = "switch on" = "enable": one word, so that "on" (a joining word elsewhere) still counts.
    (r"(.*?)\b{_TURN} on\b(.*)", r"\1 enable \2"),
    (r"(.*?)\b{_TURN} off\b(.*)", r"\1 disable \2"),
    (r"(.*?)\b{_TURN} (.+?) on\b(.*)", r"\1 enable \2 \3"),
    (r"(.*?)\b{_TURN} (.+?) off\b(.*)", r"\1 disable \2 \3"),
    (r"(.*?)\b{_LOG} (?:in|on)(?: to| into)?\b(.*)", r"\1 login \2"),
    (r"(.*?)\b{_LOG} (?:out|off)(?: of| from)?\b(.*)", r"\1 logout \2"),
    (r"(.*?)\bmake (.+?) (?:bigger|larger)\b(.*)", r"\1 increase \2 \3"),
    (r"(.*?)\bmake (.+?) smaller\b(.*)", r"\1 decrease \2 \3"),
    (r"(.*?)\bless expensive\b(.*)", r"\1 cheaper \2"),
    (r"(.*?)\bmore expensive\b(.*)", r"\1 dearer \2"),
    (r"(.*?)\b(?:capital city)\b(.*)", r"\1 capital \2"),
    (r"(.*?)\b(?:what|which) city is the capital\b(.*)", r"\1 what is the capital \2"),
    (r"(.*?)\b(?:sitting room|lounge)\b(.*)", r"\1 living room \2"),
    (r"(.*?)\b(?:days off|annual leave|holiday days|days of holiday|days of vacation|pto days)\b(.*)", r"\1 vacation days \2"),
    (r"(.*?)\bclose to\b(.*)", r"\1 near \2"),
    (r"(.*?)\b(?:have|has) (not )?been\b(.*)", r"\1 \2 \3"),
    (r"(.*?)\b(?:have|has) (not )?(.+?) (not )?been\b(.*)", r"\1 \2 \3 \4 \5"),
    (r"how many (.+?) (?:does|do) (.+) contain", r"how many \1 in \2"),
    (r"(.*?)\bwho (?:was|is|were) the winner of (.+)", r"\1 who won \2"),
    (r"(.*?)\bfor (\S+ing)\b(.*)", r"\1 to \2 \3"),
    (r"(.*?)\bwhat happens when\b(.*)", r"\1 what happens if \2"),
    (r"email (.+) to (.+)", r"send \1 to \2"),
    (r"how (?:do|would|does) (?:the )?(\S+) say (Q)", r"translate \2 to \1"),
    (r"(\S+) for (Q)", r"translate \2 to \1"),
    (r"(.*?)\bwhich (?:team|country|side|nation|player) (?:won)\b(.*)", r"\1 who won \2"),
    (r"(.*?)\bwhich (?:team|country|side|nation|player) (?:was|were) the winners? of (.+)", r"\1 who won \2"),
    (r"(.*?)\b(?:can not|do not|cannot) remember\b(.*)", r"\1 forget \2"),
    (r"(.*?)\b(?:do not|did not|fail to|forget to|forgot to) (?:make|pay)\b(.*)", r"\1 miss \2"),
    (r"(.*?)\bthe number of\b(.*)", r"\1 how many \2"),
    (r"(.*?)\bhow many (?:minutes|seconds|hours)\b(.*)", r"\1 how long \2"),
    (r"(?:what is|where is|do you know|where can i find|is there) (?:an?|any) (?:good|nice|decent|great) (.+)", r"recommend \1"),
    (r"(?:do you know|know) (?:an?|any) (.+)", r"recommend \1"),
    (r"(.*?)\b(?:business hours|hours of business|hours of operation)\b(.*)", r"\1 opening hours \2"),
    (r"(.*?)\bnight mode\b(.*)", r"\1 dark mode \2"),
    (r"(.*?)\btext size\b(.*)", r"\1 font size \2"),
    (r"(.*?)\bmake (?:the )?(?:text|font|letters) (?:bigger|larger)\b(.*)", r"\1 increase font size \2"),
    (r"(.*?)\bbump up\b(.*)", r"\1 increase \2"),
    (r"(.*?)\b(?:place|somewhere|spot) to eat\b(.*)", r"\1 restaurant \2"),
    (r"(.*?)\b(?:command line|command prompt|shell|console)\b(.*)", r"\1 terminal \2"),
    (r"(?:does|do|will|is|are) (.+?) (?:work|valid|accepted) (on|in|at) (.+)", r"can i use \1 \2 \3"),
    (r"(?:does|do|will) (.+?) accept (.+)", r"can i use \2 on \1"),
    (r"(.*?)\bput (.+?) on hold\b(.*)", r"\1 pause \2 \3"),
    (r"(.*?)\bhottest\b(.*)", r"\1 maximum temperature \2"),
    (r"(.*?)\b(.+?) (?:vs|versus) (.+)", r"\1 difference between \2 and \3"),
    (r"(?:how )?(?:do|does) (.+) and (.+?) differ\b(.*)", r"what is the difference between \1 and \2 \3"),
    (r"(.*?)\bhow (?:much|expensive) is it to (.*)", r"\1 how much does it cost to \2"),
    (r"(.*?)\bcosts? less\b(.*)", r"\1 cheaper \2"),
    (r"(.*?)\bcosts? more\b(.*)", r"\1 dearer \2"),
    (r"(.*?)\bwake (?:me|us)(?: up)?\b(.*)", r"\1 set alarm \2"),
    (r"(.*?)\blog (?:me|us) (?:out|off)\b(.*)", r"\1 logout \2"),
    (r"(.*?)\bwhat (?:will|is) the weather (?:going to )?be like\b(.*)", r"\1 weather forecast \2"),
    (r"(.*?)\b(not) (?:start|boot)(?: up)?\b(.*)", r"\1 \2 enable \3"),
    (r"(.*?)\b(?:i am looking for|looking for|any good)\b(.*)", r"\1 recommend \2"),
    (r"(.*?)\bdaily\b(.*)", r"\1 every day \2"),
    (r"(.*?)\bwho (?:was|were|is|are) the winners? of (.+)", r"\1 who won \2"),
    (r"(.*?)\bwho (?:was|were|is|are) the (.+?) winners?$", r"\1 who won \2"),
    (r"(.*?)\bhook (.+?) up\b(.*)", r"\1 connect \2 \3"),
    (r"(.*?)\bhow old (?:do|must|should|would) (?:i|you|one) (?:have to |need to )?be\b(.*)", r"\1 minimum age \2"),
    (r"(.*?)\b(?:hook|plug) up\b(.*)", r"\1 connect \2"),
]
# In a pattern, (N) is one number, (Q) one quoted string; {_TURN} and {_LOG} any form of the verb.
_TURN = "(?:turn|turns|turned|turning|switch|switches|switched|switching|power|powers|powered|powering)"
_LOG = "(?:log|logs|logged|logging|sign|signs|signed|signing)"
REWRITES = [
    (re.compile(p.replace("(N)", r"(#\S+)").replace("(Q)", r"(\x01q\d+)").replace("{_TURN}", _TURN).replace("{_LOG}", _LOG)), r)
    for p, r in _REWRITES_SRC
]

# Single words: each maps to one representative (a lemma, as the lemmatiser gives it).
_GROUPS = [
    ("maximum", "highest", "max", "greatest", "top"),
    ("minimum", "lowest", "min", "youngest"),
    ("pause", "freeze", "suspend"),
    ("reset", "recover"),
    ("branch", "store", "shop", "outlet"),
    ("temperature", "heat"),
    ("sunroof", "moonroof"),
    ("gram", "g", "gramme"),
    ("kilogram", "kg", "kilo"),
    ("damage", "broken", "faulty", "defective"),
    ("item", "product", "goods"),
    ("annual", "yearly"),
    ("script", "program"),
    ("use", "consume", "utilise", "utilize"),
    ("park", "parking"),
    ("enable", "activate"),
    ("disable", "deactivate"),
    ("safe", "safely"),
    ("cancel", "cancell", "cancelled", "canceled"),
    ("send", "ship", "mail", "forward"),
    ("rent", "hire", "rental"),
    ("get", "obtain", "receive", "acquire"),
    ("show", "display"),
    ("find", "locate"),
    ("choose", "pick", "select"),
    ("try", "attempt"),
    ("close", "shut"),
    ("correct", "right", "proper"),
    ("error", "mistake"),
    ("problem", "issue", "trouble"),
    ("answer", "reply", "respond"),
    ("ask", "inquire", "enquire"),
    ("tell", "inform"),
    ("allow", "let", "permit"),
    ("big", "large", "huge"),
    ("small", "little", "tiny"),
    ("whole", "entire"),
    ("often", "frequently"),
    ("usually", "normally", "typically"),
    ("maybe", "perhaps"),
    ("enough", "sufficient"),
    ("need", "necessary", "required", "require"),
    ("trip", "journey"),
    ("medicine", "medication", "drug"),
    ("mobile", "cellphone", "smartphone"),
    ("rubbish", "trash", "garbage"),
    ("flat", "apartment"),
    ("lift", "elevator"),
    ("timetable", "schedule"),
    ("postcode", "zipcode"),
    ("email", "e-mail"),
    ("password", "passphrase"),
    ("delete", "remove", "erase"),
    ("leave", "depart"),
    ("last", "final", "latest"),
    ("recommend", "suggest"),
    ("vacation", "holiday"),
    ("start", "begin", "commence"),
    ("finish", "end"),
    ("buy", "purchase"),
    ("help", "assist"),
    ("fix", "repair"),
    ("fast", "quick"),
    ("faster", "quicker"),
    ("fastest", "quickest"),
    ("cheap", "inexpensive"),
    ("cost", "price"),
    ("car", "automobile", "vehicle"),
    ("child", "kid"),
    ("phone", "telephone"),
    ("change", "modify", "alter", "switch", "rename"),
    ("take", "bring"),
    ("soft", "runny"),
    ("yet", "still"),
    ("package", "parcel"),
    ("deliver", "arrive"),
    ("miss", "skip"),
    ("all", "every", "each"),
    ("call", "name"),
    ("dictionary", "dict"),
    ("increase", "raise", "enlarge"),
    ("decrease", "reduce", "lower", "shrink"),
    ("kilometre", "kilometer", "km"),
    ("metre", "meter"),
    ("litre", "liter"),
    ("colour", "color"),
    ("favourite", "favorite"),
    ("centre", "center"),
    ("application", "app"),
    ("movie", "film"),
    ("vegetarian", "veggie"),
    ("near", "nearby", "nearest", "closest"),
    ("win", "won"),
]
# A noun and the verb it names: "the delivery of my package" = "my package is delivered".
_DERIVED = {
    "delivery": "deliver",
    "payment": "pay",
    "cancellation": "cancel",
    "connection": "connect",
    "translation": "translate",
    "conversion": "convert",
    "deletion": "delete",
    "removal": "delete",
    "recommendation": "recommend",
    "suggestion": "recommend",
    "winner": "win",
    "arrival": "deliver",
    "renewal": "renew",
    "booking": "book",
    "reservation": "reserve",
    "replacement": "replace",
    "installation": "install",
    "explanation": "explain",
    "departure": "leave",
    "reduction": "decrease",
    "shipping": "send",
    "shipment": "send",
    "difference": "differ",
    "different": "differ",
}
SYNONYMS = {word: group[0] for group in _GROUPS for word in group[1:]}
SYNONYMS.update({k: SYNONYMS.get(v, v) for k, v in _DERIVED.items()})

# Words that never decide what is asked once the frames are gone: pronouns of the asker and the
# assistant, and prepositions that only join ("for the annual plan" = "on the annual plan").
# Question words and modals go too: a near miss swaps what is asked about, and "how do I X", "can I X",
# "X: how?" and "I'd like to X" all ask for the same answer.
LIGHT = frozenset(
    ["i", "you", "we", "it", "for", "on", "in", "at", "as", "with", "about"]
    + ["how", "what", "why", "where", "when", "who", "can", "should", "must", "much", "many"]
    # Permission and wishes: "are dogs allowed on", "I'd like to", "I want to", "I need to".
    + ["allow", "permit", "possible", "able", "ok", "okay", "want", "like", "need"]
    # Filler that only says how the asker feels about the question.
    + ["exactly", "actually", "currently", "now", "also", "ever", "even", "anyway", "still", "yet"]
)
