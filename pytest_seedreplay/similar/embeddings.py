"""Optional: embeddings from any OpenAI-compatible `/v1/embeddings` as the score (the guards still decide).

`StoreEmbeddings` asks for one vector per text and keeps each answer in the store as an ordinary
recording of `{"model": M, "input": text}` (the same key the proxy gives that request), so a replay
needs no network, and a vector is fetched once per text whatever process asks. `EmbeddingScorer`
is a `Scorer` for `SimilarIndex(scorer=...)`: the cosine of the two vectors.
"""

from __future__ import annotations

import math
import threading
from typing import Any, Protocol

from ..core.constants import EMBEDDINGS
from ..core.entry import Entry
from ..core.key import canonical_request, key_of_canonical
from .text import Analysis

BATCH = 64  # texts per /v1/embeddings call when several vectors are missing


class Embedder(Protocol):
    def embed(self, texts: list[str]) -> list[list[float]]: ...


class EmbeddingsError(RuntimeError):
    """The embeddings upstream could not give a vector; the message names the model and the upstream."""


class StoreEmbeddings:
    """Vectors from the store when recorded, else from the upstream (then recorded). `offline=True` never calls out."""

    def __init__(
        self, store: Any, model: str, client: Any = None, upstream: str = "", offline: bool = False, namespace: str | None = None
    ):
        self.store = store
        self.namespace = namespace  # whose recordings these are (--isolate-by-auth): their vectors are theirs
        self.model = model
        self.client = client  # an openai.OpenAI (or compatible) client; only needed for texts not yet recorded
        self.upstream = upstream
        self.offline = offline

    def key(self, text: str) -> tuple[str, dict[str, Any]]:
        return embedding_request(self.model, text, self.namespace)

    def embed(self, texts: list[str]) -> list[list[float]]:
        vectors: dict[str, list[float]] = {}
        missing = []
        for text in dict.fromkeys(texts):
            key, _ = self.key(text)
            entry = self.store.get(key)
            vector = vector_of(entry.body) if entry is not None else None
            if vector is None:
                missing.append(text)
            else:
                vectors[text] = vector
        for start in range(0, len(missing), BATCH):
            vectors.update(self._fetch(missing[start : start + BATCH]))
        return [vectors[t] for t in texts]

    def _fetch(self, texts: list[str]) -> dict[str, list[float]]:
        if self.offline or self.client is None:
            raise EmbeddingsError(
                f"no recorded embedding of model {self.model!r} for {len(texts)} question(s), and no upstream to ask "
                "(replay mode): record them first"
            )
        try:
            answer = self.client.embeddings.create(model=self.model, input=texts, encoding_format="float")
        except Exception as exc:  # the SDK's errors: connection, status, timeout
            raise EmbeddingsError(
                f"embeddings of model {self.model!r} from {self.upstream or 'the upstream'} failed: {exc}"
            ) from exc
        found = {}
        for item in answer.data:
            text = texts[item.index]
            found[text] = list(item.embedding)
            self.store.put(embedding_entry(self.model, text, found[text], answer.model, self.upstream, self.namespace))
        return found


def embedding_request(model: str, text: str, namespace: str | None = None) -> tuple[str, dict[str, Any]]:
    """(key, canonical request) of one text's vector: the key the proxy gives `{"model": M, "input": text}`
    asked by a caller of `namespace` (--isolate-by-auth; None: no isolation)."""
    canonical = canonical_request(EMBEDDINGS, {"model": model, "input": text})
    return key_of_canonical(canonical, namespace), canonical


def embedding_entry(
    model: str, text: str, vector: list[float], answered_by: str | None, upstream: str, namespace: str | None = None
) -> Entry:
    """One text's vector as an ordinary embeddings recording of a caller of `namespace` (replayable by
    the proxy's exact tier too, for that caller only)."""
    key, canonical = embedding_request(model, text, namespace)
    body = {
        "object": "list",
        "model": answered_by or model,
        "data": [{"object": "embedding", "index": 0, "embedding": vector}],
        "usage": {"prompt_tokens": 0, "total_tokens": 0},
    }
    return Entry(key=key, endpoint=EMBEDDINGS, request=canonical, body=body, upstream=upstream, model=answered_by or model)


def vector_of(body: Any, index: int = 0) -> list[float] | None:
    """The float vector at `index` of an embeddings answer, or None when it is not one."""
    try:
        vector = body["data"][index]["embedding"]
    except (KeyError, IndexError, TypeError):
        return None
    if (
        not isinstance(vector, list)
        or not vector
        or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in vector)
    ):
        return None
    return vector


def cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norm if norm else 0.0


class EmbeddingScorer:
    """Cosine similarity of embedding vectors; vectors kept in memory once fetched."""

    def __init__(self, embedder: Embedder, model: str = ""):
        self.embedder = embedder
        self.name = f"embeddings:{model or getattr(embedder, 'model', '')}"
        self._vectors: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    def prepare(self, analyses: list[Analysis]) -> None:
        """Fetch the vectors of recorded questions as they are indexed (one call for many)."""
        self._ensure([a.text for a in analyses])

    def score(self, query: Analysis, recorded: Analysis) -> float:
        self._ensure([query.text, recorded.text])
        return max(0.0, cosine(self._vectors[query.text], self._vectors[recorded.text]))

    def _ensure(self, texts: list[str]) -> None:
        with self._lock:
            missing = [t for t in dict.fromkeys(texts) if t not in self._vectors]
        if missing:
            vectors = self.embedder.embed(missing)
            with self._lock:
                self._vectors.update(zip(missing, vectors))
