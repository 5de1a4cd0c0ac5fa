"""Tests for judgeflow.core.metrics: reference values, undefined cases, bootstrap behaviour, and a property test.

The suite runs with warnings as errors, so every test here also checks that no numpy/scipy warning escapes.
"""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from judgeflow.core.metrics import (
    METRICS,
    Agreement,
    Estimate,
    agreement,
    exact_agreement,
    kendall,
    mean_absolute_error,
    pearson,
    pearson_difference,
    point_estimates,
    quadratic_kappa,
    spearman,
    within_one,
)

Floats = npt.NDArray[np.float64]
SEEDS = [0, 1, 2, 3, 4]


def _judged(seed: int, n: int, noise: float, *, discrete: bool) -> tuple[Floats, Floats]:
    """A teacher on the 1-5 scale and a student that is the teacher plus noise, clipped to the scale."""
    rng = np.random.default_rng(seed)
    teacher = rng.integers(1, 6, n).astype(np.float64) if discrete else rng.uniform(1, 5, n)
    student = np.clip(teacher + rng.normal(0.0, noise, n), 1.0, 5.0)
    if discrete:
        student = np.round(student * 2) / 2  # half points, so rounding and ties are exercised
    return teacher, student


def _kappa_reference(a: Floats, b: Floats, low: int, high: int) -> float:
    """Quadratic-weighted kappa straight from the textbook definition, with explicit loops."""
    k = high - low + 1
    n = len(a)

    def category(x: float) -> int:
        return min(max(math.floor(x + 0.5), low), high) - low

    observed = [[0.0] * k for _ in range(k)]
    for x, y in zip(a, b, strict=True):
        observed[category(float(x))][category(float(y))] += 1.0 / n
    rows = [sum(observed[i]) for i in range(k)]
    cols = [sum(observed[i][j] for i in range(k)) for j in range(k)]
    weight = [[(i - j) ** 2 / (k - 1) ** 2 for j in range(k)] for i in range(k)]
    num = sum(weight[i][j] * observed[i][j] for i in range(k) for j in range(k))
    den = sum(weight[i][j] * rows[i] * cols[j] for i in range(k) for j in range(k))
    return 1.0 - num / den


# --- point estimates against references ---------------------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("discrete", [False, True])
def test_correlations_match_scipy(seed: int, discrete: bool) -> None:
    a, b = _judged(seed, 60, 1.0, discrete=discrete)
    assert pearson(a, b) == pytest.approx(float(stats.pearsonr(a, b).statistic), abs=1e-12)
    assert spearman(a, b) == pytest.approx(float(stats.spearmanr(a, b).statistic), abs=1e-12)
    assert kendall(a, b) == pytest.approx(float(stats.kendalltau(a, b, variant="b").statistic), abs=1e-12)


@pytest.mark.parametrize("seed", SEEDS)
def test_kappa_matches_textbook_formula(seed: int) -> None:
    a, b = _judged(seed, 80, 1.2, discrete=True)
    assert quadratic_kappa(a, b) == pytest.approx(_kappa_reference(a, b, 1, 5), abs=1e-12)


def test_kappa_on_another_scale() -> None:
    rng = np.random.default_rng(7)
    a = rng.integers(0, 11, 100).astype(np.float64)
    b = np.clip(a + rng.integers(-2, 3, 100), 0, 10).astype(np.float64)
    assert quadratic_kappa(a, b, low=0, high=10) == pytest.approx(_kappa_reference(a, b, 0, 10), abs=1e-12)


@pytest.mark.parametrize("seed", SEEDS)
def test_shares_and_mae_match_numpy(seed: int) -> None:
    a, b = _judged(seed, 70, 1.0, discrete=False)
    assert exact_agreement(a, b) == pytest.approx(float(np.mean(np.floor(a + 0.5) == np.floor(b + 0.5))))
    assert within_one(a, b) == pytest.approx(float(np.mean(np.abs(a - b) <= 1)))
    assert mean_absolute_error(a, b) == pytest.approx(float(np.mean(np.abs(a - b))))


def test_rounding_is_half_up_and_kappa_clips() -> None:
    assert exact_agreement([4.5, 3.49, 2.5, 1.5], [5, 3, 3, 2]) == 1.0  # np.round would send 2.5 to 2
    assert exact_agreement([3.5], [3.49]) == 0.0
    # Out-of-range scores land in the end categories, so these agree perfectly.
    assert quadratic_kappa([0.2, 6.0, 3.0, 2.0], [1.0, 5.0, 3.0, 2.0]) == 1.0


def test_within_one_tolerates_float_noise() -> None:
    # 4.4 - 3.4 == 1.0000000000000004 in binary floating point.
    assert within_one([4.4, 2.2, 4.9], [3.4, 1.2, 3.9]) == 1.0
    assert within_one([5.0], [3.9]) == 0.0


def test_perfect_agreement() -> None:
    scores = [1.0, 2.0, 2.5, 3.0, 4.0, 5.0, 4.5, 1.0]
    assert point_estimates(scores, scores) == {
        "pearson": 1.0,
        "spearman": 1.0,
        "kendall": 1.0,
        "kappa": 1.0,
        "exact": 1.0,
        "within1": 1.0,
        "mae": 0.0,
    }


def test_results_are_plain_floats() -> None:
    a, b = _judged(0, 30, 1.0, discrete=True)
    values = point_estimates(a, b)
    assert list(values) == list(METRICS)
    assert all(type(v) is float for v in values.values())


# --- undefined is None, never NaN or a warning --------------------------------------------------------------


@pytest.mark.parametrize("constant_side", ["a", "b", "both"])
def test_constant_input_gives_none_without_warning(constant_side: str) -> None:
    varied = [1.0, 2.0, 3.0, 4.0, 5.0]
    constant = [3.0] * 5
    a = constant if constant_side in ("a", "both") else varied
    b = constant if constant_side in ("b", "both") else varied
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        values = point_estimates(a, b)
        result = agreement(a, b, n_resamples=100)
    for name in ("pearson", "spearman", "kendall"):
        assert values[name] is None
        assert result.metrics[name] == Estimate(None, None)


def test_kappa_undefined_only_without_expected_disagreement() -> None:
    assert quadratic_kappa([5, 5, 5], [5, 5, 5]) is None  # everyone in one category: chance explains all
    assert quadratic_kappa([4, 4, 4], [5, 5, 5]) == 0.0


def test_too_few_items() -> None:
    assert point_estimates([], []) == dict.fromkeys(METRICS)
    two = point_estimates([1.0, 5.0], [2.0, 4.0])
    assert two["pearson"] is None
    assert two["spearman"] is None
    assert two["kendall"] is None
    assert two["mae"] == 1.0


def test_invalid_input_raises() -> None:
    with pytest.raises(ValueError, match="length"):
        pearson([1.0, 2.0, 3.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="finite"):
        mean_absolute_error([1.0, math.nan], [1.0, 2.0])
    with pytest.raises(ValueError, match="1-D"):
        point_estimates(np.ones((2, 2)), np.ones((2, 2)))
    with pytest.raises(ValueError, match="low < high"):
        quadratic_kappa([1.0], [1.0], low=3, high=3)
    with pytest.raises(ValueError, match="n_resamples"):
        agreement([1.0, 2.0, 3.0], [1.0, 2.0, 3.0], n_resamples=0)
    with pytest.raises(ValueError, match="length"):
        pearson_difference([1.0, 2.0, 3.0], [1.0, 2.0, 3.0], [1.0, 2.0])


# --- bootstrap ----------------------------------------------------------------------------------------------


def test_agreement_shape_and_json() -> None:
    a, b = _judged(0, 40, 1.0, discrete=True)
    result = agreement(list(a), list(b), n_resamples=200)
    assert isinstance(result, Agreement)
    assert result.n == 40
    assert tuple(result.metrics) == METRICS
    as_dict = result.as_dict()
    assert list(as_dict) == [*METRICS, "n"]
    assert as_dict["pearson"] == result.metrics["pearson"].as_dict()
    json.dumps(as_dict)  # a run folder writes this verbatim
    assert Estimate(0.5, (0.25, 0.75)).as_dict() == {"value": 0.5, "ci95": [0.25, 0.75]}
    assert Estimate(None, None).as_dict() == {"value": None, "ci95": None}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ci_contains_point_estimate(seed: int) -> None:
    a, b = _judged(seed, 150, 0.8, discrete=True)
    result = agreement(a, b, n_resamples=300, seed=seed)
    for name in METRICS:
        est = result.metrics[name]
        assert est.value is not None
        assert est.ci95 is not None
        lo, hi = est.ci95
        assert lo <= est.value <= hi, name
        assert type(lo) is float
        assert type(hi) is float


def test_bootstrap_is_deterministic_for_a_seed() -> None:
    a, b = _judged(3, 60, 1.0, discrete=True)
    first = agreement(a, b, n_resamples=200, seed=11).as_dict()
    assert agreement(a, b, n_resamples=200, seed=11).as_dict() == first
    assert agreement(a, b, n_resamples=200, seed=12).as_dict() != first


def test_ci_narrows_as_n_grows() -> None:
    def width(n: int, name: str) -> float:
        a, b = _judged(5, n, 1.0, discrete=True)
        ci = agreement(a, b, n_resamples=300).metrics[name].ci95
        assert ci is not None
        return ci[1] - ci[0]

    for name in ("pearson", "kappa", "mae"):
        assert width(800, name) < width(50, name) / 2, name  # expected ratio is about sqrt(16) = 4


def test_ci_is_none_when_most_resamples_are_undefined() -> None:
    # Each vector varies in one item only; a resample that misses either item (about 59% of them at n=10) has
    # a constant side, so the correlation is undefined there.
    a = [5.0] + [1.0] * 9
    b = [1.0, 5.0] + [1.0] * 8
    result = agreement(a, b, n_resamples=400)
    assert result.metrics["pearson"].value is not None
    assert result.metrics["pearson"].ci95 is None
    assert result.metrics["mae"].ci95 is not None


def test_single_item_has_no_ci() -> None:
    result = agreement([3.0], [4.0], n_resamples=100)
    assert result.metrics["mae"] == Estimate(1.0, None)


# --- pearson_difference -------------------------------------------------------------------------------------


def test_pearson_difference_detects_the_better_student() -> None:
    rng = np.random.default_rng(42)
    teacher = rng.integers(1, 6, 200).astype(np.float64)
    good = np.clip(teacher + rng.normal(0.0, 0.5, 200), 1, 5)
    bad = np.clip(teacher + rng.normal(0.0, 2.0, 200), 1, 5)
    diff = pearson_difference(teacher, good, bad, n_resamples=400)
    r_good, r_bad = pearson(teacher, good), pearson(teacher, bad)
    assert r_good is not None
    assert r_bad is not None
    assert diff.value == pytest.approx(r_good - r_bad)
    assert diff.value is not None
    assert diff.ci95 is not None
    assert 0.0 < diff.ci95[0] <= diff.value <= diff.ci95[1]

    swapped = pearson_difference(teacher, bad, good, n_resamples=400)
    assert swapped.ci95 is not None
    assert swapped.ci95[1] < 0.0
    assert pearson_difference(teacher, good, bad, n_resamples=400) == diff


def test_pearson_difference_undefined_for_constant_student() -> None:
    teacher = [1.0, 2.0, 3.0, 4.0, 5.0]
    assert pearson_difference(teacher, teacher, [3.0] * 5, n_resamples=100) == Estimate(None, None)


# --- properties ---------------------------------------------------------------------------------------------

# Half points make ties, constant vectors and exact disagreements of 1 common, which is where NaN would hide.
_score = st.one_of(st.floats(1.0, 5.0), st.sampled_from([1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0]))


@st.composite
def _score_pairs(draw: st.DrawFn, max_size: int = 50) -> tuple[list[float], list[float]]:
    n = draw(st.integers(0, max_size))
    scores = st.lists(_score, min_size=n, max_size=n)
    return draw(scores), draw(scores)


@settings(max_examples=300, deadline=None)
@given(_score_pairs())
def test_point_estimates_never_nan(pair: tuple[list[float], list[float]]) -> None:
    a, b = pair
    values = point_estimates(a, b)
    assert list(values) == list(METRICS)
    for name, value in values.items():
        if value is None:
            continue
        assert type(value) is float
        assert math.isfinite(value), name
    for name in ("pearson", "spearman", "kendall"):
        value = values[name]
        assert value is None or -1.0 <= value <= 1.0
    kappa = values["kappa"]
    assert kappa is None or kappa <= 1.0
    for name in ("exact", "within1"):
        value = values[name]
        assert value is None or 0.0 <= value <= 1.0
    mae = values["mae"]
    assert mae is None or 0.0 <= mae <= 4.0


@settings(max_examples=40, deadline=None)
@given(_score_pairs(max_size=15))
def test_agreement_never_nan(pair: tuple[list[float], list[float]]) -> None:
    a, b = pair
    for est in agreement(a, b, n_resamples=30).metrics.values():
        for x in (est.value, *(est.ci95 or ())):
            assert x is None or math.isfinite(x)


def test_items_needed_from_the_interval() -> None:
    from judgeflow.core.metrics import items_needed

    # Half-width 0.15 around a difference of 0.1 over 100 items: the width must shrink by 1.5, so 1.5^2 = 2.25
    # times the items.
    assert items_needed(Estimate(0.1, (-0.05, 0.25)), 100) == 225
    # Already told apart: half-width 0.1 around 0.2 over 400 items; a quarter of them would do.
    assert items_needed(Estimate(0.2, (0.1, 0.3)), 400) == 100
    assert items_needed(Estimate(-0.2, (-0.3, -0.1)), 400) == 100
    # An asymmetric interval that already excludes zero: only its side towards zero counts,
    # 36 * ((0.219 - 0.084) / 0.219)^2 = 13.7 -> 14 items.
    assert items_needed(Estimate(0.219, (0.084, 0.745)), 36) == 14
    assert items_needed(Estimate(0.0, (-0.1, 0.1)), 50) is None
    assert items_needed(Estimate(0.1, None), 50) is None
    assert items_needed(Estimate(None, None), 50) is None
