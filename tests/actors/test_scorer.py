"""The Scorer: pairs verdicts by item, whatever order the judges finish in."""

from __future__ import annotations

import anyio
import pytest

from doubles import (
    answer,
    drain,
    feed,
)
from judgeflow.actors import Scorer
from judgeflow.protocol import (
    Channel,
    Judgement,
    Scored,
    ScoreUpdate,
    Unparsed,
)

pytestmark = pytest.mark.anyio


def _judgement(item_id: str, judge: str, score: float | None) -> Judgement:
    verdict: Scored | Unparsed = (
        Scored(score, "", str(score)) if score is not None else Unparsed("??", "no score found")
    )
    return Judgement(answer(item_id), judge, "m", verdict, verdict.raw)


async def test_scorer_pairs_judgements_by_item_whatever_their_order() -> None:
    teacher = [1.0, 2.0, 3.0, 4.0, 5.0, 3.0]
    student = [1.0, 2.0, 3.5, 4.0, 4.5, None]
    items = [_judgement(f"i{n}", "student_base", s) for n, s in enumerate(student)]
    items += [_judgement(f"i{n}", "teacher", t) for n, t in enumerate(teacher)]
    inbox, outbox = Channel[Judgement]("in", 4), Channel[ScoreUpdate]("out", 64)
    scorer = Scorer(students=("student_base",), difference=None, n_resamples=200)
    async with anyio.create_task_group() as tg:
        await tg.start(scorer.run, inbox.receiver, outbox.sender)
        tg.start_soon(feed, inbox, items)
        updates = await drain(outbox)
    assert scorer.result is not None
    base = scorer.result.agreements["student_base"]
    assert base.n == 5
    assert scorer.result.tallies["student_base"].unparsed == 1
    assert updates[-1].final
    assert updates[-1].n == 5
    pearson = base.metrics["pearson"].value
    assert pearson is not None
    assert 0.9 < pearson < 1.0
    assert not scorer.book._pending  # every item had both verdicts: nothing is kept
