"""The dashboard's panels: small widgets that render from snapshot data only.

Each panel is a thin `Static` around a pure ``render_*`` function (snapshot data in, Rich renderable out), so
what a panel shows is testable without an app. Panels never read a clock or a channel themselves: the app hands
them a `Snapshot` and the channel counters it read at repaint time. Colours come from the stylesheet, through
component classes (``panel--bad``, ``heatmap--high``...), so `dashboard.tcss` is the one place to restyle.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar

from rich.console import Group, RenderableType
from rich.style import Style
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.color import Color
from textual.containers import Horizontal, Vertical
from textual.widgets import Label, Sparkline, Static

from judgeflow.protocol.channels import ChannelStats

from .state import (
    METRIC_ORDER,
    SCORE_LEVELS,
    ActorView,
    AgreementView,
    CostView,
    DifferenceView,
    ErrorView,
    HeatMapView,
    ModelView,
    ProgressView,
    Snapshot,
    TrainingView,
)

__all__ = [
    "SPARK_STAGES",
    "AgreementPanel",
    "ChannelView",
    "CostsPanel",
    "ErrorsPanel",
    "HeatMapPanel",
    "Palette",
    "Panel",
    "PipelinePanel",
    "ProgressPanel",
    "ProvidersPanel",
    "StatusBar",
    "ThroughputPanel",
    "TrainingPanel",
    "bar",
    "fmt_duration",
    "fmt_tokens",
    "fmt_usd",
    "render_agreement",
    "render_costs",
    "render_errors",
    "render_heatmaps",
    "render_pipeline",
    "render_progress",
    "render_providers",
    "render_status",
    "render_training",
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

_METRIC_LABELS = {
    "pearson": "Pearson r",
    "spearman": "Spearman ρ",
    "kendall": "Kendall τ-b",
    "kappa": "κ (quadratic)",
    "exact": "exact",
    "within1": "within 1",
    "mae": "MAE",
}

# Channels that are not named "<actor>.inbox" but still are one actor's inbox.
_INBOX_OF = {
    "documents": "question_writer",
    "questions": "question_router",
    "answers": "answer_router",
    "teacher.outbox": "teacher_router",
    "students.outbox": "student_router",
    "judgements": "judgement_router",
}

_EIGHTHS = " ▏▎▍▌▋▊▉"
_PLAIN = Style()  # immutable, so one instance can be every default
_HEAT_LOW, _HEAT_HIGH = Color(40, 40, 40), Color(255, 160, 0)


# ---------------------------------------------------------------------------------------------------------------
# Plain data and formatting.


@dataclass(frozen=True, slots=True)
class ChannelView:
    """One channel's counters, read once per repaint."""

    name: str
    capacity: int
    current: int
    peak: int
    sent: int
    wait_s: float

    @classmethod
    def read(cls, stats: ChannelStats) -> ChannelView:
        return cls(stats.name, stats.capacity, stats.current, stats.peak, stats.sent, stats.wait_s)


@dataclass(frozen=True, slots=True)
class Palette:
    """Styles for meaning (good, warn, bad, dim, accent); the defaults are plain, the stylesheet colours them."""

    good: Style = _PLAIN
    warn: Style = _PLAIN
    bad: Style = _PLAIN
    dim: Style = _PLAIN
    accent: Style = _PLAIN


def fmt_duration(seconds: float | None) -> str:
    """``0:42``, ``12:03`` or ``1:02:03``; "—" when unknown."""
    if seconds is None:
        return "—"
    whole = max(round(seconds), 0)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def fmt_tokens(count: int) -> str:
    if count < 10_000:
        return f"{count:,}"
    if count < 10_000_000:
        return f"{count / 1000:.1f}k"
    return f"{count / 1_000_000:.1f}M"


def fmt_usd(amount: float | None) -> str:
    if amount is None:
        return "—"
    if amount == 0:
        return "$0"
    if amount < 1:
        return f"${amount:.4f}"
    return f"${amount:,.2f}"


def _fmt_rate(rate: float) -> str:
    if rate == 0:
        return "0"
    return f"{rate:.1f}" if rate < 100 else f"{rate:,.0f}"


def _fmt_metric(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def bar(fraction: float | None, width: int) -> str:
    """A left-to-right bar of ``width`` cells filled to ``fraction``, in eighths of a cell."""
    if fraction is None:
        return "·" * width
    eighths = round(min(max(fraction, 0.0), 1.0) * width * 8)
    full, part = divmod(eighths, 8)
    text = "█" * full + (_EIGHTHS[part] if part else "")
    return text + "░" * (width - len(text))


def _grid(*, padding: tuple[int, int] = (0, 1)) -> Table:
    grid = Table.grid(padding=padding)
    grid.add_column(no_wrap=True)
    grid.add_column(no_wrap=True)
    return grid


# ---------------------------------------------------------------------------------------------------------------
# Pure renderers.


def render_status(snapshot: Snapshot, *, paused: bool, channels: Sequence[ChannelView] = ()) -> Text:
    """The one-line status: what the run is doing, for how long, and where its folder is."""
    text = Text()
    if snapshot.status == "finished":
        text.append(" ✔ finished — press q to exit ", "bold")
    elif snapshot.status == "failed":
        text.append(f" ✘ failed: {snapshot.message or 'the run did not finish'} — press q to exit ", "bold")
    elif paused:
        text.append(" ‖ paused — press p to resume ", "bold")
    elif snapshot.status == "running":
        text.append(" ● running ")
    else:
        text.append(" ○ waiting for the run to start ")
    text.append(f"  elapsed {fmt_duration(snapshot.elapsed_s)}")
    if snapshot.out_dir:
        text.append(f"  run folder {snapshot.out_dir}")
    text.append(f"  events {snapshot.events:,}")
    if snapshot.missed:
        text.append(f"  missed {snapshot.missed:,}")
    stalled = [c for c in channels if c.capacity and c.current >= c.capacity]
    if stalled:
        text.append("  full: " + ", ".join(c.name for c in stalled))
    return text


def render_pipeline(actors: Sequence[ActorView], channels: Sequence[ChannelView], palette: Palette) -> RenderableType:
    """One row per actor: items, throughput, estimated calls in flight, its inbox, progress and ETA."""
    inboxes: dict[str, ChannelView] = {}
    others: list[ChannelView] = []
    for channel in channels:
        owner = _INBOX_OF.get(channel.name) or channel.name.removesuffix(".inbox")
        if channel.name.endswith(".inbox") or channel.name in _INBOX_OF:
            inboxes[owner] = channel
        else:
            others.append(channel)
    table = Table(expand=True, box=None, padding=(0, 1), header_style=palette.accent)
    table.add_column("stage", no_wrap=True)
    table.add_column("w", justify="right")
    for name in ("in", "out", "fail", "now/s", "avg/s", "busy"):
        table.add_column(name, justify="right", no_wrap=True)
    table.add_column("inbox", justify="right", no_wrap=True)
    table.add_column("peak", justify="right", no_wrap=True)
    table.add_column("wait", justify="right", no_wrap=True)
    table.add_column("progress", no_wrap=True)
    table.add_column("ETA", justify="right", no_wrap=True)
    for actor in actors:
        inbox = inboxes.get(actor.name)
        dim = actor.state == "waiting" or (actor.total is None and actor.name.endswith(("router", "scorer")))
        style = palette.dim if dim else Style()
        if actor.progress is None:
            progress = Text("")
        else:
            shown = f"{bar(actor.progress, 10)} {actor.progress * 100:3.0f}%"
            progress = Text(shown + ("" if actor.total_exact else "~"), palette.good if actor.progress >= 1 else "")
        mark = {"done": "✔", "running": "▸", "waiting": "·"}[actor.state]
        table.add_row(
            f"{mark} {actor.name}",
            str(actor.workers or ""),
            f"{actor.items_in:,}",
            f"{actor.items_out:,}",
            Text(f"{actor.failed:,}", palette.bad if actor.failed else ""),
            _fmt_rate(actor.rate_now),
            _fmt_rate(actor.rate_avg),
            "" if actor.busy is None else f"{actor.busy:.1f}",
            Text(f"{inbox.current}/{inbox.capacity}", _fill_style(inbox, palette)) if inbox else "",
            str(inbox.peak) if inbox else "",
            f"{inbox.wait_s:.1f}s" if inbox else "",
            progress,
            "" if actor.state == "done" else fmt_duration(actor.eta_s) if actor.progress is not None else "",
            style=style,
        )
    if not others:
        return table
    line = Text("other channels: ", palette.dim)
    line.append("  ".join(f"{c.name} {c.current}/{c.capacity} (peak {c.peak})" for c in others), palette.dim)
    return Group(table, line)


def _fill_style(channel: ChannelView, palette: Palette) -> Style:
    if channel.capacity and channel.current >= channel.capacity:
        return palette.bad
    if channel.capacity and channel.current * 2 >= channel.capacity:
        return palette.warn
    return Style()


def render_progress(progress: ProgressView, palette: Palette, *, width: int = 24) -> RenderableType:
    """Overall progress (estimated totals are marked ~), elapsed time and the ETA."""
    grid = _grid()
    percent = "" if progress.fraction is None else f" {progress.fraction * 100:3.0f}%"
    grid.add_row("overall", Text(bar(progress.fraction, width) + percent, palette.good if progress.fraction else ""))
    if progress.total is None:
        items = f"{progress.done:,} done, total unknown yet"
    else:
        items = f"{progress.done:,} / {'' if progress.exact else '~'}{progress.total:,}"
    grid.add_row("items", items)
    grid.add_row("elapsed", fmt_duration(progress.elapsed_s))
    grid.add_row("ETA", fmt_duration(progress.eta_s))
    return grid


def render_training(training: Sequence[TrainingView], log: Sequence[str], palette: Palette) -> RenderableType:
    """Each student's latest training status, then the latest status messages."""
    if not training:
        return Text("waiting for the trainer (it starts once the teacher has judged the training items)", palette.dim)
    grid = _grid()
    for view in training:
        status = view.status + ("" if view.progress is None else f" {view.progress * 100:.0f}%")
        grid.add_row(Text(view.student, palette.accent), Text(status, _status_style(view.status, palette)))
    lines = Text("\n".join(log), palette.dim, overflow="ellipsis", no_wrap=True)
    return Group(grid, lines)


def _status_style(status: str, palette: Palette) -> Style:
    if status in ("trained", "loaded"):
        return palette.good
    if status in ("failed", "missing", "skipped", "cancelled"):
        return palette.bad
    return palette.warn


def render_providers(models: Sequence[ModelView], palette: Palette) -> RenderableType:
    """Per model: calls, failures, tokens, cost, mean latency, retries (and 429s), concurrency cap/max."""
    if not models:
        return Text("no model calls yet", palette.dim)
    table = Table(expand=True, box=None, padding=(0, 1), pad_edge=False, header_style=palette.accent)
    table.add_column("model", no_wrap=True, overflow="ellipsis", min_width=12)
    for name in ("calls", "fail", "tok in", "tok out", "cost", "latency", "retry/429", "conc"):
        table.add_column(name, justify="right", no_wrap=True)
    for model in models:
        concurrency = "" if model.limit is None else f"{model.limit}/{model.maximum}"
        retries = f"{model.retries}/{model.rate_limited}" if model.retries else "0"
        table.add_row(
            model.name,
            f"{model.calls:,}",
            Text(f"{model.failed:,}", palette.bad if model.failed else ""),
            fmt_tokens(model.input_tokens),
            fmt_tokens(model.output_tokens),
            fmt_usd(model.cost_usd),
            "" if model.mean_latency_s is None else f"{model.mean_latency_s * 1000:,.0f}ms",
            Text(retries, palette.warn if model.rate_limited else ""),
            concurrency,
        )
    return table


def render_costs(costs: CostView, palette: Palette) -> RenderableType:
    """Spent, projected at completion, and the budget."""
    grid = _grid()
    grid.add_row("spent", Text(fmt_usd(costs.spent_usd), palette.accent))
    projected = fmt_usd(costs.projected_usd)
    if costs.projected_usd is not None and costs.projection_partial:
        projected = "≥ " + projected
    grid.add_row("projected", projected)
    if costs.budget_usd is None:
        grid.add_row("budget", Text("no limit reached", palette.dim))
    else:
        state = " — exhausted, no new paid calls" if costs.budget_exhausted else ""
        grid.add_row("budget", Text(fmt_usd(costs.budget_usd) + state, palette.bad if costs.budget_exhausted else ""))
    return grid


def render_agreement(
    agreement: Sequence[AgreementView], difference: DifferenceView | None, palette: Palette
) -> RenderableType:
    """Each student's agreement with the reference judge; 95% bootstrap CIs once final."""
    if not agreement:
        return Text("no scores yet: agreement appears once a student and the teacher judged the same item", palette.dim)
    reference = agreement[0].reference
    table = Table(expand=True, box=None, padding=(0, 1), header_style=palette.accent)
    table.add_column(f"vs {reference}", no_wrap=True)
    for view in agreement:
        table.add_column(f"{view.judge}{' (final)' if view.final else ''}", justify="right", no_wrap=True)
    for metric in METRIC_ORDER:
        cells: list[RenderableType] = []
        for view in agreement:
            cell = Text(_fmt_metric(view.metrics.get(metric)))
            ci = view.ci95.get(metric)
            if ci is not None:
                cell.append(f" [{ci[0]:.3f}, {ci[1]:.3f}]", palette.dim)
            cells.append(cell)
        table.add_row(_METRIC_LABELS.get(metric, metric), *cells)
    table.add_row("n", *(f"{view.n:,}" for view in agreement))
    table.add_row("unparsed", *(Text(f"{v.unparsed:,}", palette.warn if v.unparsed else "") for v in agreement))
    table.add_row("failed", *(Text(f"{v.failed:,}", palette.bad if v.failed else "") for v in agreement))
    if difference is None:
        return table
    first, second = difference.judges
    line = Text(f"Pearson r, {first} − {second}: {_fmt_metric(difference.value)}")
    if difference.ci95 is not None:
        line.append(f" [{difference.ci95[0]:.3f}, {difference.ci95[1]:.3f}]", palette.dim)
    return Group(table, line)


def render_heatmaps(heatmaps: Sequence[HeatMapView], low: Color, high: Color, palette: Palette) -> RenderableType:
    """One 5x5 grid per student: rows are the teacher's score (5 on top), columns the student's."""
    if not heatmaps:
        return Text("no paired scores yet", palette.dim)
    outer = Table.grid(padding=(0, 3))
    for _ in heatmaps:
        outer.add_column()
    outer.add_row(*(_heatmap(view, low, high, palette) for view in heatmaps))
    return outer


def _heatmap(view: HeatMapView, low: Color, high: Color, palette: Palette) -> RenderableType:
    grid = Table.grid()
    grid.add_column(width=4, no_wrap=True)
    for _ in range(SCORE_LEVELS):
        grid.add_column(width=4, justify="right", no_wrap=True)
    grid.add_row(Text("T╲S", palette.dim), *(Text(f"{s}", palette.dim) for s in range(1, SCORE_LEVELS + 1)))
    for level in range(SCORE_LEVELS, 0, -1):
        cells: list[RenderableType] = [Text(f"{level}", palette.dim)]
        for count in view.counts[level - 1]:
            shade = low.blend(high, count / view.peak) if view.peak else low
            ink = shade.get_contrast_text()
            style = Style(color=ink.rich_color, bgcolor=shade.rich_color)
            cells.append(Text(f"{count:>3} " if count else "  · ", style))
        grid.add_row(*cells)
    agree = sum(view.counts[i][i] for i in range(SCORE_LEVELS))
    share = f"{agree / view.total * 100:.0f}%" if view.total else "—"
    caption = Text(f"{view.judge}\n", palette.accent)
    caption.append(f"n {view.total:,}, diagonal {share}", palette.dim)
    return Group(caption, grid)


def render_errors(errors: Sequence[ErrorView], failures: int, missed: int, palette: Palette) -> RenderableType:
    """The latest failed items, newest first."""
    head = Text(f"{failures:,} failed item(s)", palette.bad if failures else palette.dim)
    if missed:
        head.append(f" · {missed:,} event(s) missed by this display", palette.warn)
    if not errors:
        return head
    table = Table(box=None, padding=(0, 1), show_header=False, expand=True)
    table.add_column(no_wrap=True)
    table.add_column(no_wrap=True)
    table.add_column(no_wrap=True, max_width=18, overflow="ellipsis")
    table.add_column(no_wrap=True, overflow="ellipsis", ratio=1)
    for error in reversed(errors):
        table.add_row(
            Text(fmt_duration(error.at_s), palette.dim),
            error.actor,
            Text(error.item_id, palette.dim),
            Text(error.error, palette.bad),
        )
    return Group(head, table)


# ---------------------------------------------------------------------------------------------------------------
# Widgets.


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

    def on_mount(self) -> None:
        self.border_title = self.TITLE

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

    def show(self, snapshot: Snapshot, channels: Sequence[ChannelView]) -> None:
        self.update(render_pipeline(snapshot.actors, channels, self.palette()))


class ProgressPanel(Panel):
    TITLE = "Progress"

    def show(self, snapshot: Snapshot) -> None:
        self.update(render_progress(snapshot.progress, self.palette()))


class TrainingPanel(Panel):
    TITLE = "Training"

    def show(self, snapshot: Snapshot) -> None:
        self.update(render_training(snapshot.training, snapshot.training_log, self.palette()))


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

    def show(self, snapshot: Snapshot) -> None:
        self.update(render_agreement(snapshot.agreement, snapshot.difference, self.palette()))


class HeatMapPanel(Panel):
    TITLE = "Teacher × student scores"

    COMPONENT_CLASSES: ClassVar[set[str]] = Panel.COMPONENT_CLASSES | {"heatmap--low", "heatmap--high"}

    def show(self, snapshot: Snapshot) -> None:
        try:
            low = self.get_component_styles("heatmap--low").color
            high = self.get_component_styles("heatmap--high").color
        except KeyError:  # a repaint before the stylesheet reached this panel: the next one has colours
            low, high = _HEAT_LOW, _HEAT_HIGH
        self.update(render_heatmaps(snapshot.heatmaps, low, high, self.palette()))


class ErrorsPanel(Panel):
    TITLE = "Errors"

    def show(self, snapshot: Snapshot) -> None:
        self.update(render_errors(snapshot.errors, snapshot.failures, snapshot.missed, self.palette()))


class ThroughputPanel(Vertical):
    """Items per second of each stage since the run started (the last few minutes), one sparkline each."""

    def __init__(self, stages: Iterable[str] = SPARK_STAGES, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.stages = tuple(stages)
        self._sparklines = {stage: Sparkline([0.0, 0.0], id=f"spark-{stage}") for stage in self.stages}
        self._rates = {stage: Label("", id=f"rate-{stage}", classes="spark-rate") for stage in self.stages}

    def compose(self) -> ComposeResult:
        for stage in self.stages:
            with Horizontal(classes="spark-row"):
                yield Label(stage, classes="spark-label")
                yield self._sparklines[stage]
                yield self._rates[stage]

    def on_mount(self) -> None:
        self.border_title = "Throughput (items/s)"

    def show(self, snapshot: Snapshot) -> None:
        views: Mapping[str, ActorView] = {view.name: view for view in snapshot.actors}
        for stage in self.stages:
            view = views.get(stage)
            history = view.history if view is not None and len(view.history) >= 2 else (0.0, 0.0)
            self._sparklines[stage].data = history
            self._rates[stage].update("" if view is None else f"{_fmt_rate(view.rate_now)}/s")
