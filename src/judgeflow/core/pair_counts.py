"""The agreement metrics over counts of distinct score pairs, so that a large run's bootstrap costs O(pairs).

Judges score on a 1-5 scale, so 100,000 items hold a few dozen distinct (teacher, student) pairs. Every metric
of `judgeflow.core.metrics` is a function of the pairs' empirical distribution, and a bootstrap resample of n
items is, pair for pair, a multinomial draw of n over the distinct pairs with their observed shares. Drawn that
way, a resample is a row of counts instead of n indices, and a metric reads those counts: the same values as
its row function on the expanded items (a test holds them together), at a cost that no longer grows with n.
This module holds the counts and the metrics that need ranks or the full table (Pearson, Spearman, Kendall);
the simple shares sit beside their row versions in `judgeflow.core.metrics` and `judgeflow.core.labels`.
`judgeflow.core.metrics.bootstrap_estimates` takes this path when the items are many and the distinct pairs
few; small runs keep the index bootstrap, draw for draw.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any, TypeAlias

import numpy as np
import numpy.typing as npt

__all__ = [
    "CountStat",
    "PairCounts",
    "count_kendall",
    "count_pearson",
    "count_spearman",
    "fits",
    "weighted_pearson",
]

Rows: TypeAlias = npt.NDArray[np.float64]

# Beyond this many cells of the (x level, y level) table, counting costs more than it saves (near-continuous
# scores such as probability-weighted ones): the index bootstrap is used instead.
MAX_CELLS = 4096


@dataclass(frozen=True)
class PairCounts:
    """A block of resamples as counts: ``weights[r, k]`` items of the distinct pair ``(x[k], y[k])`` in row r.

    Every row sums to ``n``. Levels are the distinct values of x (and of y), ascending; ``x_level[k]`` is pair
    k's level of x. The per-level and per-cell counts are computed once per block and shared by the metrics.
    """

    x: Rows
    y: Rows
    weights: Rows
    n: int

    @cached_property
    def _x_levels(self) -> tuple[Rows, npt.NDArray[np.intp]]:
        values, index = np.unique(self.x, return_inverse=True)
        return values, index

    @cached_property
    def _y_levels(self) -> tuple[Rows, npt.NDArray[np.intp]]:
        values, index = np.unique(self.y, return_inverse=True)
        return values, index

    @property
    def x_levels(self) -> Rows:
        return self._x_levels[0]

    @cached_property
    def table(self) -> Rows:
        """``(rows, x levels, y levels)`` counts (pairs that share a cell add up)."""
        (xv, xi), (yv, yi) = self._x_levels, self._y_levels
        cells = np.zeros((xv.size * yv.size, self.weights.shape[0]))
        np.add.at(cells, xi * yv.size + yi, self.weights.T)
        return cells.T.reshape(self.weights.shape[0], xv.size, yv.size)

    @cached_property
    def x_counts(self) -> Rows:
        """``(rows, x levels)``: how many items take each value of x."""
        return _level_counts(self.weights, *self._x_levels)

    @cached_property
    def y_counts(self) -> Rows:
        return _level_counts(self.weights, *self._y_levels)

    @cached_property
    def constant(self) -> npt.NDArray[np.bool_]:
        """Rows in which x or y takes a single value (a correlation is undefined there)."""
        single: npt.NDArray[np.bool_] = ((self.x_counts > 0).sum(axis=1) == 1) | ((self.y_counts > 0).sum(axis=1) == 1)
        return single

    def x_ranks(self) -> Rows:
        """Each pair's average rank of x in each row, as ``scipy.stats.rankdata`` gives the expanded items."""
        return _midranks(self.x_counts)[:, self._x_levels[1]]

    def y_ranks(self) -> Rows:
        return _midranks(self.y_counts)[:, self._y_levels[1]]

    def share(self, mask: npt.NDArray[np.bool_]) -> Rows:
        """The share of each row's items whose pair satisfies ``mask`` (one flag per distinct pair)."""
        out: Rows = self.weights[:, mask].sum(axis=1) / self.n
        return out


CountStat: TypeAlias = Callable[[PairCounts], Rows]


def fits(x: Rows, y: Rows) -> bool:
    """Whether the (x level, y level) table of these values is small enough to count."""
    return int(np.unique(x).size) * int(np.unique(y).size) <= MAX_CELLS


def _level_counts(weights: Rows, values: Rows, index: npt.NDArray[np.intp]) -> Rows:
    members = np.zeros((index.size, values.size))
    members[np.arange(index.size), index] = 1.0
    counts: Rows = weights @ members
    return counts


def _midranks(counts: Rows) -> Rows:
    below = np.cumsum(counts, axis=1) - counts
    ranks: Rows = below + (counts + 1.0) / 2.0
    return ranks


def weighted_pearson(x: Any, y: Any, weights: Rows, undefined: npt.NDArray[np.bool_]) -> Rows:
    """Pearson's r of each row's weighted values; ``x`` and ``y`` are ``(K,)`` or ``(rows, K)``.

    As the row version: deviations scaled by the largest one present, so identical inputs give exactly 1.0.
    """
    out = np.full(weights.shape[0], np.nan)
    ok = ~undefined
    if not ok.any():
        return out
    w = weights[ok]
    xs = np.broadcast_to(x, weights.shape)[ok]
    ys = np.broadcast_to(y, weights.shape)[ok]
    total = w.sum(axis=1, keepdims=True)
    dx = xs - (w * xs).sum(axis=1, keepdims=True) / total
    dy = ys - (w * ys).sum(axis=1, keepdims=True) / total
    present = w > 0
    dx = dx / np.where(present, np.abs(dx), 0.0).max(axis=1, keepdims=True)
    dy = dy / np.where(present, np.abs(dy), 0.0).max(axis=1, keepdims=True)
    r = (w * dx * dy).sum(axis=1) / np.sqrt((w * dx * dx).sum(axis=1) * (w * dy * dy).sum(axis=1))
    out[ok] = np.clip(r, -1.0, 1.0)
    return out


def count_pearson(c: PairCounts) -> Rows:
    return weighted_pearson(c.x, c.y, c.weights, c.constant | (c.n < 3))


def count_spearman(c: PairCounts) -> Rows:
    return weighted_pearson(c.x_ranks(), c.y_ranks(), c.weights, c.constant | (c.n < 3))


def count_kendall(c: PairCounts) -> Rows:
    """Kendall's tau-b from the table: (concordant - discordant) / sqrt(pairs untied in x * pairs untied in y)."""
    out = np.full(c.weights.shape[0], np.nan)
    if c.n < 3:
        return out
    t = c.table
    # above[r, i, j]: items with x level > i and y level > j; below_left: x level > i and y level < j.
    suffix = t[:, ::-1, ::-1].cumsum(axis=1).cumsum(axis=2)[:, ::-1, ::-1]
    above = np.zeros_like(t)
    above[:, :-1, :-1] = suffix[:, 1:, 1:]
    lower = t[:, ::-1, :].cumsum(axis=1)[:, ::-1, :].cumsum(axis=2)
    below_left = np.zeros_like(t)
    below_left[:, :-1, 1:] = lower[:, 1:, :-1]
    concordant = (t * above).sum(axis=(1, 2))
    discordant = (t * below_left).sum(axis=(1, 2))
    pairs = c.n * (c.n - 1) / 2.0
    untied_x = pairs - (c.x_counts * (c.x_counts - 1) / 2.0).sum(axis=1)
    untied_y = pairs - (c.y_counts * (c.y_counts - 1) / 2.0).sum(axis=1)
    ok = ~c.constant
    out[ok] = np.clip((concordant - discordant)[ok] / np.sqrt(untied_x[ok] * untied_y[ok]), -1.0, 1.0)
    return out
