"""Pairing judges' verdicts by item and measuring their agreement: the Scorer's arithmetic, with no channels.

Verdicts of the same item arrive from different judges at different times. `Agreements` pairs each student's
score with the reference judge's on the same item as soon as both exist, and forgets an item once every judge
has reported on it, so its memory is bounded by how far the judges drift apart, not by the size of the run; only
float scores are kept. `Agreements.finish` computes every statistic with bootstrap intervals
(`judgeflow.core.metrics`) into a `ScoreResult`, which the report is built from.
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field

from judgeflow.core.metrics import Agreement, Estimate, agreement, pearson_difference
from judgeflow.protocol.verdicts import Failed, Scored, Unparsed, Verdict

__all__ = ["Agreements", "JudgeTally", "Pair", "ScoreResult"]


@dataclass(slots=True)
class JudgeTally:
    """What one judge produced: verdict counts, and its scores paired with the reference's."""

    judge: str
    items: int = 0
    scored: int = 0
    unparsed: int = 0
    failed: int = 0
    reference_scores: array[float] = field(default_factory=lambda: array("d"))
    scores: array[float] = field(default_factory=lambda: array("d"))

    def count(self, verdict: Verdict) -> None:
        self.items += 1
        if isinstance(verdict, Scored):
            self.scored += 1
        elif isinstance(verdict, Unparsed):
            self.unparsed += 1
        elif isinstance(verdict, Failed):
            self.failed += 1


@dataclass(frozen=True, slots=True)
class ScoreResult:
    """The final agreement of every student with the reference judge."""

    reference: str
    tallies: dict[str, JudgeTally]
    agreements: dict[str, Agreement]
    difference: Estimate | None
    difference_pair: tuple[str, str] | None
    difference_n: int = 0  # items all three judges scored, which the difference is computed over


@dataclass(frozen=True, slots=True)
class Pair:
    """A student's score paired with the reference's on one item; ``n`` is that student's pairs so far."""

    judge: str
    item_id: str
    reference_score: float
    score: float
    n: int


class Agreements:
    """Pairs each student's verdicts with the ``reference`` judge's on the same items (pure bookkeeping)."""

    def __init__(
        self,
        *,
        reference: str,
        students: Sequence[str],
        difference: tuple[str, str] | None = None,
        n_resamples: int = 2000,
        seed: int = 0,
    ) -> None:
        self.reference = reference
        self.students = tuple(students)
        self.difference = difference if difference and set(difference) <= set(self.students) else None
        self.n_resamples = n_resamples
        self.seed = seed
        self.tallies = {judge: JudgeTally(judge) for judge in (reference, *self.students)}
        self._pending: dict[str, dict[str, Verdict]] = {}
        self._complete: list[array[float]] = [array("d") for _ in range(1 + len(self.students))]

    def add(self, item_id: str, judge: str, verdict: Verdict) -> list[Pair]:
        """Count one verdict; return the pairs it completes (none for a judge that is not compared)."""
        tally = self.tallies.get(judge)
        if tally is None:
            return []
        tally.count(verdict)
        verdicts = self._pending.setdefault(item_id, {})
        verdicts[judge] = verdict
        pairs = []
        reference = verdicts.get(self.reference)
        if isinstance(reference, Scored):
            newly = self.students if judge == self.reference else (judge,)
            for student in newly:
                other = verdicts.get(student)
                if not isinstance(other, Scored):
                    continue
                pair_tally = self.tallies[student]
                pair_tally.reference_scores.append(reference.score)
                pair_tally.scores.append(other.score)
                pairs.append(Pair(student, item_id, reference.score, other.score, len(pair_tally.scores)))
        if len(verdicts) == len(self.tallies):
            del self._pending[item_id]
            self._complete_row(verdicts)
        return pairs

    def _complete_row(self, verdicts: dict[str, Verdict]) -> None:
        row = [verdicts[judge] for judge in (self.reference, *self.students)]
        if all(isinstance(verdict, Scored) for verdict in row):
            for column, verdict in zip(self._complete, row, strict=True):
                assert isinstance(verdict, Scored)
                column.append(verdict.score)

    def finish(self) -> ScoreResult:
        """Bootstrap CIs for every student, and the paired difference in Pearson (CPU work: run it in a thread).

        Pairs arrive in whatever order the concurrent judges finish; they are put in a canonical (sorted) order
        first, so that the seeded bootstrap gives the same intervals for the same judgements in every run.
        """
        agreements = {}
        for student in self.students:
            tally = self.tallies[student]
            pairs = sorted(zip(tally.reference_scores, tally.scores, strict=True))
            agreements[student] = agreement(
                [pair[0] for pair in pairs],
                [pair[1] for pair in pairs],
                n_resamples=self.n_resamples,
                seed=self.seed,
            )
        difference = None
        difference_n = 0
        if self.difference is not None:
            first, second = (1 + self.students.index(judge) for judge in self.difference)
            rows = sorted(zip(*self._complete, strict=True))
            difference_n = len(rows)
            columns = [[row[index] for row in rows] for index in (0, first, second)]
            difference = pearson_difference(*columns, n_resamples=self.n_resamples, seed=self.seed)
        return ScoreResult(self.reference, self.tallies, agreements, difference, self.difference, difference_n)
