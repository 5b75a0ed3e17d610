"""The base models the simulator serves, and their fingerprints. Each alias it serves answers under
its dated snapshot's name too, as upstream: the table is `core.aliases`, shared with the fine-tune tier."""

from __future__ import annotations

import hashlib

from pytest_seedreplay.core.aliases import ALIASES

CREATED = 1_700_000_000  # a fixed "created" for base models, so /v1/models is stable

_CHAT_NAMED = (
    "gpt-4o-mini",
    "gpt-4o-mini-2024-07-18",
    "gpt-4o",
    "gpt-4o-2024-08-06",
    "gpt-4.1",
    "gpt-4.1-mini",
    "gpt-4.1-nano",
    "gpt-4.1-mini-2025-04-14",
    "gpt-4.1-nano-2025-04-14",
    "gpt-5",
    "gpt-5-mini",
    "gpt-5-nano",
    "gpt-3.5-turbo",
    "gpt-3.5-turbo-0125",
    "o4-mini",
)
# The named models, then the snapshot of each alias among them that is not named already.
CHAT_MODELS = _CHAT_NAMED + tuple(
    dict.fromkeys(ALIASES[m] for m in _CHAT_NAMED if m in ALIASES and ALIASES[m] not in _CHAT_NAMED)
)
COMPLETION_MODELS = ("gpt-3.5-turbo-instruct", "davinci-002", "babbage-002")
EMBEDDING_MODELS = {
    "text-embedding-3-small": 1536,
    "text-embedding-3-large": 3072,
    "text-embedding-ada-002": 1536,
}
# Models that accept `dimensions` (ada-002 does not, as upstream).
SHORTENABLE_EMBEDDINGS = frozenset({"text-embedding-3-small", "text-embedding-3-large"})
FINE_TUNABLE = frozenset(
    {
        "gpt-4o-mini",
        "gpt-4o-mini-2024-07-18",
        "gpt-4o-2024-08-06",
        "gpt-4.1-2025-04-14",
        "gpt-4.1-mini",
        "gpt-4.1-mini-2025-04-14",
        "gpt-4.1-nano",
        "gpt-4.1-nano-2025-04-14",
        "gpt-3.5-turbo",
        "gpt-3.5-turbo-0125",
    }
)
ALL_BASE_MODELS = CHAT_MODELS + COMPLETION_MODELS + tuple(EMBEDDING_MODELS)


def fingerprint(model: str, drift: str = "") -> str:
    """`system_fingerprint` of a model: stable per model, changed by the drift salt."""
    digest = hashlib.sha256(f"{model}\0{drift}".encode()).hexdigest()
    return f"fp_{digest[:10]}"


def model_object(model_id: str, owned_by: str = "system", created: int = CREATED) -> dict:
    return {"id": model_id, "object": "model", "created": created, "owned_by": owned_by}
