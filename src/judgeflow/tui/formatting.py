"""The dashboard's plain data and number formatting: what every renderer shares, with no Textual in it.

Kept apart so that the renderers (`tables`, `scores`, `summaries`) read numbers the same way everywhere (an
unknown duration is "—" on every panel, a rate has the same precision in the pipeline and the sparkline labels),
and so that formatting is tested as plain functions.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.style import Style
from rich.table import Table

from judgeflow.protocol.channels import ChannelStats

__all__ = [
    "ChannelView",
    "Palette",
    "bar",
    "fmt_duration",
    "fmt_metric",
    "fmt_rate",
    "fmt_tokens",
    "fmt_usd",
    "two_column_grid",
]

_EIGHTHS = " ▏▎▍▌▋▊▉"
_PLAIN = Style()  # immutable, so one instance can be every default


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


def fmt_rate(rate: float) -> str:
    if rate == 0:
        return "0"
    return f"{rate:.1f}" if rate < 100 else f"{rate:,.0f}"


def fmt_metric(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def bar(fraction: float | None, width: int) -> str:
    """A left-to-right bar of ``width`` cells filled to ``fraction``, in eighths of a cell."""
    if fraction is None:
        return "·" * width
    eighths = round(min(max(fraction, 0.0), 1.0) * width * 8)
    full, part = divmod(eighths, 8)
    text = "█" * full + (_EIGHTHS[part] if part else "")
    return text + "░" * (width - len(text))


def two_column_grid(*, padding: tuple[int, int] = (0, 1)) -> Table:
    grid = Table.grid(padding=padding)
    grid.add_column(no_wrap=True)
    grid.add_column(no_wrap=True)
    return grid
