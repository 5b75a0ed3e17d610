"""Similar questions: a recorded answer for a reworded question, never for a different one.

`SimilarIndex` holds recorded chat requests and answers `lookup(canonical)` with the `Match` of a
recording whose last user message is a rewording of the new one (same everything else); `explain`
tells why two questions match or which guard keeps them apart. See README "Similar questions".
"""

from .calibrate import Calibration, calibration_path, load_calibration
from .embeddings import EmbeddingScorer, StoreEmbeddings
from .index import DEFAULT_THRESHOLD, Match, SimilarIndex, split_request
from .measure import Verdict, explain

__all__ = [
    "DEFAULT_THRESHOLD",
    "Calibration",
    "EmbeddingScorer",
    "Match",
    "SimilarIndex",
    "StoreEmbeddings",
    "Verdict",
    "calibration_path",
    "explain",
    "load_calibration",
    "split_request",
]
