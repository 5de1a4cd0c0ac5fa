"""The dashboard's small panels: the status line, overall progress, training, cost and the latest errors.

Each is a few lines of Rich text from one part of the snapshot; they are grouped because they share a shape
(a two-column grid or a line of text) and change together when the layout is tuned.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Group, RenderableType
from rich.style import Style
from rich.table import Table
from rich.text import Text

from .formatting import ChannelView, Palette, bar, fmt_duration, fmt_usd, two_column_grid
from .views import BatchView, CostView, ErrorView, ProgressView, Snapshot, TrainingView

__all__ = ["render_batches", "render_costs", "render_errors", "render_progress", "render_status", "render_training"]

_BATCH_DONE = frozenset({"completed", "collected"})
_BATCH_BAD = frozenset({"failed", "expired", "cancelled", "cancelling"})


def render_status(snapshot: Snapshot, *, paused: bool, channels: Sequence[ChannelView] = ()) -> Text:
    """The one-line status: what the run is doing, for how long, and where its folder (or output file) is."""
    judging = snapshot.mode == "judge"
    text = Text()
    if snapshot.status == "finished":
        text.append(" ✔ finished — press q to exit ", "bold")
    elif snapshot.status == "failed":
        text.append(f" ✘ failed: {snapshot.message or 'the run did not finish'} — press q to exit ", "bold")
    elif paused:
        text.append(" ‖ paused — press p to resume ", "bold")
    elif snapshot.status == "running" and snapshot.outages:
        text.append(" ⚠ " + "; ".join(outage.line() for outage in snapshot.outages) + " ", "bold")
    elif snapshot.status == "running":
        text.append(" ● judging " if judging else " ● running ")
    elif judging:
        # A judge run checks its whole file before it starts: a large file takes a while.
        text.append(" ○ checking the items ")
    else:
        text.append(" ○ waiting for the run to start ")
    text.append(f"  elapsed {fmt_duration(snapshot.elapsed_s)}")
    if snapshot.out_dir:
        text.append(f"  {'out' if judging else 'run folder'} {snapshot.out_dir}")
    text.append(f"  events {snapshot.events:,}")
    if snapshot.missed:
        text.append(f"  missed {snapshot.missed:,}")
    stalled = [c for c in channels if c.capacity and c.current >= c.capacity]
    if stalled:
        text.append("  full: " + ", ".join(c.name for c in stalled))
    return text


def render_progress(progress: ProgressView, palette: Palette, *, width: int = 24) -> RenderableType:
    """Overall progress (estimated totals are marked ~), elapsed time and the ETA.

    A judge run counts verdicts (one per item and judge), and names the file's size on a line of its own.
    """
    grid = two_column_grid()
    percent = "" if progress.fraction is None else f" {progress.fraction * 100:3.0f}%"
    grid.add_row("overall", Text(bar(progress.fraction, width) + percent, palette.good if progress.fraction else ""))
    if progress.total is None:
        items = f"{progress.done:,} done, total unknown yet"
    else:
        items = f"{progress.done:,} / {'' if progress.exact else '~'}{progress.total:,}"
    if progress.judges:
        grid.add_row("verdicts", items)
        if progress.items is not None:
            judges = f"{progress.judges} judge{'s' if progress.judges > 1 else ''}"
            grid.add_row("items", Text(f"{progress.items:,} in the file, {judges}", palette.dim))
    else:
        grid.add_row("items", items)
    grid.add_row("elapsed", fmt_duration(progress.elapsed_s))
    grid.add_row("ETA", fmt_duration(progress.eta_s))
    return grid


def render_training(training: Sequence[TrainingView], log: Sequence[str], palette: Palette) -> RenderableType:
    """Each student's latest training status, then the latest status messages."""
    if not training:
        return Text("waiting for the trainer (it starts once the teacher has judged the training items)", palette.dim)
    grid = two_column_grid()
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


def render_batches(batches: Sequence[BatchView], palette: Palette) -> RenderableType:
    """Each batch: its status and request counts (done of total, failed); why it failed, when it did."""
    grid = Table.grid(expand=True, padding=(0, 1))
    grid.add_column(no_wrap=True, overflow="ellipsis", ratio=1)
    grid.add_column(no_wrap=True)
    grid.add_column(justify="right", no_wrap=True)
    reasons = Text(overflow="fold")
    for view in batches:
        number = view.part.removesuffix(".jsonl").rpartition("-")[2] or view.part
        style = (
            palette.good if view.status in _BATCH_DONE else palette.bad if view.status in _BATCH_BAD else palette.warn
        )
        counts = f"{view.completed:,}/{view.total:,}" + (f" ✗{view.failed:,}" if view.failed else "")
        grid.add_row(Text(f"{view.judge} #{number}", palette.accent), Text(view.status, style), counts)
        if view.message:
            reasons.append(f"#{number}: {view.message}\n", palette.bad)
    return Group(grid, reasons) if reasons else grid


def render_costs(costs: CostView, palette: Palette) -> RenderableType:
    """Spent, projected at completion, and the budget."""
    grid = two_column_grid()
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
