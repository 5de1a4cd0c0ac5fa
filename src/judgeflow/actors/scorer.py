"""Scorer: judgements in, live and final agreement of each student with the reference judge out.

Judgements of the same item arrive from different judges at different times; the Scorer pairs them by item id
and forgets an item as soon as every judge has reported on it, so its memory is bounded by how far the judges
drift apart, not by the size of the run. Only scores are kept (floats), for the statistics. Point estimates
are published live (often at first, then about a hundred times per run whatever its size); the bootstrap
confidence intervals are computed once, at the end.
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field

import anyio
from anyio.abc import TaskStatus

from judgeflow.metrics import Agreement, Estimate, agreement, pearson_difference, point_estimates
from judgeflow.protocol.bus import Publish, null_publish
from judgeflow.protocol.channels import Receiver, Sender
from judgeflow.protocol.events import ActorFinished, ActorStarted, ScorePaired
from judgeflow.protocol.messages import Judgement, ScoreUpdate
from judgeflow.protocol.verdicts import Failed, Scored, Unparsed, Verdict

__all__ = ["JudgeTally", "ScoreResult", "Scorer"]


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


def _live_due(n: int) -> bool:
    return n <= 100 or n % max(1, n // 100) == 0


class Scorer:
    """Pairs each student's verdicts with the ``reference`` judge's on the same items."""

    def __init__(
        self,
        *,
        reference: str = "teacher",
        students: Sequence[str] = ("student_trained", "student_base"),
        difference: tuple[str, str] | None = ("student_trained", "student_base"),
        n_resamples: int = 2000,
        seed: int = 0,
        name: str = "scorer",
        publish: Publish = null_publish,
    ) -> None:
        self.reference = reference
        self.students = tuple(students)
        self.difference = difference if difference and set(difference) <= set(self.students) else None
        self.n_resamples = n_resamples
        self.seed = seed
        self.name = name
        self.publish = publish
        self.tallies = {judge: JudgeTally(judge) for judge in (reference, *self.students)}
        self._pending: dict[str, dict[str, Verdict]] = {}
        self._complete: list[array[float]] = [array("d") for _ in range(1 + len(self.students))]
        self.result: ScoreResult | None = None

    async def run(
        self,
        inbox: Receiver[Judgement],
        outbox: Sender[ScoreUpdate],
        *,
        task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        received = 0
        with inbox:
            async with outbox:
                self.publish(ActorStarted(self.name, 1))
                task_status.started()
                try:
                    async for judgement in inbox:
                        received += 1
                        for update in self.add(judgement):
                            await outbox.send(update)
                            self.publish(update)
                    self.result = await anyio.to_thread.run_sync(self.finish)
                    for update in self.final_updates(self.result):
                        await outbox.send(update)
                        self.publish(update)
                finally:
                    self.publish(ActorFinished(self.name, received, received, 0))

    def add(self, judgement: Judgement) -> list[ScoreUpdate]:
        """Count one judgement; return the live updates it makes due (pure bookkeeping, no I/O)."""
        tally = self.tallies.get(judgement.judge)
        if tally is None:
            return []
        tally.count(judgement.verdict)
        verdicts = self._pending.setdefault(judgement.id, {})
        verdicts[judgement.judge] = judgement.verdict
        updates = []
        reference = verdicts.get(self.reference)
        if reference is not None:
            newly = self.students if judgement.judge == self.reference else (judgement.judge,)
            for student in newly:
                verdict = verdicts.get(student)
                if verdict is None or not isinstance(reference, Scored) or not isinstance(verdict, Scored):
                    continue
                pair_tally = self.tallies[student]
                pair_tally.reference_scores.append(reference.score)
                pair_tally.scores.append(verdict.score)
                self.publish(ScorePaired(student, self.reference, judgement.id, reference.score, verdict.score))
                if _live_due(len(pair_tally.scores)):
                    updates.append(self._update(pair_tally, final=False, metrics=None))
        if len(verdicts) == len(self.tallies):
            del self._pending[judgement.id]
            self._complete_row(verdicts)
        return updates

    def _complete_row(self, verdicts: dict[str, Verdict]) -> None:
        row = [verdicts[judge] for judge in (self.reference, *self.students)]
        if all(isinstance(verdict, Scored) for verdict in row):
            for column, verdict in zip(self._complete, row, strict=True):
                assert isinstance(verdict, Scored)
                column.append(verdict.score)

    def _update(self, tally: JudgeTally, *, final: bool, metrics: dict[str, float | None] | None) -> ScoreUpdate:
        if metrics is None:
            metrics = point_estimates(tally.reference_scores, tally.scores)
        return ScoreUpdate(
            judge=tally.judge,
            reference_judge=self.reference,
            n=len(tally.scores),
            unparsed=tally.unparsed,
            failed=tally.failed,
            metrics=metrics,
            final=final,
        )

    def finish(self) -> ScoreResult:
        """Bootstrap CIs for every student, and the paired difference in Pearson (CPU work: run in a thread).

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
        if self.difference is not None:
            first, second = (1 + self.students.index(judge) for judge in self.difference)
            rows = sorted(zip(*self._complete, strict=True))
            columns = [[row[index] for row in rows] for index in (0, first, second)]
            difference = pearson_difference(*columns, n_resamples=self.n_resamples, seed=self.seed)
        return ScoreResult(self.reference, self.tallies, agreements, difference, self.difference)

    def final_updates(self, result: ScoreResult) -> list[ScoreUpdate]:
        return [
            self._update(
                self.tallies[student],
                final=True,
                metrics={name: estimate.value for name, estimate in result.agreements[student].metrics.items()},
            )
            for student in self.students
        ]
