"""How long the secret check of one recording takes: the catalogue (detect-secrets' shapes plus ours,
`core.redact.secret_in`) next to the two hand-grown regexes it replaced, walked the old way, in the
same run and on the same entries. It runs in the proxy's store thread for every write, and on the
event loop for a plain answer (the refusal is said in a header before the answer leaves).

Run: python benchmarks/secret_scan.py
"""

from __future__ import annotations

import base64
import json
import random
import re
import statistics
import struct
import timeit
from collections.abc import Callable, Mapping
from typing import Any

from pytest_seedreplay.core.entry import Entry, SSEEvent
from pytest_seedreplay.core.key import canonical_request, key_of_canonical
from pytest_seedreplay.core.redact import catalogue, secret_in

CHAT = "/v1/chat/completions"
WORDS = "the tide turns when the moon pulls the sea and waves roll in over 12 stones at dusk".split()

# The check before: two patterns, a path string built for every node walked.
OLD_PATTERNS = (
    re.compile(r"\bsk-[A-Za-z0-9_\-]{20,}"),
    re.compile(r"\bBearer\s+[A-Za-z0-9._\-]{20,}", re.IGNORECASE),
)


def old_find(value: Any, path: str = "$") -> str | None:
    if isinstance(value, str):
        return path if any(p.search(value) for p in OLD_PATTERNS) else None
    if isinstance(value, Mapping):
        for k, v in value.items():
            found = old_find(str(k), f"{path}.{k}") or old_find(v, f"{path}.{k}")
            if found:
                return found
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            found = old_find(v, f"{path}[{i}]")
            if found:
                return found
    elif hasattr(value, "__dataclass_fields__"):
        for name in value.__dataclass_fields__:
            found = old_find(getattr(value, name), f"{path}.{name}")
            if found:
                return found
    return None


def prose(rng: random.Random, size: int) -> str:
    out: list[str] = []
    length = 0
    while length < size:
        word = rng.choice(WORDS)
        out.append(word)
        length += len(word) + 1
    return " ".join(out)


def request(rng: random.Random) -> dict:
    body = {"model": "gpt-4o-mini", "seed": 1, "messages": [{"role": "user", "content": prose(rng, 400)}]}
    return canonical_request(CHAT, body)


def plain_entry(size: int) -> Entry:
    rng = random.Random(size)
    canonical = request(rng)
    answer = {
        "id": "chatcmpl-" + "".join(rng.choice("abcdefABCDEF0123456789") for _ in range(29)),
        "object": "chat.completion",
        "model": "gpt-4o-mini-2024-07-18",
        "system_fingerprint": "fp_44709d6fcb",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": prose(rng, size)}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 90, "completion_tokens": size // 5, "total_tokens": 90 + size // 5},
    }
    headers = {"content-type": "application/json", "x-request-id": f"req_{rng.getrandbits(128):032x}"}
    return Entry(key=key_of_canonical(canonical), endpoint=CHAT, request=canonical, headers=headers, body=answer)


def streamed_entry(events: int) -> Entry:
    rng = random.Random(events)
    canonical = request(rng)
    frames = [
        SSEEvent(
            json.dumps(
                {
                    "id": "chatcmpl-x",
                    "object": "chat.completion.chunk",
                    "model": "gpt-4o-mini",
                    "choices": [{"index": 0, "delta": {"content": " " + rng.choice(WORDS)}, "finish_reason": None}],
                }
            )
        )
        for _ in range(events)
    ]
    frames.append(SSEEvent("[DONE]"))
    return Entry(key=key_of_canonical(canonical), endpoint=CHAT, request=canonical, events=frames)


def embeddings_entry(vectors: int, as_base64: bool) -> Entry:
    rng = random.Random(vectors)
    canonical = canonical_request("/v1/embeddings", {"model": "text-embedding-3-small", "input": ["x"] * vectors})
    data = []
    for i in range(vectors):
        floats = [rng.uniform(-1, 1) for _ in range(1536)]
        vector: Any = base64.b64encode(struct.pack(f"<{len(floats)}f", *floats)).decode() if as_base64 else floats
        data.append({"object": "embedding", "index": i, "embedding": vector})
    body = {"object": "list", "data": data, "model": "text-embedding-3-small"}
    return Entry(key=key_of_canonical(canonical), endpoint="/v1/embeddings", request=canonical, body=body)


def per_call_us(func: Callable[[], object], repeat: int = 7, budget_s: float = 1.0) -> float:
    number = max(1, int(budget_s / repeat / max(timeit.timeit(func, number=1), 1e-9)))
    return statistics.median(timeit.repeat(func, number=number, repeat=repeat)) / number * 1e6


def main() -> None:
    catalogue()  # built once per process (imports detect-secrets): not part of a check
    cases = [
        ("chat, 1 KB answer", plain_entry(1_000)),
        ("chat, 70 KB answer", plain_entry(70_000)),
        ("chat, 1 MB answer", plain_entry(1_000_000)),
        ("stream, 200 events", streamed_entry(200)),
        ("stream, 2,000 events", streamed_entry(2_000)),
        ("embeddings, 100 x float", embeddings_entry(100, as_base64=False)),
        ("embeddings, 100 x base64", embeddings_entry(100, as_base64=True)),
    ]
    print(f"{'entry':<26}{'JSON bytes':>12}{'catalogue µs':>15}{'old regex µs':>15}{'ratio':>8}")
    for label, entry in cases:
        assert secret_in(entry) is None and old_find(entry) is None  # a clean entry is walked whole
        size = len(json.dumps(entry.to_dict()))
        ours = per_call_us(lambda entry=entry: secret_in(entry))
        old = per_call_us(lambda entry=entry: old_find(entry))
        print(f"{label:<26}{size:>12,}{ours:>15,.0f}{old:>15,.0f}{ours / old:>8.2f}")
    print(f"shapes: {len(catalogue().shapes)} (the old check: {len(OLD_PATTERNS)})")


if __name__ == "__main__":
    main()
