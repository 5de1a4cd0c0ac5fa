"""Tests for judgeflow.core.pair_counts: every metric over counts of distinct pairs equals its row version.

The bootstrap of a large run reads counts instead of items, so each count twin must give, for any resample, the
value the row function gives on the expanded items; and the bootstrap must take that path only where it pays.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from judgeflow.core import labels, metrics
from judgeflow.core.labels import label_agreement
from judgeflow.core.metrics import ROW_STATS, Estimate, PairStat, agreement, pearson_difference
from judgeflow.core.pair_counts import PairCounts

Floats = npt.NDArray[np.float64]
LEVELS = (1.0, 1.5, 2.0, 3.0, 3.5, 4.0, 4.5, 5.0)


def _both_ways(stat: PairStat, x: Floats, y: Floats, index: npt.NDArray[np.intp]) -> tuple[Floats, Floats]:
    """The stat on resampled items (rows of indices) and on the same resamples as counts of distinct pairs."""
    values, inverse = np.unique(np.stack([x, y]), axis=1, return_inverse=True)
    codes = inverse.ravel()[index]
    weights = np.stack([np.bincount(row, minlength=values.shape[1]) for row in codes]).astype(np.float64)
    counted = stat.counts(PairCounts(values[0], values[1], weights, x.size))
    return stat.rows(x[index], y[index]), counted


@st.composite
def _samples(draw: st.DrawFn, *, levels: tuple[float, ...] = LEVELS) -> tuple[Floats, Floats, npt.NDArray[np.intp]]:
    n = draw(st.integers(min_value=1, max_value=40))
    x = draw(st.lists(st.sampled_from(levels), min_size=n, max_size=n))
    y = draw(st.lists(st.sampled_from(levels), min_size=n, max_size=n))
    seed = draw(st.integers(min_value=0, max_value=2**16))
    index = np.random.default_rng(seed).integers(0, n, size=(6, n))
    return np.array(x), np.array(y), index


@settings(max_examples=150, deadline=None)
@given(_samples())
@pytest.mark.parametrize("name", sorted(ROW_STATS))
def test_each_agreement_metric_reads_counts_as_it_reads_items(
    name: str, sample: tuple[Floats, Floats, npt.NDArray[np.intp]]
) -> None:
    x, y, index = sample
    rows, counted = _both_ways(ROW_STATS[name], x, y, index)
    np.testing.assert_array_equal(np.isnan(rows), np.isnan(counted))
    np.testing.assert_allclose(counted[~np.isnan(counted)], rows[~np.isnan(rows)], rtol=1e-9, atol=1e-12)


@settings(max_examples=150, deadline=None)
@given(_samples(), st.sampled_from((0.0, 1.0)), st.sampled_from((2.0, 4.0, 4.5)))
def test_label_metrics_read_counts_as_they_read_items(
    sample: tuple[Floats, Floats, npt.NDArray[np.intp]], flip: float, threshold: float
) -> None:
    x, y, index = sample
    truth = (x >= 3.0).astype(np.float64) if flip else (x < 3.0).astype(np.float64)
    stats = {
        "auc": PairStat(labels._auc_rows, labels._auc_counts),
        "kappa": labels._thresholded_kappa(threshold),
        "accuracy": labels._thresholded_accuracy(threshold),
    }
    for stat in stats.values():
        rows, counted = _both_ways(stat, truth, y, index)
        np.testing.assert_array_equal(np.isnan(rows), np.isnan(counted))
        np.testing.assert_allclose(counted[~np.isnan(counted)], rows[~np.isnan(rows)], rtol=1e-9, atol=1e-12)


def _large(n: int, seed: int) -> tuple[Floats, Floats, Floats]:
    rng = np.random.default_rng(seed)
    teacher = rng.integers(1, 6, size=n).astype(np.float64)
    trained = np.clip(teacher + rng.choice([-1.0, 0.0, 0.0, 0.0, 1.0], size=n), 1, 5)
    base = np.clip(teacher + rng.choice([-2.0, -1.0, 0.0, 1.0, 2.0], size=n), 1, 5)
    return teacher, trained, base


def test_a_large_run_counts_and_its_intervals_match_the_index_bootstrap(monkeypatch: pytest.MonkeyPatch) -> None:
    teacher, trained, _ = _large(3000, seed=7)
    counted = agreement(teacher, trained, n_resamples=400, seed=1)
    monkeypatch.setattr(metrics, "_COUNT_MIN_N", 10**9)  # the index bootstrap, as a small run takes it
    indexed = agreement(teacher, trained, n_resamples=400, seed=1)
    for name in metrics.METRICS:
        _assert_alike(counted.metrics[name], indexed.metrics[name])


def test_the_difference_and_label_intervals_come_from_counts_too(monkeypatch: pytest.MonkeyPatch) -> None:
    teacher, trained, base = _large(3000, seed=3)
    labels = (teacher >= 4).astype(np.float64)
    counted = (
        pearson_difference(teacher, trained, base, n_resamples=400),
        label_agreement(labels, trained, kind="binary", n_resamples=400),
    )
    monkeypatch.setattr(metrics, "_COUNT_MIN_N", 10**9)
    indexed = (
        pearson_difference(teacher, trained, base, n_resamples=400),
        label_agreement(labels, trained, kind="binary", n_resamples=400),
    )
    _assert_alike(counted[0], indexed[0])
    for name in ("auc", "kappa", "accuracy"):
        _assert_alike(counted[1].metrics[name], indexed[1].metrics[name])


def _assert_alike(counted: Estimate, indexed: Estimate) -> None:
    """The same point estimate (it never goes through the bootstrap), and intervals that agree to a fraction of
    their width: two independent sets of 400 draws of one distribution do; a count twin that computed something
    else would be off by far more."""
    assert counted.value == indexed.value
    assert counted.ci95 is not None
    assert indexed.ci95 is not None
    width = indexed.ci95[1] - indexed.ci95[0]
    assert abs(counted.ci95[0] - indexed.ci95[0]) < 0.35 * width + 1e-9
    assert abs(counted.ci95[1] - indexed.ci95[1]) < 0.35 * width + 1e-9


def test_counting_is_used_only_when_it_pays() -> None:
    few = np.array([1.0, 2.0, 3.0, 4.0, 5.0] * 400)
    assert metrics._distinct([few, few[::-1].copy()]) is not None
    assert metrics._distinct([few[:500], few[:500]]) is None  # a small run keeps its index draws
    spread = np.linspace(1.0, 5.0, 2000)  # near-continuous scores: as many distinct pairs as items
    assert metrics._distinct([spread, spread]) is None
