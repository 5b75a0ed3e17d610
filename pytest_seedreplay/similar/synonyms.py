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
    # Before "how many hours" = "how long": "how many hours of sleep" = "how much sleep".
    (r"(.*?)\bhow many hours of (\S+)(.*)", r"\1 how much \2 \3"),
    # Permission, ability and need: the same request.
    (r"(.*?)\b(?:am i|are we|is one) (?:allowed|permitted) to (.*)", r"\1 can i \2"),
    (r"(.*?)\bis it (?:ok|okay|alright|all right|fine|allowed|permitted) (?:for me )?(?:if i |to )(.*)", r"\1 can i \2"),
    (r"(.*?)\b(?:do i need to|do i have to|ought i to|do we need to|do we have to) (.*)", r"\1 should i \2"),
    (r"(.*?)\bis it (?:best|better|a good idea|advisable|wise|recommended) (?:for me )?to (.*)", r"\1 should i \2"),
    (r"(.*?)\bcan i safely (.*)", r"\1 is it safe to \2"),
    # Manner: "what's the way to X" = "how do I X".
    (r"(.*?)\bwhat is (?:the|a) (?:way|procedure|process|steps?) (?:to|for) (.*)", r"\1 how i \2"),
    (r"(.*?)\bhow (?:does|do|would|can|could|should|might) (?:one|#1) (.*)", r"\1 how i \2"),
    (r"(.*?)\bhow would i (.*)", r"\1 how i \2"),
    # Units: "how many miles is 5 km" = "what is 5 km in miles" = "convert 5 km to miles".
    (r"how many (\S+) (?:is|are|in|make|makes|equals?) (N) (\S+)", r"convert \2 \3 to \1"),
    (r"(?:what is|how much is|how far is|how long is|how heavy is) (N) (\S+) (?:in|as|to) (\S+)", r"convert \1 \2 to \3"),
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
    (r"(?:when|what time|what hours) (?:is|are|does|do) (.+?) open\b(?! and close)(.*)", r"what are the opening hours of \1 \2"),
    (r"what (?:are|is) (.+) (?:opening hours|opening times)", r"what are the opening hours of \1"),
    (r"(.*?)\b(?:opening times?|hours of opening)\b(.*)", r"\1 opening hours \2"),
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
    # Question frames around "how do I X": the command, setting or button that does X is the way to do X.
    (r"(?:what|which) is the (\S+ )?(?:command|shortcut|setting|option|button) (?:to|for|that) (.+)", r"how i \2 \1"),
    (r"(?:what|which) (?:command|shortcut) (?!is\b|are\b|do\b|does\b|can\b|should\b)(.+)", r"how i \1"),
    (r"where is the (?:setting|option|button|switch|toggle|menu) (?:to|for) (.+)", r"how i \1"),
    (r"(?:what|where) (?:do|should|can) i (?:press|click|tap|select|go) to (.+)", r"how i \1"),
    (
        r"what is the (?:best|easiest|right|correct|simplest|quickest|most effective|most efficient|recommended)"
        r" way (?:to|for) (.+)",
        r"how i \1",
    ),
    (r"(?:is there a way|is there any way|what are the ways) (?:to|for) (.+)", r"how i \1"),
    (r"(?:any idea|any ideas|no idea) how (?:to|i|do i|can i|should i) (.+)", r"how i \1"),
    (r"(?:what should i do|what can i do|what do i do|what do i need to do|what do i have to do) to (.+)", r"how i \1"),
    (
        r"(?:i want to|i need to|i would like to|i am trying to|i am looking to|help me) (.+?),? how(?: do| can| should)? i"
        r"(?: do)?(?: it| that| this)?",
        r"how i \1",
    ),
    # A clause that only asks how the other one works: "password reset - how does it work?".
    (r"how (?:does|do|would|will) (?:it|that|this) work", r"how"),
    (r"how (?:do|can|would|should) i (?:do|go about) (?:it|that|this)", r"how"),
    # "the calorie count of X" = "the calorie content of X" = "how many calories in X".
    (r"(.*?)\b(?!the\b|a\b|an\b|what\b|is\b)(\S+) (?:count|content|total|amount) (?:of|in|for) (.+)", r"\1 how many \2 in \3"),
    # "the consequences of missing X" = "what happens if I miss X".
    (r"(.*?)\bwhat (?:are|is) the (?:consequences?|results?|outcomes?) of (\S+ing)\b(.*)", r"\1 what happens if i \2 \3"),
    (r"(.*?)\bwhat distinguishes (.+?) from (.+)", r"\1 what is the difference between \2 and \3"),
    (r"(.*?)\bwhat sets (.+?) apart from (.+)", r"\1 what is the difference between \2 and \3"),
    (r"(?:name|identify) (the .+)", r"what is \1"),
    (r"(.*?)\b(?:am i|are we|is one) entitled to\b(.*)", r"\1 do i get \2"),
    (r"(.*?)\b(?:look|looking|search|searching) for\b(.*)", r"\1 find \2"),
    (r"(.*?)\bfind out\b(.*)", r"\1 find \2"),
    (r"(.*?)\bset up\b(.*)", r"\1 setup \2"),
    (r"(.*?)\b(?:right away|straight away)\b(.*)", r"\1 immediately \2"),
    (r"(.*?)\bhow (?:long|much time) (?:does|will|would) it take to (.+)", r"\1 how long \2"),
    (r"(.*?)\bhow much time\b(.*)", r"\1 how long \2"),
    (r"(.*?)\bin advance\b(.*)", r"\1 beforehand \2"),
    # "get" as the passive's auxiliary: "my flight got cancelled" = "my flight is cancelled". After "I", "we"
    # or "you" it says who undergoes it, and stays a word of its own: "how do I get paid" is not "how do I pay".
    (r"(.*?)\b(i|we|you) (?:get|gets|got|gotten|getting) ({_PARTICIPLE})\b(.*)", r"\1 \2 passive \3 \4"),
    (r"(.*?)\b(?:get|gets|got|gotten|getting) ({_PARTICIPLE})\b(.*)", r"\1 \2 \3"),
    # "my cat keeps scratching the sofa" = "my cat scratches the sofa".
    (r"(.*?)\b(?:keep|keeps|kept|keeping) on (\S+ing)\b(.*)", r"\1 \2 \3"),
    (r"(.*?)\b(?:keep|keeps|kept|keeping) (\S+ing)\b(.*)", r"\1 \2 \3"),
    # "with no receipt" = "if I don't have the receipt" = "without a receipt".
    (r"(.*?)\bwith no\b(.*)", r"\1 without \2"),
    (r"(.*?)\b(?:if|when) (?:i|we|you) (?:do not|does not|did not) have (?:a |an |the |my |any )?(\S+)$", r"\1 without \2"),
    # "get X out of Y" = "remove X from Y"; "keep X from doing" = "stop X from doing".
    (r"(.*?)\b(?:get|clean|wipe) (.+?) (?:out of|off) (.+)", r"\1 remove \2 from \3"),
    (r"(.*?)\bmake (.+?) go away\b(.*)", r"\1 get rid of \2 \3"),
    (r"(.*?)\bget rid of\b(.*)", r"\1 delete \2"),
    (r"(.*?)\b(?:keep|prevent) (\S+(?: \S+)?) from (\S+)(.*)", r"\1 stop \2 from \3 \4"),
    # "each day" = "every day" = "a day" (at the end) = "daily" = "per day".
    (r"(.*?)\b(?:each|every|per) (day|week|month|year|night|hour)\b(.*)", r"\1 per \2 \3"),
    (r"(.*?)\ba (day|week|month|year|night)$", r"\1 per \2"),
    (r"(.*?)\b(?:get|have|want) (?:my |our |the |your )?money back\b(.*)", r"\1 refund \2"),
    (r"(.*?)\b(?:is|are|was|were|be) over$", r"\1 end"),
    (r"(.*?)\buse (.+?) to (pay|log in|login|sign in|book|buy|order)\b(.*)", r"\1 \3 with \2 \4"),
    (
        r"(?:any |some |what are some |what are the best |what are the )?(?:tips|instructions|directions|advice|guidance|help)"
        r" (?:for|on|with|to) (\S+ing) (.+)",
        r"how i \1 \2",
    ),
    # A duration counted in days is a duration: "how many days can I keep X" = "how long can I keep X".
    (
        r"(.*?)\bhow many (?:days|weeks|months|years) (can|could|does|do|will|would|should|is|are|must)\b(.*)",
        r"\1 how long \2 \3",
    ),
    # Verbs with a particle that one everyday verb says.
    (r"(.*?)\b(?:bring|take|send|give) (.+?) back\b(.*)", r"\1 return \2 \3"),
    (r"(.*?)\b(?:bring|take|send|give) back\b(.*)", r"\1 return \2"),
    (r"(.*?)\blook up\b(.*)", r"\1 find \2"),
    (r"(.*?)\bsign up\b(.*)", r"\1 register \2"),
    (r"(.*?)\b(?:throw|chuck) (?:away|out)\b(.*)", r"\1 discard \2"),
    (r"(.*?)\b(?:throw|chuck) (.+?) (?:away|out)\b(.*)", r"\1 discard \2 \3"),
    (r"(.*?)\bpick up\b(.*)", r"\1 collect \2"),
    (r"(.*?)\bpick (.+?) up\b(.*)", r"\1 collect \2 \3"),
    (r"(.*?)\bput off\b(.*)", r"\1 postpone \2"),
    (r"(.*?)\bcall off\b(.*)", r"\1 cancel \2"),
    (r"(.*?)\bfill (?:in|out)\b(.*)", r"\1 complete \2"),
    (r"(.*?)\bscreen (?:capture|grab|shot)\b(.*)", r"\1 screenshot \2"),
    # "the customer service hours" = "the opening hours of customer service".
    (r"what (?:are|is) (?:the |your )?(?!opening\b)(\S+(?: \S+)?) hours", r"what are the opening hours of \1"),
    (r"(.*?)\bopt out (?:of|from)\b(.*)", r"\1 unsubscribe from \2"),
    (r"(.*?)\bstop (?:getting|receiving) (.+)", r"\1 unsubscribe from \2"),
    (r"(.*?)\bget (.+?) back\b(.*)", r"\1 recover \2 \3"),
    (r"(.*?)\bget back\b(.*)", r"\1 recover \2"),
    # "the best time to visit X" = "the best time of year to visit X" = "when should I visit X".
    (r"(.*?)\b(?:what|when) is the best time (?:of (?:the )?year )?to (.+)", r"\1 when is best to \2"),
    (r"(.*?)\bwhat time of (?:the )?year is best (?:for|to) (.+)", r"\1 when is best to \2"),
    (r"when should (?:i|we|you|one) (.+)", r"when is best to \1"),
    (r"(.*?)\bget in (?:touch|contact) with\b(.*)", r"\1 contact \2"),
    (r"(.*?)\b(?:look after|take care of|care for)\b(.*)", r"\1 care for \2"),
    (r"(.*?)\bget (?:on|onto) (?:the |a )?(train|bus|plane|flight|ferry|boat)\b(.*)", r"\1 board \2 \3"),
    (r"(.*?)\bcut down on\b(.*)", r"\1 decrease \2"),
    (r"(.*?)\bgive up\b(.*)", r"\1 quit \2"),
    (r"(.*?)\bthrow up\b(.*)", r"\1 vomit \2"),
    (r"(.*?)\bback (.+?) up\b(.*)", r"\1 backup \2 \3"),
    (r"(.*?)\bback up\b(.*)", r"\1 backup \2"),
    (r"(.*?)\bshut (?:down|off)\b(.*)", r"\1 disable \2"),
    (r"(.*?)\bshut (.+?) (?:down|off)\b(.*)", r"\1 disable \2 \3"),
    (r"(.*?)\bplug in\b(.*)", r"\1 connect \2"),
    (r"(.*?)\bfor good\b(.*)", r"\1 permanently \2"),
    (r"(.*?)\b(?:promo|promotional|promotion|coupon|voucher|discount) codes?\b(.*)", r"\1 discount code \2"),
    (r"(.*?)\b(?:signs?|symptoms?) of\b(.*)", r"\1 symptom of \2"),
    (r"(.*?)\ba different\b(.*)", r"\1 another \2"),
    (r"(.*?)\b(\S+) and (\S+)((?: \S+){0,3}) together\b(.*)", r"\1 \2 with \3 \4 \5"),
    (r"(.*?)\bpair (.+?) (?:with|to)\b(.*)", r"\1 connect \2 to \3"),
    (r"(.*?)\bon (?:a|the) (?:flight|plane)\b(.*)", r"\1 on plane \2"),
    (r"(.*?)\bspeed up (.+)", r"\1 make \2 faster"),
    (r"(.*?)\bspeed (.+?) up\b(.*)", r"\1 make \2 faster \3"),
    (r"(.*?)\bimprove (.+?) speed\b(.*)", r"\1 make \2 faster \3"),
    # The tool a thing is done with: "remove X using the command line" = "remove X in the terminal".
    (r"using (?:the |a |my )?(.+)", r"with \1"),
    (r"(.+ \S+) using (?:the|a|my) (\S+(?: \S+)?)", r"\1 with \2"),
    # "why do I get an error when I run `pip install`" = "why does `pip install` give an error".
    (r"(.*?)\b(?:when|if|after) (?:i|you|we) (?:run|type|execute|enter|call) (Q)(.*)", r"\1 \2 \3"),
    # "the boiling time of X" = "how long to boil X"; "at what temperature does X boil" = "X's boiling point".
    (r"(.*?)\bwhat is the (\S+ing) time (?:for|of|to) (.+)", r"\1 how long \2 to \3"),
    (r"(?:at )?what temperature (?:does|do|will) (.+?) (boil|melt|freeze)(?: at)?\b(.*)", r"what is the \2 point of \1 \3"),
    # "items that arrive damaged" = "damaged items".
    (r"(.*?)\b(\S+) (?:that|which) (?:are|is|were|was|arrive|arrives|arrived|come|comes|came) (\S+)$", r"\1 \3 \2"),
    (r"(.*?)\bopens? (?:its|their|the) doors\b(.*)", r"\1 open \2"),
    (
        r"what is (?:the )?(?:difference|different) (?:about|between|with) (.+?) (?:vs|versus|and) (.+)",
        r"what is the difference between \1 and \2",
    ),
    (r"(.*?)\b{_LOG} (.+?) (?:out|off)\b(?: of| from)?(.*)", r"\1 logout \2 \3"),
    # Terse and whole rephrasings of common question shapes.
    (r"((?:the )?(?:word |term )?\S+) (?:meaning|definition)", r"what does \1 mean"),
    # How long a thing lasts: its duration, its travel or cooking time.
    (
        r"(.*?)\b(?:the )?(flight|travel|journey|drive|driving|cooking|baking|boiling|waiting|delivery|shipping) times?\b(.*)",
        r"\1 how long \2 \3",
    ),
    (r"(.*?)\b(?:the )?duration(?: of)?\b(.*)", r"\1 how long \2"),
    # A search-style "X time": when X ("last bus to the airport time").
    (r"(?!.*\b(?:what|when|which|how|who|why|where|much|many|long)\b)(.+?) (\S+ing) time", r"how long \2 \1"),
    (r"(?!.*\b(?:what|when|which|how|who|why|where|much|many|long)\b)(.+) time", r"when \1"),
    (r"(?:when|what time) (?:does|do|is|are) (.+) (?:open and close|close and open)", r"what are the opening hours of \1"),
    (r"(.*?)\bwho (?:was|were|is|are) the (.+?) champions?\b(.*)", r"\1 who won \2 \3"),
    (r"(.*?)\bwho (?:was|were|is|are) the champions? (?:of|in) (.+)", r"\1 who won \2"),
    (r"(.*?)\border (.+?) by\b(.*)", r"\1 sort \2 by \3"),
    (r"(.*?)\bwireless (network|internet|connection)\b(.*)", r"\1 wifi \2 \3"),
    (r"(.*?)\bget (.+?) (?:on|onto|on to) (?:the )?(wifi|wireless|internet|network)\b(.*)", r"\1 connect \2 to \3 \4"),
    (r"(?:the )?(?:consequences?|results?|outcomes?) of (\S+ing)\b(.*)", r"what happens if i \1 \2"),
    (r"is there (?:anywhere|somewhere|any ?where|a place|any place) (?:to|i can|where i can) (.+)", r"where can i \1"),
    (r"what (?:causes|would cause|could cause|might cause) (.+?) to (.+)", r"why does \1 \2"),
    (r"(.*?)\b(?:carry on|carryon|cabin) (?:bag|baggage|luggage|case)\b(.*)", r"\1 hand luggage \2"),
    # A bare "X off" / "X on": turning X off or on ("notifications off", "dark mode on").
    (r"(?:the |my )?((?!(?:is|are|was|were|it|not|day|days|time)\b)\S+(?: \S+)?) off", r"disable \1"),
    (r"(?:the |my )?((?!(?:is|are|was|were|it|not|day|days|time)\b)\S+(?: \S+)?) on", r"enable \1"),
    # Paying by, using or via a means is paying with it.
    (r"(.*?)\bpay (?:by|using|via|through) (.+)", r"\1 pay with \2"),
    # The weather "looking", "expected", "going to be": its forecast.
    (
        r"(.*?)\b(?:how|what) is the weather (?:looking|expected|going to be|forecast to be)(?: like)?\b(.*)",
        r"\1 weather forecast \2",
    ),
    (r"(.*?)\bwhat weather is (?:expected|forecast|predicted)\b(.*)", r"\1 weather forecast \2"),
    (r"(?:the )?number of (.+)", r"how many \1"),
    (r"(?:where is |what is )?the (?:nearest|closest) (?:place|spot) (?:to|where i can|where you can) (.+)", r"where can i \1"),
    (r"(?:what is |where is |which is )?(?:the )?best (.+?) (in|near|around) (.+)", r"recommend \1 \2 \3"),
    (r"(?:what is )?(?:the )?age (?:limit|requirement|restriction) (?:for|to) (.+)", r"what is the minimum age to \1"),
    (r"(.*?)\bpost (?:a |the |my )?(parcel|package|letter|card|postcard)\b(.*)", r"\1 send a \2 \3"),
    (r"(.*?)\bhow expensive is (\S+ing)\b(.*)", r"\1 how much does it cost to \2 \3"),
    (
        r"(?:what (?:are|is) )?(?:the )?(?:consequences?|results?|outcomes?) of (?:a |an |the )?(missed|skipped) (.+)",
        r"what happens if i miss \2",
    ),
    # The reasons for X: why X.
    (r"(?:what are |what is )?(?:the |some )?(?:possible |likely |main |common )?reasons? (?:why |for |that )?(.+)", r"why \1"),
    # A recipe for X: how to make X.
    (r"(?:what is |give me |do you have |is there )?(?:the |a |any )?recipe (?:for|to make) (.+)", r"how i make \1"),
    (r"(?:what is |give me |do you have |is there )?(?:the |a |an |any )?(?!the\b|a\b|an\b)(.+) recipe", r"how i make \1"),
    # The people who live in a place: its population.
    (
        r"(.*?)\bhow many (?:people|inhabitants|residents) (?:live |are there |are |reside )?in (.+)",
        r"\1 what is the population of \2",
    ),
    (r"(.*?)\bhow (?:big|large|high) is the population\b(.*)", r"\1 what is the population \2"),
    # The message an error prints is the error: "permission denied" = "a permission error".
    (r"(.*?)\bpermission denied(?: errors?)?\b(.*)", r"\1 permission error \2"),
    (r"(.*?)\b(?:on )?both sides(?: of (?:the |a |each )?(?:page|paper|sheet)s?)?\b(.*)", r"\1 double sided \2"),
    (r"(.*?)\b(?:switch|change|go) (?:over )?to (\S+ mode)\b(.*)", r"\1 enable \2 \3"),
]
_VERB_PARTICIPLES = {"wrote": "written"}
_VERB_PARTICIPLES.update({v: v for v in ("directed", "painted", "invented", "composed", "founded", "discovered")})
# In a pattern, (N) is one number, (Q) one quoted string; {_TURN} and {_LOG} any form of the verb.
_TURN = "(?:turn|turns|turned|turning|switch|switches|switched|switching|power|powers|powered|powering)"
_LOG = "(?:log|logs|logged|logging|sign|signs|signed|signing)"
_PARTICIPLE = (
    r"\S+ed|broken|stolen|taken|eaten|frozen|chosen|hidden|paid|made|sent|told|given|done|seen|shown|caught|sold"
    r"|bought|kept|held|brought|taught|found|lost|hurt|hit|cut|stuck|spent|bitten|stung"
)
# "Who is the author of X" = "who wrote X": the one who did a thing, asked by the noun that names them.
_AGENTS = {
    "wrote": ("author", "writer"),
    "directed": ("director",),
    "painted": ("painter",),
    "invented": ("inventor",),
    "composed": ("composer",),
    "founded": ("founder",),
    "discovered": ("discoverer",),
}
for _verb, _nouns in _AGENTS.items():
    _noun = "|".join(_nouns)
    _REWRITES_SRC += [
        (rf"who (?:is|was|were) the (?:{_noun}) of (.+)", rf"who {_verb} \1"),
        (rf"(?:the )?(?:{_noun}) of (.+)", rf"who {_verb} \1"),
        (rf"(?:which|what) (?:{_noun}) {_verb} (.+)", rf"who {_verb} \1"),
        (rf"who (?:is|was|were) (.+) {_VERB_PARTICIPLES[_verb]} by", rf"who {_verb} \1"),
        (rf"(?!who\b|what\b|which\b)(.+) (?:{_noun})", rf"who {_verb} \1"),
    ]
REWRITES = [
    (
        re.compile(
            p.replace("(N)", r"(#\S+)")
            .replace("(Q)", r"(\x01q\d+)")
            .replace("{_TURN}", _TURN)
            .replace("{_LOG}", _LOG)
            .replace("{_PARTICIPLE}", _PARTICIPLE)
        ),
        r,
    )
    for p, r in _REWRITES_SRC
]

# Single words: each maps to one representative (a lemma, as the lemmatiser gives it).
_GROUPS = [
    ("maximum", "highest", "max", "greatest", "top"),
    ("minimum", "lowest", "min", "youngest"),
    ("pause", "freeze", "suspend"),
    ("reset", "recover", "restore", "undelete"),
    ("branch", "store", "shop", "outlet"),
    ("temperature", "heat", "temp"),
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
    ("rubbish", "trash", "garbage"),
    ("flat", "apartment"),
    ("lift", "elevator"),
    ("timetable", "schedule"),
    ("postcode", "zipcode"),
    ("email", "e-mail"),
    ("password", "passphrase"),
    ("delete", "remove", "erase", "uninstall"),
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
    ("cost", "price", "fee"),
    ("car", "automobile", "vehicle"),
    ("child", "kid"),
    ("phone", "telephone", "mobile", "cellphone", "smartphone"),
    ("change", "modify", "alter", "switch", "rename", "edit"),
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
    ("mile", "mi"),
    # Everyday abbreviations: one meaning, the word they shorten.
    ("calorie", "kcal"),
    ("information", "info"),
    ("account", "acct"),
    ("message", "msg"),
    ("tomorrow", "tmrw", "tmr"),
    ("year", "yr"),
    ("week", "wk"),
    ("wifi", "wlan"),
    ("metre", "meter", "m"),
    ("litre", "liter"),
    ("colour", "color"),
    ("favourite", "favorite"),
    ("centre", "center"),
    ("application", "app"),
    ("movie", "film"),
    ("vegetarian", "veggie"),
    ("near", "nearby", "nearest", "closest"),
    ("win", "won"),
    # Everyday synonyms with no common sense apart (a broad table, not the words of any one set).
    ("stop", "halt", "cease"),
    ("happen", "occur"),
    ("quit", "exit"),
    ("book", "reserve"),
    ("connect", "link"),
    ("disconnect", "unlink"),
    ("create", "generate"),
    ("build", "construct"),
    ("talk", "speak"),
    ("merge", "combine"),
    ("tyre", "tire"),
    ("leak", "leaky"),
    ("money", "funds"),
    ("lose", "misplace"),
    ("move", "relocate"),
    ("mean", "signify"),
    ("improve", "boost", "enhance"),
    ("sync", "synchronise", "synchronize"),
    ("restart", "reboot"),
    ("invoice", "bill"),
    ("stomach", "tummy", "belly"),
    ("dinner", "supper"),
    ("aubergine", "eggplant"),
    ("courgette", "zucchini"),
    ("coriander", "cilantro"),
    ("free", "complimentary"),
    ("expensive", "costly", "pricey"),
    ("vomit", "puke"),
    ("clear", "empty"),
    ("replace", "swap"),
    ("register", "enrol", "enroll"),
    ("discard", "dispose"),
    ("doctor", "physician"),
    ("baby", "infant"),
    ("teenager", "teen"),
    ("truck", "lorry"),
    ("taxi", "cab"),
    ("pharmacy", "chemist", "drugstore"),
    ("sweater", "jumper", "pullover"),
    ("sneaker", "trainers"),
    ("diaper", "nappy"),
    ("stove", "cooker"),
    ("flashlight", "torch"),
    ("screenshot", "screengrab", "screencap"),
    ("understand", "comprehend"),
    ("see", "view"),
    ("fix", "mend"),
    ("luggage", "baggage"),
    ("photo", "picture", "photograph", "pic"),
    ("computer", "pc"),
    ("television", "tv", "telly"),
    ("fridge", "refrigerator"),
    ("bicycle", "bike"),
    ("plane", "airplane", "aeroplane", "aircraft"),
    ("pavement", "sidewalk"),
    ("petrol", "gasoline"),
    ("motorway", "highway", "freeway"),
    ("mother", "mum", "mom"),
    ("father", "dad"),
    ("sofa", "couch", "settee"),
    ("website", "webpage"),
    ("amount", "quantity"),
    ("illness", "sickness"),
    ("sick", "ill"),
    ("rule", "regulation"),
    ("allowance", "entitlement"),
    ("easy", "simple"),
    ("wrong", "incorrect"),
    ("rich", "wealthy"),
    ("immediately", "instantly"),
    ("fast", "rapid", "speedy", "quickly", "rapidly"),
    ("differ", "distinguish", "distinction"),
    ("consequence", "outcome"),
    ("setup", "configure"),
    ("smell", "odour", "odor"),
    ("toilet", "loo", "restroom", "washroom", "lavatory"),
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
    "setting": "set",
    "different": "differ",
    "usage": "use",
    "browsing": "browser",
    "flight": "fly",
    "assistance": "help",
}
# A people's or a language's name is its country's: "an Indian visa" = "a visa for India".
_DEMONYMS = {
    "indian": "india",
    "german": "germany",
    "french": "france",
    "spanish": "spain",
    "italian": "italy",
    "japanese": "japan",
    "chinese": "china",
    "british": "uk",
    "american": "usa",
    "canadian": "canada",
    "australian": "australia",
    "irish": "ireland",
    "dutch": "netherlands",
    "portuguese": "portugal",
    "greek": "greece",
    "swiss": "switzerland",
    "swedish": "sweden",
    "mexican": "mexico",
    "brazilian": "brazil",
    "scottish": "scotland",
    "welsh": "wales",
    "english": "england",
}
SYNONYMS = {word: group[0] for group in _GROUPS for word in group[1:]}
SYNONYMS.update(_DEMONYMS)
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
    + ["exactly", "actually", "currently", "now", "also", "ever", "even", "anyway", "still", "yet", "anymore"]
    # "my own food" is "my food".
    + ["own"]
)
