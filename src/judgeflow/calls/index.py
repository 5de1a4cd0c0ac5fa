"""Dense retrieval over any `Embedder`: the corpus embedded once, queries ranked by cosine similarity.

Every embedding call goes through the run's `CallContext` (budget, the embedder's gate, the ledger) and is timed
here (`judgeflow.calls.timing`), as the retriever actor does not see the calls its index makes.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from judgeflow.calls.context import CallContext
from judgeflow.calls.timing import timed_call
from judgeflow.core.text import Chunk, chunk_document
from judgeflow.protocol.messages import Document, Passage
from judgeflow.protocol.models import Embedder

__all__ = ["EmbeddingIndex"]


class EmbeddingIndex:
    """A `SearchIndex` over an `Embedder`: chunks embedded once, queries ranked by cosine similarity.

    Build it with `EmbeddingIndex.build`, which embeds every chunk through the gate in batches of ``batch_size``.
    A search embeds the query (one call) and returns the ``k`` most similar chunks, best first; equal scores keep
    chunk order. Unlike BM25 it always returns ``k`` passages when there are that many chunks.
    """

    def __init__(
        self,
        chunks: Sequence[Chunk],
        vectors: npt.NDArray[np.float64],
        embedder: Embedder,
        *,
        context: CallContext,
        actor: str = "retriever",
        name: str | None = None,
    ) -> None:
        if vectors.shape[0] != len(chunks):
            raise ValueError(f"{len(chunks)} chunks but {vectors.shape[0]} vectors")
        self.chunks = tuple(chunks)
        self._unit = _normalise(vectors)
        self.embedder = embedder
        self.context = context
        self.actor = actor
        self.name = name or embedder.name

    @classmethod
    async def build(
        cls,
        documents: Sequence[Document],
        embedder: Embedder,
        *,
        context: CallContext,
        chunk_words: int = 80,
        batch_size: int = 64,
        actor: str = "retriever",
        name: str | None = None,
    ) -> EmbeddingIndex:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        chunks = [chunk for doc in documents for chunk in chunk_document(doc, max_words=chunk_words)]
        rows: list[list[float]] = []
        for start in range(0, len(chunks), batch_size):
            rows.extend(await _embed(context, embedder, [c.text for c in chunks[start : start + batch_size]], actor))
        vectors = np.asarray(rows, dtype=np.float64) if rows else np.zeros((0, 0), dtype=np.float64)
        return cls(chunks, vectors, embedder, context=context, actor=actor, name=name)

    def __len__(self) -> int:
        return len(self.chunks)

    async def search(self, query: str, *, k: int) -> list[Passage]:
        if k <= 0 or not self.chunks:
            return []
        (vector,) = await _embed(self.context, self.embedder, [query], self.actor)
        scores = self._unit @ _normalise(np.asarray([vector], dtype=np.float64))[0]
        order = np.lexsort((np.arange(len(scores)), -scores))[:k]
        return [
            Passage(chunk_id=self.chunks[i].id, doc_id=self.chunks[i].doc_id, text=self.chunks[i].text, score=float(s))
            for i, s in ((int(i), scores[i]) for i in order)
        ]


def _normalise(vectors: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Rows scaled to unit length (an all-zero row stays zero and scores 0 against everything)."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    unit: npt.NDArray[np.float64] = np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)
    return unit


async def _embed(context: CallContext, embedder: Embedder, texts: list[str], actor: str) -> list[list[float]]:
    done = await timed_call(
        lambda: context.embed(embedder, texts), publish=context.publish, actor=actor, model=embedder.name
    )
    return done.vectors
