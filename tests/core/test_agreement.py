"""Pairing verdicts by item (in any order), counting what could not be paired, and the final result."""

from __future__ import annotations

import pytest

from judgeflow.core.agreement import Agreements, Pair
from judgeflow.core.metrics import pearson
from judgeflow.protocol.verdicts import Failed, Scored, Unparsed


def scored(score: float) -> Scored:
    return Scored(score, "", str(score))


def test_a_pair_is_made_when_both_verdicts_exist_whichever_comes_first() -> None:
    book = Agreements(reference="teacher", students=["student"])
    assert book.add("a", "student", scored(4)) == []
    assert book.add("a", "teacher", scored(5)) == [Pair("student", "a", 5.0, 4.0, 1)]
    assert book.add("b", "teacher", scored(2)) == []
    assert book.add("b", "student", scored(1)) == [Pair("student", "b", 2.0, 1.0, 2)]
    assert book.add("c", "stranger", scored(3)) == []  # a judge that is not compared is ignored
    assert not book._pending  # both items had every verdict: nothing is kept


def test_unparsed_and_failed_verdicts_are_counted_never_paired() -> None:
    book = Agreements(reference="teacher", students=["student"])
    book.add("a", "teacher", scored(5))
    assert book.add("a", "student", Unparsed("??", "no score found")) == []
    book.add("b", "teacher", Failed("timeout"))
    assert book.add("b", "student", scored(3)) == []
    tally = book.tallies["student"]
    assert (tally.items, tally.scored, tally.unparsed, tally.failed) == (2, 1, 1, 0)
    assert book.tallies["teacher"].failed == 1
    assert list(tally.scores) == []


def test_finish_measures_each_student_and_the_paired_difference() -> None:
    book = Agreements(
        reference="teacher", students=["good", "poor"], difference=("good", "poor"), n_resamples=200, seed=0
    )
    teacher = [1, 2, 3, 4, 5, 5, 4, 3, 2, 1]
    good = [1, 2, 3, 4, 5, 5, 4, 3, 2, 2]
    poor = [3, 1, 5, 2, 4, 3, 3, 1, 5, 2]
    for i, (t, g, p) in enumerate(zip(teacher, good, poor, strict=True)):
        book.add(str(i), "poor", scored(p))
        book.add(str(i), "teacher", scored(t))
        book.add(str(i), "good", scored(g))
    result = book.finish()
    assert result.reference == "teacher"
    assert result.agreements["good"].metrics["pearson"].value == pytest.approx(pearson(teacher, good))
    assert result.agreements["poor"].metrics["pearson"].value == pytest.approx(pearson(teacher, poor))
    assert result.difference is not None
    expected = (pearson(teacher, good) or 0.0) - (pearson(teacher, poor) or 0.0)
    assert result.difference.value == pytest.approx(expected)
    assert result.difference_pair == ("good", "poor")
