"""How long one request key takes, next to the plain `sha256(json.dumps(body, sort_keys=True))`.

Run: python benchmarks/key_speed.py   (target: <= 20 µs per key for a ~1 KB chat request)
"""

from __future__ import annotations

import hashlib
import json
import statistics
import timeit

from pytest_seedreplay.core.key import request_key

CHAT = "/v1/chat/completions"


def chat_request(size: int) -> dict:
    """A realistic chat body of about `size` bytes of JSON: system prompt, alternating turns."""
    body = {
        "model": "gpt-4o-mini",
        "seed": 42,
        "temperature": 0.2,
        "max_completion_tokens": 256,
        "stream": True,
        "stream_options": {"include_usage": True},
        "messages": [{"role": "system", "content": "You are a careful assistant. Answer briefly and cite sources."}],
    }
    turn = 0
    while len(json.dumps(body)) < size:
        role = "user" if turn % 2 == 0 else "assistant"
        text = f"Turn {turn}: tell me about the tides, the moon and the waves on a calm evening."
        body["messages"].append({"role": role, "content": text})
        turn += 1
    return body


def per_call_us(func, repeat: int, budget_s: float) -> float:
    """Median µs per call over `repeat` timeit runs, each sized to take about budget_s / repeat."""
    number = max(1, int(budget_s / repeat / max(timeit.timeit(func, number=3) / 3, 1e-9)))
    runs = timeit.repeat(func, number=number, repeat=repeat)
    return statistics.median(runs) / number * 1e6


def plain_key(body: dict) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def main() -> None:
    print(f"{'request':<10}{'bytes':>8}{'seedreplay µs/key':>20}{'plain sha256(json) µs':>24}{'ratio':>8}")
    for label, size in (("~1 KB", 1_000), ("~100 KB", 100_000)):
        body = chat_request(size)
        ours = per_call_us(lambda body=body: request_key(CHAT, body), repeat=7, budget_s=2.0)
        plain = per_call_us(lambda body=body: plain_key(body), repeat=7, budget_s=2.0)
        print(f"{label:<10}{len(json.dumps(body)):>8}{ours:>20.2f}{plain:>24.2f}{ours / plain:>8.2f}")
    print("target: <= 20 µs per key for the ~1 KB request")


if __name__ == "__main__":
    main()
