"""What every endpoint's streams are cut from: an answer's text in word-sized pieces or in its
logprob tokens, and copies of the JSON values a stream repeats."""

from __future__ import annotations

import copy
import re
from typing import Any

_WORD = re.compile(r"\S+\s*|\s+")


class UnstreamableAnswer(ValueError):
    """A plain answer that cannot be cut into a stream: not an object, no choices list, a part
    that is not an object."""


def words(text: str) -> list[str]:
    """Word-sized pieces (a word and the space after it) that join back into the text."""
    return _WORD.findall(text)


def token_pieces(text: Any, tokens: Any) -> list[str] | None:
    """The logprob tokens as stream pieces, when they spell the text exactly (so each piece can
    carry its own token's logprob, as the API does); else None."""
    if not isinstance(text, str) or not isinstance(tokens, list) or not tokens:
        return None
    if not all(isinstance(t, str) and t for t in tokens) or "".join(tokens) != text:
        return None
    return tokens


def copied(value: Any) -> Any:
    """A value safe to put in another frame: containers are deep-copied, the rest is immutable."""
    return copy.deepcopy(value) if isinstance(value, (dict, list)) else value
