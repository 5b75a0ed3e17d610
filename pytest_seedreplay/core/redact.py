"""Secrets never touch disk: the one decision whether a recording holds a credential, and where.

Every write of a recording (the disk and Redis stores, cassettes) passes `refuse_secrets`; the proxy
calls it too, before a plain answer leaves, to say a refusal in the answer. Each part of an entry is
searched once: an entry found clean remembers it, so the store's own check passes it at once. What
counts as a credential is the catalogue of detect-secrets (Yelp's maintained secret scanner: AWS,
GitHub, GitLab, Slack, Stripe, OpenAI, JWT, private keys ...) plus the shapes it lacks that OpenAI
clients carry (see `_OWN_SHAPES`).
A refusal names where the string was and which shape it had, never the string itself.
"""

from __future__ import annotations

import functools
import json
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, cast

from .constants import KEPT_RESPONSE_HEADERS
from .entry import Entry, SSEEvent


class SecretRefused(ValueError):
    """A write carried a credential-shaped string; nothing was written."""

    def __init__(self, where: str, kind: str | None = None):
        self.where = where
        self.kind = kind
        shape = f" [it has the shape of: {kind}]" if kind else ""
        super().__init__(
            f"refused to store an API-key-shaped string found at {where}; "
            "remove the credential from the request/response (auth belongs in headers, which are never stored)" + shape
        )


@dataclass(frozen=True)
class Finding:
    where: str  # a JSON path like entry.request.params.messages[0].content: never the secret itself
    kind: str  # the shape it matched, e.g. "GitHub Token"


# detect-secrets plugins left out. Not credentials: public IP addresses. Mostly placeholders in code
# answers: `scheme://user:pass@host` (postgres://user:password@localhost; the upstream URL's own
# credentials are stripped before anything is stored). Written for config files, read line by line:
# the keyword-context rules (`cloudant_password = "..."`, IBM, SoftLayer, Artifactory, .npmrc), which
# match anywhere (no literal to look for first) and one of which (.npmrc's `//.+/:_authToken`) takes
# quadratic time on a long line: an answer is one long line.
_SKIPPED_PLUGINS = frozenset(
    {
        "IPPublicDetector",
        "BasicAuthDetector",
        "ArtifactoryDetector",
        "CloudantDetector",
        "IbmCloudIamDetector",
        "IbmCosHmacDetector",
        "NpmDetector",
        "SoftlayerDetector",
    }
)

# Shapes detect-secrets does not have, as (name, pattern, flags):
_OWN_SHAPES = (
    # Every OpenAI key style (sk-, sk-proj-, sk-svcacct-, sk-admin-), with or without the T3BlbkFJ
    # marker detect-secrets wants; also glued to a name (OPENAI_KEY_sk-proj-...), but not inside a
    # word (risk-assessment...). The look-behind comes after `sk-` so the search can skip to each `sk-`.
    # Anthropic's keys (sk-ant-api03-..., sk-ant-admin01-...), named as such: before the OpenAI shape,
    # which would match them too.
    ("Anthropic key", r"sk-ant-(?<![A-Za-z0-9]sk-ant-)[A-Za-z0-9_\-]{20,}", 0),
    ("OpenAI key", r"sk-(?<![A-Za-z0-9]sk-)[A-Za-z0-9_\-]{20,}", 0),
    # A bearer token of 8 characters or more holding a digit: "Bearer of bad news" and
    # "Bearer $OPENAI_API_KEY" are prose, "Bearer tok_12345" is a credential.
    ("Bearer token", r"\bbearer\s+(?=[A-Za-z0-9._~+/\-]*[0-9])[A-Za-z0-9._~+/\-]{8,}=*", re.IGNORECASE),
    ("Basic credentials", r"authorization\W{1,4}basic\s+[A-Za-z0-9+/]{8,}={0,2}", re.IGNORECASE),
    ("GitHub fine-grained token", r"github_pat_[A-Za-z0-9_]{22,}", 0),
)
# An Azure OpenAI key is 32 hex digits standing alone. So are request ids and fingerprints, which
# live in fields of their own (`id`, `*_id`, `x-request-id`, `system_fingerprint`): not there.
_HEX_KEY = ("Azure OpenAI key (32 hex digits)", r"(?<![A-Za-z0-9_\-])[0-9a-fA-F]{32}(?![A-Za-z0-9_\-])", 0)
_ID_FIELD = re.compile(r"(?:^|[_\-])ids?$|^system_fingerprint$", re.IGNORECASE)
# Binary data in base64 (embedding vectors, images): any match in it is chance, and it is large.
_BINARY_FIELDS = frozenset({"embedding", "b64_json"})
# A field name is shown in a path only when it is a plain name; any other is shown by position.
_PLAIN_NAME = re.compile(r"[A-Za-z0-9_\-]{1,64}")
_SCALARS = (int, float, bool, type(None))
# Long strings are searched in windows, so the store thread gives up the GIL between them (one
# regex search holds it throughout) and a 5 MB answer never stalls the proxy's event loop for long.
# Windows overlap by more than the longest shape, so a credential across a boundary is seen whole.
_WINDOW = 1 << 16
_OVERLAP = 1 << 12


@dataclass(frozen=True)
class Shape:
    """One credential shape: its regex, the literals one of which every match contains (None: no
    such literal) and the length of its shortest match, so that most text is ruled out without
    running the regex at all."""

    kind: str
    pattern: re.Pattern[str]
    needles: frozenset[str] | None
    shortest: int
    folded: bool  # case-insensitive: its needles are looked for in lower-cased text
    hex_key: bool = False

    @classmethod
    def of(cls, kind: str, pattern: re.Pattern[str], hex_key: bool = False) -> Shape:
        folded = bool(pattern.flags & re.IGNORECASE)
        return cls(kind, pattern, required_literals(pattern), shortest_match(pattern), folded, hex_key)

    def found_in(self, text: str, lowered: str) -> bool:
        if len(text) < self.shortest:
            return False
        if self.needles is not None:
            haystack = lowered if self.folded else text
            if not any(needle in haystack for needle in self.needles):
                return False
        return _search(self.pattern, text)


def _search(pattern: re.Pattern[str], text: str) -> bool:
    size = len(text)
    pos = 0
    while True:
        end = min(pos + _WINDOW + _OVERLAP, size)
        match = pattern.search(text, pos, end)
        if match is None:
            if end == size:
                return False
            pos = end - _OVERLAP
        elif match.end() < end or end == size or pattern.match(text, match.start()):
            return True
        else:  # cut off by the window's end (a look-ahead saw "the end"): decided on the whole text
            pos = match.start() + 1


# --- the literals every match contains, read from the regex itself ------------------------------

# The regex parser is the stdlib's own (sre_parse before Python 3.11, which warns on importing it after).
if sys.version_info >= (3, 11):
    from re import _constants as _sre  # type: ignore[attr-defined]
    from re import _parser as _sre_parse  # type: ignore[attr-defined]
else:  # pragma: no cover - Python 3.10
    import sre_constants as _sre
    import sre_parse as _sre_parse

_MAX_NEEDLES = 64


def required_literals(pattern: re.Pattern[str]) -> frozenset[str] | None:
    """A set of strings one of which every match of `pattern` contains (lower-cased for a
    case-insensitive pattern), the longest such set found at any step of the pattern; None when
    there is none of two characters or more (then the pattern is always run)."""
    try:
        parsed = _sre_parse.parse(pattern.pattern, pattern.flags)
        steps = [parsed[i] for i in range(len(parsed))]
    except Exception:  # a parser that changed shape: run the pattern on everything, never miss
        return None
    best: set[str] | None = None
    for i in range(len(steps)):
        found, _ = _starts(steps[i:])
        if found and "" not in found and (best is None or min(map(len, found)) > min(map(len, best))):
            best = found
    if best is None or min(map(len, best)) < 2:
        return None
    if pattern.flags & re.IGNORECASE:
        best = {needle.lower() for needle in best}
    return frozenset(best)


def shortest_match(pattern: re.Pattern[str]) -> int:
    """The length of the shortest text `pattern` can match (0 when it cannot tell)."""
    try:
        return int(_sre_parse.parse(pattern.pattern, pattern.flags).getwidth()[0])
    except Exception:
        return 0


def _starts(steps: list[Any]) -> tuple[set[str], bool]:
    """The literal strings a match of `steps` begins with, and whether they are the whole match."""
    out = {""}
    for op, arg in steps:
        options, whole = _literal_options(op, arg)
        if not options:
            return out, False
        grown = {a + b for a in out for b in options}
        if len(grown) > _MAX_NEEDLES:
            return out, False
        out = grown
        if not whole:
            return out, False
    return out, True


def _literal_options(op: Any, arg: Any) -> tuple[set[str] | None, bool]:
    if op is _sre.LITERAL:
        return {chr(arg)}, True
    if op is _sre.IN and all(kind is _sre.LITERAL for kind, _ in arg):
        return {chr(code) for _, code in arg}, True
    if op is _sre.SUBPATTERN and not arg[1] and not arg[2]:  # a group without flags of its own
        return _starts(list(arg[3]))
    if op is _sre.BRANCH:
        union: set[str] = set()
        whole = True
        for alternative in arg[1]:
            found, complete = _starts(list(alternative))
            if "" in found:
                return None, False
            union |= found
            whole = whole and complete
        return union, whole
    return None, False


# --- the catalogue ------------------------------------------------------------------------------


def _catalogue_shapes() -> list[tuple[str, str, int]]:
    """(shape name, regex, flags) of every detect-secrets regex plugin we use."""
    from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class
    from detect_secrets.plugins.base import RegexBasedDetector

    shapes: list[tuple[str, str, int]] = []
    plugins: dict[str, type[Any]] = get_mapping_from_secret_type_to_class()
    for kind, plugin in sorted(plugins.items()):
        if issubclass(plugin, RegexBasedDetector) and plugin.__name__ not in _SKIPPED_PLUGINS:
            # Typed as an instance property, but every regex plugin sets it on its class.
            denylist: Iterable[re.Pattern[str]] = cast(Any, plugin).denylist
            shapes.extend((kind, pattern.pattern, pattern.flags) for pattern in denylist)
    return shapes


@dataclass(frozen=True)
class Catalogue:
    shapes: tuple[Shape, ...]  # those with needles first, then the always-run ones
    always: tuple[Shape, ...]  # shapes without needles
    exact_gate: re.Pattern[str]  # any needle of a case-sensitive shape
    folded_gate: re.Pattern[str]  # any needle of a case-insensitive shape, in lower-cased text
    shortest: int  # no shape matches a shorter text


def _gate(needles: Iterable[str]) -> re.Pattern[str]:
    ordered = sorted(set(needles), key=lambda n: (-len(n), n))
    return re.compile("|".join(map(re.escape, ordered)) if ordered else r"(?!)")


@functools.lru_cache(maxsize=1)
def catalogue() -> Catalogue:
    """Built on first use: importing detect-secrets costs ~0.1 s, which a run that writes nothing skips."""
    shapes = [Shape.of(kind, re.compile(text, flags)) for kind, text, flags in (*_OWN_SHAPES, *_catalogue_shapes())]
    kind, text, flags = _HEX_KEY
    shapes.append(Shape.of(kind, re.compile(text, flags), hex_key=True))
    shapes.sort(key=lambda shape: shape.needles is None)  # stable
    return Catalogue(
        shapes=tuple(shapes),
        always=tuple(shape for shape in shapes if shape.needles is None),
        exact_gate=_gate(n for shape in shapes if shape.needles and not shape.folded for n in shape.needles),
        folded_gate=_gate(n for shape in shapes if shape.needles and shape.folded for n in shape.needles),
        shortest=min(shape.shortest for shape in shapes),
    )


def shape_of(text: str, id_field: bool = False) -> str | None:
    """The name of the credential shape found in `text` (None: none). `id_field`: the text is the
    value of an id field, where 32 hex digits are an id, not a key."""
    found = catalogue()
    if len(text) < found.shortest:  # "user", "stop", "gpt-4o-mini": most strings of an answer
        return None
    lowered = text.lower()
    # Two searches for any needle rule out every shape that has needles (most text holds none).
    hinted = found.exact_gate.search(text) or found.folded_gate.search(lowered)
    for shape in found.shapes if hinted else found.always:
        if not (id_field and shape.hex_key) and shape.found_in(text, lowered):
            return shape.kind
    return None


def looks_secret(text: str) -> bool:
    return shape_of(text) is not None


# --- finding one in a recording -----------------------------------------------------------------


def _is_id(name: str) -> bool:
    return bool(_ID_FIELD.search(name))


@functools.lru_cache(maxsize=1024)
def _label_is_id(label: str) -> bool:
    """Whether the part at `label` (`.choices[index=0].delta.content`) is an id (every event of a stream asks)."""
    return _is_id(label.rsplit(".", 1)[-1])


def _step(name: Any, position: int) -> str:
    """A path step for a field: `.name`, or `.<field N>` when the name is odd or is itself the secret."""
    if isinstance(name, str) and _PLAIN_NAME.fullmatch(name) and shape_of(name) is None:
        return f".{name}"
    return f".<field {position}>"


def _scan(value: Any, id_field: bool = False) -> tuple[list[str], str] | None:
    """(path steps, innermost first; shape) of the first credential inside parsed JSON, or None.
    Steps are built only on the way out of a find: walking a large answer allocates nothing."""
    if isinstance(value, str):
        kind = shape_of(value, id_field)
        return ([], kind) if kind else None
    if isinstance(value, Mapping):
        for position, (name, item) in enumerate(value.items()):
            kind = shape_of(name) if isinstance(name, str) else None
            if kind:
                return [f".<field {position}> (its name)"], kind
            if isinstance(item, _SCALARS) or name in _BINARY_FIELDS:
                continue
            found = _scan(item, isinstance(name, str) and _is_id(name))
            if found:
                found[0].append(_step(name, position))
                return found
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            if isinstance(item, _SCALARS):  # embedding vectors: thousands of floats, nothing to see
                continue
            found = _scan(item, id_field)
            if found:
                found[0].append(f"[{index}]")
                return found
    return None


def _at(at: str, found: tuple[list[str], str] | None) -> Finding | None:
    if found is None:
        return None
    steps, kind = found
    return Finding(at + "".join(reversed(steps)), kind)


def find(value: Any, at: str = "entry") -> Finding | None:
    """Where the first credential-shaped string in `value` (an Entry or parsed JSON) is, and its shape."""
    if isinstance(value, Entry):
        return _find_in_entry(value, at)
    return _at(at, _scan(value))


def secret_in(value: Any, at: str = "entry") -> str | None:
    """The path of the first credential-shaped string in `value` (e.g. `entry.request.params.messages[0].content`), or None."""
    found = find(value, at)
    return found.where if found else None


def refuse_secrets(value: Any, at: str = "entry") -> None:
    """The one check before anything is written: raise `SecretRefused` naming where a credential is.

    An Entry found clean remembers it (see `_CHECKED`): checked again — the store writing what the
    proxy checked before answering — it passes at once while each of its parts is still the object
    that was searched, and a part replaced since is searched again. Entries are never changed in
    place once built (`dataclasses.replace` makes a new one, which is searched whole)."""
    found = find(value, at)
    if found is not None:
        raise SecretRefused(found.where, found.kind)
    if isinstance(value, Entry):
        _remember(value, _PARTS)


def vouch_request(entry: Entry) -> None:
    """`entry.request` is the very object `secret_in` found clean a moment ago (the proxy searches a
    request while the upstream thinks): `refuse_secrets` does not search it again."""
    _remember(entry, ("request",))


# Where an entry keeps the parts found clean, by identity: {part name: the object searched}.
_CHECKED = "_seedreplay_checked_parts"
_PARTS = ("upstream", "model", "system_fingerprint", "request", "headers", "body", "events")


def _remember(entry: Entry, names: Iterable[str]) -> None:
    checked = entry.__dict__.setdefault(_CHECKED, {})
    for name in names:
        checked[name] = getattr(entry, name)


def _unchecked(entry: Entry, name: str) -> bool:
    checked = entry.__dict__.get(_CHECKED)
    return checked is None or name not in checked or checked[name] is not getattr(entry, name)


# The name the stores and the proxy used before; same decision.
find_secret = secret_in


def _find_in_entry(entry: Entry, at: str) -> Finding | None:
    """The first credential in the parts of `entry` not already found clean (see `refuse_secrets`)."""
    for name in ("upstream", "model", "system_fingerprint"):
        value = getattr(entry, name)
        if isinstance(value, str) and _unchecked(entry, name) and (kind := shape_of(value, name == "system_fingerprint")):
            return Finding(f"{at}.{name}", kind)
    for name in ("request", "headers", "body"):
        if _unchecked(entry, name) and (found := _at(f"{at}.{name}", _scan(getattr(entry, name)))):
            return found
    return _find_in_events(entry.events, at) if _unchecked(entry, "events") else None


def _find_in_events(events: list[SSEEvent] | None, at: str) -> Finding | None:
    """The text each part of the answer spells out across the events, and then the event it is in:
    a key streamed in pieces (`"sk-"`, `"proj-..."`) is whole only once its deltas are put together."""
    return EventScan(at).finding(events) if events else None


class EventScan:
    """Where a stream's events hold a credential, searched event by event: `_find_in_events` feeds it a
    whole stream; the proxy feeds it in the pauses between an upstream's chunks, after relaying each,
    so that the store thread need not search a recorded stream again (`vouch_events`). Each event's
    name and non-JSON data, and each distinct text of each part, as they come (a stream repeats its id,
    model and fingerprint in every event: a text found clean once is clean wherever it is); the field
    names and the text each part spells across events once the stream is whole."""

    def __init__(self, at: str = "entry") -> None:
        self.at = at
        self.seen = 0  # events searched so far
        self.found: Finding | None = None  # the first credential an event held on its own
        self.dirty = False  # found one, or the search failed: the stream is never vouched for
        self._pieces: dict[str, list[tuple[int, str]]] = {}
        self._clean: dict[str, set[str]] = {}
        self._names: set[str] = set()
        self._event_names: set[str] = set()

    def catch_up(self, events: list[SSEEvent]) -> None:
        """Search the events not searched yet."""
        while not self.dirty and self.seen < len(events):
            self.found = self._search(events, self.seen)
            self.dirty = self.found is not None
            self.seen += 1

    def finding(self, events: list[SSEEvent]) -> Finding | None:
        """Where the whole stream `events` (the list fed so far, now complete) holds a credential, or None."""
        self.catch_up(events)
        if self.found is not None:
            return self.found
        for name in self._names:  # field names, each once
            if kind := shape_of(name):
                return _event_holding(events, self.at, kind)
        for label, found in self._pieces.items():
            if len(self._clean[label]) < 2:  # one text, already searched
                continue
            if kind := shape_of("".join(text for _, text in found), _label_is_id(label)):
                return Finding(f"{self.at}.events (the text streamed at {label.lstrip('.')})", kind)
        return None

    def clean(self, events: list[SSEEvent]) -> bool:
        """True when the whole stream `events` holds no credential (and its search never failed)."""
        return not self.dirty and self.finding(events) is None

    def _search(self, events: list[SSEEvent], index: int) -> Finding | None:
        event = events[index]
        if isinstance(event.event, str) and event.event not in self._event_names:
            if kind := shape_of(event.event):
                return Finding(f"{self.at}.events[{index}].event", kind)
            self._event_names.add(event.event)
        parsed = _json_or_none(event.data)
        if parsed is None:  # [DONE], or text that is not JSON: read as it is
            if isinstance(event.data, str) and (kind := shape_of(event.data)):
                return Finding(f"{self.at}.events[{index}].data", kind)
            return None
        pieces: dict[str, list[tuple[int, str]]] = {}
        _collect_text(parsed, index, "", pieces, self._names)
        for label, found in pieces.items():
            self._pieces.setdefault(label, []).extend(found)
            clean = self._clean.setdefault(label, set())
            id_field = _label_is_id(label)
            for _, text in found:  # each piece on its own first: it names the event
                if text not in clean:
                    if kind := shape_of(text, id_field):
                        return _event_holding(events, self.at, kind, index)
                    clean.add(text)
        return None


def vouch_events(entry: Entry, scan: EventScan) -> None:
    """`entry.events` is the very list `scan` was fed as it arrived: when the scan finds it clean,
    `refuse_secrets` does not search it again (when not, it does, and says where)."""
    if entry.events is not None and scan.clean(entry.events):
        _remember(entry, ("events",))


def _event_holding(events: list[SSEEvent], at: str, kind: str, start: int = 0) -> Finding:
    """The path inside the first event (from `start`) that holds a credential on its own."""
    for index in range(start, len(events)):
        found = _at(f"{at}.events[{index}].data", _scan(_json_or_none(events[index].data)))
        if found:
            return found
    return Finding(f"{at}.events", kind)


def _json_or_none(data: Any) -> Any:
    if not isinstance(data, str) or data[:1] not in ("{", "["):
        return None
    try:
        return json.loads(data)
    except ValueError:
        return None


def _collect_text(value: Any, index: int, label: str, pieces: dict[str, list[tuple[int, str]]], names: set[str]) -> None:
    """Every string of one event, under a label that is the same in every event carrying the same
    part of the answer: a list position becomes the part's own `index`/`*_index` fields, since a
    stream of n choices interleaves them (each chunk's choices[0] says which choice it is). `value` is
    parsed JSON: dicts (with str keys), lists and scalars only."""
    if isinstance(value, str):
        pieces.setdefault(label, []).append((index, value))
    elif isinstance(value, dict):
        own = ",".join(f"{k}={v}" for k, v in value.items() if (k == "index" or k.endswith("_index")) and isinstance(v, int))
        if own:
            label = f"{label[:-2]}[{own}]" if label.endswith("[]") else f"{label}[{own}]"
        for name, item in value.items():
            names.add(name)
            if isinstance(item, _SCALARS) or name in _BINARY_FIELDS:
                continue
            inner = f"{label}.{_shown(name)}"
            if isinstance(item, str):  # most of an event: taken here, without a call per string
                pieces.setdefault(inner, []).append((index, item))
            else:
                _collect_text(item, index, inner, pieces, names)
    elif isinstance(value, list):
        for item in value:
            if not isinstance(item, _SCALARS):
                _collect_text(item, index, f"{label}[]", pieces, names)


@functools.lru_cache(maxsize=1024)
def _shown(name: str) -> str:
    """A field name as a label shows it (a stream repeats the same few names in every event)."""
    return name if _PLAIN_NAME.fullmatch(name) else "<field>"


def kept_response_headers(headers: Iterable[tuple[str, str]] | Mapping[str, str]) -> dict[str, str]:
    """The response headers worth storing with an entry (lower-cased names)."""
    items = headers.items() if isinstance(headers, Mapping) else headers
    return {k.lower(): v for k, v in items if k.lower() in KEPT_RESPONSE_HEADERS}
