"""Okapi BM25 over sentence-aware chunks: the offline stand-in for an embedding search.

BM25 is what a retrieval baseline looks like in practice: cheap, deterministic and good at exact matches
(names, years), weak at paraphrase. That weakness is useful here, because a question whose words differ from
its source sentence sometimes retrieves the wrong chunk, and the answers downstream vary in quality for the
same reason they would with a real retriever.

The index is built once (per-term, per-chunk BM25 weights precomputed into a sparse term x chunk matrix), so a
query is a sum of a few sparse rows. Scores use the Lucene form of the IDF, ``log(1 + (N - n + 0.5) / (n +
0.5))``, which never goes negative for terms in more than half of the chunks. Query terms count once each
(repeating a word in a question does not make it more important). Ties are broken by chunk order, so the same
query always returns the same passages.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from scipy import sparse

from judgeflow.core.text import Chunk, chunk_document, content_words
from judgeflow.protocol.messages import Document, Passage

__all__ = ["BM25Index"]


class BM25Index:
    """Okapi BM25 (``k1=1.5``, ``b=0.75`` by default) over a fixed list of chunks.

    Tokens are the stemmed content words of :mod:`judgeflow.core.text`, so a question and the
    chunk it was written from agree on what counts as the same word.
    """

    def __init__(self, chunks: Sequence[Chunk], *, k1: float = 1.5, b: float = 0.75, name: str = "bm25") -> None:
        if k1 < 0 or not 0 <= b <= 1:
            raise ValueError(f"need k1 >= 0 and 0 <= b <= 1, got k1={k1}, b={b}")
        self.name = name
        self.k1 = k1
        self.b = b
        self.chunks: tuple[Chunk, ...] = tuple(chunks)
        self.vocabulary: dict[str, int] = {}
        counts = [Counter(content_words(chunk.text)) for chunk in self.chunks]
        rows: list[int] = []
        cols: list[int] = []
        tfs: list[float] = []
        for col, counter in enumerate(counts):
            for term, tf in counter.items():
                rows.append(self.vocabulary.setdefault(term, len(self.vocabulary)))
                cols.append(col)
                tfs.append(float(tf))
        n_chunks = len(self.chunks)
        lengths = np.array([sum(c.values()) for c in counts], dtype=np.float64)
        avgdl = float(lengths.mean()) if n_chunks and lengths.sum() > 0 else 1.0
        row_idx = np.array(rows, dtype=np.int64)
        col_idx = np.array(cols, dtype=np.int64)
        tf_arr = np.array(tfs, dtype=np.float64)
        df = np.bincount(row_idx, minlength=len(self.vocabulary)).astype(np.float64)
        self.idf: npt.NDArray[np.float64] = np.log1p((n_chunks - df + 0.5) / (df + 0.5))
        norm = k1 * (1.0 - b + b * lengths[col_idx] / avgdl) if n_chunks else tf_arr
        weights = self.idf[row_idx] * tf_arr * (k1 + 1.0) / (tf_arr + norm)
        self._weights = sparse.csr_matrix(
            (weights, (row_idx, col_idx)), shape=(len(self.vocabulary), n_chunks), dtype=np.float64
        )

    @classmethod
    def from_documents(cls, docs: Sequence[Document], *, max_words: int = 80, name: str = "bm25") -> BM25Index:
        """Chunk every document (sentence-aware, ``max_words`` per chunk) and index the chunks."""
        chunks = [chunk for doc in docs for chunk in chunk_document(doc, max_words=max_words)]
        return cls(chunks, name=name)

    def __len__(self) -> int:
        return len(self.chunks)

    def scores(self, query: str) -> npt.NDArray[np.float64]:
        """The BM25 score of every chunk for ``query`` (zero where no query term occurs)."""
        terms = sorted({self.vocabulary[t] for t in content_words(query) if t in self.vocabulary})
        if not terms or not self.chunks:
            return np.zeros(len(self.chunks), dtype=np.float64)
        summed = self._weights[terms].sum(axis=0)
        return np.asarray(summed, dtype=np.float64).ravel()

    def search_sync(self, query: str, k: int) -> list[Passage]:
        """The ``k`` best chunks as passages, best first; chunks that share no term with the query are left
        out (so fewer than ``k`` may come back). Equal scores keep chunk order."""
        if k <= 0:
            return []
        scores = self.scores(query)
        order = np.lexsort((np.arange(len(scores)), -scores))
        passages = []
        for idx in order[:k]:
            score = float(scores[idx])
            if score <= 0.0 or math.isnan(score):
                break
            chunk = self.chunks[int(idx)]
            passages.append(Passage(chunk_id=chunk.id, doc_id=chunk.doc_id, text=chunk.text, score=score))
        return passages

    async def search(self, query: str, *, k: int) -> list[Passage]:
        """:meth:`search_sync` behind the async :class:`~judgeflow.protocol.models.SearchIndex` seam; a query
        over a few hundred chunks takes microseconds, so it runs inline rather than in a thread."""
        return self.search_sync(query, k)
