"""Entry <-> bytes, shared by every backend.

An entry is stored as one self-describing blob (see `pack_entry`):

    head length (u32 big-endian) | head | tail
    head = b"SRE" | entry format (u8) | JSON of everything but the answer (key, endpoint, request, ...)
    tail = codec (b"j" plain JSON, b"z" zlib JSON) | JSON of {"body": ...} or {"events": [...]}

The format byte sits at a fixed offset, so a store written by a newer seedreplay is recognised before
anything is parsed; and the request sits in the head, so `iter_requests` (the closest-recording scan)
never reads or decompresses an answer body. JSON rather than pickle: a store may be shared (a team
directory, a Redis server), and unpickling shared bytes would run whatever code they carry.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import struct
import zlib
from collections.abc import Iterator
from typing import Any, BinaryIO

from ..core.constants import ENTRY_FORMAT
from ..core.entry import Entry, SSEEvent
from ..core.jsontext import compact_json_bytes
from ..core.version import __version__
from ..shapes import answer_problem
from .base import UPGRADE_HINT, CorruptEntry, EntryFormatError

_MAGIC = b"SRE"
_LENGTH = struct.Struct(">I")
_ANSWER_FIELDS = ("body", "events")
_COMPRESS_FROM = 512  # bytes of answer JSON; below this zlib's header costs more than it saves
# What a stored answer may inflate to. The biggest real answers (embedding batches of thousands of
# inputs) are tens of MB of JSON; a few hostile bytes of zlib can ask for gigabytes, so more is corrupt.
MAX_INFLATED_BYTES = 256 * 2**20


def _json_bytes(value: Any, what: str) -> bytes:
    try:
        return compact_json_bytes(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"cannot store entry: its {what} is not JSON ({exc})") from exc


def pack_head(entry: Entry) -> bytes:
    """Magic, format byte and the JSON of everything except the answer (small; what scans read)."""
    if not isinstance(entry.key, str) or not entry.key:
        raise ValueError(f"cannot store entry: key must be a non-empty string, got {entry.key!r}")
    if entry.format != ENTRY_FORMAT:
        raise EntryFormatError(
            f"cannot store entry {entry.key}: it claims entry format {entry.format}, "
            f"this seedreplay {__version__} writes format {ENTRY_FORMAT}"
        )
    meta = {f.name: getattr(entry, f.name) for f in dataclasses.fields(entry) if f.name not in _ANSWER_FIELDS}
    return _MAGIC + bytes([ENTRY_FORMAT]) + _json_bytes(meta, "request or metadata")


def pack_tail(entry: Entry) -> bytes:
    """The answer: the body of a plain response or the SSE events of a streamed one."""
    if entry.events is not None:
        # The event's two fields by hand: `dataclasses.asdict` deep-copies each (a stream has hundreds).
        answer = {"events": [{"data": e.data, "event": e.event} if isinstance(e, SSEEvent) else dict(e) for e in entry.events]}
    else:
        answer = {"body": entry.body}
    data = _json_bytes(answer, "response")
    if len(data) >= _COMPRESS_FROM:
        return b"z" + zlib.compress(data, 6)
    return b"j" + data


def pack_entry(entry: Entry) -> bytes:
    head = pack_head(entry)
    return _LENGTH.pack(len(head)) + head + pack_tail(entry)


def unpack_head(head: bytes, where: str) -> dict[str, Any]:
    """The head's fields; a clear error for a newer format or for bytes seedreplay never wrote."""
    if head[:3] != _MAGIC or len(head) < 4:
        raise _not_ours(where)
    version = head[3]
    if version > ENTRY_FORMAT:
        raise EntryFormatError(
            f"{where} uses entry format {version}, written by a newer seedreplay; this seedreplay "
            f"{__version__} reads entry format {ENTRY_FORMAT} only: {UPGRADE_HINT}"
        )
    with _damage_reported(where):
        return _object(json.loads(head[4:]), where, "head")


def unpack_tail(tail: bytes, where: str) -> dict[str, Any]:
    codec, data = tail[:1], tail[1:]
    if codec not in (b"z", b"j"):
        raise EntryFormatError(f"{where} has an unknown answer encoding {codec!r}: {UPGRADE_HINT}")
    with _damage_reported(where):
        return _object(json.loads(_inflate(data, where) if codec == b"z" else data), where, "answer")


def _object(value: Any, where: str, part: str) -> dict[str, Any]:
    # A planted `[1, 2]` decodes as JSON too: anything but an object is a damaged entry, not a crash.
    if not isinstance(value, dict):
        raise corrupt_entry(where, f"its {part} is not a JSON object")
    return value


def _inflate(data: bytes, where: str) -> bytes:
    """The zlib answer, refused once it would pass MAX_INFLATED_BYTES (never inflated whole first)."""
    inflater = zlib.decompressobj()
    plain = inflater.decompress(data, MAX_INFLATED_BYTES)
    if inflater.unconsumed_tail:
        raise corrupt_entry(where, f"its answer inflates past {MAX_INFLATED_BYTES // 2**20} MiB")
    return plain


def entry_from_parts(head: bytes, tail: bytes, where: str) -> Entry:
    data = unpack_head(head, where)
    data.update(unpack_tail(tail, where))
    with _damage_reported(where):
        entry = Entry.from_dict(data)
    _check_answer(entry, where)
    return entry


def _check_answer(entry: Entry, where: str) -> None:
    """A plain 2xx recording must be an answer of its endpoint. Since the proxy refuses to record one
    that is not (no `choices`, `output` or `data` list), only an older seedreplay or a hand could have
    put it there; it replayed as nonsense, and failed as a stream."""
    if entry.body is None or not 200 <= entry.status < 300:
        return
    problem = answer_problem(entry.endpoint, entry.body)
    if problem:
        raise corrupt_entry(where, f"it is no answer of {entry.endpoint}: {problem}; an older seedreplay recorded it")


@contextlib.contextmanager
def _damage_reported(where: str) -> Iterator[None]:
    # Bytes that carry our magic but do not decode were damaged outside seedreplay (disk, hand edits).
    try:
        yield
    except CorruptEntry:
        raise
    except (ValueError, TypeError, zlib.error, RecursionError) as exc:
        raise corrupt_entry(where, str(exc)) from None


def corrupt_entry(where: str, why: str) -> CorruptEntry:
    return CorruptEntry(f"{where} is damaged and cannot be read ({why[:200]}); delete it and record it again")


def unpack_entry(blob: bytes, where: str) -> Entry:
    if not isinstance(blob, (bytes, bytearray, memoryview)):
        raise _not_ours(where)
    head_end = _LENGTH.size + _blob_head_length(blob[: _LENGTH.size], where)
    return entry_from_parts(blob[_LENGTH.size : head_end], blob[head_end:], where)


def _blob_head_length(prefix: bytes, where: str) -> int:
    if len(prefix) < _LENGTH.size:
        raise _not_ours(where)
    return _LENGTH.unpack(prefix)[0]


def _not_ours(where: str, what: str = "unrecognised bytes") -> CorruptEntry:
    return CorruptEntry(
        f"{where} is not a seedreplay entry ({what}); the store holds data written by "
        "another program or an older pre-release: point --cache-dir/--store at a seedreplay store"
    )


def foreign_entry(where: str, what: str) -> CorruptEntry:
    """A row no seedreplay wrote (e.g. a pickled diskcache value): never decoded, reported as such."""
    return _not_ours(where, what)


def _read_head(value: bytes | BinaryIO, where: str) -> bytes:
    """The head of a stored blob, reading only its first bytes when it is a file."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        stream: BinaryIO = io.BytesIO(value)
    elif hasattr(value, "read"):
        stream = value
    else:
        raise _not_ours(where)
    try:
        length = _blob_head_length(stream.read(_LENGTH.size), where)
        return stream.read(length)
    finally:
        stream.close()
