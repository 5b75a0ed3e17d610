"""Learned tiers: what answers a request that no recording matches exactly, before the general model.

The proxy asks its tiers in order — exact, then similar, then fine-tune, then the general model — on an
exact-tier miss. A tier answers with a recorded (or trained) answer and says what it is
(`X-Seedreplay-Cache: similar|finetune` plus headers of its own), or passes, and the request goes on to
the next tier. A tier never stores anything itself: the proxy keeps a learned answer as an exact
entry only when the tier asks it to (`TierAnswer.store`) and the request's policy stores answers.
"""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from pytest_seedreplay.core.entry import Entry
    from pytest_seedreplay.store import Store

    from .incoming import Call


@dataclass(frozen=True)
class Asked:
    """What the upstream said to a request a tier made of it."""

    status: int
    body: Any  # the parsed JSON answer (None when it was not JSON)


class Ask(Protocol):
    """Post a JSON body to the upstream, with the caller's credentials: to the endpoint of the request
    being answered (the fine-tune tier asks the fine-tuned model), or to `endpoint`, another cacheable
    endpoint (the similar tier asks /v1/embeddings for vectors)."""

    def __call__(self, body: dict[str, Any], endpoint: str | None = None) -> Awaitable[Asked]: ...


@dataclass(frozen=True)
class TierAnswer:
    """A learned answer: served in the shape the request asked for."""

    entry: Entry  # the answer (its request may be another, e.g. the recording it came from)
    headers: dict[str, str] = field(default_factory=dict)  # what the tier says about it (key, score, model)
    store: bool = False  # keep it as the exact entry of this request (only where the policy stores)


class Tier(Protocol):
    """One learned tier. `name` is its X-Seedreplay-Cache value and stats counter."""

    name: str
    needs_upstream: bool  # True: the tier asks a model, so never where the upstream may not be called

    async def answer(self, call: Call, store: Store, ask: Ask) -> TierAnswer | None:
        """The answer this tier gives `call`, or None to pass it on."""
        ...

    def heard_stored(self, entry: Entry) -> None:
        """An exact recording was just stored (a tier that indexes recordings adds it)."""
        ...


# A tier may also have `stats() -> dict[str, int]`: its own counters, served under `tiers.<name>` in
# /seedreplay/stats (the fine-tune tier counts its answers that fell through to the general model),
# and `keeps_tenants_apart = True` when it answers a caller only from that caller's own recordings
# (see `check_tenants`).


def check_tenants(tiers: Sequence[Tier], isolate_by_auth: bool) -> None:
    """Under --isolate-by-auth, refuse a tier that could answer one credential with another's
    recordings (a fine-tune learned them all, and answers whoever asks it)."""
    if not isolate_by_auth:
        return
    mixing = [tier.name for tier in tiers if not getattr(tier, "keeps_tenants_apart", False)]
    if mixing:
        raise ValueError(
            f"the {' and '.join(mixing)} tier cannot keep API keys apart (--isolate-by-auth): it could answer "
            "one key with what another key recorded. Run one proxy per team or key, each with its own fine-tune."
        )
