"""The simulator's settings, shared by the app factory, the CLI and the test fixtures."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass
class SimConfig:
    latency_ms: float = 0  # added before the first byte / first token of every inference answer
    tokens_per_s: float = 0  # stream pacing; 0 = as fast as possible
    drift: str = ""  # salt: a non-empty value changes every output and system_fingerprint
    job_seconds: float = 2.0  # how long a fine-tuning job takes from creation to success
    fault_rate: float = 0.0  # probability that a /v1 request fails with 500, 429 or 503
    require_auth: bool = False  # 401 for /v1 requests without `Authorization: Bearer ...`
    state_dir: str | Path | None = None  # files, jobs and fine-tuned models persist here when set
    strict_models: bool = False  # 404 for a model name outside the catalogue (default: any name answers)
