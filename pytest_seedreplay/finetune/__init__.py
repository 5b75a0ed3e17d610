"""Fine-tune as cache: recorded answers -> a seeded fine-tune that recalls them -> a check that it does.

export (recordings -> validated chat fine-tuning JSONL), jobs (upload, create, follow, cancel on any
OpenAI-compatible provider), manifest (`cassettes/finetunes.json`, one version per fine-tune),
verify (verbatim recall with and without the seed, and on paraphrases).
"""

from .manifest import DEFAULT_MANIFEST, Manifest, ManifestError, Version
from .validate import Validation, validate_examples, validate_file

__all__ = ["DEFAULT_MANIFEST", "Manifest", "ManifestError", "Validation", "Version", "validate_examples", "validate_file"]
