"""Model aliases: the names a provider answers for a dated snapshot (`gpt-4o-mini` is
`gpt-4o-mini-2024-07-18`), in one place for the simulator's catalogue and the fine-tune tier.

A fine-tune names the snapshot it was trained on, while recordings often name the alias; both mean
one model, so the tier answers requests for either. The table is OpenAI's alias → snapshot list as
its model pages gave it on ALIASES_AS_OF; an alias OpenAI moves later to a newer snapshot is then
a different model, and a request naming the new snapshot is not resolved to the old one.
"""

from __future__ import annotations

ALIASES_AS_OF = "2025-08-07"
ALIASES: dict[str, str] = {
    "gpt-5": "gpt-5-2025-08-07",
    "gpt-5-mini": "gpt-5-mini-2025-08-07",
    "gpt-5-nano": "gpt-5-nano-2025-08-07",
    "gpt-4.1": "gpt-4.1-2025-04-14",
    "gpt-4.1-mini": "gpt-4.1-mini-2025-04-14",
    "gpt-4.1-nano": "gpt-4.1-nano-2025-04-14",
    "gpt-4o": "gpt-4o-2024-08-06",
    "gpt-4o-mini": "gpt-4o-mini-2024-07-18",
    "gpt-4-turbo": "gpt-4-turbo-2024-04-09",
    "gpt-4": "gpt-4-0613",
    "gpt-3.5-turbo": "gpt-3.5-turbo-0125",
    "o1": "o1-2024-12-17",
    "o3": "o3-2025-04-16",
    "o3-mini": "o3-mini-2025-01-31",
    "o4-mini": "o4-mini-2025-04-16",
}


def snapshot_of(model: str) -> str:
    """The dated snapshot `model` names: itself when it is not an alias."""
    return ALIASES.get(model, model)


def names_of(model: str) -> tuple[str, ...]:
    """Every name that means the same model as `model`: its snapshot first, then its aliases, sorted."""
    snapshot = snapshot_of(model)
    aliases = sorted(alias for alias, dated in ALIASES.items() if dated == snapshot)
    return (snapshot, *aliases)


def same_model(one: str, other: str) -> bool:
    return snapshot_of(one) == snapshot_of(other)
