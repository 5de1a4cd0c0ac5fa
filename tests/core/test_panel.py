"""A panel of judges, against values computed by hand: votes, ties, missing members, error correlation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from judgeflow.core.panel import agreement_matrix, error_correlation, panel_votes

NAN = math.nan
# Items x members (A, B, C); NaN is a member that gave no score (unparsed or failed).
SCORES = np.array(
    [
        [4.0, 4.0, 2.0],  # mean 10/3; votes 4 4 2 -> 4
        [3.0, 4.0, 5.0],  # mean 4; three-way tie
        [5.0, NAN, 5.0],  # B missing: mean 5 over two members; 5
        [NAN, NAN, NAN],  # nobody scored
        [2.5, 3.0, 1.0],  # 2.5 rounds half up to 3: votes 3 3 1 -> 3; mean 6.5/3
        [1.0, 2.0, NAN],  # C missing: mean 1.5; 1 against 2 is a tie
    ]
)


def test_mean_and_majority_by_hand() -> None:
    votes = panel_votes(SCORES)
    np.testing.assert_allclose(votes.mean, [10 / 3, 4.0, 5.0, NAN, 6.5 / 3, 1.5])
    np.testing.assert_array_equal(votes.majority, [4.0, NAN, 5.0, NAN, 3.0, NAN])
    assert votes.members_scored.tolist() == [3, 3, 2, 0, 3, 2]
    assert votes.tied.tolist() == [False, True, False, False, False, True]


def test_counts_show_every_shrunken_panel_and_every_tie() -> None:
    assert panel_votes(SCORES).counts(3) == {
        "items": 6,
        "complete": 3,
        "partial": 2,
        "none": 1,
        "majority_decided": 3,
        "majority_tied": 2,
    }


def test_a_tie_is_not_broken_by_member_order() -> None:
    forward = panel_votes(np.array([[2.0, 4.0]]))
    backward = panel_votes(np.array([[4.0, 2.0]]))
    assert forward.tied.tolist() == backward.tied.tolist() == [True]
    assert math.isnan(forward.majority[0])
    assert math.isnan(backward.majority[0])


def test_agreement_matrix_counts_items_both_scored() -> None:
    matrix = agreement_matrix(SCORES, ["A", "B", "C"])
    assert matrix["A"]["B"]["n"] == 4  # items 0, 1, 4, 5
    assert matrix["A"]["C"]["n"] == 4  # items 0, 1, 2, 4
    assert matrix["B"]["C"]["n"] == 3  # items 0, 1, 4
    assert matrix["A"]["A"]["n"] == 5
    # A and B on items 0, 1, 4, 5: 4/4, 3/4, 2.5(->3)/3, 1/2: exact agreement on items 0 and 4 = 2/4.
    assert matrix["A"]["B"]["exact"] == pytest.approx(0.5)
    assert matrix["A"]["B"] == matrix["B"]["A"]


def test_error_correlation_by_hand() -> None:
    # Truth 3 3 3 3. Errors: A 1 -1 0 2, B 1 -1 0 -2, C -1 1 0 0.
    # r(A, B): deviations from the means (0.5, -0.5): .5 -1.5 -.5 1.5 and 1.5 -.5 .5 -1.5; products sum to -1,
    # squares to 5 and 5: r = -0.2. r(A, C): C's mean is 0; products sum to -.5 - 1.5 = -2, squares 5 and 2:
    # r = -2 / sqrt(10). r(B, C): 1.5 * -1 + -.5 * 1 = -2: r = -2 / sqrt(10).
    scores = np.array([[4.0, 4.0, 2.0], [2.0, 2.0, 4.0], [3.0, 3.0, 3.0], [5.0, 1.0, 3.0]])
    result = error_correlation(scores, [3.0, 3.0, 3.0, 3.0], ["A", "B", "C"])
    r = -2 / math.sqrt(10)
    assert result.matrix[0][1] == pytest.approx(-0.2)
    assert result.matrix[0][2] == pytest.approx(r)
    assert result.matrix[1][2] == pytest.approx(r)
    assert result.mean == pytest.approx((-0.2 + 2 * r) / 3)
    assert result.effective_judges is None  # opposed errors: the formula would claim more judges than there are
    assert result.n[0][1] == 4


def test_identical_errors_are_worth_one_judge() -> None:
    # Both members make the same mistakes: r = 1, and m / (1 + (m - 1) r) = 2 / 2 = 1 judge.
    scores = np.array([[4.0, 4.0], [3.0, 3.0], [2.0, 2.0], [3.0, 3.0]])
    result = error_correlation(scores, [3.0, 3.0, 3.0, NAN], ["A", "B"])
    assert result.matrix[0][1] == pytest.approx(1.0)
    assert result.effective_judges == pytest.approx(1.0)
    assert result.n[0][1] == 3  # the item without a truth is not an error of anyone's
