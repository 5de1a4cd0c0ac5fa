"""The dashboard's mutable counters, one record per actor, model and judge, and how each becomes a view.

`DashboardState` folds events into these records and nothing else writes them; the functions here read them
(or a finished run's report) into the frozen views of `views`. Keeping the records and their conversions
together means a new counter is added, and shown, in one place.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from judgeflow.protocol.events import ScoreUpdate

from .series import PerSecond
from .views import METRIC_ORDER, AgreementView, DifferenceView, HeatMapView, ModelView

__all__ = [
    "ActorTally",
    "AgreementTally",
    "ModelTally",
    "agreement_view",
    "heatmap_view",
    "model_view",
    "ordered",
    "report_agreement",
    "report_difference",
]


@dataclass(slots=True)
class ActorTally:
    """One actor's counts; ``order`` is when it was first heard of, ``sources`` the documents already counted.

    ``live`` says the actor reports as it works (items done or failed, model calls), unlike the routers and
    readers, which report only when they start and finish: a judge run lists only the live ones.
    """

    name: str
    started_at: float
    keep_s: int
    order: int
    workers: int = 0
    started: bool = False
    live: bool = False
    finished_at: float | None = None
    done_in: int = 0
    out: int = 0
    failed: int = 0
    calls: int = 0
    cost: float = 0.0
    replies: int = 0
    usable: int = 0
    sources: set[str] = field(default_factory=set)
    outputs: PerSecond = field(init=False)
    inputs: PerSecond = field(init=False)
    latency: PerSecond = field(init=False)

    def __post_init__(self) -> None:
        self.outputs = PerSecond(self.started_at, keep_s=self.keep_s)
        self.inputs = PerSecond(self.started_at, keep_s=self.keep_s)
        self.latency = PerSecond(self.started_at, keep_s=self.keep_s)


@dataclass(slots=True)
class ModelTally:
    """One model's calls, tokens, cost, retries and concurrency limit, over the whole run."""

    name: str
    provider: str = ""
    calls: int = 0
    failed: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float = 0.0
    latency_s: float = 0.0
    retries: int = 0
    rate_limited: int = 0
    limit: int | None = None
    maximum: int | None = None


@dataclass(slots=True)
class AgreementTally:
    """A judge's latest agreement update, with 95% CIs once a final report gave them."""

    update: ScoreUpdate
    ci95: dict[str, tuple[float, float] | None] = field(default_factory=dict)
    final: bool = False


def ordered(names: Iterable[str], preferred: Sequence[str]) -> list[str]:
    """``names`` with the ``preferred`` ones first, in that order; the others follow in their own order."""
    present = list(names)
    return [name for name in preferred if name in present] + [name for name in present if name not in preferred]


def agreement_view(judge: str, entry: AgreementTally) -> AgreementView:
    update = entry.update
    return AgreementView(
        judge=judge,
        reference=update.reference_judge,
        n=update.n,
        unparsed=update.unparsed,
        failed=update.failed,
        metrics=dict(update.metrics),
        ci95=dict(entry.ci95),
        final=entry.final,
    )


def model_view(model: ModelTally) -> ModelView:
    return ModelView(
        name=model.name,
        provider=model.provider,
        calls=model.calls,
        failed=model.failed,
        input_tokens=model.input_tokens,
        output_tokens=model.output_tokens,
        cost_usd=model.cost,
        mean_latency_s=model.latency_s / model.calls if model.calls else None,
        retries=model.retries,
        rate_limited=model.rate_limited,
        limit=model.limit,
        maximum=model.maximum,
    )


def heatmap_view(judge: str, counts: list[list[int]]) -> HeatMapView:
    rows = tuple(tuple(row) for row in counts)
    return HeatMapView(judge, rows, sum(map(sum, rows)), max(map(max, rows)))


def report_difference(difference: object) -> DifferenceView | None:
    """The report's ``pearson_difference`` entry as a view; None when it is missing or not of that shape."""
    if isinstance(difference, Mapping):
        judges = difference.get("judges")
        if isinstance(judges, Sequence) and len(judges) == 2:
            return DifferenceView(
                (str(judges[0]), str(judges[1])),
                _number(difference.get("value")),
                _interval(difference.get("ci95")),
            )
    return None


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _interval(value: object) -> tuple[float, float] | None:
    if isinstance(value, Sequence) and not isinstance(value, str) and len(value) == 2:
        low, high = _number(value[0]), _number(value[1])
        if low is not None and high is not None:
            return (low, high)
    return None


def _count(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def report_agreement(judge: str, reference: str, entry: Mapping[str, Any]) -> AgreementTally:
    metrics: dict[str, float | None] = {}
    ci95: dict[str, tuple[float, float] | None] = {}
    for name in METRIC_ORDER:
        estimate = entry.get(name)
        if isinstance(estimate, Mapping):
            metrics[name] = _number(estimate.get("value"))
            ci95[name] = _interval(estimate.get("ci95"))
    update = ScoreUpdate(
        judge=judge,
        reference_judge=reference,
        n=_count(entry.get("n")),
        unparsed=_count(entry.get("unparsed")),
        failed=_count(entry.get("failed")),
        metrics=metrics,
        final=True,
    )
    return AgreementTally(update, ci95, final=True)
