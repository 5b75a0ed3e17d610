"""The plugin's settings for one pytest process, read from its options and ini once."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .core.constants import DEFAULT_DRIFT_POLICY
from .policy import Mode


@dataclass
class Settings:
    mode: Mode  # also "off", a string, when a pytest_seedreplay_configure hook sets it so
    cassette_dir: Path
    upstream: str
    anthropic_upstream: str = ""  # where Anthropic's API (/v1/messages) is recorded from ("" : choose as the proxy does)
    drift_policy: str = DEFAULT_DRIFT_POLICY
    keep_failed: bool = False
    run_id: str = ""
    block_network: bool = False  # stop every non-loopback connection, not only OpenAI's (guard.py)
    finetune: str | None = None  # --seedreplay-finetune: the manifest version every live test compares with
    finetune_manifest: Path | None = None  # --seedreplay-finetune-manifest (default: finetunes.json in the cassette dir)
    prices: str | None = None  # --seedreplay-prices / ini / $SEEDREPLAY_PRICES: the table for the money saved
    # Opted in for the whole run (flag, ini, $SEEDREPLAY_MODE), not only per test (marker, fixtures).
    session_wide: bool = False
    # The run's options a printed record command repeats (the upstream, -o seedreplay_...), shell-quoted.
    record_options: str = ""
