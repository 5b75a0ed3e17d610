"""Fine-tune as cache: recorded answers -> a seeded fine-tune that recalls them -> a check that it does.

export (recordings -> validated chat fine-tuning JSONL), jobs (upload, create, follow, cancel on any
OpenAI-compatible provider), manifest (`cassettes/finetunes.json`, one version per fine-tune),
verify (verbatim recall with and without the seed, and on paraphrases), serving (a version as the
proxy's learned tier), live (pytest's live comparison of a fine-tune with the cassettes).

Names are imported on first use: the pytest plugin reaches `live` at every start and must stay cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["DEFAULT_MANIFEST", "Manifest", "ManifestError", "Validation", "Version", "validate_examples", "validate_file"]

_WHERE = {
    "DEFAULT_MANIFEST": ".manifest",
    "Manifest": ".manifest",
    "ManifestError": ".manifest",
    "Version": ".manifest",
    "Validation": ".validate",
    "validate_examples": ".validate",
    "validate_file": ".validate",
}

if TYPE_CHECKING:
    from .manifest import DEFAULT_MANIFEST, Manifest, ManifestError, Version
    from .validate import Validation, validate_examples, validate_file


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        import importlib

        value = getattr(importlib.import_module(_WHERE[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
