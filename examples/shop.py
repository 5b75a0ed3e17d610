"""The application under test: a shop assistant answering customers' questions with the OpenAI API.

It builds its client at import time, as many applications do: the pytest plugin has already pointed
OPENAI_BASE_URL at its proxy by then, so every call is recorded, replayed or compared.
"""

from __future__ import annotations

import openai

MODEL = "gpt-4o-mini-2024-07-18"  # the base model of the example fine-tune (cassettes/finetunes.json)
SEED = 7
SYSTEM = "You are the shop's helpful assistant."

client = openai.OpenAI(max_retries=0)


def answer(question: str, stream: bool = False) -> str:
    """The assistant's answer to one customer question."""
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": question}]
    reply = client.chat.completions.create(model=MODEL, messages=messages, seed=SEED, stream=stream)
    if stream:
        return "".join(chunk.choices[0].delta.content or "" for chunk in reply if chunk.choices)
    return reply.choices[0].message.content or ""
