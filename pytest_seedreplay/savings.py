"""What a replayed answer saved: the tokens its recording used (from the recorded `usage`) and,
with prices, the dollars. Prices come from pydantic's maintained `genai-prices` package (its data
ships in the package; seedreplay never lets it update from the network), `--prices FILE` (or
$SEEDREPLAY_PRICES) overrides the models it names, and a dated table of our own is the fallback only
where genai-prices is not installed (Python 3.10, which it does not support).

Prices are the standard tier, input at the uncached rate: a replay saves what the call would have
cost at list price. A model no price names saves tokens, no dollars.
"""

from __future__ import annotations

import functools
import json
import math
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from importlib import metadata
from typing import Any, TypeGuard

from .core.constants import ENV_PRICES, MESSAGES
from .core.entry import Entry

# The fallback: dollars per million tokens, (input, output), as OpenAI listed them on PRICES_AS_OF. A
# dated model name that is priced apart (gpt-4o-2024-05-13) has its own line; other snapshots take
# their base model's price by the longest name that starts theirs.
PRICES_AS_OF = "2025-08-07"
DEFAULT_PRICES: dict[str, tuple[float, float]] = {
    "gpt-5": (1.25, 10.00),
    "gpt-5-mini": (0.25, 2.00),
    "gpt-5-nano": (0.05, 0.40),
    "gpt-4.1": (2.00, 8.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1-nano": (0.10, 0.40),
    "gpt-4.5-preview": (75.00, 150.00),
    "gpt-4o": (2.50, 10.00),
    "gpt-4o-2024-05-13": (5.00, 15.00),
    "chatgpt-4o-latest": (5.00, 15.00),
    "gpt-4o-mini": (0.15, 0.60),
    "o1": (15.00, 60.00),
    "o1-pro": (150.00, 600.00),
    "o1-mini": (1.10, 4.40),
    "o3": (2.00, 8.00),
    "o3-pro": (20.00, 80.00),
    "o3-mini": (1.10, 4.40),
    "o4-mini": (1.10, 4.40),
    "gpt-4-turbo": (10.00, 30.00),
    "gpt-4": (30.00, 60.00),
    "gpt-3.5-turbo": (0.50, 1.50),
    "gpt-3.5-turbo-instruct": (1.50, 2.00),
    "davinci-002": (2.00, 2.00),
    "babbage-002": (0.40, 0.40),
    "text-embedding-3-small": (0.02, 0.0),
    "text-embedding-3-large": (0.13, 0.0),
    "text-embedding-ada-002": (0.10, 0.0),
}
PER_TOKENS = 1_000_000
LIBRARY = "genai-prices"


class PricesError(ValueError):
    """A --prices file that cannot be read; the message names the file and what to fix."""


def library_version() -> str | None:
    """The installed genai-prices version, or None (then the fallback table prices)."""
    try:
        return metadata.version(LIBRARY)
    except metadata.PackageNotFoundError:
        return None


@functools.lru_cache(maxsize=1)
def _snapshot() -> Any:
    """genai-prices' data as shipped in the package, on its own: never the snapshot its updater
    (UpdatePrices, which fetches from the network) may have set for the process."""
    from genai_prices.data import providers
    from genai_prices.data_snapshot import DataSnapshot

    return DataSnapshot(providers=providers, from_auto_update=False)


@functools.lru_cache(maxsize=256)
def library_price(model: str) -> tuple[float, float] | None:
    """Dollars per million (input, output) tokens genai-prices lists for `model` (an OpenAI model), or
    None when it does not know it. Read once per model at a thousand tokens (a price tiered by length
    is taken at its first tier): a hit is then priced by a multiplication, not a lookup of 250 µs."""
    from genai_prices import Usage

    def dollars_for(input_tokens: int, output_tokens: int) -> float:
        usage = Usage(input_tokens=input_tokens, output_tokens=output_tokens)
        return float(_snapshot().calc(usage, model, "openai", None, None).total_price)

    try:
        return dollars_for(_SAMPLE, 0) * PER_TOKENS / _SAMPLE, dollars_for(0, _SAMPLE) * PER_TOKENS / _SAMPLE
    except LookupError:
        return None


_SAMPLE = 1000  # tokens a price is read at


@dataclass(frozen=True)
class PriceTable:
    """Our own prices (a --prices file's, or the fallback table) by model name, the day they were
    true, and whether genai-prices prices the models they do not name."""

    models: Mapping[str, tuple[float, float]] = field(repr=False)
    as_of: str
    source: str = "built-in"
    library: str | None = None  # "genai-prices 0.2.5" when it prices what `models` does not name

    def own_price(self, model: str | None) -> tuple[float, float] | None:
        """`model`'s line in our own prices: its own, else the longest listed name followed by `-` in it."""
        if not model:
            return None
        if model in self.models:
            return self.models[model]
        best = max((name for name in self.models if model.startswith(name + "-")), key=len, default=None)
        return self.models[best] if best is not None else None

    def price(self, model: str | None) -> tuple[float, float] | None:
        """Dollars per million (input, output) tokens of `model`, or None when no price names it."""
        own = self.own_price(model)
        if own is not None or not model or not self.library:
            return own
        return library_price(model)

    def cost(self, model: str | None, input_tokens: int, output_tokens: int) -> float | None:
        """Dollars of these tokens for `model`, or None when no price names it."""
        price = self.price(model)
        return None if price is None else (input_tokens * price[0] + output_tokens * price[1]) / PER_TOKENS

    def warm(self) -> None:
        """Load genai-prices' data now (half a second), not on the first hit."""
        if self.library:
            library_price("gpt-4o-mini")

    def describe(self) -> str:
        """Which prices: `genai-prices 0.2.5`, `prices of 2025-09-01 from FILE, else genai-prices 0.2.5`..."""
        if self.source == "built-in":
            return self.library or f"prices of {self.as_of} (built in)"
        own = f"prices of {self.as_of} from {self.source}"
        return f"{own}, else {self.library}" if self.library else own


def _default_table() -> PriceTable:
    version = library_version()
    if version is None:
        return PriceTable(DEFAULT_PRICES, PRICES_AS_OF)
    return PriceTable({}, PRICES_AS_OF, library=f"{LIBRARY} {version}")


DEFAULT_TABLE = _default_table()


def load_prices(path: str | os.PathLike[str]) -> PriceTable:
    """The default prices with the models of a JSON file over them:
    `{"as_of": "2025-09-01", "models": {"gpt-4o-mini": {"input": 0.15, "output": 0.60}}}` (dollars per
    million tokens)."""
    shown = os.fspath(path)
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except OSError as exc:
        raise PricesError(f"cannot read the prices file {shown}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise PricesError(f"the prices file {shown} is not JSON ({exc})") from None
    models = data.get("models") if isinstance(data, dict) else None
    if not isinstance(models, dict):
        raise PricesError(
            f'the prices file {shown} needs a "models" object, e.g. '
            '{"as_of": "2025-09-01", "models": {"gpt-4o-mini": {"input": 0.15, "output": 0.60}}} (dollars per million tokens)'
        )
    table = dict(DEFAULT_TABLE.models)
    for name, price in models.items():
        table[str(name)] = _price(shown, name, price)
    as_of = data.get("as_of")
    return PriceTable(table, str(as_of) if as_of else "unknown date", source=shown, library=DEFAULT_TABLE.library)


def _dollars(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0


def _price(shown: str, name: Any, price: Any) -> tuple[float, float]:
    if isinstance(price, dict):
        given, made = price.get("input"), price.get("output", 0.0)
        if _dollars(given) and _dollars(made):
            return float(given), float(made)
    raise PricesError(
        f'the prices file {shown}: model {name!r} needs {{"input": DOLLARS, "output": DOLLARS}} per million tokens '
        f"(numbers, 0 or more), got {json.dumps(price)[:80]}"
    )


def prices_from(path: str | None = None) -> PriceTable:
    """The table `--prices FILE` names, else $SEEDREPLAY_PRICES, else the built-in one."""
    chosen = path or os.environ.get(ENV_PRICES)
    return _loaded(chosen) if chosen else DEFAULT_TABLE


@functools.lru_cache(maxsize=8)
def _loaded(path: str) -> PriceTable:
    return load_prices(path)


# --- what one answer used ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Saving:
    """What one replayed answer saved."""

    input_tokens: int
    output_tokens: int
    cost: float | None  # dollars; None when the table has no price for the model

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens


def usage_of(entry: Entry) -> tuple[int, int] | None:
    """(input, output) tokens the recorded answer says it used, or None when it says nothing."""
    if entry.events is None:
        return _tokens(entry.body)
    if entry.endpoint == MESSAGES:
        return _tokens({"usage": _streamed_messages_usage(entry.events)})
    for event in reversed(entry.events):  # chat/completions end with a usage chunk, responses with response.completed
        if '"usage"' not in event.data:
            continue
        try:
            data = json.loads(event.data)
        except ValueError:
            continue
        found = _tokens(data) or _tokens(data.get("response") if isinstance(data, dict) else None)
        if found is not None:
            return found
    return None


def _streamed_messages_usage(events: list[Any]) -> dict[str, Any]:
    """An Anthropic stream's usage: message_start's, updated by each message_delta's (output tokens
    are counted there, cumulatively)."""
    usage: dict[str, Any] = {}
    for event in events:
        if '"usage"' not in event.data:
            continue
        try:
            data = json.loads(event.data)
        except ValueError:
            continue
        if not isinstance(data, dict):
            continue
        holder = data.get("message") if data.get("type") == "message_start" else data
        found = holder.get("usage") if isinstance(holder, dict) else None
        if isinstance(found, dict):
            usage.update(found)
    return usage


# Anthropic's input_tokens leave out the prompt read from or written to its cache: tokens sent all the same.
_ANTHROPIC_CACHE_TOKENS = ("cache_creation_input_tokens", "cache_read_input_tokens")


def _tokens(body: Any) -> tuple[int, int] | None:
    usage = body.get("usage") if isinstance(body, dict) else None
    if not isinstance(usage, dict):
        return None
    # chat, completions and embeddings say prompt/completion; the Responses and Messages APIs say input/output.
    given = usage.get("prompt_tokens", usage.get("input_tokens"))
    if isinstance(given, int) and "prompt_tokens" not in usage:
        given += sum(n for n in (usage.get(k) for k in _ANTHROPIC_CACHE_TOKENS) if isinstance(n, int))
    made = usage.get("completion_tokens", usage.get("output_tokens", 0))
    if not isinstance(given, int) or not isinstance(made, int):
        return None
    return given, made


def saving_of(entry: Entry, prices: PriceTable = DEFAULT_TABLE) -> Saving | None:
    """What serving `entry` instead of calling the upstream saved; None when it recorded no usage."""
    used = usage_of(entry)
    if used is None:
        return None
    requested = entry.request.get("params", {}).get("model") if isinstance(entry.request, dict) else None
    cost = prices.cost(entry.model, *used)
    if cost is None:
        cost = prices.cost(requested if isinstance(requested, str) else None, *used)
    return Saving(used[0], used[1], cost)


@dataclass
class SavingsTally:
    """Savings added up: answers served from recordings, their tokens and dollars."""

    hits: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float = 0.0
    unpriced_hits: int = 0  # hits whose model the price table does not name (tokens counted, no dollars)

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def add(self, saving: Saving | None) -> None:
        if saving is None:
            return
        self.hits += 1
        self.input_tokens += saving.input_tokens
        self.output_tokens += saving.output_tokens
        if saving.cost is None:
            self.unpriced_hits += 1
        else:
            self.cost += saving.cost

    def merge(self, other: Mapping[str, Any]) -> None:
        """Add a tally sent as `to_dict()` (from an xdist worker, or read from a store)."""
        self.hits += int(other.get("hits", 0))
        self.input_tokens += int(other.get("input_tokens", 0))
        self.output_tokens += int(other.get("output_tokens", 0))
        self.cost += float(other.get("cost", 0.0))
        self.unpriced_hits += int(other.get("unpriced_hits", 0))

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["cost"] = round(self.cost, 6)
        data["tokens"] = self.tokens
        return data

    def line(self, prices: PriceTable) -> str:
        """`12,345 tokens (~$0.42 at genai-prices 0.2.5) in 321 answers from recordings`."""
        money = (
            f" ({dollars(self.cost)} at {prices.describe()}"
            + (f"; {self.unpriced_hits} answer(s) of unpriced models" if self.unpriced_hits else "")
            + ")"
        )
        return f"{self.tokens:,} tokens{money} in {self.hits} answer(s) from recordings"


def dollars(cost: float) -> str:
    """A sum as a person reads it: `~$0.42`, and a small one to two significant digits (`~$0.00043`,
    `~$0.000022`), never `~$0.00`; below a millionth of a dollar, `< $0.000001`."""
    if cost == 0:
        return "$0"
    if cost >= 0.01:
        return f"~${cost:,.2f}"
    if cost < 0.000001:
        return "< $0.000001"
    places = 1 - math.floor(math.log10(cost))  # two significant digits
    return f"~${cost:.{places}f}"


def cost_header(cost: float) -> str:
    """Dollars as the X-Seedreplay-Cost-Saved header says them: plain decimal, no exponent."""
    return f"{cost:.8f}".rstrip("0").rstrip(".") or "0"
