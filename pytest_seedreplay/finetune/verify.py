"""Does the fine-tune recall its cache? Ask it every trained prompt and compare with the trained answer.

Three conditions: with the version's seed (the cache promise: the trained answer, verbatim), without
a seed (how much of it is the seed's doing), and paraphrased with the seed (other words for the
same question). Per example and per condition: verbatim or not, and a similarity score. Any model
can be asked the same set (`--model`): how much of the recorded behaviour another model keeps.
Asks run concurrently under a bound; a 429 waits as long as its retry-after says, then asks again.
"""

from __future__ import annotations

import asyncio
import email.utils
import random
import time
from collections.abc import Awaitable, Callable, Set
from dataclasses import asdict, dataclass, field
from typing import Any

import openai

from ..core.constants import CHAT
from ..drift import judge, text_similarity
from ..shapes import answer_parts, answer_text
from .export import paraphrase, prompt_text
from .validate import content_text

SEED, NO_SEED, PARAPHRASE = "seed", "no_seed", "paraphrase"
CONDITIONS = (SEED, NO_SEED, PARAPHRASE)
LABELS = {SEED: "with seed", NO_SEED: "without seed", PARAPHRASE: "paraphrased, with seed"}
VERIFY_PARAPHRASE_SEED = 1  # not export's seed: wordings the model was not trained on
MAX_WAIT = 120.0  # seconds: the longest retry-after honoured, as the openai SDK caps it
RETRIED = (openai.RateLimitError, openai.InternalServerError, openai.APIConnectionError)
REPORT_VERSION = 1


class VerifyError(RuntimeError):
    """The run cannot go on (the model does not exist, the key is refused); the message says why."""


@dataclass
class Ask:
    example: int  # 1-based, in the dataset's order
    condition: str
    prompt: str  # the user turn asked
    messages: list[dict[str, Any]]
    tools: Any = None


@dataclass
class Answer:
    example: int
    condition: str
    prompt: str
    text: str
    verbatim: bool
    similarity: float
    error: str | None = None
    retries: int = 0
    verdict: str = "verbatim"  # or reworded (the same behaviour, other words: the seed's contextual answer) or changed (a miss)


@dataclass
class Trained:
    """One trained example: what it asks and the answer it teaches."""

    index: int
    prompt: str
    messages: list[dict[str, Any]]
    answer: dict[str, Any]
    tools: Any = None

    @property
    def answer_text(self) -> str:
        return answer_text(CHAT, {"choices": [{"message": self.answer}]})


@dataclass
class Summary:
    asked: int = 0
    verbatim: int = 0
    errors: int = 0
    similarity: float = 0.0
    reworded: int = 0
    changed: int = 0

    @property
    def recall(self) -> float:
        answered = self.asked - self.errors
        return self.verbatim / answered if answered else 0.0


@dataclass
class Report:
    model: str
    base_url: str
    seed: int | None
    version: str | None
    dataset: str
    examples: list[Trained]
    answers: list[Answer]
    elapsed: float
    concurrency: int
    rate_limited: int = 0
    created: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))

    def summary(self, condition: str) -> Summary:
        chosen = [a for a in self.answers if a.condition == condition]
        answered = [a for a in chosen if a.error is None]
        mean = sum(a.similarity for a in answered) / len(answered) if answered else 0.0
        return Summary(
            asked=len(chosen),
            verbatim=sum(a.verbatim for a in answered),
            errors=len(chosen) - len(answered),
            similarity=round(mean, 4),
            reworded=sum(a.verdict == "reworded" for a in answered),
            changed=sum(a.verdict == "changed" for a in answered),
        )

    def conditions(self) -> list[str]:
        return [c for c in CONDITIONS if any(a.condition == c for a in self.answers)]

    def answers_of(self, index: int, condition: str) -> list[Answer]:
        return [a for a in self.answers if a.example == index and a.condition == condition]

    def to_dict(self) -> dict[str, Any]:
        return {
            "seedreplay_verify": REPORT_VERSION,
            "created": self.created,
            "model": self.model,
            "base_url": self.base_url,
            "seed": self.seed,
            "version": self.version,
            "dataset": self.dataset,
            "elapsed_s": round(self.elapsed, 3),
            "concurrency": self.concurrency,
            "rate_limited": self.rate_limited,
            "conditions": {
                c: {**asdict(s), "recall": round(s.recall, 4), "label": LABELS[c]}
                for c in self.conditions()
                for s in [self.summary(c)]
            },
            "examples": [
                {
                    "example": t.index,
                    "prompt": t.prompt,
                    "trained": t.answer_text,
                    "answers": {c: [asdict(a) for a in self.answers_of(t.index, c)] for c in self.conditions()},
                }
                for t in self.examples
            ],
        }


# --- what to ask ----------------------------------------------------------------------------------


def trained_examples(examples: list[Any], generated_lines: Set[int] = frozenset()) -> list[Trained]:
    """The examples that teach a recorded answer (export's paraphrase variants left out: the
    paraphrase condition asks fresh ones)."""
    out = []
    for number, example in enumerate(examples, start=1):
        if number in generated_lines or not isinstance(example, dict):
            continue
        messages = example.get("messages")
        if not isinstance(messages, list) or len(messages) < 2 or not isinstance(messages[-1], dict):
            continue
        if messages[-1].get("role") != "assistant":
            continue
        asked = [{k: v for k, v in m.items() if k != "weight"} for m in messages[:-1] if isinstance(m, dict)]
        answer = {k: v for k, v in messages[-1].items() if k in ("content", "tool_calls", "refusal")}
        out.append(Trained(index=number, prompt=prompt_text(example), messages=asked, answer=answer, tools=example.get("tools")))
    return out


def with_user_turn(messages: list[dict[str, Any]], text: str) -> list[dict[str, Any]]:
    """The conversation with its last user turn asked in other words."""
    last = max((i for i, m in enumerate(messages) if m.get("role") == "user"), default=None)
    if last is None:
        return messages
    return [*messages[:last], {**messages[last], "content": text}, *messages[last + 1 :]]


def plan(
    examples: list[Trained],
    conditions: tuple[str, ...] = CONDITIONS,
    paraphrase_count: int = 2,
    given: dict[str, list[str]] | None = None,
) -> list[Ask]:
    """Every ask of a run. Paraphrases come from `given` (trained prompt -> wordings) when there
    is such a file, else they are generated offline."""
    asks = []
    for t in examples:
        if SEED in conditions:
            asks.append(Ask(t.index, SEED, t.prompt, t.messages, t.tools))
        if NO_SEED in conditions:
            asks.append(Ask(t.index, NO_SEED, t.prompt, t.messages, t.tools))
        if PARAPHRASE in conditions:
            if given is not None:
                wordings = given.get(t.prompt, [])
            elif paraphrase_count > 0 and t.prompt:
                wordings = paraphrase(t.prompt, paraphrase_count, VERIFY_PARAPHRASE_SEED)
            else:
                wordings = []
            for text in dict.fromkeys(w for w in wordings if w.strip() and w != t.prompt):
                asks.append(Ask(t.index, PARAPHRASE, text, with_user_turn(t.messages, text), t.tools))
    return asks


# --- asking ---------------------------------------------------------------------------------------


def retry_after(exc: openai.APIError) -> float | None:
    """Seconds the provider asked us to wait (`retry-after-ms`, `retry-after` in seconds or as a date)."""
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None) or {}
    try:
        if headers.get("retry-after-ms"):
            return float(headers["retry-after-ms"]) / 1000
        value = headers.get("retry-after")
        if not value:
            return None
        try:
            return float(value)
        except ValueError:
            when = email.utils.parsedate_to_datetime(value)
            return max(0.0, when.timestamp() - time.time())
    except (TypeError, ValueError):
        return None


class Asker:
    """Asks one model the planned prompts, at most `concurrency` at a time."""

    def __init__(
        self,
        client: openai.AsyncOpenAI,
        model: str,
        seed: int | None,
        concurrency: int = 8,
        retries: int = 6,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ):
        self.client = client
        self.model = model
        self.seed = seed
        self.retries = retries
        self.sleep = sleep
        self.bound = asyncio.Semaphore(concurrency)
        self.rate_limited = 0

    async def ask_all(self, asks: list[Ask], trained: dict[int, Trained]) -> list[Answer]:
        return list(await asyncio.gather(*(self.ask(a, trained[a.example]) for a in asks)))

    async def ask(self, ask: Ask, trained: Trained) -> Answer:
        params: dict[str, Any] = {"model": self.model, "messages": ask.messages}
        if ask.condition != NO_SEED and self.seed is not None:
            params["seed"] = self.seed
        if ask.tools:
            params["tools"] = ask.tools
        async with self.bound:
            for attempt in range(self.retries + 1):
                try:
                    body = (await self.client.chat.completions.create(**params)).model_dump(exclude_unset=True)
                    return judged(ask, trained, body, attempt)
                except RETRIED as exc:
                    if attempt == self.retries:
                        return failed(ask, f"{type(exc).__name__} after {attempt + 1} tries: {exc}", attempt)
                    wait = retry_after(exc) if isinstance(exc, openai.RateLimitError) else None
                    if isinstance(exc, openai.RateLimitError):
                        self.rate_limited += 1
                    await self.sleep(min(MAX_WAIT, wait if wait is not None else backoff(attempt)))
                except (openai.NotFoundError, openai.AuthenticationError, openai.PermissionDeniedError) as exc:
                    raise VerifyError(f"{self.model}: {status_words(exc)}") from None
                except openai.APIStatusError as exc:
                    return failed(ask, status_words(exc), attempt)
        raise AssertionError("unreachable: the loop returns on its last attempt")


def backoff(attempt: int) -> float:
    return min(8.0, 0.5 * 2**attempt) * (0.75 + random.random() / 2)


def status_words(exc: openai.APIStatusError) -> str:
    body = exc.body if isinstance(exc.body, dict) else {}
    inner = body.get("error") if isinstance(body.get("error"), dict) else body
    message = inner.get("message") if isinstance(inner, dict) else None
    return f"HTTP {exc.status_code}: {message or exc.message}"


def judged(ask: Ask, trained: Trained, body: dict[str, Any], retries: int) -> Answer:
    expected = {"choices": [{"message": trained.answer}]}
    choices = body.get("choices") or [{}]
    got = {"choices": [{"message": choices[0].get("message") or {}}]}
    verbatim = normalized_parts(expected) == normalized_parts(got)
    text = answer_text(CHAT, got)
    similarity = 1.0 if verbatim else text_similarity(trained.answer_text, text)
    verdict = "verbatim" if verbatim else judge(CHAT, expected, got, similarity)[0]
    return Answer(ask.example, ask.condition, ask.prompt, text, verbatim, similarity, retries=retries, verdict=verdict)


def normalized_parts(body: dict[str, Any]) -> list[Any]:
    """What must match verbatim: the text and each tool call's name and arguments (not its id)."""
    parts = answer_parts(CHAT, body)
    return [[p[0] or None, p[1] or None, p[2]] for p in parts]


def failed(ask: Ask, error: str, retries: int) -> Answer:
    return Answer(ask.example, ask.condition, ask.prompt, "", False, 0.0, error=error, retries=retries, verdict="changed")


async def run(
    client: openai.AsyncOpenAI,
    model: str,
    seed: int | None,
    examples: list[Trained],
    asks: list[Ask],
    concurrency: int = 8,
    **labels: Any,
) -> Report:
    """Ask everything, judge every answer, and gather the report."""
    asker = Asker(client, model, seed, concurrency)
    started = time.monotonic()
    answers = await asker.ask_all(asks, {t.index: t for t in examples})
    return Report(
        model=model,
        seed=seed,
        examples=examples,
        answers=answers,
        elapsed=time.monotonic() - started,
        concurrency=concurrency,
        rate_limited=asker.rate_limited,
        **labels,
    )


def first_words(text: str, width: int = 48) -> str:
    text = " ".join(content_text(text).split())
    return text if len(text) <= width else text[: width - 1].rstrip() + "…"
