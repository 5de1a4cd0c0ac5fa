"""The dashboard's panels: small widgets that render from snapshot data only.

Each panel is a thin `Static` around a pure ``render_*`` function (snapshot data in, Rich renderable out), so
what a panel shows is testable without an app. Panels never read a clock or a channel themselves: the app hands
them a `Snapshot` and the channel counters it read at repaint time. Colours come from the stylesheet, through
component classes (``panel--bad``, ``heatmap--high``...), so `dashboard.tcss` is the one place to restyle.

The renderers live in `tables` (pipeline, models), `scores` (agreement, heat map) and `summaries` (status,
progress, training, cost, errors), over the shared formatting of `formatting`; they are re-exported here.

A judge run (``Snapshot.mode == "judge"``) reuses the panels with its own words: the pipeline table lists the
judges, the sparklines follow whichever actors report, and the training panel, which has nothing to show there,
is hidden (the throughput panel takes its room).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import ClassVar

from rich.style import Style
from textual.app import ComposeResult
from textual.color import Color
from textual.containers import Horizontal, Vertical
from textual.widgets import Label, Sparkline, Static

from .formatting import ChannelView, Palette, fmt_rate
from .scores import render_agreement_panel, render_heatmaps
from .summaries import (
    render_batches,
    render_costs,
    render_errors,
    render_progress,
    render_status,
    render_training,
)
from .tables import render_pipeline, render_providers
from .views import ActorView, Snapshot

__all__ = [
    "SPARK_STAGES",
    "AgreementPanel",
    "BatchesPanel",
    "CostsPanel",
    "ErrorsPanel",
    "HeatMapPanel",
    "Panel",
    "PipelinePanel",
    "ProgressPanel",
    "ProvidersPanel",
    "StatusBar",
    "ThroughputPanel",
    "TrainingPanel",
]

SPARK_STAGES: tuple[str, ...] = (
    "question_writer",
    "retriever",
    "answerer",
    "teacher",
    "student_base",
    "student_trained",
)
"""The stages with a throughput sparkline (the ones that handle items one by one)."""

_HEAT_LOW, _HEAT_HIGH = Color(40, 40, 40), Color(255, 160, 0)


class Panel(Static):
    """A bordered panel that renders from snapshot data; its colours come from component classes."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "panel--good",
        "panel--warn",
        "panel--bad",
        "panel--dim",
        "panel--accent",
    }

    TITLE: ClassVar[str] = ""
    JUDGE_TITLE: ClassVar[str | None] = None
    """The title in a judge run, if it is not ``TITLE``."""

    def on_mount(self) -> None:
        self.border_title = self.TITLE

    def title_for(self, snapshot: Snapshot) -> None:
        """Use the title that fits the kind of run (set only on a change: a new title repaints the border)."""
        title = self.JUDGE_TITLE if snapshot.mode == "judge" and self.JUDGE_TITLE is not None else self.TITLE
        if self.border_title != title:
            self.border_title = title

    def palette(self) -> Palette:
        def style(name: str) -> Style:
            return self.get_component_rich_style(name, partial=True, default=Style())

        return Palette(
            good=style("panel--good"),
            warn=style("panel--warn"),
            bad=style("panel--bad"),
            dim=style("panel--dim"),
            accent=style("panel--accent"),
        )


class StatusBar(Static):
    """The top line; its classes (-finished, -failed, -paused) let the stylesheet colour the whole bar."""

    def show(self, snapshot: Snapshot, *, paused: bool, channels: Sequence[ChannelView]) -> None:
        self.set_class(snapshot.status == "finished", "-finished")
        self.set_class(snapshot.status == "failed", "-failed")
        self.set_class(paused and snapshot.status == "running", "-paused")
        self.update(render_status(snapshot, paused=paused, channels=channels))


class PipelinePanel(Panel):
    TITLE = "Pipeline"
    JUDGE_TITLE = "Judges"

    def show(self, snapshot: Snapshot, channels: Sequence[ChannelView]) -> None:
        self.title_for(snapshot)
        self.update(render_pipeline(snapshot.actors, channels, self.palette(), judging=snapshot.mode == "judge"))


class ProgressPanel(Panel):
    TITLE = "Progress"

    def show(self, snapshot: Snapshot) -> None:
        self.update(render_progress(snapshot.progress, self.palette()))


class TrainingPanel(Panel):
    TITLE = "Training"

    def show(self, snapshot: Snapshot) -> None:
        shown = snapshot.mode != "judge"
        if self.display != shown:
            self.display = shown
        if shown:
            self.update(render_training(snapshot.training, snapshot.training_log, self.palette()))


class BatchesPanel(Panel):
    """The batches of judges in batch mode, with their status and request counts; hidden when there are none."""

    TITLE = "Batches"

    def show(self, snapshot: Snapshot) -> None:
        shown = bool(snapshot.batches)
        if self.display != shown:
            self.display = shown
        if shown:
            self.update(render_batches(snapshot.batches, self.palette()))


class ProvidersPanel(Panel):
    TITLE = "Models"

    def show(self, snapshot: Snapshot) -> None:
        self.update(render_providers(snapshot.models, self.palette()))


class CostsPanel(Panel):
    TITLE = "Cost"

    def show(self, snapshot: Snapshot) -> None:
        self.update(render_costs(snapshot.costs, self.palette()))


class AgreementPanel(Panel):
    TITLE = "Agreement with the teacher"
    JUDGE_TITLE = "Agreement with the reference judge"

    def show(self, snapshot: Snapshot) -> None:
        self.title_for(snapshot)
        judging = snapshot.mode == "judge"
        self.update(render_agreement_panel(snapshot.agreement, snapshot.difference, self.palette(), judging=judging))


class HeatMapPanel(Panel):
    TITLE = "Teacher × student scores"
    JUDGE_TITLE = "Reference × judge scores"

    COMPONENT_CLASSES: ClassVar[set[str]] = Panel.COMPONENT_CLASSES | {"heatmap--low", "heatmap--high"}

    def show(self, snapshot: Snapshot) -> None:
        self.title_for(snapshot)
        try:
            low = self.get_component_styles("heatmap--low").color
            high = self.get_component_styles("heatmap--high").color
        except KeyError:  # a repaint before the stylesheet reached this panel: the next one has colours
            low, high = _HEAT_LOW, _HEAT_HIGH
        self.update(render_heatmaps(snapshot.heatmaps, low, high, self.palette(), judging=snapshot.mode == "judge"))


class ErrorsPanel(Panel):
    TITLE = "Errors"

    def show(self, snapshot: Snapshot) -> None:
        self.update(render_errors(snapshot.errors, snapshot.failures, snapshot.missed, self.palette()))


class ThroughputPanel(Vertical):
    """Items per second of each stage since the run started (the last few minutes), one sparkline each.

    A pipeline run has a fixed list of stages (``stages``); a judge run has one row per actor that reports
    (its judges), added as they appear, since which judges run is known only from the events.
    """

    def __init__(self, stages: Iterable[str] = SPARK_STAGES, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.stages = tuple(stages)
        self._sparklines: dict[str, Sparkline] = {}
        self._rates: dict[str, Label] = {}
        self._made = 0
        self._rows = [self._row(stage) for stage in self.stages]

    def _row(self, stage: str) -> Horizontal:
        # A widget id must be an identifier, and a judge's name ("openai:gpt-4o") is not one: such rows are
        # numbered instead (never reusing a number, as a removed row may linger until the next refresh).
        name = stage if stage.isidentifier() else f"actor-{self._made}"
        self._made += 1
        self._sparklines[stage] = Sparkline([0.0, 0.0], id=f"spark-{name}")
        self._rates[stage] = Label("", id=f"rate-{name}", classes="spark-rate")
        return Horizontal(
            Label(stage, classes="spark-label"), self._sparklines[stage], self._rates[stage], classes="spark-row"
        )

    def compose(self) -> ComposeResult:
        yield from self._rows

    def on_mount(self) -> None:
        self.border_title = "Throughput (items/s)"

    def show(self, snapshot: Snapshot) -> None:
        views: Mapping[str, ActorView] = {view.name: view for view in snapshot.actors}
        if snapshot.mode == "judge":
            self._follow(tuple(views))
        for stage in self.stages:
            view = views.get(stage)
            history = view.history if view is not None and len(view.history) >= 2 else (0.0, 0.0)
            self._sparklines[stage].data = history
            self._rates[stage].update("" if view is None else f"{fmt_rate(view.rate_now)}/s")

    def _follow(self, actors: tuple[str, ...]) -> None:
        """Show exactly ``actors``, in that order (a judge run's rows come and go with its events)."""
        if actors == self.stages:
            return
        for row in self._rows:
            row.remove()
        self._sparklines.clear()
        self._rates.clear()
        self.stages = actors
        self._rows = [self._row(stage) for stage in actors]
        if self._rows:
            self.mount(*self._rows)
