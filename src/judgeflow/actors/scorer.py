"""Scorer: judgements in, live and final agreement of each student with the reference judge out.

The pairing by item id and the statistics are `judgeflow.core.agreement.Agreements` (pure, bounded memory); the
actor adds the channels and the events: each completed pair is published (`ScorePaired`), point estimates are
published live (often at first, then about a hundred times per run whatever its size); the bootstrap
confidence intervals are computed once, at the end.
"""

from __future__ import annotations

from collections.abc import Sequence

import anyio
from anyio.abc import TaskStatus

from judgeflow.core.agreement import Agreements, JudgeTally, ScoreResult
from judgeflow.core.metrics import point_estimates
from judgeflow.protocol.bus import Publish, null_publish
from judgeflow.protocol.channels import Receiver, Sender
from judgeflow.protocol.events import ActorFinished, ActorStarted, ScorePaired
from judgeflow.protocol.messages import Judgement, ScoreUpdate

__all__ = ["Scorer"]


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
        self.book = Agreements(
            reference=reference, students=students, difference=difference, n_resamples=n_resamples, seed=seed
        )
        self.reference = reference
        self.students = self.book.students
        self.tallies = self.book.tallies
        self.name = name
        self.publish = publish
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
        """Count one judgement; publish the pairs it completes and return the live updates it makes due."""
        updates = []
        for pair in self.book.add(judgement.id, judgement.judge, judgement.verdict):
            self.publish(ScorePaired(pair.judge, self.reference, pair.item_id, pair.reference_score, pair.score))
            if _live_due(pair.n):
                updates.append(self._update(self.tallies[pair.judge], final=False, metrics=None))
        return updates

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
        """The final agreement with confidence intervals (CPU work: run it in a thread)."""
        return self.book.finish()

    def final_updates(self, result: ScoreResult) -> list[ScoreUpdate]:
        return [
            self._update(
                self.tallies[student],
                final=True,
                metrics={name: estimate.value for name, estimate in result.agreements[student].metrics.items()},
            )
            for student in self.students
        ]
