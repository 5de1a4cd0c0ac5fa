"""Small SVG charts for ``report.html``, written by hand from numbers: no plotting library, no JavaScript needed.

Measured against Plotly (its bundle alone is 4.8 MB), Vega-Lite rendered by vl-convert and Matplotlib SVG, this
is the smallest file and the fastest to open and to build, with no dependency (docs/report.md has the figures).
Each function takes plain numbers and returns one ``<svg>`` element as text; it never reads files or clocks.
Text is escaped here, so callers pass raw judge names and labels.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape

__all__ = ["PALETTE", "bars", "calibration", "heatmap", "lines", "nice_ticks", "scatter", "scatter_pixels"]

WIDTH, HEIGHT = 360, 300
_LEFT, _RIGHT, _TOP, _BOTTOM = 46, 12, 28, 40
PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf")
STATUS_COLOURS = {"ok": "#2ca02c", "unparsed": "#ff7f0e", "failed": "#d62728", "missing": "#999999"}


def _num(value: float) -> str:
    """Coordinates with one decimal: enough for a screen, and a third of the bytes of repr()."""
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round tick values (1, 2 or 5 times a power of ten) covering ``[lo, hi]``."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return [lo] if math.isfinite(lo) else []
    raw = (hi - lo) / max(1, count)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.ceil(lo / step - 1e-9) * step
    ticks = []
    value = first
    while value <= hi + 1e-9 * step:
        ticks.append(round(value, 10))
        value += step
    return ticks


def _tick_label(value: float) -> str:
    if value == int(value) and abs(value) < 1e15:
        return f"{int(value):,}"
    return f"{value:g}"


@dataclass(frozen=True, slots=True)
class _Frame:
    """Maps data coordinates into the plot area of one chart."""

    x_lo: float
    x_hi: float
    y_lo: float
    y_hi: float
    width: int = WIDTH
    height: int = HEIGHT

    def x(self, value: float) -> float:
        span = self.x_hi - self.x_lo or 1.0
        return _LEFT + (value - self.x_lo) / span * (self.width - _LEFT - _RIGHT)

    def y(self, value: float) -> float:
        span = self.y_hi - self.y_lo or 1.0
        return self.height - _BOTTOM - (value - self.y_lo) / span * (self.height - _TOP - _BOTTOM)

    def axes(self, x_ticks: Sequence[float], y_ticks: Sequence[float], x_label: str, y_label: str) -> str:
        bottom, right = self.height - _BOTTOM, self.width - _RIGHT
        parts = [f'<path class="axis" d="M{_LEFT},{_TOP}V{bottom}H{right}"/>']
        for tick in x_ticks:
            px = _num(self.x(tick))
            parts.append(f'<path class="grid" d="M{px},{_TOP}V{bottom}"/>')
            parts.append(f'<text x="{px}" y="{bottom + 14}" text-anchor="middle">{_tick_label(tick)}</text>')
        for tick in y_ticks:
            py = _num(self.y(tick))
            parts.append(f'<path class="grid" d="M{_LEFT},{py}H{right}"/>')
            parts.append(f'<text x="{_LEFT - 4}" y="{py}" dy="4" text-anchor="end">{_tick_label(tick)}</text>')
        parts.append(
            f'<text class="label" x="{_num((_LEFT + right) / 2)}" y="{self.height - 6}" text-anchor="middle">'
            f"{escape(x_label)}</text>"
        )
        middle = _num((_TOP + bottom) / 2)
        parts.append(
            f'<text class="label" x="12" y="{middle}" text-anchor="middle" transform="rotate(-90 12 {middle})">'
            f"{escape(y_label)}</text>"
        )
        return "".join(parts)


def _svg(title: str, body: str, *, kind: str, width: int = WIDTH, height: int = HEIGHT) -> str:
    return (
        f'<svg class="chart {kind}" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
        f'aria-label="{escape(title)}"><text class="title" x="{width // 2}" y="16" text-anchor="middle">'
        f"{escape(title)}</text>{body}</svg>"
    )


def scatter(
    x: Sequence[float],
    y: Sequence[float],
    *,
    title: str,
    x_label: str,
    y_label: str,
    lo: float,
    hi: float,
) -> str:
    """Points (already jittered by the caller) on a square ``[lo, hi]`` grid with the diagonal ``y = x``.

    All points are one path of 2-pixel squares: a tenth of the bytes of one ``<circle>`` each, and drawn as fast.
    """
    frame = _Frame(lo, hi, lo, hi)
    ticks = nice_ticks(lo, hi)
    dots = "".join(f"M{_num(frame.x(a) - 1)} {_num(frame.y(b) - 1)}h2v2h-2z" for a, b in zip(x, y, strict=True))
    body = (
        frame.axes(ticks, ticks, x_label, y_label)
        + f'<path class="ideal" d="M{_num(frame.x(lo))},{_num(frame.y(lo))}L{_num(frame.x(hi))},{_num(frame.y(hi))}"/>'
        + f'<path class="dots" d="{dots}"/>'
    )
    return _svg(title, body, kind="scatter")


def heatmap(
    counts: Sequence[Sequence[int]],
    *,
    rows: Sequence[str],
    columns: Sequence[str],
    title: str,
    x_label: str,
    y_label: str,
) -> str:
    """A count matrix, row 0 at the bottom; each cell shows its count and its share of its row on hover."""
    n_rows, n_cols = len(rows), len(columns)
    frame = _Frame(0, n_cols, 0, n_rows)
    top = max((max(row, default=0) for row in counts), default=0) or 1
    cell_w = (frame.x(1) - frame.x(0)) if n_cols else 0
    cell_h = (frame.y(0) - frame.y(1)) if n_rows else 0
    parts = []
    for i, row in enumerate(counts):
        total = sum(row) or 1
        for j, count in enumerate(row):
            left, upper = frame.x(j), frame.y(i + 1)
            shade = 0.06 + 0.94 * count / top
            diagonal = ' stroke="#333"' if rows[i] == columns[j] else ""
            parts.append(
                f'<rect x="{_num(left)}" y="{_num(upper)}" width="{_num(cell_w)}" height="{_num(cell_h)}" '
                f'fill-opacity="{shade:.2f}"{diagonal}><title>{escape(y_label)} {escape(rows[i])}, '
                f"{escape(x_label)} {escape(columns[j])}: {count:,} ({100 * count / total:.0f}% of the row)"
                f"</title></rect>"
            )
            ink = ' class="light"' if shade > 0.55 else ""
            parts.append(
                f'<text{ink} x="{_num(left + cell_w / 2)}" y="{_num(upper + cell_h / 2)}" dy="4" '
                f'text-anchor="middle">{count:,}</text>'
            )
    bottom = HEIGHT - _BOTTOM
    for j, name in enumerate(columns):
        parts.append(f'<text x="{_num(frame.x(j + 0.5))}" y="{bottom + 14}" text-anchor="middle">{escape(name)}</text>')
    for i, name in enumerate(rows):
        parts.append(
            f'<text x="{_LEFT - 4}" y="{_num(frame.y(i + 0.5))}" dy="4" text-anchor="end">{escape(name)}</text>'
        )
    middle = _num((_TOP + bottom) / 2)
    parts.append(
        f'<text class="label" x="{_num((_LEFT + WIDTH - _RIGHT) / 2)}" y="{HEIGHT - 6}" text-anchor="middle">'
        f"{escape(x_label)}</text>"
        f'<text class="label" x="12" y="{middle}" text-anchor="middle" transform="rotate(-90 12 {middle})">'
        f"{escape(y_label)}</text>"
    )
    return _svg(title, '<g class="cells">' + "".join(parts) + "</g>", kind="heatmap")


def calibration(
    points: Sequence[tuple[float, float, float | None, float | None, int]],
    *,
    title: str,
    x_label: str,
    y_label: str,
    lo: float,
    hi: float,
) -> str:
    """Mean of y for each x, with its 95% interval as a whisker, against the ideal ``y = x``.

    ``points`` are ``(x, mean, ci_low, ci_high, n)``; a point without an interval is drawn without a whisker.
    """
    frame = _Frame(lo, hi, lo, hi)
    ticks = nice_ticks(lo, hi)
    parts = [
        frame.axes(ticks, ticks, x_label, y_label),
        f'<path class="ideal" d="M{_num(frame.x(lo))},{_num(frame.y(lo))}L{_num(frame.x(hi))},{_num(frame.y(hi))}"/>',
    ]
    if points:
        path = "L".join(f"{_num(frame.x(px))},{_num(frame.y(mean))}" for px, mean, *_ in points)
        parts.append(f'<path class="series" d="M{path}"/>')
    for px, mean, ci_lo, ci_hi, n in points:
        cx = _num(frame.x(px))
        if ci_lo is not None and ci_hi is not None:
            parts.append(f'<path class="whisker" d="M{cx},{_num(frame.y(ci_lo))}V{_num(frame.y(ci_hi))}"/>')
        interval = f", 95% CI [{ci_lo:.2f}, {ci_hi:.2f}]" if ci_lo is not None and ci_hi is not None else ""
        parts.append(
            f'<circle cx="{cx}" cy="{_num(frame.y(mean))}" r="3.5"><title>{escape(x_label)} {_tick_label(px)}: '
            f"mean {escape(y_label)} {mean:.2f}{interval}, n = {n:,}</title></circle>"
        )
    return _svg(title, "".join(parts), kind="calibration")


def lines(
    series: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    *,
    title: str,
    x_label: str,
    y_label: str,
) -> str:
    """One line per named series over a shared x axis starting at 0, with a legend when there are several."""
    xs = [v for px, _ in series.values() for v in px]
    ys = [v for _, py in series.values() for v in py]
    x_hi = max(xs, default=1.0) or 1.0
    y_hi = max(ys, default=1.0) * 1.08 or 1.0
    frame = _Frame(min(0.0, min(xs, default=0.0)), x_hi, 0.0, y_hi)
    parts = [frame.axes(nice_ticks(frame.x_lo, x_hi), nice_ticks(0.0, y_hi), x_label, y_label)]
    for k, (name, (px, py)) in enumerate(series.items()):
        colour = PALETTE[k % len(PALETTE)]
        if px:
            path = "L".join(f"{_num(frame.x(a))},{_num(frame.y(b))}" for a, b in zip(px, py, strict=True))
            parts.append(
                f'<path class="series" style="stroke:{colour}" d="M{path}"><title>{escape(name)}</title></path>'
            )
        if len(series) > 1:
            ly = _TOP + 4 + 13 * k
            parts.append(
                f'<path stroke="{colour}" stroke-width="2" d="M{_LEFT + 8},{ly}h14"/>'
                f'<text x="{_LEFT + 26}" y="{ly}" dy="4">{escape(name)}</text>'
            )
    return _svg(title, "".join(parts), kind="lines")


def bars(rows: Mapping[str, Mapping[str, int]], *, title: str, order: Sequence[str]) -> str:
    """Horizontal stacked bars, one per row (e.g. a judge), each segment a share (e.g. ok/unparsed/failed)."""
    label_w, bar_h, gap = 130, 18, 6
    height = _TOP + len(rows) * (bar_h + gap) + 24
    width = WIDTH + 120
    span = width - label_w - _RIGHT
    parts = []
    for i, (name, counts) in enumerate(rows.items()):
        total = sum(counts.get(key, 0) for key in order)
        y = _TOP + i * (bar_h + gap)
        parts.append(
            f'<text x="{label_w - 6}" y="{y + bar_h / 2:.0f}" dy="4" text-anchor="end">{escape(name[:22])}</text>'
        )
        left = float(label_w)
        for key in order:
            count = counts.get(key, 0)
            if not count or not total:
                continue
            w = span * count / total
            colour = STATUS_COLOURS.get(key, PALETTE[order.index(key) % len(PALETTE)])
            parts.append(
                f'<rect x="{_num(left)}" y="{y}" width="{_num(w)}" height="{bar_h}" fill="{colour}">'
                f"<title>{escape(name)}: {count:,} {escape(key)} ({100 * count / total:.1f}%)</title></rect>"
            )
            left += w
    legend_y = height - 8
    x = label_w
    for k, key in enumerate(order):
        colour = STATUS_COLOURS.get(key, PALETTE[k % len(PALETTE)])
        parts.append(
            f'<rect x="{x}" y="{legend_y - 9}" width="10" height="10" fill="{colour}"/>'
            f'<text x="{x + 14}" y="{legend_y}">{escape(key)}</text>'
        )
        x += 90
    return _svg(title, "".join(parts), kind="bars", width=width, height=height)


def scatter_pixels(x: Sequence[float], y: Sequence[float], *, lo: float, hi: float) -> tuple[list[float], list[float]]:
    """Where `scatter` draws each point, in the chart's own units (for hover in the page)."""
    frame = _Frame(lo, hi, lo, hi)
    return [round(frame.x(a), 1) for a in x], [round(frame.y(b), 1) for b in y]
