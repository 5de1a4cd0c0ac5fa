"""What the MiniLM student learns from each example: the teacher's distribution over the scores 1..5.

The student is ordinal (`model.CrossEncoder`): it predicts ``P(score > k)`` for k = 1..4, and its loss is the
binary cross-entropy of each of the four against the teacher's. Where the teacher was asked with logprobs
scoring, its judgement carries ``probs`` (the probabilities of 1..5): the targets are then
``P(score > k) = p_{k+1} + ... + p_5`` (soft targets). Otherwise the teacher's score ``s`` is spread over its two
neighbouring whole scores so that the mean is ``s``: ``P(score > k) = clip(s - k, 0, 1)`` (a 5 or a 1 is a
certain target, 3.5 is half 3 and half 4).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F

from judgeflow.protocol.messages import TrainingExample

__all__ = ["cumulative_targets", "example_probs", "ordinal_loss"]

Array = npt.NDArray[np.float64]
_CUTS = np.arange(1.0, 5.0)  # 1, 2, 3, 4


def example_probs(example: TrainingExample) -> tuple[float, ...] | None:
    """The teacher's probabilities of the scores 1..5 for ``example``, if it has them (renormalised)."""
    probs = example.probs
    if probs is None:
        return None
    values = [float(p) for p in probs]
    total = sum(values)
    if len(values) != 5 or not all(math.isfinite(p) and p >= 0 for p in values) or total <= 0:
        raise ValueError(f"example {example.id!r}: probs must be five non-negative numbers, got {probs!r}")
    return tuple(p / total for p in values)


def cumulative_targets(examples: Sequence[TrainingExample], *, soft: bool = True) -> Array:
    """``(n, 4)`` targets ``P(score > k)``: from ``probs`` where given (and ``soft``), else from the score."""
    out = np.zeros((len(examples), len(_CUTS)), dtype=np.float64)
    for i, example in enumerate(examples):
        probs = example_probs(example) if soft else None
        if probs is None:
            out[i] = np.clip(float(example.score) - _CUTS, 0.0, 1.0)
        else:
            out[i] = np.cumsum(probs[::-1])[::-1][1:]
    return out


def ordinal_loss(cumulative_logits: torch.Tensor, targets: torch.Tensor, *, reduction: str = "mean") -> torch.Tensor:
    """Binary cross-entropy of the four ``P(score > k)`` against the targets, summed over k."""
    loss = F.binary_cross_entropy_with_logits(cumulative_logits.float(), targets, reduction="none").sum(dim=1)
    return loss.mean() if reduction == "mean" else loss.sum()
