"""Tokens, sentences and chunks: the text rules every local model relies on."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from judgeflow.core.text import (
    capitalised_words,
    chunk_document,
    content_words,
    numbers,
    split_clauses,
    split_sentences,
    stem,
    strip_markdown,
    tokenize,
    word_count,
    years,
)
from judgeflow.protocol.messages import Document


def test_tokenize_keeps_numbers_whole() -> None:
    assert tokenize("In 1906, the city's 1,000 people paid 3.5 dollars.") == [
        "in",
        "1906",
        "the",
        "city",
        "1000",
        "people",
        "paid",
        "3.5",
        "dollars",
    ]


def test_tokenize_handles_accents_and_trailing_periods() -> None:
    assert tokenize("Montréal grew by 1850.") == ["montréal", "grew", "by", "1850"]


@pytest.mark.parametrize(
    ("a", "b"),
    [("opened", "open"), ("bridges", "bridge"), ("cities", "city"), ("created", "create"), ("stopped", "stop")],
)
def test_stem_maps_inflections_together(a: str, b: str) -> None:
    assert stem(a) == stem(b)


def test_content_words_drop_stopwords_and_stem() -> None:
    words = content_words("The bridges of the city were opened in 1937")
    assert words == [stem("bridge"), stem("city"), stem("open"), "1937"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("It stood on St. Clair Avenue. Then it burned.", ["It stood on St. Clair Avenue.", "Then it burned."]),
        ("Mt. Fuji is 3,776 metres high. It is a volcano.", ["Mt. Fuji is 3,776 metres high.", "It is a volcano."]),
        ("J. P. Morgan founded it in 1871. It grew.", ["J. P. Morgan founded it in 1871.", "It grew."]),
        ("Rents rose 1.5 times. Then 2.5 times.", ["Rents rose 1.5 times.", "Then 2.5 times."]),
        ("Dr. Smith arrived c. 1850. He stayed.", ["Dr. Smith arrived c. 1850.", "He stayed."]),
        ("The U.S. Army came. Who won? Nobody!", ["The U.S. Army came.", "Who won?", "Nobody!"]),
        ('He said "Go." Then he left.', ['He said "Go."', "Then he left."]),
        ("Prices fell. in lower case it goes on", ["Prices fell. in lower case it goes on"]),
        ("No final stop", ["No final stop"]),
        ("", []),
    ],
)
def test_split_sentences_edge_cases(text: str, expected: list[str]) -> None:
    assert split_sentences(text) == expected


def test_paragraphs_and_list_items_are_hard_breaks_but_wrapped_lines_are_not() -> None:
    text = "First line\nwraps here. Second.\n\n- item one\n- item two\n\nLast paragraph"
    assert split_sentences(text) == ["First line wraps here.", "Second.", "item one", "item two", "Last paragraph"]


def test_strip_markdown_drops_headings_and_emphasis() -> None:
    text = "# History of X\n\n## Early years\n\nThe **city** was founded.\n\n### Later\n\nIt *grew*."
    assert strip_markdown(text) == "The city was founded.\n\nIt grew."


def test_split_clauses_splits_coordinated_clauses_only() -> None:
    sentence = "In 1936, the Bay Bridge opened, and the Golden Gate Bridge, 2,737 metres long, opened in 1937."
    assert split_clauses(sentence) == [
        "In 1936, the Bay Bridge opened",
        "and the Golden Gate Bridge, 2,737 metres long, opened in 1937.",
    ]


def test_fact_helpers() -> None:
    text = "In 1906, about 3,000 people died. The Golden Gate Bridge opened in 1937."
    assert years(text) == {"1906", "1937"}
    assert numbers(text) == {"1906", "3000", "1937"}
    assert capitalised_words(text) == {stem("golden"), stem("gate"), stem("bridge")}


def _doc(text: str) -> Document:
    return Document(id="doc", title="History of Somewhere", text=text)


def test_chunks_never_split_sentences_and_cover_the_text() -> None:
    text = (
        "# History of Somewhere\n\n## One\n\n"
        + " ".join(f"Sentence number {i} talks about St. Lawrence and 1.5 things." for i in range(12))
        + "\n\n## Two\n\nA short section. With two sentences."
    )
    chunks = chunk_document(_doc(text), max_words=25)
    assert [c.id for c in chunks] == [f"doc#{i}" for i in range(len(chunks))]
    assert all(c.doc_id == "doc" for c in chunks)
    assert [s for c in chunks for s in split_sentences(c.text)] == split_sentences(text)
    assert all(word_count(c.text) <= 25 for c in chunks)
    # The heading starts a new chunk: the last chunk is exactly section two.
    assert chunks[-1].text == "A short section. With two sentences."


def test_a_sentence_longer_than_the_limit_stands_alone() -> None:
    long = "Long " + " ".join(["word"] * 29) + "."
    chunks = chunk_document(_doc(f"Short one. {long} Short two."), max_words=10)
    assert [c.text for c in chunks] == ["Short one.", long, "Short two."]


def test_chunk_document_rejects_a_silly_limit() -> None:
    with pytest.raises(ValueError, match="max_words"):
        chunk_document(_doc("Text."), max_words=0)


_WORD = st.sampled_from(["the", "city", "St.", "Mt.", "1.5", "grew", "J.", "Bay", "1906", "fire", "of"])
_SENTENCE = st.lists(_WORD, min_size=1, max_size=15).map(lambda ws: "Then " + " ".join(ws) + ".")


@settings(max_examples=60, deadline=None)
@given(
    paragraphs=st.lists(st.lists(_SENTENCE, min_size=1, max_size=6), min_size=1, max_size=4),
    max_words=st.integers(min_value=1, max_value=40),
)
def test_chunking_round_trips_any_text(paragraphs: list[list[str]], max_words: int) -> None:
    text = "\n\n".join(" ".join(p) for p in paragraphs)
    chunks = chunk_document(_doc(text), max_words=max_words)
    assert [s for c in chunks for s in split_sentences(c.text)] == split_sentences(text)
    for chunk in chunks:
        sentences = split_sentences(chunk.text)
        assert len(sentences) == 1 or word_count(chunk.text) <= max_words
