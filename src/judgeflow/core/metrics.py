"""How closely a student judge agrees with the teacher judge.

Both judges score the same answers on a 1-5 scale (floats allowed, e.g. 4.5). This module turns two such
score vectors into agreement metrics with paired-bootstrap 95% confidence intervals. It is pure: no clock, no
I/O, and randomness only from an explicit seed, so a run folder reproduces the same intervals on any machine.

"Undefined" is a value here, never NaN and never a warning: a correlation of a constant vector, or of fewer
than three items, is ``None``. Every metric is written once, over a 2-D array whose rows are samples; the
point estimate is that function applied to the one-row original sample, and the bootstrap applies it to a
block of resampled rows, so the two cannot drift apart. Each metric also has a twin over counts of distinct
score pairs (`judgeflow.core.pair_counts`), which a large run's bootstrap uses instead: the same values, at a
cost that does not grow with the number of items.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from types import MappingProxyType
from typing import Any, TypeAlias

import numpy as np
import numpy.typing as npt

from judgeflow.core.pair_counts import (
    CountStat,
    PairCounts,
    count_kendall,
    count_pearson,
    count_spearman,
    fits,
    weighted_pearson,
)

__all__ = [
    "METRICS",
    "ROW_STATS",
    "Agreement",
    "Estimate",
    "PairStat",
    "RowStat",
    "Rows",
    "agreement",
    "bootstrap_estimates",
    "exact_agreement",
    "items_needed",
    "kendall",
    "mean_absolute_error",
    "pearson",
    "pearson_difference",
    "point_estimates",
    "quadratic_kappa",
    "round_half_up",
    "spearman",
    "within_one",
]

Scores: TypeAlias = Sequence[float] | npt.NDArray[Any]
Rows: TypeAlias = npt.NDArray[np.float64]
# A metric over a block of samples: two (rows, n) arrays in, (rows,) values out, NaN where undefined.
RowStat: TypeAlias = Callable[[Rows, Rows], Rows]
_Rows: TypeAlias = Rows
_RowStat: TypeAlias = RowStat

METRICS: tuple[str, ...] = ("pearson", "spearman", "kendall", "kappa", "exact", "within1", "mae")

# Below three items a correlation is either undefined or trivially +-1; reporting it would only mislead.
_CORRELATION_MIN_N = 3
# A CI built from a minority of resamples describes a different population (the non-degenerate resamples).
_MIN_VALID_SHARE = 0.5
# Scores such as 4.4 and 3.4 differ by 1.0000000000000004 in binary floating point; they are one point apart.
_WITHIN_ONE_TOLERANCE = 1e-9
# Caps one block of resample indices at ~8 MB, so large runs do not allocate n_resamples x n at once.
_CHUNK_CELLS = 1 << 20
# From this many items, when the distinct score pairs are few, the bootstrap draws counts of pairs instead of
# item indices (same distribution, cost independent of n); below it, runs keep their index draws.
_COUNT_MIN_N = 1000


@dataclass(frozen=True, slots=True)
class Estimate:
    """A metric value and its bootstrap 95% CI; ``None`` means undefined or not computed, never zero."""

    value: float | None
    ci95: tuple[float, float] | None = None

    def as_dict(self) -> dict[str, object]:
        """JSON-ready form: ``{"value": v, "ci95": [lo, hi] or None}``."""
        return {"value": self.value, "ci95": None if self.ci95 is None else list(self.ci95)}


@dataclass(frozen=True, slots=True)
class Agreement:
    """All of `METRICS` for one teacher/student pair over ``n`` items."""

    n: int
    metrics: Mapping[str, Estimate]

    def as_dict(self) -> dict[str, object]:
        """JSON-ready form: one entry per metric (in `METRICS` order), then ``"n"``."""
        out: dict[str, object] = {name: self.metrics[name].as_dict() for name in METRICS}
        out["n"] = self.n
        return out


# --- row-wise metrics: each maps two (rows, n) arrays to (rows,) values, NaN where undefined (n >= 1) -------


def _constant(x: _Rows) -> npt.NDArray[np.bool_]:
    # Exact equality on purpose: a near-constant vector still has a (noisy) correlation.
    constant: npt.NDArray[np.bool_] = np.ptp(x, axis=1) == 0
    return constant


def round_half_up(x: _Rows) -> _Rows:
    # np.round rounds half to even (2.5 -> 2); a judge's 2.5 means "between 2 and 3", resolved upward here.
    # x - floor(x) is exact for scores >= 0, unlike floor(x + 0.5), which misrounds 0.49999999999999994.
    floor = np.floor(x)
    return floor + (x - floor >= 0.5)


def _pearson_rows(a: _Rows, b: _Rows) -> _Rows:
    out = np.full(a.shape[0], np.nan)
    if a.shape[1] < _CORRELATION_MIN_N:
        return out
    ok = ~(_constant(a) | _constant(b))
    da = a[ok] - a[ok].mean(axis=1, keepdims=True)
    db = b[ok] - b[ok].mean(axis=1, keepdims=True)
    # A non-constant row always has a non-zero deviation. Scaling by the largest one (as scipy does) keeps the
    # sums of squares in [1, n], so their product cannot under- or overflow; and sqrt(ss * ss) == ss makes
    # identical inputs give exactly 1.0 rather than 0.9999999999999999.
    da /= np.abs(da).max(axis=1, keepdims=True)
    db /= np.abs(db).max(axis=1, keepdims=True)
    r = (da * db).sum(axis=1) / np.sqrt((da * da).sum(axis=1) * (db * db).sum(axis=1))
    out[ok] = np.clip(r, -1.0, 1.0)
    return out


def _spearman_rows(a: _Rows, b: _Rows) -> _Rows:
    if a.shape[1] < _CORRELATION_MIN_N:
        return np.full(a.shape[0], np.nan)
    # Average ranks for ties, as scipy.stats.spearmanr; ranks are constant exactly when the scores are.
    # scipy.stats is imported on first use: it costs about a second and 50 MiB at start-up, for every command.
    from scipy import stats

    return _pearson_rows(stats.rankdata(a, axis=1), stats.rankdata(b, axis=1))


def _kendall_rows(a: _Rows, b: _Rows) -> _Rows:
    from scipy import stats  # lazily, see _spearman_rows

    out = np.full(a.shape[0], np.nan)
    if a.shape[1] < _CORRELATION_MIN_N:
        return out
    # scipy computes tau-b in O(n log n); a vectorised pairwise version would be O(n^2) memory per row. The
    # constant guard keeps scipy from warning, and method="asymptotic" skips the exact p-value we do not use.
    for i in np.flatnonzero(~(_constant(a) | _constant(b))):
        out[i] = stats.kendalltau(a[i], b[i], method="asymptotic").statistic
    return out


def _kappa_rows(a: _Rows, b: _Rows, *, low: int = 1, high: int = 5) -> _Rows:
    k = high - low + 1
    ca = (np.clip(round_half_up(a), low, high) - low).astype(np.intp)
    cb = (np.clip(round_half_up(b), low, high) - low).astype(np.intp)
    rows, n = a.shape
    # One k x k confusion matrix per row, counted in a single bincount over row-offset cell codes.
    codes = (np.arange(rows)[:, None] * k + ca) * k + cb
    confusion = np.bincount(codes.ravel(), minlength=rows * k * k).reshape(rows, k, k)
    return _kappa_of(confusion, n)


def _kappa_counts(c: PairCounts, *, low: int = 1, high: int = 5) -> _Rows:
    k = high - low + 1
    ca = (np.clip(round_half_up(c.x), low, high) - low).astype(np.intp)
    cb = (np.clip(round_half_up(c.y), low, high) - low).astype(np.intp)
    cells = np.zeros((c.x.size, k * k), dtype=np.int64)
    cells[np.arange(c.x.size), ca * k + cb] = 1
    confusion = (c.weights.astype(np.int64) @ cells).reshape(-1, k, k)
    return _kappa_of(confusion, c.n)


def _kappa_of(confusion: npt.NDArray[np.int64], n: int) -> _Rows:
    """Quadratic kappa per row of ``(rows, k, k)`` integer confusion matrices over ``n`` items."""
    rows, k, _ = confusion.shape
    cats = np.arange(k)
    weights = (cats[:, None] - cats[None, :]) ** 2
    # kappa = 1 - sum(W * O) / sum(W * E) with E = outer(row_marginal, col_marginal) / n. Kept in integers so
    # "no expected disagreement" (both judges always chose the same single category) is an exact zero test.
    observed = n * (confusion * weights).sum(axis=(1, 2))
    expected = np.einsum("ri,ij,rj->r", confusion.sum(axis=2), weights, confusion.sum(axis=1))
    out = np.full(rows, np.nan)
    ok = expected > 0
    out[ok] = 1.0 - observed[ok] / expected[ok]
    return out


def _exact_rows(a: _Rows, b: _Rows) -> _Rows:
    share: _Rows = (round_half_up(a) == round_half_up(b)).mean(axis=1)
    return share


def _within_one_rows(a: _Rows, b: _Rows) -> _Rows:
    share: _Rows = (np.abs(a - b) <= 1.0 + _WITHIN_ONE_TOLERANCE).mean(axis=1)
    return share


def _mae_rows(a: _Rows, b: _Rows) -> _Rows:
    mae: _Rows = np.abs(a - b).mean(axis=1)
    return mae


def _exact_counts(c: PairCounts) -> _Rows:
    return c.share(round_half_up(c.x) == round_half_up(c.y))


def _within_one_counts(c: PairCounts) -> _Rows:
    return c.share(np.abs(c.x - c.y) <= 1.0 + _WITHIN_ONE_TOLERANCE)


def _mae_counts(c: PairCounts) -> _Rows:
    mae: _Rows = c.weights @ np.abs(c.x - c.y) / c.n
    return mae


@dataclass(frozen=True, slots=True)
class PairStat:
    """A metric written twice: over rows of item scores (a `RowStat`, which calling it runs) and over counts of
    distinct pairs (`judgeflow.core.pair_counts`). A test holds the two to the same values."""

    rows: RowStat
    counts: CountStat

    def __call__(self, a: Rows, b: Rows) -> Rows:
        return self.rows(a, b)


ROW_STATS: Mapping[str, PairStat] = {
    "pearson": PairStat(_pearson_rows, count_pearson),
    "spearman": PairStat(_spearman_rows, count_spearman),
    "kendall": PairStat(_kendall_rows, count_kendall),
    "kappa": PairStat(_kappa_rows, _kappa_counts),
    "exact": PairStat(_exact_rows, _exact_counts),
    "within1": PairStat(_within_one_rows, _within_one_counts),
    "mae": PairStat(_mae_rows, _mae_counts),
}


# --- point estimates ----------------------------------------------------------------------------------------


def _as_pair(a: Scores, b: Scores) -> tuple[_Rows, _Rows]:
    """Validate inputs. Mismatched lengths or non-finite scores are caller bugs (an unparsed reply is not a
    score), so they raise instead of becoming an undefined metric."""
    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    if x.ndim != 1 or y.ndim != 1:
        raise ValueError(f"scores must be 1-D, got shapes {x.shape} and {y.shape}")
    if x.size != y.size:
        raise ValueError(f"score vectors differ in length: {x.size} != {y.size}")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError("scores must be finite numbers")
    return x, y


def _point(stat: _RowStat, a: Scores, b: Scores) -> float | None:
    x, y = _as_pair(a, b)
    if x.size == 0:
        return None
    value = float(stat(x[None, :], y[None, :])[0])
    return None if np.isnan(value) else value


def pearson(a: Scores, b: Scores) -> float | None:
    """Pearson's r; ``None`` for n < 3 or a constant input."""
    return _point(_pearson_rows, a, b)


def spearman(a: Scores, b: Scores) -> float | None:
    """Spearman's rho (Pearson on average ranks); ``None`` for n < 3 or a constant input."""
    return _point(_spearman_rows, a, b)


def kendall(a: Scores, b: Scores) -> float | None:
    """Kendall's tau-b, which corrects for the many ties of a 5-point scale; ``None`` if n < 3 or constant."""
    return _point(_kendall_rows, a, b)


def quadratic_kappa(a: Scores, b: Scores, *, low: int = 1, high: int = 5) -> float | None:
    """Quadratic-weighted Cohen's kappa over the integer categories ``low..high``.

    Scores are rounded half up (4.5 -> 5, 3.49 -> 3) and then clipped into ``[low, high]``, because kappa
    needs categories and a judge's half point means "between the two". ``None`` when n == 0 or when no
    disagreement is expected by chance (both judges put every item in the same single category).
    """
    if low >= high:
        raise ValueError(f"need low < high, got low={low}, high={high}")
    return _point(partial(_kappa_rows, low=low, high=high), a, b)


def exact_agreement(a: Scores, b: Scores) -> float | None:
    """Share of items whose half-up rounded scores are equal (no clipping); ``None`` when n == 0."""
    return _point(_exact_rows, a, b)


def within_one(a: Scores, b: Scores) -> float | None:
    """Share of items with ``|a - b| <= 1`` on the raw scores (float noise tolerated); ``None`` if n == 0."""
    return _point(_within_one_rows, a, b)


def mean_absolute_error(a: Scores, b: Scores) -> float | None:
    """Mean of ``|a - b|`` on the raw scores; ``None`` when n == 0."""
    return _point(_mae_rows, a, b)


def point_estimates(a: Scores, b: Scores) -> dict[str, float | None]:
    """Every metric in `METRICS`, keyed by name, without confidence intervals."""
    return {name: _point(stat, a, b) for name, stat in ROW_STATS.items()}


# --- paired bootstrap ---------------------------------------------------------------------------------------
# Hand-rolled rather than scipy.stats.bootstrap: all metrics must see the same resampled pairs, and resamples
# on which a metric is undefined must be dropped, where scipy would turn them into a NaN interval.


def _resamples(n: int, n_resamples: int, seed: int) -> Iterator[npt.NDArray[np.intp]]:
    """Blocks of item indices, one resample per row; resampling indices keeps teacher/student pairs intact."""
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples}")
    rng = np.random.default_rng(seed)
    block = max(1, _CHUNK_CELLS // n)
    for start in range(0, n_resamples, block):
        yield rng.integers(0, n, size=(min(block, n_resamples - start), n))


def _distinct(columns: Sequence[_Rows]) -> tuple[_Rows, _Rows] | None:
    """The distinct rows of ``columns`` side by side and how many items each holds, when counting pays."""
    n = columns[0].size
    if n < _COUNT_MIN_N or not all(fits(columns[0], column) for column in columns[1:]):
        return None
    values, inverse = np.unique(np.stack(columns), axis=1, return_inverse=True)
    if values.shape[1] * 4 > n:
        return None
    return values, np.bincount(inverse.ravel(), minlength=values.shape[1]).astype(np.float64)


def _count_resamples(tally: _Rows, n_resamples: int, seed: int) -> Iterator[_Rows]:
    """Blocks of resamples as counts per distinct pair: multinomial(n, observed shares), one resample per row."""
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be >= 1, got {n_resamples}")
    rng = np.random.default_rng(seed)
    n = int(tally.sum())
    block = max(1, _CHUNK_CELLS // tally.size)
    for start in range(0, n_resamples, block):
        yield rng.multinomial(n, tally / n, size=min(block, n_resamples - start)).astype(np.float64)


def _percentile_ci(draws: _Rows) -> tuple[float, float] | None:
    valid = draws[~np.isnan(draws)]
    if valid.size == 0 or valid.size < _MIN_VALID_SHARE * draws.size:
        return None
    lo, hi = np.percentile(valid, [2.5, 97.5])
    return float(lo), float(hi)


def bootstrap_estimates(
    stats: Mapping[str, RowStat], a: Scores, b: Scores, *, n_resamples: int = 2000, seed: int = 0
) -> dict[str, Estimate]:
    """Each of ``stats`` on the pairs ``(a, b)``, with a percentile-bootstrap 95% CI from the same resamples.

    A CI is ``None`` when the point estimate is undefined, when n < 2 (a single item has no spread to
    resample, and a zero-width interval would claim certainty), or when the metric is undefined on more than
    half of the resamples. Deterministic for a given ``seed``.
    """
    x, y = _as_pair(a, b)
    points = {name: _point(stat, x, y) for name, stat in stats.items()}
    draws: dict[str, list[_Rows]] = {name: [] for name in stats}
    twins = {name: stat.counts for name, stat in stats.items() if isinstance(stat, PairStat)}
    distinct = _distinct([x, y]) if x.size >= 2 and len(twins) == len(stats) else None
    if distinct is not None:
        (px, py), tally = distinct
        for weights in _count_resamples(tally, n_resamples, seed):
            block = PairCounts(px, py, weights, x.size)
            for name, twin in twins.items():
                draws[name].append(twin(block))
    elif x.size >= 2:
        for idx in _resamples(x.size, n_resamples, seed):
            xs, ys = x[idx], y[idx]
            for name, stat in stats.items():
                draws[name].append(stat(xs, ys))
    estimates: dict[str, Estimate] = {}
    for name in stats:
        value = points[name]
        ci = None if value is None or not draws[name] else _percentile_ci(np.concatenate(draws[name]))
        estimates[name] = Estimate(value, ci)
    return estimates


def agreement(a: Scores, b: Scores, *, n_resamples: int = 2000, seed: int = 0) -> Agreement:
    """All of `METRICS` with percentile-bootstrap 95% CIs over resampled item pairs (see `bootstrap_estimates`)."""
    estimates = bootstrap_estimates(ROW_STATS, a, b, n_resamples=n_resamples, seed=seed)
    metrics = {name: estimates[name] for name in METRICS}
    return Agreement(n=len(a), metrics=MappingProxyType(metrics))


def pearson_difference(
    teacher: Scores, student_a: Scores, student_b: Scores, *, n_resamples: int = 2000, seed: int = 0
) -> Estimate:
    """``pearson(teacher, a) - pearson(teacher, b)`` with a paired-bootstrap 95% CI.

    The same resampled items feed both correlations, so the item-to-item variation the two students share
    cancels; two separate CIs that overlap can still hide a clear difference. A CI excluding 0 means student a
    tracks the teacher better (or worse) on this item population.
    """
    t, sa = _as_pair(teacher, student_a)
    _, sb = _as_pair(teacher, student_b)
    ra, rb = pearson(t, sa), pearson(t, sb)
    if ra is None or rb is None:
        return Estimate(None, None)
    distinct = _distinct([t, sa, sb])
    if distinct is None:
        draws = [_pearson_rows(t[i], sa[i]) - _pearson_rows(t[i], sb[i]) for i in _resamples(t.size, n_resamples, seed)]
        return Estimate(ra - rb, _percentile_ci(np.concatenate(draws)))
    (pt, pa, pb), tally = distinct
    diffs = []
    for weights in _count_resamples(tally, n_resamples, seed):
        with_a, with_b = PairCounts(pt, pa, weights, t.size), PairCounts(pt, pb, weights, t.size)
        diffs.append(
            weighted_pearson(pt, pa, weights, with_a.constant) - weighted_pearson(pt, pb, weights, with_b.constant)
        )
    return Estimate(ra - rb, _percentile_ci(np.concatenate(diffs)))


def items_needed(difference: Estimate, n: int) -> int | None:
    """About how many items would tell this difference from zero at 95%, from its bootstrap interval over ``n``.

    A bootstrap interval narrows as 1/sqrt(n). Its side that faces zero (``value - low`` for a positive difference,
    ``high - value`` for a negative one; a bootstrap interval need not be symmetric) would shrink to the size of
    the difference at ``n * (side / |value|)**2`` items: there the interval would just exclude zero, if the
    difference stayed the same. Fewer than ``n`` means this run already tells them apart. A rough guide to plan
    the next run, not a power analysis: the difference itself is uncertain. ``None`` when the difference or its
    interval is undefined, or the difference is exactly zero.
    """
    if difference.value is None or difference.ci95 is None or difference.value == 0 or n < 1:
        return None
    low, high = difference.ci95
    side = difference.value - low if difference.value > 0 else high - difference.value
    # Rounded first so that float noise (0.1 - -0.05 = 0.15000000000000002) does not add an item.
    return max(1, math.ceil(round(n * (side / abs(difference.value)) ** 2, 9)))
