"""The frozen views the dashboard's widgets render from, and the fixed vocabulary they share.

A `Snapshot` is the whole interface between the folding (`state`) and the painting (`widgets`): plain frozen
data, so a widget is tested with a hand-built snapshot and no app, and nothing a widget does can reach back
into the counters the event stream is folded into.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, TypeAlias

__all__ = [
    "ACTOR_ORDER",
    "METRIC_ORDER",
    "SCORE_LEVELS",
    "STAGES",
    "ActorView",
    "AgreementView",
    "BatchView",
    "CostView",
    "DifferenceView",
    "ErrorView",
    "HeatMapView",
    "ModelView",
    "OutageView",
    "ProgressView",
    "RunMode",
    "RunStatus",
    "Snapshot",
    "TrainingView",
    "score_level",
]

RunStatus: TypeAlias = Literal["waiting", "running", "finished", "failed"]

RunMode: TypeAlias = Literal["run", "judge"]
"""What is shown: the distillation pipeline (``judgeflow run``), or judges over a file (``judgeflow judge``)."""

STAGES: tuple[str, ...] = (
    "question_writer",
    "retriever",
    "answerer",
    "teacher",
    "trainer",
    "student_base",
    "student_trained",
)
"""The stages whose work is counted in the overall progress, in pipeline order."""

ACTOR_ORDER: tuple[str, ...] = (
    "question_writer",
    "question_router",
    "retriever",
    "answerer",
    "answer_router",
    "teacher",
    "teacher_router",
    "student_base",
    "trainer",
    "student_trained",
    "student_router",
    "judgement_router",
    "scorer",
)
"""The order actors are listed in; actors with other names follow, in the order they started."""

METRIC_ORDER: tuple[str, ...] = ("pearson", "spearman", "kendall", "kappa", "exact", "within1", "mae")

SCORE_LEVELS = 5
"""Judges score on 1..SCORE_LEVELS; the heat map has one row and one column per level."""


def score_level(score: float) -> int:
    """The heat-map level (1..5) of a score: nearest whole point (4.5 counts as 5), clamped to the scale."""
    return min(SCORE_LEVELS, max(1, math.floor(score + 0.5)))


@dataclass(frozen=True, slots=True)
class ActorView:
    name: str
    workers: int
    state: Literal["waiting", "running", "done"]
    items_in: int
    items_out: int
    failed: int
    rate_now: float
    rate_avg: float
    busy: float | None
    """Calls in flight on average over the window (Little's law: latency per second of wall time)."""
    total: int | None
    total_exact: bool
    progress: float | None
    eta_s: float | None
    history: tuple[float, ...]
    parsed: float | None = None
    """Usable replies over replies read (a score, a question); None when the actor read no model reply."""


@dataclass(frozen=True, slots=True)
class ModelView:
    name: str
    provider: str
    calls: int
    failed: int
    input_tokens: int
    output_tokens: int
    cost_usd: float
    mean_latency_s: float | None
    retries: int
    rate_limited: int
    limit: int | None
    maximum: int | None


@dataclass(frozen=True, slots=True)
class CostView:
    spent_usd: float
    projected_usd: float | None
    projection_partial: bool
    """Some stage that spends has no known total yet: the projection counts only what it spent so far."""
    budget_usd: float | None
    budget_exhausted: bool
    by_model: tuple[tuple[str, float], ...]


@dataclass(frozen=True, slots=True)
class AgreementView:
    judge: str
    reference: str
    n: int
    unparsed: int
    failed: int
    metrics: Mapping[str, float | None]
    ci95: Mapping[str, tuple[float, float] | None]
    final: bool


@dataclass(frozen=True, slots=True)
class DifferenceView:
    judges: tuple[str, str]
    value: float | None
    ci95: tuple[float, float] | None


@dataclass(frozen=True, slots=True)
class HeatMapView:
    judge: str
    counts: tuple[tuple[int, ...], ...]
    """``counts[t][s]``: items the reference scored ``t + 1`` and the judge ``s + 1``."""
    total: int
    peak: int


@dataclass(frozen=True, slots=True)
class ProgressView:
    done: int
    total: int | None
    exact: bool
    fraction: float | None
    eta_s: float | None
    elapsed_s: float | None
    items: int | None = None
    """A judge run: the items in the file (``done`` and ``total`` then count verdicts, one per item and judge)."""
    judges: int = 0
    """A judge run: how many judges; 0 in a pipeline run, whose ``done`` and ``total`` count stage inputs."""


@dataclass(frozen=True, slots=True)
class TrainingView:
    student: str
    status: str
    message: str
    progress: float | None


@dataclass(frozen=True, slots=True)
class BatchView:
    """One batch of a judge in batch mode, as its last `BatchProgress` said."""

    judge: str
    part: str
    batch_id: str
    status: str
    completed: int
    failed: int
    total: int
    message: str


@dataclass(frozen=True, slots=True)
class ErrorView:
    at_s: float | None
    actor: str
    item_id: str
    error: str


@dataclass(frozen=True, slots=True)
class OutageView:
    """A server that does not answer: calls to it wait while one probes (``since``: wall-clock epoch seconds)."""

    server: str
    since: float
    detail: str
    probes: int

    def line(self) -> str:
        """What both displays say about it."""
        at = time.strftime("%H:%M:%S", time.localtime(self.since))
        tries = f" (tried {self.probes + 1} times)" if self.probes else ""
        return f"server unreachable since {at}, retrying{tries}: {self.server}"


@dataclass(frozen=True, slots=True)
class Snapshot:
    now: float
    status: RunStatus
    message: str
    out_dir: str | None
    elapsed_s: float | None
    actors: tuple[ActorView, ...]
    models: tuple[ModelView, ...]
    costs: CostView
    agreement: tuple[AgreementView, ...]
    difference: DifferenceView | None
    heatmaps: tuple[HeatMapView, ...]
    progress: ProgressView
    training: tuple[TrainingView, ...]
    training_log: tuple[str, ...]
    errors: tuple[ErrorView, ...]
    failures: int
    missed: int
    events: int
    mode: RunMode = "run"
    """In a judge run, ``actors`` are the judges (and any other actor that reports items or calls)."""
    outages: tuple[OutageView, ...] = ()
    """Servers that do not answer right now (their calls wait, no item fails)."""
    batches: tuple[BatchView, ...] = ()
    """Batches of the judges in batch mode, in the order they were first reported."""

    def actor(self, name: str) -> ActorView | None:
        return next((view for view in self.actors if view.name == name), None)

    def judge(self, name: str) -> AgreementView | None:
        return next((view for view in self.agreement if view.judge == name), None)
