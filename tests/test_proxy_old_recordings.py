"""Recordings an older seedreplay made of a 2xx body that is no answer (no `choices`, `output` or
`data` list): the proxy now refuses to record such a body, and one already stored is a corrupt entry,
answered as every other one (503, counted, no traceback), plain or as a stream."""

from __future__ import annotations

import dataclasses
import logging

import openai
import pytest

from pytest_seedreplay.core.constants import HEADER_KEY

from proxy_support import CHAT, MODEL, messages

NOT_AN_ANSWER = {"id": "chatcmpl-old", "object": "chat.completion", "created": 1700000000, "model": MODEL}


@pytest.mark.parametrize("stream", [True, False], ids=["streamed", "plain"])
def test_an_old_recording_without_choices_is_a_corrupt_entry(sim, proxy_factory, caplog, stream):
    proxy = proxy_factory(sim.url, memory_cache=0, mode="replay")
    ask = {"model": MODEL, "messages": messages("an old one"), "seed": 5}
    recorder = proxy_factory(sim.url, cache_dir=proxy.cache_dir)  # the same store, recording
    key = recorder.post(CHAT, ask).headers[HEADER_KEY.lower()]
    stored = recorder.store.get(key)
    assert stored is not None
    recorder.store.put(dataclasses.replace(stored, body=NOT_AN_ANSWER))  # what an older version kept
    caplog.set_level(logging.WARNING)
    client = proxy.client()
    with pytest.raises(openai.APIStatusError) as refused:
        created = client.chat.completions.create(**ask, stream=stream)
        if stream:
            list(created)
    assert refused.value.status_code == 503
    error = refused.value.body
    assert error["code"] == "store_unavailable" and "no `choices` list" in error["message"], error
    stats = proxy.stats()
    assert stats["errors"] >= 1 and stats["store_errors"] >= 1
    assert not [r for r in caplog.records if r.exc_info], [r.getMessage() for r in caplog.records]
