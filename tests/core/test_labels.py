"""Agreement with human labels, against values computed by hand (the arithmetic is in each test's comment)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from judgeflow.core.labels import auc, binary_kappa, label_agreement

# Six answers: humans say correct, correct, wrong, wrong, correct, wrong; the judge scored them 5 4 3 4 2 1.
TRUTH = [1, 1, 0, 0, 1, 0]
SCORES = [5.0, 4.0, 3.0, 4.0, 2.0, 1.0]


def test_auc_by_hand() -> None:
    # Positive scores 5, 4, 2 against negative 3, 4, 1 (9 pairs): 5 beats all three (3); 4 beats 3 and 1 and
    # ties 4 (2.5); 2 beats only 1 (1). AUC = 6.5 / 9.
    assert auc(TRUTH, SCORES) == pytest.approx(6.5 / 9)


def test_kappa_and_accuracy_at_the_threshold_by_hand() -> None:
    # score >= 4 says correct: 1 1 0 1 0 0 against 1 1 0 0 1 0. Both correct a = 2, missed b = 1, false alarm
    # c = 1, both wrong d = 2: kappa = 2(ad - bc) / ((a+b)(b+d) + (a+c)(c+d)) = 2(4 - 1) / (9 + 9) = 1/3;
    # accuracy = 4/6.
    result = label_agreement(TRUTH, SCORES, kind="binary", threshold=4.0, n_resamples=200)
    assert result.kind == "binary"
    assert result.n == 6
    assert result.threshold == 4.0
    assert result.metrics["kappa"].value == pytest.approx(1 / 3)
    assert result.metrics["accuracy"].value == pytest.approx(4 / 6)
    assert result.metrics["auc"].value == pytest.approx(6.5 / 9)
    low, high = result.metrics["auc"].ci95 or (math.nan, math.nan)
    assert 0.0 <= low <= 6.5 / 9 <= high <= 1.0


def test_the_threshold_changes_the_verdicts() -> None:
    # score >= 2 says correct: 1 1 1 1 1 0 against 1 1 0 0 1 0: a = 3, b = 0, c = 2, d = 1;
    # kappa = 2(3 - 0) / ((3)(1) + (5)(3)) = 6 / 18.
    result = label_agreement(TRUTH, SCORES, kind="binary", threshold=2.0, n_resamples=50)
    assert result.metrics["kappa"].value == pytest.approx(6 / 18)
    assert result.metrics["accuracy"].value == pytest.approx(4 / 6)


def test_scale_labels_by_hand() -> None:
    # Humans 1 2 3 4 5, judge 1 2 3 5 4. Quadratic kappa: observed weighted disagreement 1 + 1 = 2; every
    # marginal is 1, so expected = (1/5) * sum over cells of (i - j)^2 = 100 / 5 = 20; kappa = 1 - 2/20 = 0.9.
    # Pearson: deviations -2 -1 0 1 2 and -2 -1 0 2 1, products sum to 9, squares to 10 each: r = 0.9.
    # Spearman: the scores are their own ranks, so 0.9 as well.
    result = label_agreement([1, 2, 3, 4, 5], [1, 2, 3, 5, 4], kind="scale", n_resamples=100)
    assert result.kind == "scale"
    assert result.threshold is None
    assert result.metrics["kappa"].value == pytest.approx(0.9)
    assert result.metrics["pearson"].value == pytest.approx(0.9)
    assert result.metrics["spearman"].value == pytest.approx(0.9)
    assert set(result.as_dict()) == {"kind", "n", "kappa", "pearson", "spearman"}


def test_undefined_is_none_never_zero() -> None:
    assert auc([1, 1, 1], [1.0, 2.0, 3.0]) is None  # no wrong answer to rank below the right ones
    assert auc([], []) is None
    assert binary_kappa([1, 1], [1, 1]) is None  # no disagreement expected by chance
    result = label_agreement([1, 1, 1], [5.0, 4.0, 5.0], kind="binary", n_resamples=50)
    assert result.metrics["auc"].value is None
    assert result.metrics["auc"].ci95 is None


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.booleans(), st.integers(min_value=1, max_value=5)), min_size=2, max_size=40).filter(
        lambda rows: len({t for t, _ in rows}) == 2
    )
)
def test_auc_equals_the_pairwise_definition(rows: list[tuple[bool, int]]) -> None:
    truth = [int(t) for t, _ in rows]
    scores = [float(s) for _, s in rows]
    pos = [s for t, s in rows if t]
    neg = [s for t, s in rows if not t]
    wins = sum((p > q) + 0.5 * (p == q) for p in pos for q in neg)
    assert auc(truth, scores) == pytest.approx(wins / (len(pos) * len(neg)))


def test_bootstrap_rows_match_the_point_estimate() -> None:
    # The bootstrap evaluates the AUC on blocks of rows; a block of identical rows must give the point value.
    result = label_agreement(np.array(TRUTH * 50), np.array(SCORES * 50), kind="binary", n_resamples=400, seed=3)
    low, high = result.metrics["auc"].ci95 or (math.nan, math.nan)
    assert low < 6.5 / 9 < high
    assert high - low < 0.2
