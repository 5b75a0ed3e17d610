"""The text a person reads of a request: the whole prompt, the line it is recognised by, excerpts."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from pytest_seedreplay.core.key import canonical_request
from pytest_seedreplay.shapes import excerpt, prompt_line, prompt_text, words

CHAT = "/v1/chat/completions"
CONVERSATION = {
    "model": "gpt-4o-mini",
    "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": [{"type": "text", "text": "What is in"}, {"type": "image_url", "image_url": {"url": "x"}}]},
    ],
    "seed": 1,
}


def test_prompt_text_reads_like_the_conversation():
    assert prompt_text(canonical_request(CHAT, CONVERSATION)) == (
        "system: Be brief.\nuser: Hi\nassistant: Hello!\nuser: What is in [image_url]"
    )


def test_prompt_text_shows_list_inputs_as_they_were_sent():
    assert (
        prompt_text(canonical_request("/v1/embeddings", {"model": "m", "input": ["alpha", "beta gamma"]}))
        == 'input: ["alpha", "beta gamma"]'
    )
    messages = [{"role": "system", "content": "Be kind"}, {"role": "user", "content": [{"type": "input_text", "text": "Hi"}]}]
    assert prompt_text(canonical_request("/v1/responses", {"model": "m", "input": messages})) == "system: Be kind\nuser: Hi"
    request = {"model": "m", "input": "Hi", "instructions": "Be kind"}
    assert prompt_text(canonical_request("/v1/responses", request)) == "instructions: Be kind\ninput: Hi"


def test_prompt_line_is_the_last_user_message_or_the_prompt():
    assert prompt_line(canonical_request(CHAT, CONVERSATION)) == "What is in [image_url]"
    assert prompt_line(canonical_request("/v1/completions", {"model": "m", "prompt": "Once upon"})) == "Once upon"
    assert prompt_line(canonical_request("/v1/embeddings", {"model": "m", "input": ["alpha", "beta"]})) == "beta"
    turns = [{"role": "user", "content": "Question?"}, {"role": "assistant", "content": "Answer."}]
    assert prompt_line(canonical_request("/v1/responses", {"model": "m", "input": turns})) == "Question?"
    assert prompt_line(canonical_request("/v1/embeddings", {"model": "m", "input": [[1, 2, 3]]})) == ""


def test_excerpt_keeps_one_line_and_cuts_at_a_word():
    assert excerpt("What is the capital of France? Answer in one word please.", 40) == "What is the capital of France? Answer…"
    assert excerpt("  several\n\nlines \t here ") == "several lines here"
    assert excerpt("x" * 50, 10) == "x" * 9 + "…"  # one long word: cut inside it
    assert excerpt("short", 5) == "short"


@given(st.text(max_size=300), st.integers(1, 200))
def test_an_excerpt_never_passes_its_width_and_starts_like_the_text(text, width):
    cut = excerpt(text, width)
    flat = " ".join(text.split())
    assert len(cut) <= width
    assert cut == flat or (cut.endswith("…") and flat.startswith(cut[:-1].rstrip()))


@given(st.text(max_size=100))
def test_words_join_back_into_the_text(text):
    pieces = words(text)
    assert "".join(pieces) == text
    assert all(piece.strip() == "" or not piece.rstrip().count(" ") for piece in pieces)
