"""How long the live verdict takes per answer (`drift.compare`: verdict, differences, similarity),
next to what the comparison cost before verdicts: the answers' parts checked for equality and a
word similarity, from the same run.

Run: python benchmarks/drift_verdict.py   (target: < 1 ms per answer of ordinary size)
"""

from __future__ import annotations

import json
import random
import statistics
import timeit
from pathlib import Path
from typing import Any

from pytest_seedreplay.core.entry import Entry
from pytest_seedreplay.core.key import canonical_request, key_of_canonical
from pytest_seedreplay.drift import compare, text_similarity
from pytest_seedreplay.shapes import answer_parts, answer_text

# Ordinary prose: the simulator's own corpus, 250 words of it.
PROSE = " ".join((Path(__file__).resolve().parent.parent / "proxy" / "sim" / "corpus.txt").read_text().split()[:250])


def chat(text: str, calls: list[tuple[str, dict]] | None = None) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": text, "refusal": None}
    if calls:
        message["tool_calls"] = [
            {"id": f"call_{n}", "type": "function", "function": {"name": name, "arguments": json.dumps(args)}}
            for n, (name, args) in enumerate(calls)
        ]
    return {"id": "chatcmpl-x", "object": "chat.completion", "created": 1, "model": "gpt-4o-mini",
            "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls" if calls else "stop"}]}  # fmt: skip


def entry(endpoint: str, request: dict[str, Any], body: dict[str, Any]) -> Entry:
    canonical = canonical_request(endpoint, request)
    return Entry(key=key_of_canonical(canonical), endpoint=endpoint, request=canonical, body=body)


def cases() -> list[tuple[str, Entry, Entry]]:
    """(label, recorded, live): a ~250-word reworded chat answer, parallel tool calls in another
    order, a structured answer, a Messages answer cut short, and 1536-dimension embeddings."""
    rng = random.Random(1)
    question = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Tell me about tides."}], "seed": 1}
    long_old = PROSE
    long_new = PROSE.replace("small", "little").replace("tests", "checks")
    tools = [("get_weather", {"city": "Paris", "days": 3}), ("get_time", {"city": "Oslo"})]
    as_json = {**question, "response_format": {"type": "json_object"}}
    doc = {"name": "boat", "price": 12.5, "tags": ["sail", "rope"], "owner": {"name": "Ann", "age": 40}}
    other = {**doc, "price": "12.5", "owner": {"name": "Bo"}}
    anthropic = {"model": "claude-3-5-haiku-latest", "max_tokens": 300, "messages": question["messages"]}

    def message(text: str, reason: str) -> dict[str, Any]:
        return {"id": "msg_x", "type": "message", "role": "assistant", "content": [{"type": "text", "text": text}],
                "stop_reason": reason, "usage": {}}  # fmt: skip

    vector = [rng.uniform(-1, 1) for _ in range(1536)]
    moved = [v + rng.uniform(-0.05, 0.05) for v in vector]
    embed = {"model": "text-embedding-3-small", "input": "tides"}

    def embedding(values: list[float]) -> dict[str, Any]:
        return {"object": "list", "data": [{"object": "embedding", "index": 0, "embedding": values}]}

    url, messages_url, embeddings_url = "/v1/chat/completions", "/v1/messages", "/v1/embeddings"
    return [
        ("chat, 250 words reworded", entry(url, question, chat(long_old)), entry(url, question, chat(long_new))),
        ("chat, parallel calls swapped", entry(url, question, chat("", tools)), entry(url, question, chat("", tools[::-1]))),
        ("chat, JSON of another shape", entry(url, as_json, chat(json.dumps(doc))), entry(url, as_json, chat(json.dumps(other)))),
        ("messages, cut by max_tokens", entry(messages_url, anthropic, message(long_old, "end_turn")),
         entry(messages_url, anthropic, message(long_old[:400], "max_tokens"))),
        ("embeddings, 1536 dims", entry(embeddings_url, embed, embedding(vector)),
         entry(embeddings_url, embed, embedding(moved))),
    ]  # fmt: skip


def before(recorded: Entry, live: Entry) -> float:
    """The comparison as it was: parts equal, else a word similarity of the texts a person reads."""
    if answer_parts(live.endpoint, recorded.body) == answer_parts(live.endpoint, live.body):
        return 1.0
    return text_similarity(answer_text(live.endpoint, recorded.body), answer_text(live.endpoint, live.body))


def per_call_us(func: Any, repeat: int = 7, budget_s: float = 1.5) -> float:
    """Median µs per call over `repeat` timeit runs, each sized to take about budget_s / repeat."""
    number = max(1, int(budget_s / repeat / max(timeit.timeit(func, number=3) / 3, 1e-9)))
    return statistics.median(timeit.repeat(func, number=number, repeat=repeat)) / number * 1e6


def main() -> None:
    print(f"{'answer':<32}{'verdict':>10}{'verdict µs':>12}{'before µs':>11}  differences")
    for label, recorded, live in cases():
        drift = compare(recorded, live)
        ours = per_call_us(lambda r=recorded, lv=live: compare(r, lv))
        plain = per_call_us(lambda r=recorded, lv=live: before(r, lv))
        shown = "; ".join(drift.differences) or "-"
        print(f"{label:<32}{drift.verdict:>10}{ours:>12.0f}{plain:>11.0f}  {shown}")
    print("target: < 1000 µs per answer")


if __name__ == "__main__":
    main()
