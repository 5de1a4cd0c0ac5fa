"""What the dashboard knows about a run: events folded into counters, and snapshots of them to paint.

Pure: no clock reads and no I/O. Whatever depends on time takes ``now`` (seconds on any monotonic clock), so
throughput windows, ETAs and the cost projection are plain arithmetic, tested without an event loop or an app.
Folding one event costs a few dictionary and deque operations; the app folds every event it receives and paints
a `Snapshot` a few times a second, so however many events a fast run publishes, the terminal sets no pace.

Some facts are not in the event stream and are handed in by whoever knows them: the per-item score pairs behind
the heat map (`DashboardState.fold_pair`), how many questions went to each split (`observe_split`, read from
the run's live counters), the final report with its confidence intervals (`fold_report`) and, when the caller
knows it, how many items a stage will get (`expect`).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

from judgeflow.protocol.events import (
    ActorFinished,
    ActorStarted,
    BudgetExhausted,
    CallFinished,
    CallRetry,
    ConcurrencyChanged,
    Event,
    ItemDone,
    ItemFailed,
    Missed,
    RunFinished,
    RunStarted,
    ScorePaired,
    ScoreUpdate,
    TrainingStatus,
)

__all__ = [
    "ACTOR_ORDER",
    "METRIC_ORDER",
    "SCORE_LEVELS",
    "STAGES",
    "ActorView",
    "AgreementView",
    "CostView",
    "DashboardState",
    "DifferenceView",
    "ErrorView",
    "Eta",
    "HeatMapView",
    "ModelView",
    "PerSecond",
    "ProgressView",
    "RunStatus",
    "Snapshot",
    "TrainingView",
    "score_level",
]

RunStatus: TypeAlias = Literal["waiting", "running", "finished", "failed"]

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

# The question writer takes documents and publishes ItemDone per question it wrote ("<document id>-q<n>"), so its
# progress counts the documents its questions came from (an ItemFailed names a document that yielded none).
_DOCUMENT_OF_QUESTION = {"question_writer": "-q"}
_STUDENTS = ("student_base", "student_trained")
_PREFERRED_JUDGES = ("student_trained", "student_base")
_TRAINING_DONE = frozenset({"trained", "skipped"})


def score_level(score: float) -> int:
    """The heat-map level (1..5) of a score: nearest whole point (4.5 counts as 5), clamped to the scale."""
    return min(SCORE_LEVELS, max(1, math.floor(score + 0.5)))


class PerSecond:
    """Sums of a quantity per whole second (items done, seconds of latency), kept for ``keep_s`` seconds.

    One bucket per second, whatever the event rate, so memory and the cost of a query stay small.
    """

    __slots__ = ("_buckets", "_keep", "start")

    def __init__(self, start: float, *, keep_s: int = 180) -> None:
        self.start = start
        self._keep = keep_s
        self._buckets: deque[list[float]] = deque()  # [second, sum], seconds ascending

    def add(self, now: float, value: float = 1.0) -> None:
        second = math.floor(now)
        buckets = self._buckets
        # A clock that steps back (it should not) folds into the newest bucket rather than reordering them.
        if buckets and buckets[-1][0] >= second:
            buckets[-1][1] += value
            return
        buckets.append([second, value])
        while buckets[0][0] <= second - self._keep:
            buckets.popleft()

    def window_sum(self, now: float, window_s: int) -> float:
        """The sum over the last ``window_s`` whole seconds, the current partial second included."""
        first = math.floor(now) - window_s + 1
        total = 0.0
        for second, value in reversed(self._buckets):
            if second < first:
                break
            total += value
        return total

    def rate(self, now: float, window_s: int) -> float:
        """Per second over the last ``window_s`` seconds (or since ``start``, if that is more recent)."""
        span = min(window_s - 1 + (now - math.floor(now)), now - self.start)
        # Below a second the rate of one event would read as hundreds per second.
        return self.window_sum(now, window_s) / max(span, 1.0)

    def history(self, now: float, *, since: float, seconds: int) -> tuple[float, ...]:
        """One value per whole second from ``since`` (at most ``seconds`` back, and no further than kept) to now,
        zeros where idle."""
        last = math.floor(now)
        first = max(math.floor(since), last - min(seconds, self._keep) + 1)
        if first > last:
            return ()
        values = [0.0] * (last - first + 1)
        for second, value in reversed(self._buckets):
            if second < first:
                break
            if second <= last:
                values[int(second) - first] += value
        return tuple(values)


class Eta:
    """Seconds left for work counted in units, from the speed over a recent window of samples.

    Samples closer together than ``resolution_s`` replace each other, so folding thousands of events a second
    keeps a few dozen samples. The speed is measured in units per second rather than as a fraction of the total,
    because the total is itself an estimate that is corrected as the run goes.
    """

    __slots__ = ("_samples", "max_extrapolate_s", "resolution_s", "window_s")

    def __init__(self, *, window_s: float = 30.0, resolution_s: float = 0.5, max_extrapolate_s: float = 10.0) -> None:
        self.window_s = window_s
        self.resolution_s = resolution_s
        self.max_extrapolate_s = max_extrapolate_s
        self._samples: deque[tuple[float, float]] = deque()

    def add(self, now: float, done: float) -> None:
        samples = self._samples
        if samples and done < samples[-1][1]:
            # The count went backwards (a correction): speeds measured before it mean nothing now.
            samples.clear()
        if len(samples) >= 2 and now - samples[-2][0] < self.resolution_s:
            samples[-1] = (now, done)
        else:
            samples.append((now, done))
        cutoff = now - self.window_s
        while len(samples) > 2 and samples[1][0] <= cutoff:
            samples.popleft()

    @property
    def speed(self) -> float | None:
        """Units per second over the window, or None before two samples."""
        samples = self._samples
        if len(samples) < 2:
            return None
        (t0, d0), (t1, d1) = samples[0], samples[-1]
        return (d1 - d0) / (t1 - t0) if t1 > t0 else None

    def eta(self, now: float, total: float) -> float | None:
        """Seconds until ``total`` units are done; 0 when done, None when there is no speed to go by."""
        if not self._samples:
            return None
        last_time, done = self._samples[-1]
        remaining = total - done
        if remaining <= 0:
            return 0.0
        speed = self.speed
        if not speed or speed <= 0:
            return None
        # Between samples the estimate counts down with the clock (for a while), instead of freezing.
        counted_down = min(max(now - last_time, 0.0), self.max_extrapolate_s)
        # Work remains, so the estimate never claims to be done.
        return max(remaining / speed - counted_down, 1.0)


# ---------------------------------------------------------------------------------------------------------------
# Snapshot: frozen views the widgets render from.


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


@dataclass(frozen=True, slots=True)
class TrainingView:
    student: str
    status: str
    message: str
    progress: float | None


@dataclass(frozen=True, slots=True)
class ErrorView:
    at_s: float | None
    actor: str
    item_id: str
    error: str


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

    def actor(self, name: str) -> ActorView | None:
        return next((view for view in self.actors if view.name == name), None)

    def judge(self, name: str) -> AgreementView | None:
        return next((view for view in self.agreement if view.judge == name), None)


# ---------------------------------------------------------------------------------------------------------------
# The mutable state.


@dataclass(slots=True)
class _Actor:
    name: str
    started_at: float
    keep_s: int
    order: int
    workers: int = 0
    started: bool = False
    finished_at: float | None = None
    done_in: int = 0
    out: int = 0
    failed: int = 0
    calls: int = 0
    cost: float = 0.0
    sources: set[str] = field(default_factory=set)
    outputs: PerSecond = field(init=False)
    inputs: PerSecond = field(init=False)
    latency: PerSecond = field(init=False)

    def __post_init__(self) -> None:
        self.outputs = PerSecond(self.started_at, keep_s=self.keep_s)
        self.inputs = PerSecond(self.started_at, keep_s=self.keep_s)
        self.latency = PerSecond(self.started_at, keep_s=self.keep_s)


@dataclass(slots=True)
class _Model:
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
class _Agreement:
    update: ScoreUpdate
    ci95: dict[str, tuple[float, float] | None] = field(default_factory=dict)
    final: bool = False


class DashboardState:
    """Everything the dashboard shows, folded from events; `snapshot` turns it into frozen views."""

    def __init__(
        self,
        *,
        window_s: int = 10,
        history_s: int = 180,
        errors_kept: int = 8,
        training_kept: int = 6,
        expected: Mapping[str, int] | None = None,
    ) -> None:
        self.window_s = window_s
        self.history_s = history_s
        self.status: RunStatus = "waiting"
        self.message = ""
        self.out_dir: str | None = None
        self.documents: int | None = None
        self.started_at: float | None = None
        self.finished_at: float | None = None
        self.events = 0
        self.missed = 0
        self.failures = 0
        self.budget_usd: float | None = None
        self.budget_spent_usd: float | None = None
        self._actors: dict[str, _Actor] = {}
        self._models: dict[str, _Model] = {}
        self._agreement: dict[str, _Agreement] = {}
        self._difference: DifferenceView | None = None
        self._pairs: dict[str, list[list[int]]] = {}
        self._training: dict[str, TrainingView] = {}
        self._training_log: deque[str] = deque(maxlen=training_kept)
        self._errors: deque[ErrorView] = deque(maxlen=errors_kept)
        self._expected: dict[str, int] = dict(expected or {})
        self._split: tuple[int, int] | None = None
        self._eta = Eta()

    # -- feeds ---------------------------------------------------------------------------------------------------

    def fold(self, event: Event, now: float) -> None:
        """Count one event that happened at (or was received at) ``now``."""
        self.events += 1
        if isinstance(event, ItemDone):
            actor = self._actor(event.actor, now)
            actor.out += 1
            actor.outputs.add(now)
            separator = _DOCUMENT_OF_QUESTION.get(event.actor)
            if separator is None:
                self._advance(actor, now)
            else:
                source = event.item_id.rpartition(separator)[0] or event.item_id
                if source not in actor.sources:
                    actor.sources.add(source)
                    self._advance(actor, now)
        elif isinstance(event, CallFinished):
            self._call(event, now)
        elif isinstance(event, ItemFailed):
            actor = self._actor(event.actor, now)
            actor.failed += 1
            self.failures += 1
            if event.actor not in _DOCUMENT_OF_QUESTION:
                self._advance(actor, now)
            elif event.item_id not in actor.sources:
                actor.sources.add(event.item_id)
                self._advance(actor, now)
            at = None if self.started_at is None else now - self.started_at
            self._errors.append(ErrorView(at, event.actor, event.item_id, event.error))
        elif isinstance(event, ScorePaired):
            self.fold_pair(event.judge, event.reference_score, event.score)
        elif isinstance(event, ScoreUpdate):
            previous = self._agreement.get(event.judge)
            if previous is None:
                self._agreement[event.judge] = _Agreement(event, final=event.final)
            else:
                previous.update = event
                previous.final = previous.final or event.final
        elif isinstance(event, ActorStarted):
            actor = self._actor(event.actor, now)
            actor.workers = event.workers
            if not actor.started:
                actor.started = True
                if not actor.done_in and not actor.out:
                    actor.started_at = now
                    for series in (actor.outputs, actor.inputs, actor.latency):
                        series.start = now
        elif isinstance(event, ActorFinished):
            self._finish_actor(event, now)
        elif isinstance(event, CallRetry):
            model = self._model(event.model)
            model.provider = model.provider or event.provider
            model.retries += 1
            if event.reason == "rate_limited":
                model.rate_limited += 1
        elif isinstance(event, ConcurrencyChanged):
            model = self._model(event.model)
            model.provider = model.provider or event.provider
            model.limit = event.limit
            model.maximum = event.maximum
        elif isinstance(event, TrainingStatus):
            self._training[event.student] = TrainingView(event.student, event.status, event.message, event.progress)
            line = f"{event.student}: {event.status}"
            self._training_log.append(f"{line} — {event.message}" if event.message else line)
            if event.status in _TRAINING_DONE:
                trainer = self._actor("trainer", now)
                if trainer.done_in == 0:
                    trainer.done_in = 1
                    self._sample_eta(now)
        elif isinstance(event, BudgetExhausted):
            self.budget_usd = event.budget_usd
            self.budget_spent_usd = event.spent_usd
        elif isinstance(event, Missed):
            self.missed += event.count
        elif isinstance(event, RunStarted):
            self.status = "running"
            self.out_dir = event.out_dir
            self.documents = event.n_documents
            self.started_at = now
        elif isinstance(event, RunFinished):
            self.status = "finished" if event.ok else "failed"
            self.message = event.message
            self.out_dir = event.out_dir or self.out_dir
            self.finished_at = now

    def stream_ended(self, now: float) -> None:
        """The event stream ended: if the run's end was not among the events received, it ended now."""
        if self.status in ("waiting", "running"):
            self.status = "finished"
            self.finished_at = now

    def fold_pair(self, judge: str, teacher_score: float, student_score: float) -> None:
        """Count one item both the reference judge and ``judge`` scored, for the heat map."""
        counts = self._pairs.get(judge)
        if counts is None:
            counts = self._pairs[judge] = [[0] * SCORE_LEVELS for _ in range(SCORE_LEVELS)]
        counts[score_level(teacher_score) - 1][score_level(student_score) - 1] += 1

    def fold_report(self, report: Mapping[str, Any]) -> None:
        """Take the final agreement and its 95% CIs from a run report (the shape of ``report.json``)."""
        reference = str(report.get("reference_judge", ""))
        agreement = report.get("agreement")
        if isinstance(agreement, Mapping):
            for judge, entry in agreement.items():
                if isinstance(entry, Mapping):
                    self._agreement[str(judge)] = _report_agreement(str(judge), reference, entry)
        difference = report.get("pearson_difference")
        if isinstance(difference, Mapping):
            judges = difference.get("judges")
            if isinstance(judges, Sequence) and len(judges) == 2:
                self._difference = DifferenceView(
                    (str(judges[0]), str(judges[1])),
                    _number(difference.get("value")),
                    _interval(difference.get("ci95")),
                )

    def observe_split(self, train: int, test: int) -> None:
        """How many questions went to each split so far (the run's live counters)."""
        self._split = (train, test)

    def expect(self, actor: str, total: int) -> None:
        """The caller knows how many items ``actor`` will get: use that instead of an estimate."""
        self._expected[actor] = total

    # -- snapshot ------------------------------------------------------------------------------------------------

    def snapshot(self, now: float) -> Snapshot:
        """Frozen views of everything, as of ``now``."""
        totals = self._totals()
        actors = tuple(self._actor_view(actor, totals.get(actor.name), now) for actor in self._ordered_actors())
        return Snapshot(
            now=now,
            status=self.status,
            message=self.message,
            out_dir=self.out_dir,
            elapsed_s=self._elapsed(now),
            actors=actors,
            models=tuple(_model_view(model) for model in self._models.values()),
            costs=self._costs(totals),
            agreement=tuple(self._agreement_view(judge) for judge in self._judges()),
            difference=self._difference,
            heatmaps=tuple(
                _heatmap_view(judge, self._pairs[judge]) for judge in _ordered(self._pairs, _PREFERRED_JUDGES)
            ),
            progress=self._progress(totals, now),
            training=tuple(self._training.values()),
            training_log=tuple(self._training_log),
            errors=tuple(self._errors),
            failures=self.failures,
            missed=self.missed,
            events=self.events,
        )

    # -- internals -----------------------------------------------------------------------------------------------

    def _actor(self, name: str, now: float) -> _Actor:
        actor = self._actors.get(name)
        if actor is None:
            actor = self._actors[name] = _Actor(name, now, self.history_s, len(self._actors))
        return actor

    def _model(self, name: str) -> _Model:
        model = self._models.get(name)
        if model is None:
            model = self._models[name] = _Model(name)
        return model

    def _advance(self, actor: _Actor, now: float, count: int = 1) -> None:
        actor.done_in += count
        actor.inputs.add(now, count)
        if actor.name in STAGES:
            self._sample_eta(now)

    def _sample_eta(self, now: float) -> None:
        actors = self._actors
        self._eta.add(now, sum(actors[name].done_in for name in STAGES if name in actors))

    def _call(self, event: CallFinished, now: float) -> None:
        model = self._model(event.model)
        model.calls += 1
        model.latency_s += event.latency_s
        if not event.ok:
            model.failed += 1
        if event.usage is not None:
            model.input_tokens += event.usage.input_tokens
            model.output_tokens += event.usage.output_tokens
        actor = self._actor(event.actor, now)
        actor.calls += 1
        actor.latency.add(now, event.latency_s)
        if event.cost_usd:
            model.cost += event.cost_usd
            actor.cost += event.cost_usd

    def _finish_actor(self, event: ActorFinished, now: float) -> None:
        actor = self._actor(event.actor, now)
        actor.finished_at = now
        # The final counts are exact; live counts may have missed events, or count other units (the question
        # writer's output is questions, and it reports no items out).
        if event.items_in > actor.done_in:
            actor.inputs.add(now, event.items_in - actor.done_in)
        actor.done_in = event.items_in
        actor.out = max(actor.out, event.items_out)
        actor.failed = max(actor.failed, event.failed)
        if event.actor == "trainer":
            actor.done_in = 1
        if event.actor in STAGES:
            self._sample_eta(now)

    def _ordered_actors(self) -> list[_Actor]:
        rank = {name: index for index, name in enumerate(ACTOR_ORDER)}
        return sorted(self._actors.values(), key=lambda a: (rank.get(a.name, len(rank)), a.order))

    def _elapsed(self, now: float) -> float | None:
        if self.started_at is None:
            return None
        end = self.finished_at if self.finished_at is not None else now
        return max(end - self.started_at, 0.0)

    def _totals(self) -> dict[str, tuple[int, bool]]:
        """How many inputs each stage will get, and whether that is known or estimated.

        Each stage gets what its upstream produced: exact once the upstream finished, estimated before, from the
        questions written per document so far and, for the students, the share of held-out questions so far.
        """
        totals: dict[str, tuple[int, bool]] = {}
        actors = self._actors
        if self.documents is not None:
            totals["question_writer"] = (self.documents, True)
        writer = actors.get("question_writer")
        upstream: tuple[int, bool] | None = None
        if writer is not None and writer.finished_at is not None:
            upstream = (writer.out, True)
        elif writer is not None and writer.done_in > 0 and self.documents:
            upstream = (round(writer.out / writer.done_in * self.documents), False)
        for name in ("retriever", "answerer", "teacher"):
            if upstream is not None:
                totals[name] = upstream
            stage = actors.get(name)
            if stage is not None and stage.finished_at is not None:
                upstream = (stage.out, True)
        held_out = self._held_out(totals.get("teacher"))
        if held_out is not None:
            for name in _STUDENTS:
                totals[name] = held_out
        totals["trainer"] = (1, True)
        for name, stage in actors.items():
            if stage.finished_at is not None and name in STAGES:
                totals[name] = (stage.done_in, True)
        for name, total in self._expected.items():
            totals[name] = (total, True)
        return totals

    def _held_out(self, answers: tuple[int, bool] | None) -> tuple[int, bool] | None:
        if answers is None or self._split is None:
            return None
        train, test = self._split
        seen = train + test
        if seen == 0:
            return None
        total, exact = answers
        if exact and seen >= total:
            return (test, True)
        return (round(total * test / seen), False)

    def _actor_view(self, actor: _Actor, total: tuple[int, bool] | None, now: float) -> ActorView:
        window = self.window_s
        end = actor.finished_at if actor.finished_at is not None else now
        lived = end - actor.started_at
        state: Literal["waiting", "running", "done"] = "done" if actor.finished_at is not None else "running"
        if not actor.started and actor.finished_at is None:
            state = "waiting"
        rate_in = actor.inputs.rate(now, window)
        progress = eta = None
        if total is not None:
            progress = min(actor.done_in / total[0], 1.0) if total[0] > 0 else 1.0
            remaining = max(total[0] - actor.done_in, 0)
            if remaining == 0:
                eta = 0.0
            elif rate_in > 0 and actor.finished_at is None:
                eta = remaining / rate_in
        busy = actor.latency.rate(now, window) if actor.calls else None
        since = self.started_at if self.started_at is not None else actor.started_at
        return ActorView(
            name=actor.name,
            workers=actor.workers,
            state=state,
            items_in=actor.done_in,
            items_out=actor.out,
            failed=actor.failed,
            rate_now=actor.outputs.rate(now, window),
            rate_avg=actor.out / lived if lived >= 1.0 else float(actor.out),
            busy=busy,
            total=None if total is None else total[0],
            total_exact=total is not None and total[1],
            progress=progress,
            eta_s=eta,
            history=actor.outputs.history(now, since=since, seconds=self.history_s),
        )

    def _progress(self, totals: Mapping[str, tuple[int, bool]], now: float) -> ProgressView:
        done = total = 0
        exact = True
        for name in STAGES:
            known = totals.get(name)
            if known is None:
                exact = False
                continue
            stage = self._actors.get(name)
            done += min(stage.done_in, known[0]) if stage is not None else 0
            total += known[0]
            exact = exact and known[1]
        if self.status == "finished":
            return ProgressView(done, total or None, True, 1.0, 0.0, self._elapsed(now))
        if total == 0:
            return ProgressView(done, None, False, None, None, self._elapsed(now))
        return ProgressView(done, total, exact, done / total, self._eta.eta(now, total), self._elapsed(now))

    def _costs(self, totals: Mapping[str, tuple[int, bool]]) -> CostView:
        spent = sum(model.cost for model in self._models.values())
        projected = 0.0
        partial = False
        for actor in self._actors.values():
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
            budget_usd=self.budget_usd,
            budget_exhausted=self.budget_spent_usd is not None,
            by_model=tuple((model.name, model.cost) for model in self._models.values() if model.cost),
        )

    def _judges(self) -> list[str]:
        return _ordered(self._agreement, _PREFERRED_JUDGES)

    def _agreement_view(self, judge: str) -> AgreementView:
        entry = self._agreement[judge]
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


def _ordered(names: Iterable[str], preferred: Sequence[str]) -> list[str]:
    present = list(names)
    return [name for name in preferred if name in present] + [name for name in present if name not in preferred]


def _model_view(model: _Model) -> ModelView:
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


def _heatmap_view(judge: str, counts: list[list[int]]) -> HeatMapView:
    rows = tuple(tuple(row) for row in counts)
    return HeatMapView(judge, rows, sum(map(sum, rows)), max(map(max, rows)))


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


def _report_agreement(judge: str, reference: str, entry: Mapping[str, Any]) -> _Agreement:
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
    return _Agreement(update, ci95, final=True)
