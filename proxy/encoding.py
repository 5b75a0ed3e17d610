"""Request bodies sent compressed (`Content-Encoding`), decoded here and nowhere else.

The servers read bodies as they came off the wire (aiohttp's own decoding is off, see
`serve.serving`): the pass-through forwards the bytes and their Content-Encoding unchanged, and a
body the proxy or the simulator parses is decoded by `decode_body`, with the size limit applied to
what it decodes to (a 1 MB gzip can hold 1 GB of zeros).
"""

from __future__ import annotations

import zlib

from .errors import APIError

SUPPORTED = ("gzip", "deflate", "identity")


def decode_body(raw: bytes, content_encoding: str | None, limit: int) -> bytes:
    """`raw` with the codings `content_encoding` names undone (last applied, first undone); a 400
    when it is not what it says, 413 past `limit` bytes decoded, 415 for a coding not supported."""
    codings = [c.strip().lower() for c in (content_encoding or "").split(",") if c.strip()]
    body = raw
    for coding in reversed(codings):
        if coding == "identity":
            continue
        if coding in ("gzip", "x-gzip"):
            body = _inflate(body, 16 + zlib.MAX_WBITS, limit, coding)
        elif coding == "deflate":
            # RFC 9110's deflate is zlib-wrapped; some clients send the raw stream.
            try:
                body = _inflate(body, zlib.MAX_WBITS, limit, coding)
            except APIError as exc:
                if exc.status != 400:
                    raise
                body = _inflate(body, -zlib.MAX_WBITS, limit, coding)
        else:
            raise APIError(
                415,
                f"the request has Content-Encoding {coding[:40]!r}, which this server does not decode; "
                f"send the body uncompressed or as one of {', '.join(SUPPORTED)}",
                code="unsupported_content_encoding",
            )
    return body


def _inflate(data: bytes, wbits: int, limit: int, coding: str) -> bytes:
    out = bytearray()
    rest = data
    while rest:  # a gzip body may hold several members, one after the other
        decoder = zlib.decompressobj(wbits)
        try:
            out += decoder.decompress(rest, limit + 1 - len(out))
        except zlib.error as exc:
            raise _not_encoded(coding, str(exc)) from None
        if len(out) > limit or decoder.unconsumed_tail:
            raise APIError(
                413,
                f"the request body decodes ({coding}) to more than this server's limit of {limit} bytes; "
                "start the proxy with a larger --max-body if the request is meant to be this big",
                code="request_too_large",
            )
        if not decoder.eof:
            raise _not_encoded(coding, "the compressed data ends early")
        rest = decoder.unused_data
        if rest and wbits <= zlib.MAX_WBITS:  # only gzip has several members
            raise _not_encoded(coding, "data follows the end of the compressed stream")
    return bytes(out)


def _not_encoded(coding: str, why: str) -> APIError:
    return APIError(
        400,
        f"the request body is not valid {coding} data as its Content-Encoding says ({why}); "
        "send it uncompressed, or compress it with that coding",
        code="invalid_content_encoding",
    )
