"""Where fine-tuning starts: standardised inputs and one logistic fit of the matching and lexical units together.

A few thousand examples are too few for a cross-encoder to learn string matching from a random head, so the
student starts as a logistic regression of the teacher's (expected, rescaled) score on the lexical features and
on the matching unit's three features as the pretrained encoder computes them; the pooled head starts at zero.
The two units start fitted jointly, so neither is a residual of the other, and fine-tuning then moves the
encoder, the projection and all three heads together.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from .encoder import PairTokenizer, token_batches
from .model import MATCH_NAMES, CrossEncoder, Inputs
from .windows import batch_windows

__all__ = ["fit_logistic", "match_features", "standardise", "start_jointly"]

Array = npt.NDArray[np.float64]


def fit_logistic(x: Array, y: Array, *, l2: float = 1.0, iterations: int = 30) -> tuple[Array, float]:
    """Weights and bias of an L2-regularised logistic regression with soft targets ``y`` in [0, 1] (Newton)."""
    design = np.hstack([np.ones((len(x), 1)), x])
    penalty = np.full(design.shape[1], l2)
    penalty[0] = 0.0
    theta = np.zeros(design.shape[1])
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-(design @ theta)))
        gradient = design.T @ (p - y) + penalty * theta
        hessian = (design * (p * (1.0 - p))[:, None]).T @ design + np.diag(penalty) + 1e-9 * np.eye(len(theta))
        step = np.linalg.solve(hessian, gradient)
        theta -= step
        if float(np.abs(step).max()) < 1e-8:
            break
    return theta[1:], float(theta[0])


def standardise(x: Array) -> tuple[Array, Array]:
    """Column means and scales (a constant column is left unscaled: it carries nothing)."""
    if not len(x):
        return np.zeros(x.shape[1]), np.ones(x.shape[1])
    scales = x.std(axis=0)
    return x.mean(axis=0), np.where(scales > 1e-9, scales, 1.0)


def match_features(model: CrossEncoder, tokenizer: PairTokenizer, inputs: Inputs, *, max_tokens: int = 8192) -> Array:
    """The matching unit's raw features of every item, as ``model``'s encoder computes them now."""
    out = np.zeros((len(inputs), len(MATCH_NAMES)), dtype=np.float64)
    model.eval()
    with torch.inference_mode():
        for batch in token_batches(inputs.lengths, max_items=64, max_tokens=max_tokens):
            windows = batch_windows([inputs.items[i] for i in batch], pad=tokenizer.pad_id)
            out[batch] = model.parts(windows)[1].double().numpy()
    return out


def _set(layer: nn.Linear, weights: Array, bias: float) -> None:
    layer.weight.copy_(torch.from_numpy(weights.astype(np.float32))[None])
    layer.bias.fill_(bias)


def _logit(p: float) -> float:
    p = min(max(p, 0.01), 0.99)
    return math.log(p / (1.0 - p))


def start_jointly(
    model: CrossEncoder, lexical: Array, matches: Array, targets: Array, *, use_lexical: bool, use_matching: bool
) -> None:
    """Standardise both units' inputs on the training part and start the logit as their joint logistic fit.

    ``targets`` are the (n, 4) ordinal targets; the fit is to their mean, the expected score rescaled to [0, 1].
    The cut points start where the training part's share above each score sits against that mean (all at
    zero for right/wrong labels, spread out for a teacher that grades on the whole scale). A unit that is not
    used is zero and frozen (the matching unit's projection with it); with neither, the pooled head's bias
    starts at the mean score.
    """
    y = targets.mean(axis=1) if len(targets) else np.zeros(0)
    f_means, f_scales = standardise(lexical)
    m_means, m_scales = standardise(matches)
    columns = []
    if use_lexical:
        columns.append((lexical - f_means) / f_scales)
    if use_matching:
        columns.append((matches - m_means) / m_scales)
    with torch.no_grad():
        model.feature_means.copy_(torch.from_numpy(f_means.astype(np.float32)))
        model.feature_scales.copy_(torch.from_numpy(f_scales.astype(np.float32)))
        model.match_means.copy_(torch.from_numpy(m_means.astype(np.float32)))
        model.match_scales.copy_(torch.from_numpy(m_scales.astype(np.float32)))
        for layer in (model.head, model.lexical, model.matching):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)
        if len(targets):
            overall = _logit(float(y.mean()))
            model.cuts.copy_(torch.tensor([overall - _logit(float(t)) for t in targets.mean(axis=0)]))
        else:
            nn.init.zeros_(model.cuts)
        if columns:
            weights, bias = fit_logistic(np.hstack(columns), y)
            n_lexical = lexical.shape[1] if use_lexical else 0
            if use_lexical:
                _set(model.lexical, weights[:n_lexical], bias)
            if use_matching:
                _set(model.matching, weights[n_lexical:], 0.0 if use_lexical else bias)
        else:
            mean = float(np.clip(y.mean(), 0.02, 0.98)) if len(y) else 0.5
            model.head.bias.fill_(math.log(mean / (1.0 - mean)))
    if not use_lexical:
        model.lexical.requires_grad_(False)
    if not use_matching:
        model.matching.requires_grad_(False)
        model.project.requires_grad_(False)
