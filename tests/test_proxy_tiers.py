"""The learned-tier seam: tiers are asked in order on an exact miss, answer in the shape asked, say
who answered, never reach the upstream where the policy may not, and store only when asked."""

from __future__ import annotations

import dataclasses
from typing import Any

from pytest_seedreplay.core.constants import CHAT
from pytest_seedreplay.core.entry import Entry
from pytest_seedreplay.proxy.tiers import Asked, TierAnswer
from pytest_seedreplay.shapes import parse_sse

from proxy_support import CHAT as CHAT_PATH
from proxy_support import MODEL, messages, upstream_calls


class Canned:
    """A tier answering one question with a fixed entry (a stand-in for `similar`)."""

    name = "similar"
    needs_upstream = False

    def __init__(self, question: str, entry: Entry | None = None, store: bool = False):
        self.question, self.entry, self.store = question, entry, store
        self.asked: list[str] = []
        self.heard: list[str] = []

    async def answer(self, call, store, ask) -> TierAnswer | None:
        text = call.canonical["params"]["messages"][-1]["content"]
        self.asked.append(text)
        if text != self.question or self.entry is None:
            return None
        return TierAnswer(self.entry, {"X-Seedreplay-Similar-Key": self.entry.key}, store=self.store)

    def heard_stored(self, entry: Entry) -> None:
        self.heard.append(entry.key)


class AskingTier:
    """A tier that asks the upstream (a stand-in for `finetune`) and serves what it said."""

    name = "finetune"
    needs_upstream = True

    def __init__(self) -> None:
        self.calls = 0

    async def answer(self, call, store, ask) -> TierAnswer | None:
        self.calls += 1
        asked: Asked = await ask({**call.body, "model": MODEL, "seed": 99})
        if asked.status != 200:
            return None
        entry = Entry(key="tier", endpoint=CHAT, request=call.canonical, body=asked.body)
        return TierAnswer(entry, {"X-Seedreplay-Finetune-Model": MODEL})


def body(text: str) -> dict[str, Any]:
    return {"model": MODEL, "messages": messages(text), "seed": 1}


def test_a_tier_answers_an_exact_miss_plain_and_streamed_and_says_so(sim, proxy_factory):
    recorder = proxy_factory(sim.url)
    original = recorder.post(CHAT_PATH, body("opening hours?"))
    recorded = recorder.store.get(original.headers["x-seedreplay-key"])
    tier = Canned("what are the opening hours", recorded)
    proxy = proxy_factory(sim.url, tiers=[tier], cache_dir=recorder.cache_dir)
    before = upstream_calls(sim)
    plain = proxy.post(CHAT_PATH, body("what are the opening hours"))
    streamed = proxy.post(CHAT_PATH, {**body("what are the opening hours"), "stream": True})
    assert plain.headers["x-seedreplay-cache"] == "similar" == streamed.headers["x-seedreplay-cache"]
    assert plain.headers["x-seedreplay-similar-key"] == recorded.key
    assert plain.json()["choices"][0]["message"]["content"] == original.json()["choices"][0]["message"]["content"]
    assert parse_sse(streamed.body)[-1].data == "[DONE]"
    assert upstream_calls(sim) == before  # answered without the upstream
    assert proxy.stats()["hits_by_tier"] == {"similar": 2}
    # An exact hit never reaches the tier; an unknown question passes on to the general model.
    assert proxy.post(CHAT_PATH, body("opening hours?")).headers["x-seedreplay-cache"] == "hit"
    assert proxy.post(CHAT_PATH, body("something else")).headers["x-seedreplay-cache"] == "miss"
    assert tier.asked == ["what are the opening hours"] * 2 + ["something else"]
    proxy.settle()
    assert tier.heard == [proxy.post(CHAT_PATH, body("something else")).headers["x-seedreplay-key"]]


def test_a_tier_that_asks_the_upstream_is_skipped_in_replay(sim, proxy_factory):
    tier = AskingTier()
    proxy = proxy_factory(sim.url, tiers=[tier])
    asked = proxy.post(CHAT_PATH, body("never recorded"))
    assert asked.headers["x-seedreplay-cache"] == "finetune" and asked.headers["x-seedreplay-finetune-model"] == MODEL
    assert tier.calls == 1 and upstream_calls(sim) == 1 and len(proxy.store) == 0  # not stored unless asked
    assert proxy.stats()["upstream_calls"] == 1  # the tier's call is counted with the others
    replayed = proxy.post(CHAT_PATH, body("never recorded"), {"X-Seedreplay-Mode": "replay"})
    assert replayed.status == 404 and tier.calls == 1 and upstream_calls(sim) == 1


def test_a_learned_answer_is_stored_as_an_exact_entry_only_when_the_tier_asks(sim, proxy_factory):
    recorder = proxy_factory(sim.url)
    answer = recorder.post(CHAT_PATH, body("q"))
    assert answer.status == 200, answer.body
    recorded = recorder.store.get(answer.headers["x-seedreplay-key"])
    proxy = proxy_factory(sim.url, tiers=[Canned("reworded q", recorded, store=True)])
    first = proxy.post(CHAT_PATH, body("reworded q"))
    assert first.headers["x-seedreplay-cache"] == "similar"
    proxy.settle()
    (stored,) = list(proxy.store.iter_entries())
    assert stored.key == first.headers["x-seedreplay-key"] and stored.request["params"]["messages"][0]["content"] == "reworded q"
    assert proxy.post(CHAT_PATH, body("reworded q")).headers["x-seedreplay-cache"] == "hit"
    assert (
        dataclasses.replace(stored, key=recorded.key, request=recorded.request, recorded_at=recorded.recorded_at).body
        == recorded.body
    )
