"""A panel of judges: how they agree with each other, what their mean and majority say, how alike their errors are.

Input is one row per item and one column per judge, ``NaN`` where a judge gave no score (its reply did not
parse, or the call failed). Nothing is dropped silently: the mean of an item is taken over the members that
scored it and the number of those members is kept with it, so a panel that shrank on an item is visible; a
majority vote that ends in a tie is reported as a tie with no score, not broken by judge order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from judgeflow.core.metrics import exact_agreement, pearson, quadratic_kappa, round_half_up

__all__ = ["ErrorCorrelation", "PanelVotes", "agreement_matrix", "error_correlation", "panel_votes"]

_Matrix = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class PanelVotes:
    """The panel's two derived judges, item by item, and how many members each item had."""

    mean: _Matrix  # NaN where no member scored
    majority: _Matrix  # NaN where no member scored or the vote tied
    members_scored: npt.NDArray[np.int64]
    tied: npt.NDArray[np.bool_]

    @property
    def size(self) -> int:
        return int(self.members_scored.size)

    def counts(self, n_members: int) -> dict[str, int]:
        """Items by how many members scored them, and the majority's outcome."""
        scored = self.members_scored
        return {
            "items": self.size,
            "complete": int((scored == n_members).sum()),
            "partial": int(((scored > 0) & (scored < n_members)).sum()),
            "none": int((scored == 0).sum()),
            "majority_decided": int((~np.isnan(self.majority)).sum()),
            "majority_tied": int(self.tied.sum()),
        }


def panel_votes(scores: _Matrix) -> PanelVotes:
    """Mean and plurality vote of each row of ``scores`` (items x members, ``NaN`` = no score).

    The vote is over half-up rounded scores (4.5 counts as 5); when two or more scores share the top count the
    item is tied. One member's score is its own majority.
    """
    matrix = np.asarray(scores, dtype=np.float64)
    if matrix.ndim != 2:
        raise ValueError(f"scores must be items x members, got shape {matrix.shape}")
    present = ~np.isnan(matrix)
    members_scored = present.sum(axis=1).astype(np.int64)
    total = np.where(present, matrix, 0.0).sum(axis=1)
    mean = np.full(matrix.shape[0], np.nan)
    some = members_scored > 0
    mean[some] = total[some] / members_scored[some]
    rounded = np.where(present, round_half_up(np.where(present, matrix, 0.0)), np.nan)
    categories = np.unique(rounded[present])
    votes = (rounded[:, :, None] == categories[None, None, :]).sum(axis=1)  # items x categories
    top = votes.max(axis=1, initial=0)
    winners = (votes == top[:, None]) & (top[:, None] > 0)
    tied = winners.sum(axis=1) > 1
    majority = np.full(matrix.shape[0], np.nan)
    decided = some & ~tied
    majority[decided] = categories[winners[decided].argmax(axis=1)]
    return PanelVotes(mean, majority, members_scored, tied)


def agreement_matrix(scores: _Matrix, names: Sequence[str]) -> dict[str, dict[str, dict[str, Any]]]:
    """For each ordered pair of judges: items both scored, quadratic kappa, Pearson r, exact agreement."""
    matrix = np.asarray(scores, dtype=np.float64)
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for i, first in enumerate(names):
        out[first] = {}
        for j, second in enumerate(names):
            both = ~np.isnan(matrix[:, i]) & ~np.isnan(matrix[:, j])
            a, b = matrix[both, i], matrix[both, j]
            out[first][second] = {
                "n": int(both.sum()),
                "kappa": quadratic_kappa(a, b),
                "pearson": pearson(a, b),
                "exact": exact_agreement(a, b),
            }
    return out


@dataclass(frozen=True, slots=True)
class ErrorCorrelation:
    """Pearson correlation between members' errors (score minus the truth), pairwise over items both scored."""

    names: tuple[str, ...]
    matrix: tuple[tuple[float | None, ...], ...]
    n: tuple[tuple[int, ...], ...]
    mean: float | None  # of the off-diagonal pairs that are defined
    effective_judges: float | None  # m / (1 + (m - 1) * mean): how many independent judges the panel is worth

    def as_dict(self) -> dict[str, Any]:
        return {
            "judges": list(self.names),
            "matrix": [list(row) for row in self.matrix],
            "n": [list(row) for row in self.n],
            "mean": self.mean,
            "effective_judges": self.effective_judges,
        }


def error_correlation(scores: _Matrix, truth: Sequence[float] | _Matrix, names: Sequence[str]) -> ErrorCorrelation:
    """How alike the members' mistakes are: correlated errors add little when judges are averaged.

    ``truth`` is what an error is measured against (human labels, or the reference judge), ``NaN`` where unknown.
    """
    matrix = np.asarray(scores, dtype=np.float64)
    target = np.asarray(truth, dtype=np.float64)
    errors = matrix - target[:, None]
    m = len(names)
    rows: list[tuple[float | None, ...]] = []
    counts: list[tuple[int, ...]] = []
    off: list[float] = []
    for i in range(m):
        row: list[float | None] = []
        row_n: list[int] = []
        for j in range(m):
            both = ~np.isnan(errors[:, i]) & ~np.isnan(errors[:, j])
            r = pearson(errors[both, i], errors[both, j])
            row.append(r)
            row_n.append(int(both.sum()))
            if i < j and r is not None:
                off.append(r)
        rows.append(tuple(row))
        counts.append(tuple(row_n))
    mean = float(np.mean(off)) if off else None
    # Only alike errors shrink a panel's worth; for unrelated or opposed errors the formula would claim more
    # judges than there are, so it is left undefined.
    effective = m / (1 + (m - 1) * mean) if mean is not None and mean > 0 and m > 1 else None
    return ErrorCorrelation(tuple(names), tuple(rows), tuple(counts), mean, effective)
