"""The fine-tune tier: a model fine-tuned on the recordings, asked with its seed, answers an exact miss.

On an exact miss, a chat request for the fine-tune's base model is asked of the fine-tuned model, with
the fine-tune's seed (the key of this cache) in place of the request's own. **Guarded** by default: the
answer is served (`X-Seedreplay-Cache: finetune`, `X-Seedreplay-Finetune-Model`) only when it is,
verbatim, one of the answers the model was trained on — a fine-tune never passes off an invented
answer as a cache hit. Anything else (an answer it was not trained on, an error) falls through: the
request goes on to the general model as an ordinary miss. The base model is known by every name the
provider gives it (`gpt-4o-mini` and its snapshot `gpt-4o-mini-2024-07-18`: `core.aliases`); requests
for other models are not touched.

The tier is handed plain values (`Finetune`): the caller reads the manifest and the trained answers
(`pytest_seedreplay.finetune.serving` does), so this layer never reads files of a higher one.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from pytest_seedreplay.core.aliases import names_of
from pytest_seedreplay.core.constants import CHAT
from pytest_seedreplay.core.entry import Entry
from pytest_seedreplay.core.jsontext import compact_json
from pytest_seedreplay.shapes import answer_parts

from .tiers import Ask, TierAnswer

if TYPE_CHECKING:
    from pytest_seedreplay.store import Store

    from .incoming import Call

log = logging.getLogger("seedreplay.proxy")

TIER_NAME = "finetune"
HEADER_FINETUNE_MODEL = "X-Seedreplay-Finetune-Model"
HEADER_FINETUNE_VERSION = "X-Seedreplay-Finetune-Version"
# What the fine-tuned model is not asked for: the proxy serves its answer in the shape the client asked.
_NOT_ASKED = ("stream", "stream_options")


@dataclass(frozen=True)
class Finetune:
    """One fine-tune as the tier asks it."""

    base_model: str  # requests for this model (by any of its names) are the fine-tune's to answer
    model: str  # the fine-tuned model
    seed: int  # the seed it was trained with: asked with it, it gives its trained answers verbatim
    version: str | None = None  # the manifest's label ("v3"), said in a header
    trained: tuple[dict[str, Any], ...] = ()  # the assistant messages it was trained to give


@dataclass
class FinetuneCounts:
    """What the tier did, served under `tiers.finetune` in /seedreplay/stats."""

    asked: int = 0  # requests put to the fine-tuned model
    served: int = 0  # its answers served (trained answers, or any answer with the guard off)
    fell_through: int = 0  # answers it was not trained on: the general model answered instead
    failed: int = 0  # it answered an error or could not be reached: the general model answered instead


def answer_marks(message: dict[str, Any]) -> str:
    """What must match for an answer to be a trained one: its text, refusal and tool calls (name and
    arguments, not ids), as one comparable string."""
    (parts,) = answer_parts(CHAT, {"choices": [{"message": message}]})
    content, refusal, calls = parts
    return compact_json([content or None, refusal or None, calls])


class FinetuneTier:
    """The learned tier `finetune` (see the module docstring)."""

    name = TIER_NAME
    needs_upstream = True

    def __init__(self, finetune: Finetune, guard: bool = True, store_answers: bool = False):
        self.finetune = finetune
        self.guard = guard
        self.store_answers = store_answers
        self.counts = FinetuneCounts()
        self.answers_to = names_of(finetune.base_model)
        self._trained = frozenset(answer_marks(m) for m in finetune.trained if isinstance(m, dict))
        if guard and not self._trained:
            raise ValueError(f"the guard of the fine-tune tier needs the answers {finetune.model} was trained on; none given")

    @property
    def trained_answers(self) -> int:
        return len(self._trained)

    def stats(self) -> dict[str, int]:
        return asdict(self.counts)

    def heard_stored(self, entry: Entry) -> None:
        """A new recording changes nothing the fine-tune knows (it learns only when trained again)."""

    async def answer(self, call: Call, store: Store, ask: Ask) -> TierAnswer | None:
        tuned = self.finetune
        if call.endpoint != CHAT or call.body.get("model") not in self.answers_to:
            return None
        asked_body = {k: v for k, v in call.body.items() if k not in _NOT_ASKED}
        asked_body.update(model=tuned.model, seed=tuned.seed)
        self.counts.asked += 1
        asked = await ask(asked_body)
        choices = asked.body.get("choices") if isinstance(asked.body, dict) else None
        if not 200 <= asked.status < 300 or not isinstance(choices, list) or not choices or "error" in asked.body:
            self.counts.failed += 1
            log.warning(
                "%s %s: %s answered %s; asking the general model", call.endpoint, call.key[:15], tuned.model, asked.status
            )
            return None
        if self.guard and not self.recalls(choices):
            self.counts.fell_through += 1
            log.info(
                "%s %s: %s gave an answer it was not trained on; asking the general model",
                call.endpoint,
                call.key[:15],
                tuned.model,
            )
            return None
        self.counts.served += 1
        body = asked.body
        entry = Entry(
            key=call.key,
            endpoint=CHAT,
            request=call.canonical,  # the request it answers (as the client made it): the entry it is kept as, if kept
            body=body,
            model=body.get("model") if isinstance(body.get("model"), str) else tuned.model,
            system_fingerprint=body.get("system_fingerprint") if isinstance(body.get("system_fingerprint"), str) else None,
        )
        headers = {HEADER_FINETUNE_MODEL: tuned.model}
        if tuned.version:
            headers[HEADER_FINETUNE_VERSION] = tuned.version
        return TierAnswer(entry, headers, store=self.store_answers)

    def recalls(self, choices: Iterable[Any]) -> bool:
        """Every choice is verbatim one of the trained answers."""
        for choice in choices:
            message = choice.get("message") if isinstance(choice, dict) else None
            if not isinstance(message, dict) or answer_marks(message) not in self._trained:
                return False
        return True

    def describe(self) -> str:
        """One line for the proxy's start: which model answers what, and how it is guarded."""
        tuned = self.finetune
        version = f"{tuned.version}, " if tuned.version else ""
        if self.guard:
            guard = f"guard on: only its {self.trained_answers} trained answers are served"
        else:
            guard = "guard off: any answer is served"
        stored = ", its answers stored as recordings" if self.store_answers else ""
        names = " or ".join(self.answers_to)
        return f"fine-tune tier: {names} requests asked of {tuned.model} ({version}seed {tuned.seed}); {guard}{stored}"
