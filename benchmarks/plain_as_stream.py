"""A plain recording served as a stream: `split` + `format_sse` (what `proxy/answers.py` does for a
client asking `stream: true` of a plain recording), for chat, responses and messages, next to the
baseline of the same run: the split that streams a word a delta whatever the text's size (as it did
before long texts were cut into deltas of a few KB).

Run: python benchmarks/plain_as_stream.py   (the baseline's events grow with the text; ours stay ~1,000 at most)
"""

from __future__ import annotations

import statistics
import time
from contextlib import contextmanager
from functools import partial

from pytest_seedreplay.shapes import chat, completions, format_sse, messages, pieces, responses, split

CHAT, RESPONSES, MESSAGES = "/v1/chat/completions", "/v1/responses", "/v1/messages"
SPLITTERS = (chat, completions, responses, messages)


def body(endpoint: str, text: str) -> dict:
    if endpoint == CHAT:
        return {
            "id": "c",
            "object": "chat.completion",
            "created": 1,
            "model": "gpt-4o-mini",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        }
    if endpoint == RESPONSES:
        return {
            "id": "r",
            "object": "response",
            "status": "completed",
            "model": "gpt-4o-mini",
            "output": [
                {
                    "type": "message",
                    "id": "m",
                    "role": "assistant",
                    "content": [{"type": "output_text", "text": text, "annotations": []}],
                }
            ],
        }
    return {
        "id": "m",
        "type": "message",
        "role": "assistant",
        "model": "claude",
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn",
        "usage": {"input_tokens": 1, "output_tokens": 1},
    }


@contextmanager
def word_per_delta():
    """The baseline: every endpoint's split streams a word a delta, however long the text."""
    saved = [module.words for module in SPLITTERS]
    for module in SPLITTERS:
        module.words = pieces._WORD.findall
    try:
        yield
    finally:
        for module, words in zip(SPLITTERS, saved):
            module.words = words


def render(endpoint: str, answer: dict) -> tuple[int, int]:
    events = split(endpoint, answer, False)
    return len(events), len(format_sse(events))


def seconds(func, rounds: int = 3) -> float:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        func()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    print(f"{'plain recording as a stream':<30}{'events':>9}{'ms':>9}{'baseline events':>17}{'baseline ms':>13}")
    for endpoint in (CHAT, RESPONSES, MESSAGES):
        for label, words in (("100 KB", 12_500), ("1.6 MB", 200_000)):
            answer = body(endpoint, "".join(f"w{i:06d} " for i in range(words))[: words * 8])
            events, _ = render(endpoint, answer)
            ours = seconds(partial(render, endpoint, answer))
            with word_per_delta():
                base_events, _ = render(endpoint, answer)
                base = seconds(partial(render, endpoint, answer), rounds=1)
            name = f"{endpoint.split('/')[2]} {label}"
            print(f"{name:<30}{events:>9}{ours * 1e3:>9.1f}{base_events:>17}{base * 1e3:>13.1f}")


if __name__ == "__main__":
    main()
