"""What the dashboard knows about a run: events folded into counters, and snapshots of them to paint.

Pure: no clock reads and no I/O. Whatever depends on time takes ``now`` (seconds on any monotonic clock), so
throughput windows, ETAs and the cost projection are plain arithmetic, tested without an event loop or an app.
Folding one event costs a few dictionary and deque operations; the app folds every event it receives and paints
a `Snapshot` a few times a second, so however many events a fast run publishes, the terminal sets no pace.

A judge run (``judgeflow judge``, told by its `RunStarted` or by the caller's ``mode``) is folded the same way,
but shown differently: its judges stand where the pipeline's stages stand (progress, ETA, the listed actors), and
the routers and readers that report only at start and finish are left out, as they would show zeros until the end.

Some facts are not in the event stream and are handed in by whoever knows them: the per-item score pairs behind
the heat map (`DashboardState.fold_pair`), how many questions went to each split (`observe_split`, read from
the run's live counters), the final report with its confidence intervals (`fold_report`) and, when the caller
knows it, how many items a stage will get (`expect`).

The pieces live next door: `views` (the frozen snapshot), `series` (per-second sums and the ETA), `tallies`
(the mutable counters) and `projection` (expected totals, progress and projected cost).

One module, longer than most: folding is one function over one state, one branch per event kind; splitting it
would scatter what each event changes.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Mapping
from typing import Any

from judgeflow.protocol.events import (
    ActorFinished,
    ActorStarted,
    BatchProgress,
    BudgetExhausted,
    CallFinished,
    CallRetry,
    ConcurrencyChanged,
    Event,
    ItemDone,
    ItemFailed,
    Missed,
    OutputFallback,
    ReplyRead,
    RunFinished,
    RunStarted,
    ScorePaired,
    ScoreUpdate,
    ServerDown,
    ServerUp,
    TrainingStatus,
)

from .projection import Totals, actor_view, cost_view, progress_view, stage_totals
from .series import Eta
from .tallies import (
    ActorTally,
    AgreementTally,
    ModelTally,
    agreement_view,
    heatmap_view,
    model_view,
    ordered,
    report_agreement,
    report_difference,
)
from .views import (
    ACTOR_ORDER,
    SCORE_LEVELS,
    STAGES,
    BatchView,
    DifferenceView,
    ErrorView,
    OutageView,
    RunMode,
    RunStatus,
    Snapshot,
    TrainingView,
    score_level,
)

__all__ = ["DashboardState"]


# The question writer takes documents and publishes ItemDone per question it wrote ("<document id>-q<n>"), so its
# progress counts the documents its questions came from (an ItemFailed names a document that yielded none).
_DOCUMENT_OF_QUESTION = {"question_writer": "-q"}
_PREFERRED_JUDGES = ("student_trained", "student_base")
_TRAINING_DONE = frozenset({"trained", "skipped"})


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
        mode: RunMode = "run",
    ) -> None:
        self.window_s = window_s
        self.mode: RunMode = mode
        self.judges: tuple[str, ...] = ()
        self.items: int | None = None
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
        self._actors: dict[str, ActorTally] = {}
        self._models: dict[str, ModelTally] = {}
        self._agreement: dict[str, AgreementTally] = {}
        self._difference: DifferenceView | None = None
        self._pairs: dict[str, list[list[int]]] = {}
        self._training: dict[str, TrainingView] = {}
        self._training_log: deque[str] = deque(maxlen=training_kept)
        self._errors: deque[ErrorView] = deque(maxlen=errors_kept)
        self._expected: dict[str, int] = dict(expected or {})
        self._split: tuple[int, int] | None = None
        self._eta = Eta()
        self._counted: frozenset[str] = frozenset(STAGES)
        self._outages: dict[str, OutageView] = {}
        self._batches: dict[tuple[str, str], BatchView] = {}

    # -- feeds ---------------------------------------------------------------------------------------------------

    def fold(self, event: Event, now: float) -> None:
        """Count one event that happened at (or was received at) ``now``."""
        self.events += 1
        if isinstance(event, ItemDone):
            actor = self._actor(event.actor, now)
            actor.live = True
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
            actor.live = True
            actor.failed += 1
            self.failures += 1
            if event.actor not in _DOCUMENT_OF_QUESTION:
                self._advance(actor, now)
            elif event.item_id not in actor.sources:
                actor.sources.add(event.item_id)
                self._advance(actor, now)
            at = None if self.started_at is None else now - self.started_at
            self._errors.append(ErrorView(at, event.actor, event.item_id, event.error))
        elif isinstance(event, ReplyRead):
            actor = self._actor(event.actor, now)
            actor.replies += 1
            actor.usable += event.usable
        elif isinstance(event, OutputFallback):
            at = None if self.started_at is None else now - self.started_at
            told = f"{event.model}: the server refused {event.feature}; asking with {event.instead}"
            self._errors.append(ErrorView(at, event.role, "", told))
        elif isinstance(event, ScorePaired):
            self.fold_pair(event.judge, event.reference_score, event.score)
        elif isinstance(event, ScoreUpdate):
            previous = self._agreement.get(event.judge)
            if previous is None:
                self._agreement[event.judge] = AgreementTally(event, final=event.final)
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
        elif isinstance(event, BatchProgress):
            self._batches[(event.judge, event.part)] = BatchView(
                event.judge,
                event.part,
                event.batch_id,
                event.status,
                event.completed,
                event.failed,
                event.total,
                event.message,
            )
        elif isinstance(event, BudgetExhausted):
            self.budget_usd = event.budget_usd
            self.budget_spent_usd = event.spent_usd
        elif isinstance(event, Missed):
            self.missed += event.count
        elif isinstance(event, ServerDown):
            self._outages[event.server] = OutageView(event.server, event.since, event.detail, event.probes)
        elif isinstance(event, ServerUp):
            self._outages.pop(event.server, None)
        elif isinstance(event, RunStarted):
            self.status = "running"
            self.out_dir = event.out_dir
            self.started_at = now
            if event.kind == "judge":
                self._start_judging(event)
            else:
                self.mode = "run"
                self.documents = event.n_documents
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
                    self._agreement[str(judge)] = report_agreement(str(judge), reference, entry)
        difference = report_difference(report.get("pearson_difference"))
        if difference is not None:
            self._difference = difference

    def observe_split(self, train: int, test: int) -> None:
        """How many questions went to each split so far (the run's live counters)."""
        self._split = (train, test)

    def expect(self, actor: str, total: int) -> None:
        """The caller knows how many items ``actor`` will get: use that instead of an estimate."""
        self._expected[actor] = total

    def _start_judging(self, event: RunStarted) -> None:
        self.mode = "judge"
        self.items = event.n_items
        self.judges = tuple(event.judges)
        self._expected.update(event.judges)
        self._counted = frozenset(self.judges)

    # -- snapshot ------------------------------------------------------------------------------------------------

    def snapshot(self, now: float) -> Snapshot:
        """Frozen views of everything, as of ``now``."""
        totals = self._totals()
        elapsed = self._elapsed(now)
        progress = progress_view(
            totals, self._actors, now, status=self.status, eta=self._eta, elapsed_s=elapsed, stages=self._stages()
        )
        if self.mode == "judge":
            progress = dataclasses.replace(progress, items=self.items, judges=len(self.judges))
        actors = tuple(
            actor_view(
                actor,
                totals.get(actor.name),
                now,
                window_s=self.window_s,
                history_s=self.history_s,
                run_started_at=self.started_at,
            )
            for actor in self._ordered_actors()
        )
        return Snapshot(
            now=now,
            status=self.status,
            message=self.message,
            out_dir=self.out_dir,
            elapsed_s=elapsed,
            actors=actors,
            models=tuple(model_view(model) for model in self._models.values()),
            costs=cost_view(
                totals,
                self._actors,
                self._models,
                budget_usd=self.budget_usd,
                budget_exhausted=self.budget_spent_usd is not None,
            ),
            agreement=tuple(agreement_view(judge, self._agreement[judge]) for judge in self._judges()),
            difference=self._difference,
            heatmaps=tuple(
                heatmap_view(judge, self._pairs[judge]) for judge in ordered(self._pairs, _PREFERRED_JUDGES)
            ),
            progress=progress,
            training=tuple(self._training.values()),
            training_log=tuple(self._training_log),
            errors=tuple(self._errors),
            failures=self.failures,
            missed=self.missed,
            events=self.events,
            mode=self.mode,
            outages=tuple(self._outages.values()),
            batches=tuple(self._batches.values()),
        )

    # -- internals -----------------------------------------------------------------------------------------------

    def _actor(self, name: str, now: float) -> ActorTally:
        actor = self._actors.get(name)
        if actor is None:
            actor = self._actors[name] = ActorTally(name, now, self.history_s, len(self._actors))
        return actor

    def _model(self, name: str) -> ModelTally:
        model = self._models.get(name)
        if model is None:
            model = self._models[name] = ModelTally(name)
        return model

    def _advance(self, actor: ActorTally, now: float, count: int = 1) -> None:
        actor.done_in += count
        actor.inputs.add(now, count)
        if actor.name in self._counted:
            self._sample_eta(now)

    def _sample_eta(self, now: float) -> None:
        actors = self._actors
        self._eta.add(now, sum(actors[name].done_in for name in self._counted if name in actors))

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
        actor.live = True
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
        if event.actor in self._counted:
            self._sample_eta(now)

    def _ordered_actors(self) -> list[ActorTally]:
        if self.mode == "judge":
            # The judges in the order they were named (the reference first), then whatever else reports as it goes.
            rank = {name: index for index, name in enumerate(self.judges)}
            shown = (a for a in self._actors.values() if a.name in rank or a.live)
            return sorted(shown, key=lambda a: (rank.get(a.name, len(rank)), a.order))
        rank = {name: index for index, name in enumerate(ACTOR_ORDER)}
        return sorted(self._actors.values(), key=lambda a: (rank.get(a.name, len(rank)), a.order))

    def _stages(self) -> tuple[str, ...]:
        """The actors whose work the overall progress counts: the pipeline's stages, or a judge run's judges."""
        if self.mode == "run":
            return STAGES
        # Without the run's start (missed, or not yet published) the judges are whoever reports verdicts.
        return self.judges or tuple(actor.name for actor in self._actors.values() if actor.live)

    def _elapsed(self, now: float) -> float | None:
        if self.started_at is None:
            return None
        end = self.finished_at if self.finished_at is not None else now
        return max(end - self.started_at, 0.0)

    def _totals(self) -> Totals:
        return stage_totals(self._actors, documents=self.documents, split=self._split, expected=self._expected)

    def _judges(self) -> list[str]:
        return ordered(self._agreement, _PREFERRED_JUDGES)
