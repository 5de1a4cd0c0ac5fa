"""Where the run is heading: each stage's expected total, its progress and ETA, overall progress, projected cost.

These are estimates, and the part of the dashboard most worth reading carefully, so they are pure functions of
the tallies and ``now``, apart from the event folding. Each stage gets what its upstream produced: exact once
the upstream finished, estimated before, from the questions written per document so far and, for the students,
the share of held-out questions so far. An estimated total is marked as such, all the way to the screen.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

from .series import Eta
from .tallies import ActorTally, ModelTally
from .views import STAGES, ActorView, CostView, ProgressView, RunStatus

__all__ = ["Totals", "actor_view", "cost_view", "progress_view", "stage_totals"]

Totals = dict[str, tuple[int, bool]]
"""Per stage: how many inputs it will get, and whether that is known (True) or estimated."""

_STUDENTS = ("student_base", "student_trained")


def stage_totals(
    actors: Mapping[str, ActorTally],
    *,
    documents: int | None,
    split: tuple[int, int] | None,
    expected: Mapping[str, int],
) -> Totals:
    """How many inputs each stage will get, and whether that is known or estimated (see the module doc).

    ``split`` is how many questions went to train and to test so far; ``expected`` are totals the caller knows.
    """
    totals: Totals = {}
    if documents is not None:
        totals["question_writer"] = (documents, True)
    writer = actors.get("question_writer")
    upstream: tuple[int, bool] | None = None
    if writer is not None and writer.finished_at is not None:
        upstream = (writer.out, True)
    elif writer is not None and writer.done_in > 0 and documents:
        upstream = (round(writer.out / writer.done_in * documents), False)
    for name in ("retriever", "answerer", "teacher"):
        if upstream is not None:
            totals[name] = upstream
        stage = actors.get(name)
        if stage is not None and stage.finished_at is not None:
            upstream = (stage.out, True)
    held_out = _held_out(totals.get("teacher"), split)
    if held_out is not None:
        for name in _STUDENTS:
            totals[name] = held_out
    totals["trainer"] = (1, True)
    for name, stage in actors.items():
        if stage.finished_at is not None and name in STAGES:
            totals[name] = (stage.done_in, True)
    for name, total in expected.items():
        totals[name] = (total, True)
    return totals


def _held_out(answers: tuple[int, bool] | None, split: tuple[int, int] | None) -> tuple[int, bool] | None:
    if answers is None or split is None:
        return None
    train, test = split
    seen = train + test
    if seen == 0:
        return None
    total, exact = answers
    if exact and seen >= total:
        return (test, True)
    return (round(total * test / seen), False)


def actor_view(
    actor: ActorTally,
    total: tuple[int, bool] | None,
    now: float,
    *,
    window_s: int,
    history_s: int,
    run_started_at: float | None,
) -> ActorView:
    """One actor's row: counts, rates over the last ``window_s`` seconds, progress against ``total``, ETA."""
    end = actor.finished_at if actor.finished_at is not None else now
    lived = end - actor.started_at
    state: Literal["waiting", "running", "done"] = "done" if actor.finished_at is not None else "running"
    if not actor.started and actor.finished_at is None:
        state = "waiting"
    rate_in = actor.inputs.rate(now, window_s)
    progress = eta = None
    if total is not None:
        progress = min(actor.done_in / total[0], 1.0) if total[0] > 0 else 1.0
        remaining = max(total[0] - actor.done_in, 0)
        if remaining == 0:
            eta = 0.0
        elif rate_in > 0 and actor.finished_at is None:
            eta = remaining / rate_in
    busy = actor.latency.rate(now, window_s) if actor.calls else None
    since = run_started_at if run_started_at is not None else actor.started_at
    return ActorView(
        name=actor.name,
        workers=actor.workers,
        state=state,
        items_in=actor.done_in,
        items_out=actor.out,
        failed=actor.failed,
        rate_now=actor.outputs.rate(now, window_s),
        rate_avg=actor.out / lived if lived >= 1.0 else float(actor.out),
        busy=busy,
        total=None if total is None else total[0],
        total_exact=total is not None and total[1],
        progress=progress,
        eta_s=eta,
        history=actor.outputs.history(now, since=since, seconds=history_s),
        parsed=actor.usable / actor.replies if actor.replies else None,
    )


def progress_view(
    totals: Mapping[str, tuple[int, bool]],
    actors: Mapping[str, ActorTally],
    now: float,
    *,
    status: RunStatus,
    eta: Eta,
    elapsed_s: float | None,
    stages: Sequence[str] = STAGES,
) -> ProgressView:
    """All ``stages`` together: items done of the (known or estimated) total, and the ETA from ``eta``'s speed.

    A judge run passes its judges as the stages: its progress counts verdicts, against totals known from the start.
    """
    done = total = 0
    exact = True
    for name in stages:
        known = totals.get(name)
        if known is None:
            exact = False
            continue
        stage = actors.get(name)
        done += min(stage.done_in, known[0]) if stage is not None else 0
        total += known[0]
        exact = exact and known[1]
    if status == "finished":
        return ProgressView(done, total or None, True, 1.0, 0.0, elapsed_s)
    if total == 0:
        return ProgressView(done, None, False, None, None, elapsed_s)
    return ProgressView(done, total, exact, done / total, eta.eta(now, total), elapsed_s)


def cost_view(
    totals: Mapping[str, tuple[int, bool]],
    actors: Mapping[str, ActorTally],
    models: Mapping[str, ModelTally],
    *,
    budget_usd: float | None,
    budget_exhausted: bool,
) -> CostView:
    """Spent so far, and projected at completion: each spending stage's cost per item times its total."""
    spent = sum(model.cost for model in models.values())
    projected = 0.0
    partial = False
    for actor in actors.values():
        if not actor.cost:
            continue
        total = totals.get(actor.name)
        if actor.finished_at is not None or (total is not None and actor.done_in >= total[0]):
            projected += actor.cost
        elif total is not None and actor.done_in > 0:
            projected += actor.cost / actor.done_in * total[0]
        else:
            projected += actor.cost
            partial = True
    return CostView(
        spent_usd=spent,
        projected_usd=projected if spent else None,
        projection_partial=partial,
        budget_usd=budget_usd,
        budget_exhausted=budget_exhausted,
        by_model=tuple((model.name, model.cost) for model in models.values() if model.cost),
    )
