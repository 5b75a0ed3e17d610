"""Any client in any language: the Node openai SDK records and replays through the proxy."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from proxy_support import API_KEY, upstream_calls

SCRIPT = Path(__file__).parent / "node" / "chat.mjs"


def _node_modules() -> Path | None:
    """Where an `openai` npm package is installed: $SEEDREPLAY_NODE_MODULES, else tests/node/node_modules."""
    for candidate in (os.environ.get("SEEDREPLAY_NODE_MODULES"), SCRIPT.parent / "node_modules"):
        if candidate and (Path(candidate) / "openai" / "package.json").is_file():
            return Path(candidate)
    return None


def _run_node(base_url: str, modules: Path) -> list[dict]:
    # ESM resolves packages from the script's folder upwards, so run a copy placed beside node_modules.
    script = modules.parent / "seedreplay-chat.mjs"
    shutil.copyfile(SCRIPT, script)
    env = {**os.environ, "OPENAI_BASE_URL": base_url, "OPENAI_API_KEY": API_KEY}
    done = subprocess.run(["node", str(script)], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


@pytest.mark.skipif(
    shutil.which("node") is None or _node_modules() is None,
    reason="node or the openai npm package is not installed (CI installs it)",
)
def test_node_sdk_records_then_replays_plain_and_streamed(sim, proxy_factory):
    proxy = proxy_factory(sim.url)

    first = _run_node(proxy.url, _node_modules())
    again = _run_node(proxy.url, _node_modules())

    assert [call["cache"] for call in first] == ["miss", "hit"]  # the stream is served from the plain recording
    assert [call["cache"] for call in again] == ["hit", "hit"]
    texts = {call["text"] for call in first + again}
    assert len(texts) == 1 and texts != {""}
    assert upstream_calls(sim) == 1
