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


# Up to _WORDY characters a text streams a word per delta, as the API sends it. A longer one (a
# recording of megabytes) is cut into pieces of at least _PIECE characters, and into at most about
# _MOST of them: 200,000 one-word events took the proxy's loop ~40 s to build and send.
_WORDY = 16 * 1024
_PIECE = 4 * 1024
_MOST = 1000


def words(text: str) -> list[str]:
    """Pieces that join back into the text: a word and the space after it each, or, for a long text,
    runs of words a few KB long (a bounded count, whatever the text's size)."""
    if len(text) <= _WORDY:
        return _WORD.findall(text)
    return cut(text, max(_PIECE, -(-len(text) // _MOST)), after_space=True)


def cut(text: str, size: int, after_space: bool = False) -> list[str]:
    """`text` in pieces of at most `size` characters (the last may be shorter); `after_space`: each
    piece ends after the last space or newline within it where there is one, so words stay whole."""
    pieces = []
    at, end = 0, len(text)
    while end - at > size:
        stop = at + size
        if after_space:
            space = max(text.rfind(" ", at, stop), text.rfind("\n", at, stop))
            stop = space + 1 if space > at else stop
        pieces.append(text[at:stop])
        at = stop
    pieces.append(text[at:])
    return pieces if text else []


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
