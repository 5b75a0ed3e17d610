"""Reading a streamed miss once (`shapes.summary`) next to today's two passes in the proxy
(`stream_complete` in upstream.py, then `assemble` + `answer_summary` in cache.py `_entry`).

Then large streams (`--large`, on by default): `summary` of a chat stream of 1-16 MB in 8 KB deltas and
of 400 KB in 4-character deltas, next to the floor of the same run: parsing each frame's JSON and
joining the deltas once. Assembly is linear when the ratio stays flat as the size grows.

Run: python benchmarks/stream_summary.py   (expect about 0.5x: one assembly instead of two)
"""

from __future__ import annotations

import json
import statistics
import time
import timeit
from functools import partial

from pytest_seedreplay.core.entry import SSEEvent
from pytest_seedreplay.shapes import answer_summary, assemble, split, stream_complete, summary

CHAT = "/v1/chat/completions"
RESPONSES = "/v1/responses"


def chat_answer(words: int) -> dict:
    text = " ".join(f"word{i}" for i in range(words))
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1700000000,
        "model": "gpt-4o-mini-2024-07-18",
        "system_fingerprint": "fp_1",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text, "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 12, "completion_tokens": words, "total_tokens": 12 + words},
    }


def response_answer(words: int) -> dict:
    text = " ".join(f"word{i}" for i in range(words))
    message = {
        "id": "msg_1",
        "type": "message",
        "status": "completed",
        "role": "assistant",
        "content": [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}],
    }
    return {
        "id": "resp_1",
        "object": "response",
        "created_at": 1700000000,
        "status": "completed",
        "model": "gpt-4.1",
        "output": [message],
        "usage": {"input_tokens": 12, "output_tokens": words, "total_tokens": 12 + words},
    }


def per_call_us(func, budget_s: float = 0.2) -> float:
    """µs per call over one timeit run sized to take about budget_s."""
    number = max(1, int(budget_s / max(timeit.timeit(func, number=3) / 3, 1e-9)))
    return timeit.timeit(func, number=number) / number * 1e6


def paired(before, after, rounds: int = 7) -> tuple[float, float]:
    """Medians over rounds that alternate the two, so a busy machine slows both alike."""
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(rounds):
        times[0].append(per_call_us(before))
        times[1].append(per_call_us(after))
    return statistics.median(times[0]), statistics.median(times[1])


def two_passes(endpoint: str, events: list) -> tuple:
    if not stream_complete(endpoint, events):
        return None, None
    return answer_summary(endpoint, assemble(endpoint, events))


def one_read(endpoint: str, events: list) -> tuple:
    read = summary(endpoint, events=events)
    return (read.model, read.system_fingerprint) if read.complete else (None, None)


def main() -> None:
    print(f"{'stream':<28}{'frames':>8}{'two passes µs':>16}{'summary µs':>13}{'ratio':>8}")
    for label, endpoint, body in (
        ("chat, 50 words", CHAT, chat_answer(50)),
        ("chat, 1,000 words", CHAT, chat_answer(1_000)),
        ("responses, 1,000 words", RESPONSES, response_answer(1_000)),
    ):
        events = split(endpoint, body, True)
        assert two_passes(endpoint, events) == one_read(endpoint, events)
        before, after = paired(partial(two_passes, endpoint, events), partial(one_read, endpoint, events))
        print(f"{label:<28}{len(events):>8}{before:>16.1f}{after:>13.1f}{after / before:>8.2f}")


def delta_stream(size: int, piece: int) -> list[SSEEvent]:
    """A chat stream of `size` characters of text in `piece`-character deltas, [DONE] last."""
    text = ("lorem ipsum dolor sit amet " * (size // 27 + 1))[:size]
    head = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-mini"}
    frames = [{**head, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]}]
    frames += [
        {**head, "choices": [{"index": 0, "delta": {"content": text[at : at + piece]}, "finish_reason": None}]}
        for at in range(0, size, piece)
    ]
    frames.append({**head, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    return [SSEEvent(json.dumps(f)) for f in frames] + [SSEEvent("[DONE]")]


def floor(events: list[SSEEvent]) -> str:
    """The least any assembly does: parse every frame, join the deltas once."""
    parts = []
    for event in events[:-1]:
        choices = json.loads(event.data)["choices"]
        parts.append(choices[0]["delta"].get("content") or "")
    return "".join(parts)


def seconds(func) -> float:
    started = time.perf_counter()
    func()
    return time.perf_counter() - started


def large() -> None:
    print(f"\n{'large stream':<28}{'frames':>9}{'floor ms':>11}{'summary ms':>12}{'ratio':>8}")
    for label, size, piece in (
        ("1 MB in 8 KB deltas", 2**20, 8192),
        ("4 MB in 8 KB deltas", 4 * 2**20, 8192),
        ("16 MB in 8 KB deltas", 16 * 2**20, 8192),
        ("400 KB in 4-char deltas", 400_000, 4),
    ):
        events = delta_stream(size, piece)
        read = summary(CHAT, events=events)
        assert read.complete and read.body["choices"][0]["message"]["content"] == floor(events)
        base = statistics.median(seconds(partial(floor, events)) for _ in range(3))
        ours = statistics.median(seconds(partial(summary, CHAT, events=events)) for _ in range(3))
        print(f"{label:<28}{len(events):>9}{base * 1e3:>11.1f}{ours * 1e3:>12.1f}{ours / base:>8.2f}")


if __name__ == "__main__":
    main()
    large()
