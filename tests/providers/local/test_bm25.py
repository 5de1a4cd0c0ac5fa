"""BM25 retrieval: the right chunk first, the textbook formula, stable order."""

from __future__ import annotations

import math

import pytest

from judgeflow.core.text import Chunk, content_words
from judgeflow.protocol.messages import Document
from judgeflow.protocol.models import SearchIndex
from judgeflow.providers.local.bm25 import BM25Index

CHUNKS = [
    Chunk(id="a#0", doc_id="a", text="The Golden Gate Bridge opened in 1937 across the strait."),
    Chunk(id="a#1", doc_id="a", text="An earthquake and fire destroyed the city in 1906."),
    Chunk(id="b#0", doc_id="b", text="The city hosted the Olympic Games. The games were a success."),
    Chunk(id="b#1", doc_id="b", text="A bridge over the river opened, and a new bridge followed."),
]


def _brute_force(chunks: list[Chunk], query: str, *, k1: float = 1.5, b: float = 0.75) -> list[float]:
    """Okapi BM25 written out term by term, straight from the formula."""
    docs = [content_words(c.text) for c in chunks]
    n = len(docs)
    avgdl = sum(len(d) for d in docs) / n
    scores = []
    for doc in docs:
        score = 0.0
        for term in set(content_words(query)):
            tf = doc.count(term)
            df = sum(1 for d in docs if term in d)
            if tf == 0:
                continue
            idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
            score += idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * len(doc) / avgdl))
        scores.append(score)
    return scores


def test_an_obviously_relevant_chunk_ranks_first() -> None:
    index = BM25Index(CHUNKS)
    passages = index.search_sync("When did the Golden Gate Bridge open?", 2)
    assert [p.chunk_id for p in passages] == ["a#0", "b#1"]
    assert passages[0].score > passages[1].score > 0
    assert passages[0].text == CHUNKS[0].text
    assert passages[0].doc_id == "a"


@pytest.mark.parametrize(
    "query", ["bridge opened", "city fire 1906", "Olympic games games", "the city", "bridge bridge river"]
)
def test_scores_match_the_formula(query: str) -> None:
    index = BM25Index(CHUNKS)
    assert index.scores(query).tolist() == pytest.approx(_brute_force(CHUNKS, query))


def test_other_parameters_match_the_formula_too() -> None:
    index = BM25Index(CHUNKS, k1=0.9, b=0.4)
    assert index.scores("bridge city").tolist() == pytest.approx(_brute_force(CHUNKS, "bridge city", k1=0.9, b=0.4))


def test_ties_keep_chunk_order() -> None:
    twins = [Chunk(id=f"t#{i}", doc_id="t", text="The harbour froze.") for i in range(4)]
    index = BM25Index(twins)
    assert [p.chunk_id for p in index.search_sync("harbour", 3)] == ["t#0", "t#1", "t#2"]


def test_chunks_without_a_query_term_are_left_out() -> None:
    index = BM25Index(CHUNKS)
    assert [p.chunk_id for p in index.search_sync("earthquake", 5)] == ["a#1"]
    assert index.search_sync("zeppelin", 5) == []
    assert index.search_sync("the of and", 5) == []  # stopwords only
    assert index.search_sync("bridge", 0) == []


def test_an_empty_index_finds_nothing() -> None:
    index = BM25Index([])
    assert len(index) == 0
    assert index.search_sync("bridge", 3) == []


def test_bad_parameters_are_refused() -> None:
    with pytest.raises(ValueError, match="k1"):
        BM25Index(CHUNKS, b=1.5)


def test_from_documents_chunks_every_document() -> None:
    docs = [
        Document(id="x", title="History of X", text="# History of X\n\nX was founded in 1800. X grew."),
        Document(id="y", title="History of Y", text="Y burned in 1850."),
    ]
    index = BM25Index.from_documents(docs, max_words=4)
    assert [c.id for c in index.chunks] == ["x#0", "x#1", "y#0"]
    assert index.search_sync("When did Y burn?", 1)[0].chunk_id == "y#0"


@pytest.mark.anyio
async def test_async_search_is_the_sync_search() -> None:
    index: SearchIndex = BM25Index(CHUNKS)
    assert index.name == "bm25"
    assert list(await index.search("bridge", k=3)) == BM25Index(CHUNKS).search_sync("bridge", 3)
