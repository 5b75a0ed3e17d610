"""YAML as plain data: the mappings, lists and scalars of one document, read from libyaml's events.

A cassette is data, so anything YAML can say beyond data is refused while the file is parsed, before
anything is built: anchors and aliases (a 1 KB alias bomb expands to gigabytes), merge keys, and any
tag but the plain data ones (`!!python/...` and custom tags would construct objects). The tags kept
are those a YAML writer puts on plain values: `!!binary` (vcrpy writes bytes bodies, e.g. gzip, that
way), `!!str`, `!!int`, `!!float`, `!!bool`, `!!null`, `!!timestamp`, `!!map` and `!!seq`.

Building from the event stream rather than with `yaml.load` is also what makes a cassette quick to
read: libyaml parses in C, and the objects are built in one loop with no node graph and no resolver
call per node (a 1,000-interaction cassette: ~60 ms instead of ~450 ms with CSafeLoader).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import yaml
from yaml.constructor import ConstructorError
from yaml.events import (
    AliasEvent,
    DocumentEndEvent,
    DocumentStartEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
    StreamEndEvent,
    StreamStartEvent,
)
from yaml.nodes import ScalarNode

# libyaml's parser when PyYAML was built with it; the pure-Python one gives the same events, slower.
_Parser: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
WITH_LIBYAML: bool = _Parser is not yaml.SafeLoader

_STR = "tag:yaml.org,2002:str"
_MERGE = "tag:yaml.org,2002:merge"
SCALAR_TAGS = frozenset(f"tag:yaml.org,2002:{name}" for name in ("binary", "str", "int", "float", "bool", "null", "timestamp"))
COLLECTION_TAGS = {MappingStartEvent: "tag:yaml.org,2002:map", SequenceStartEvent: "tag:yaml.org,2002:seq"}

# YAML 1.1 plain-scalar typing (`200` is an int, `null` is None), exactly as yaml.safe_load does it.
_RESOLVERS = yaml.SafeLoader.yaml_implicit_resolvers
_CONSTRUCTORS = yaml.SafeLoader.yaml_constructors
_CONSTRUCTOR = yaml.SafeLoader("")


class NotData(yaml.YAMLError):
    """The YAML says more than plain data (an anchor, an alias, a tag, a merge key); `line` is 1-based."""

    def __init__(self, problem: str, line: int):
        super().__init__(f"line {line}: {problem}")
        self.problem = problem
        self.line = line


def load_data(text: str | bytes) -> Any:
    """The one document in `text` as plain Python data (None for an empty stream).

    Raises NotData for anchors, aliases, merge keys and non-data tags, and yaml.YAMLError for YAML
    that does not parse; both before any part of the document is expanded."""
    parser = _Parser(text)
    try:
        return _build(parser.get_event)
    finally:
        parser.dispose()


def _build(next_event: Callable[[], Any]) -> Any:
    """One loop over the events: `stack` holds the open collections, `keys` the key each open
    mapping waits to fill (`_NO_KEY` when the next scalar is a key)."""
    plain: dict[str, Any] = {}  # a plain scalar's value depends on its text only: resolve each text once
    stack: list[Any] = []
    keys: list[Any] = []
    documents: list[Any] = []  # the root value, once built
    while True:
        event = next_event()
        kind = type(event)
        if kind is ScalarEvent:
            if event.anchor is not None:
                raise _refusal(event, f"an anchor (&{event.anchor})")
            if event.tag is None:
                if event.implicit[0]:
                    value = plain[event.value] if event.value in plain else _plain(event, plain)
                else:
                    value = event.value  # quoted: a string as written
            else:
                value = _tagged(event, event.tag)
        elif kind is MappingStartEvent or kind is SequenceStartEvent:
            _check_collection(event, kind)
            stack.append({} if kind is MappingStartEvent else [])
            keys.append(_NO_KEY)
            continue
        elif kind is MappingEndEvent or kind is SequenceEndEvent:
            keys.pop()
            value = stack.pop()
        elif kind is AliasEvent:
            raise _refusal(event, f"an alias (*{event.anchor})")
        elif kind is StreamEndEvent:
            return documents[0] if documents else None
        elif kind is DocumentStartEvent:
            if documents:
                raise _refusal(event, "a second document (---)", "a cassette is one YAML document")
            continue
        elif kind is StreamStartEvent or kind is DocumentEndEvent:
            continue
        else:  # pragma: no cover - PyYAML has no other event
            raise yaml.YAMLError(f"unexpected YAML event {kind.__name__}")
        if not stack:
            documents.append(value)
            continue
        top = stack[-1]
        if top.__class__ is list:
            top.append(value)
            continue
        key = keys[-1]
        if key is _NO_KEY:
            if value.__class__ is dict or value.__class__ is list:
                raise _refusal(event, "a mapping or list used as a key", "keys must be plain scalars")
            keys[-1] = value
        else:
            top[key] = value
            keys[-1] = _NO_KEY


class _NoKey:
    pass


_NO_KEY = _NoKey()


def _plain(event: ScalarEvent, plain: dict[str, Any]) -> Any:
    text = event.value
    tag = _STR
    for candidate, pattern in (*_RESOLVERS.get(text[:1], ()), *_RESOLVERS.get(None, ())):
        if pattern.match(text):
            tag = candidate
            break
    if tag == _MERGE:
        raise _refusal(event, "a merge key (<<)")
    if tag not in SCALAR_TAGS:  # e.g. `=`, YAML 1.1's value key, which safe_load refuses too
        raise _refusal(event, f"the plain scalar {text!r} (YAML type {tag.rsplit(':', 1)[-1]})")
    value = text if tag == _STR else _construct(tag, event)
    plain[text] = value
    return value


def _tagged(event: ScalarEvent, tag: str) -> Any:
    if tag not in SCALAR_TAGS:
        raise _refusal(event, f"the tag {_short(tag)}")
    return _construct(tag, event)


def _construct(tag: str, event: Any) -> Any:
    # PyYAML's own safe constructor for one scalar: the same ints, floats, dates and bytes as safe_load
    # (and the same error, with its place, for a `!!binary` that is not base64).
    node = ScalarNode(tag, event.value, event.start_mark, event.end_mark, event.style)
    try:
        return _CONSTRUCTORS[tag](_CONSTRUCTOR, node)
    except (ValueError, TypeError, AttributeError, OverflowError) as exc:
        # safe_load lets these out (`!!int x`, `!!timestamp nope`, `2001-13-45`): say where instead.
        problem = f"{_short(tag)} {event.value!r} is not a valid value ({exc})"
        raise ConstructorError(None, None, problem, event.start_mark) from None


def _check_collection(event: Any, kind: Any) -> None:
    if event.anchor is not None:
        raise _refusal(event, f"an anchor (&{event.anchor})")
    if event.tag is not None and event.tag != COLLECTION_TAGS[kind]:
        raise _refusal(event, f"the tag {_short(event.tag)}")


def _short(tag: str) -> str:
    return "!!" + tag.removeprefix("tag:yaml.org,2002:") if tag.startswith("tag:yaml.org,2002:") else tag


def _refusal(event: Any, what: str, rule: str = "a cassette holds plain data only") -> NotData:
    mark = event.start_mark
    return NotData(f"{what} is not allowed: {rule}", (mark.line + 1) if mark is not None else 0)
