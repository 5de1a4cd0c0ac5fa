"""Dense retrieval on a CPU: all-MiniLM-L6-v2 sentence embeddings, as an alternative to BM25.

`MiniLMEmbedder` implements the :class:`~judgeflow.protocol.models.Embedder` seam (so it plugs into
`judgeflow.calls.roles.EmbeddingIndex` like a provider's embeddings model); `MiniLMIndex` is a self-contained
:class:`~judgeflow.protocol.models.SearchIndex` over document chunks, built like `BM25Index.from_documents`.
Vectors are the mean of the token vectors, L2-normalised: the sentence-transformers recipe the model was
trained with, so cosine similarity is a dot product.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

import anyio.to_thread
import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F

from judgeflow.core.text import Chunk, chunk_document
from judgeflow.protocol.calls import ErrorDecision, LimitKey
from judgeflow.protocol.messages import Document, Passage

from .encoder import MiniLMEncoder, PairTokenizer, length_batches, load_pretrained_encoder, mean_pool, minilm_dir
from .runtime import torch_threads

__all__ = ["MiniLMEmbedder", "MiniLMIndex"]

Matrix = npt.NDArray[np.float32]


class MiniLMEmbedder:
    """Sentence embeddings (384 numbers, unit length) from the installed all-MiniLM-L6-v2 weights.

    ``embed_sync`` does the work; ``embed`` runs it in a worker thread. Texts longer than ``max_length``
    tokens are cut (the model was trained on 128-token inputs, 256 at most).
    """

    def __init__(
        self,
        *,
        name: str = "all-MiniLM-L6-v2",
        threads: int = 1,
        batch_size: int = 32,
        max_length: int = 256,
        weights: Path | None = None,
    ) -> None:
        folder = weights if weights is not None else minilm_dir()
        self.name = name
        self.key = LimitKey("local", "embeddings", name)
        self.threads = threads
        self.batch_size = batch_size
        self.encoder: MiniLMEncoder = load_pretrained_encoder(folder)
        self.tokenizer = PairTokenizer(folder / "tokenizer.json", max_length=max_length)
        self._lock = threading.Lock()

    @property
    def dimension(self) -> int:
        return self.encoder.config.hidden

    def embed_sync(self, texts: Sequence[str]) -> Matrix:
        """A ``len(texts) x dimension`` float32 matrix of unit vectors."""
        out: Matrix = np.zeros((len(texts), self.dimension), dtype=np.float32)
        if not texts:
            return out
        rows = [self.tokenizer.single(text) for text in texts]
        with self._lock, torch_threads(self.threads), torch.inference_mode():
            for batch in length_batches([len(ids) for ids, _ in rows], self.batch_size):
                tokens = self.tokenizer.pad([rows[i] for i in batch])
                pooled = mean_pool(self.encoder(tokens.ids, tokens.types, tokens.mask), tokens.mask)
                out[batch] = F.normalize(pooled, dim=-1).numpy()
        return out

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        vectors = await anyio.to_thread.run_sync(self.embed_sync, list(texts))
        rows: list[list[float]] = vectors.astype(np.float64).tolist()
        return rows

    def classify(self, error: BaseException) -> ErrorDecision:
        # A local model does not fail transiently: retrying the same input gives the same error.
        return ErrorDecision("fatal", f"{type(error).__name__}: {error}")


class MiniLMIndex:
    """Chunks ranked by cosine similarity of MiniLM embeddings to the query, best first (ties: chunk order)."""

    def __init__(self, chunks: Sequence[Chunk], embedder: MiniLMEmbedder, *, name: str = "minilm") -> None:
        self.name = name
        self.chunks: tuple[Chunk, ...] = tuple(chunks)
        self.embedder = embedder
        self.vectors = embedder.embed_sync([chunk.text for chunk in self.chunks])

    @classmethod
    def from_documents(
        cls,
        docs: Sequence[Document],
        *,
        max_words: int = 80,
        embedder: MiniLMEmbedder | None = None,
        name: str = "minilm",
    ) -> MiniLMIndex:
        """Chunk every document (sentence-aware, ``max_words`` per chunk) and embed the chunks (CPU work: call
        it from a worker thread in an async program)."""
        chunks = [chunk for doc in docs for chunk in chunk_document(doc, max_words=max_words)]
        return cls(chunks, embedder if embedder is not None else MiniLMEmbedder(), name=name)

    def __len__(self) -> int:
        return len(self.chunks)

    def search_sync(self, query: str, k: int) -> list[Passage]:
        if k <= 0 or not self.chunks:
            return []
        scores = self.vectors @ self.embedder.embed_sync([query])[0]
        order = np.lexsort((np.arange(len(scores)), -scores))[:k]
        return [
            Passage(
                chunk_id=self.chunks[int(i)].id,
                doc_id=self.chunks[int(i)].doc_id,
                text=self.chunks[int(i)].text,
                score=float(scores[int(i)]),
            )
            for i in order
        ]

    async def search(self, query: str, *, k: int) -> list[Passage]:
        return await anyio.to_thread.run_sync(self.search_sync, query, k)
