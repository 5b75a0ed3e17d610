"""What answers look like on each endpoint: the SSE wire format, assembling a stream into one answer and
splitting one into a stream, adapting usage and embedding encodings, and the text a person reads."""

from .sse import (
    DONE,
    MalformedStream,
    SSEParser,
    adapt_stream,
    answer_body,
    answer_summary,
    assemble,
    convert_embeddings,
    ends_stream,
    format_event,
    format_sse,
    parse_sse,
    split,
    stream_complete,
)

__all__ = [
    "DONE",
    "MalformedStream",
    "SSEParser",
    "adapt_stream",
    "answer_body",
    "answer_summary",
    "assemble",
    "convert_embeddings",
    "ends_stream",
    "format_event",
    "format_sse",
    "parse_sse",
    "split",
    "stream_complete",
]
