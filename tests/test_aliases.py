"""Model aliases: one table for the simulator's catalogue and the fine-tune tier."""

from __future__ import annotations

import openai

from pytest_seedreplay.core.aliases import ALIASES, names_of, same_model, snapshot_of
from pytest_seedreplay.proxy.sim import catalog


def test_an_alias_and_its_snapshot_are_one_model() -> None:
    assert snapshot_of("gpt-4o-mini") == "gpt-4o-mini-2024-07-18"
    assert names_of("gpt-4o-mini-2024-07-18") == ("gpt-4o-mini-2024-07-18", "gpt-4o-mini")
    assert names_of("gpt-4o-mini") == names_of("gpt-4o-mini-2024-07-18")
    assert same_model("gpt-4o-mini", "gpt-4o-mini-2024-07-18") and not same_model("gpt-4o-mini", "gpt-4o")
    assert names_of("ft:gpt-4o-mini-2024-07-18:org::abc") == ("ft:gpt-4o-mini-2024-07-18:org::abc",)


def test_the_simulator_serves_each_of_its_aliases_under_its_snapshot_too(sim) -> None:
    client = openai.OpenAI(base_url=sim.url, api_key="k", max_retries=0)
    served = {m.id for m in client.models.list()}
    for alias in catalog.CHAT_MODELS:
        if alias in ALIASES:
            assert ALIASES[alias] in served, alias
    answer = client.chat.completions.create(model="gpt-4.1-2025-04-14", messages=[{"role": "user", "content": "hi"}], seed=1)
    assert answer.model == "gpt-4.1-2025-04-14"
