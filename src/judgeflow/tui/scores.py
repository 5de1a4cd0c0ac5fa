"""The dashboard's score panels: each student's agreement with the teacher, and the teacher x student heat map.

These show the run's result rather than its progress, and they are where the statistics meet the screen (CIs
only once final, an undefined statistic as "n/a", the diagonal share of the heat map), so they sit together.
Pure functions from snapshot views to Rich renderables; the heat map's colours are passed in.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Group, RenderableType
from rich.style import Style
from rich.table import Table
from rich.text import Text
from textual.color import Color

from .formatting import Palette, fmt_metric
from .views import METRIC_ORDER, SCORE_LEVELS, AgreementView, DifferenceView, HeatMapView

__all__ = ["render_agreement_panel", "render_heatmaps"]

_METRIC_LABELS = {
    "pearson": "Pearson r",
    "spearman": "Spearman ρ",
    "kendall": "Kendall τ-b",
    "kappa": "κ (quadratic)",
    "exact": "exact",
    "within1": "within 1",
    "mae": "MAE",
}


def render_agreement_panel(
    agreement: Sequence[AgreementView], difference: DifferenceView | None, palette: Palette, *, judging: bool = False
) -> RenderableType:
    """Each student's (or in a judge run, each judge's) agreement with the reference judge; 95% CIs once final."""
    if not agreement:
        pair = "a judge and the reference" if judging else "a student and the teacher"
        return Text(f"no scores yet: agreement appears once {pair} judged the same item", palette.dim)
    reference = agreement[0].reference
    table = Table(expand=True, box=None, padding=(0, 1), header_style=palette.accent)
    table.add_column(f"vs {reference}", no_wrap=True)
    for view in agreement:
        table.add_column(f"{view.judge}{' (final)' if view.final else ''}", justify="right", no_wrap=True)
    for metric in METRIC_ORDER:
        cells: list[RenderableType] = []
        for view in agreement:
            cell = Text(fmt_metric(view.metrics.get(metric)))
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
    line = Text(f"Pearson r, {first} − {second}: {fmt_metric(difference.value)}")
    if difference.ci95 is not None:
        line.append(f" [{difference.ci95[0]:.3f}, {difference.ci95[1]:.3f}]", palette.dim)
    return Group(table, line)


def render_heatmaps(
    heatmaps: Sequence[HeatMapView], low: Color, high: Color, palette: Palette, *, judging: bool = False
) -> RenderableType:
    """One 5x5 grid per student: rows are the teacher's score (5 on top), columns the student's.

    In a judge run, rows are the reference judge's score and columns the other judge's (``R╲J`` in the corner).
    """
    if not heatmaps:
        return Text("no paired scores yet", palette.dim)
    corner = "R╲J" if judging else "T╲S"
    outer = Table.grid(padding=(0, 3))
    for _ in heatmaps:
        outer.add_column()
    outer.add_row(*(_heatmap(view, low, high, palette, corner) for view in heatmaps))
    return outer


def _heatmap(view: HeatMapView, low: Color, high: Color, palette: Palette, corner: str) -> RenderableType:
    # Every column is as wide as the largest count ("12,345"), and a column of padding keeps neighbours apart:
    # a fixed width let four-digit counts run into each other.
    width = max(3, len(f"{view.peak:,}"))
    grid = Table.grid(padding=(0, 1, 0, 0))
    grid.add_column(min_width=len(corner), no_wrap=True)
    for _ in range(SCORE_LEVELS):
        grid.add_column(min_width=width, justify="right", no_wrap=True)
    grid.add_row(Text(corner, palette.dim), *(Text(f"{s}", palette.dim) for s in range(1, SCORE_LEVELS + 1)))
    for level in range(SCORE_LEVELS, 0, -1):
        cells: list[RenderableType] = [Text(f"{level}", palette.dim)]
        for count in view.counts[level - 1]:
            shade = low.blend(high, count / view.peak) if view.peak else low
            ink = shade.get_contrast_text()
            style = Style(color=ink.rich_color, bgcolor=shade.rich_color)
            cells.append(Text(f"{count:>{width},}" if count else f"{'·':>{width}}", style))
        grid.add_row(*cells)
    agree = sum(view.counts[i][i] for i in range(SCORE_LEVELS))
    share = f"{agree / view.total * 100:.0f}%" if view.total else "—"
    caption = Text(f"{view.judge}\n", palette.accent)
    caption.append(f"n {view.total:,}, diagonal {share}", palette.dim)
    return Group(caption, grid)
