"""How well a judge agrees with human labels: the question "can I trust this judge?" answered against people.

A label is either a score on the judge's 1-5 scale or true/false (is the answer correct?). Scale labels are
compared as one more judge would be: quadratic-weighted kappa, Pearson and Spearman. True/false labels are
compared two ways: how well the judge's score ranks the correct answers above the wrong ones (ROC AUC, which
needs no threshold), and how often "score >= threshold" agrees with the label (Cohen's kappa and accuracy). Every
value has a paired-bootstrap 95% interval from `judgeflow.core.metrics`; an undefined one is ``None``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, TypeAlias

import numpy as np
import numpy.typing as npt

from judgeflow.core.metrics import ROW_STATS, Estimate, PairStat, Rows, Scores, bootstrap_estimates
from judgeflow.core.pair_counts import PairCounts

__all__ = [
    "BINARY_METRICS",
    "DEFAULT_THRESHOLD",
    "SCALE_METRICS",
    "LabelAgreement",
    "LabelKind",
    "auc",
    "binary_kappa",
    "label_agreement",
]

LabelKind: TypeAlias = Literal["scale", "binary"]

SCALE_METRICS: tuple[str, ...] = ("kappa", "pearson", "spearman")
BINARY_METRICS: tuple[str, ...] = ("auc", "kappa", "accuracy")
# The rubric's 4 and 5 mean "relevant and correct"; 1-3 mean irrelevant or with mistakes.
DEFAULT_THRESHOLD = 4.0


def _auc_rows(truth: Rows, scores: Rows) -> Rows:
    """ROC AUC per row: P(score of a true item > score of a false one), ties counting one half.

    Counted through a histogram of the distinct scores per row (one bincount over row-offset codes), so a
    block of bootstrap rows costs O(cells), not a sort per row.
    """
    rows, n = scores.shape
    values, index = np.unique(scores, return_inverse=True)
    k = values.size
    positive = truth.astype(bool)
    codes = (np.arange(rows)[:, None] * 2 + positive) * k + index.reshape(rows, n)
    hist = np.bincount(codes.ravel(), minlength=rows * 2 * k).reshape(rows, 2, k).astype(np.float64)
    return _auc_of(hist[:, 0, :], hist[:, 1, :])


def _auc_counts(c: PairCounts) -> Rows:
    """The same from counts of distinct (truth, score) pairs: the table's rows are the truth's levels."""
    table = c.table
    empty = np.zeros_like(table[:, 0, :])
    neg = table[:, 0, :] if c.x_levels[0] == 0 else empty
    pos = table[:, -1, :] if c.x_levels[-1] != 0 else empty
    return _auc_of(neg, pos)


def _auc_of(neg: Rows, pos: Rows) -> Rows:
    """AUC per row from the counts of negatives and positives at each distinct score (ascending)."""
    neg_below = np.cumsum(neg, axis=1) - neg
    wins = (pos * (neg_below + 0.5 * neg)).sum(axis=1)
    pairs = pos.sum(axis=1) * neg.sum(axis=1)
    out = np.full(neg.shape[0], np.nan)
    ok = pairs > 0
    out[ok] = wins[ok] / pairs[ok]
    return out


def _binary_kappa_rows(truth: Rows, predicted: Rows) -> Rows:
    """Cohen's kappa of two yes/no raters: 2(ad - bc) / ((a+b)(b+d) + (a+c)(c+d)), in integers."""
    t, p = truth.astype(bool), predicted.astype(bool)
    cells = [(t & p).sum(axis=1), (t & ~p).sum(axis=1), (~t & p).sum(axis=1), (~t & ~p).sum(axis=1)]
    return _binary_kappa_of(*(cell.astype(np.int64) for cell in cells))


def _binary_kappa_of(
    a: npt.NDArray[np.int64], b: npt.NDArray[np.int64], c: npt.NDArray[np.int64], d: npt.NDArray[np.int64]
) -> Rows:
    """Per row, from the counts of (true, yes), (true, no), (false, yes) and (false, no)."""
    denominator = (a + b) * (b + d) + (a + c) * (c + d)
    out = np.full(a.shape[0], np.nan)
    ok = denominator > 0
    out[ok] = 2.0 * (a * d - b * c)[ok] / denominator[ok]
    return out


def _accuracy_rows(truth: Rows, predicted: Rows) -> Rows:
    share: Rows = (truth.astype(bool) == predicted.astype(bool)).mean(axis=1)
    return share


def _thresholded_kappa(threshold: float) -> PairStat:
    def rows(truth: Rows, scores: Rows) -> Rows:
        return _binary_kappa_rows(truth, (scores >= threshold).astype(np.float64))

    def counts(c: PairCounts) -> Rows:
        t, p = c.x != 0, c.y >= threshold
        cells = [c.weights[:, mask].sum(axis=1) for mask in (t & p, t & ~p, ~t & p, ~t & ~p)]
        return _binary_kappa_of(*(np.rint(cell).astype(np.int64) for cell in cells))

    return PairStat(rows, counts)


def _thresholded_accuracy(threshold: float) -> PairStat:
    def rows(truth: Rows, scores: Rows) -> Rows:
        return _accuracy_rows(truth, (scores >= threshold).astype(np.float64))

    def counts(c: PairCounts) -> Rows:
        return c.share((c.x != 0) == (c.y >= threshold))

    return PairStat(rows, counts)


def auc(labels: Scores, scores: Scores) -> float | None:
    """ROC AUC of ``scores`` for the true ``labels`` (0/1); ``None`` unless both classes are present."""
    truth, values = np.asarray(labels, dtype=np.float64), np.asarray(scores, dtype=np.float64)
    if truth.size == 0:
        return None
    value = float(_auc_rows(truth[None, :], values[None, :])[0])
    return None if np.isnan(value) else value


def binary_kappa(labels: Scores, predicted: Scores) -> float | None:
    """Cohen's kappa of two yes/no vectors; ``None`` when no disagreement is expected by chance."""
    truth, guess = np.asarray(labels, dtype=np.float64), np.asarray(predicted, dtype=np.float64)
    if truth.size == 0:
        return None
    value = float(_binary_kappa_rows(truth[None, :], guess[None, :])[0])
    return None if np.isnan(value) else value


@dataclass(frozen=True, slots=True)
class LabelAgreement:
    """One judge against the human labels over the ``n`` labelled items it scored."""

    kind: LabelKind
    n: int
    metrics: Mapping[str, Estimate]
    threshold: float | None = None

    def as_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"kind": self.kind, "n": self.n}
        if self.threshold is not None:
            out["threshold"] = self.threshold
        out.update({name: estimate.as_dict() for name, estimate in self.metrics.items()})
        return out


def label_agreement(
    labels: Scores,
    scores: Scores,
    *,
    kind: LabelKind,
    threshold: float = DEFAULT_THRESHOLD,
    n_resamples: int = 2000,
    seed: int = 0,
) -> LabelAgreement:
    """The agreement of a judge's ``scores`` with human ``labels`` (1-5 scores, or 0/1 for true/false)."""
    stats: dict[str, PairStat]
    if kind == "scale":
        stats = {name: ROW_STATS[name] for name in SCALE_METRICS}
    else:
        stats = {
            "auc": PairStat(_auc_rows, _auc_counts),
            "kappa": _thresholded_kappa(threshold),
            "accuracy": _thresholded_accuracy(threshold),
        }
    estimates = bootstrap_estimates(stats, labels, scores, n_resamples=n_resamples, seed=seed)
    n = int(np.asarray(labels).size)
    return LabelAgreement(kind, n, estimates, threshold if kind == "binary" else None)
