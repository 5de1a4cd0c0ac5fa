"""The MiniLM student's network and its inputs: a cross-encoder over the texts plus a unit over lexical features.

``z = head(mean-pooled encoder output) + lexical(standardised features)``, the score ``1 + 4 sigmoid(z)``. The
lexical unit reads the numpy student's features (`judgeflow.providers.local.lexical`) and starts as a logistic
regression fitted to the teacher, the encoder's head at zero, so fine-tuning begins at a strong lexical judge
and the encoder learns what the surface features miss: a few thousand examples are too few for a
cross-encoder to relearn string matching from scratch.

The encoder reads ``[CLS] question [SEP] reference [SEP] answer [SEP]``. Of a reference that lists
alternatives ("A/B/C"), it reads only the one the answer matches best by 3-gram recall (`reference_text`); the
lexical unit has compared the answer with all of them. A list of twenty spellings would otherwise take the
encoder's token budget (inputs are cut to ``max_length`` tokens, longest piece first) and its attention, and on
EVOUNA (bench/evouna.py, dev answers) the encoder adds to the lexical unit this way and not with the whole list.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from judgeflow.protocol.messages import JudgeInput
from judgeflow.providers.local.lexical import FEATURE_NAMES, features_and_best
from judgeflow.providers.local.matching import split_aliases

from .encoder import EncoderConfig, MiniLMEncoder, PairTokenizer, mean_pool

__all__ = ["CrossEncoder", "Inputs", "encode_inputs", "reference_text", "start_from_lexical", "to_score"]

Array = npt.NDArray[np.float64]
Rows = list[tuple[list[int], list[int]]]


class CrossEncoder(nn.Module):
    """MiniLM over the three texts plus a logistic unit over lexical features: one logit ``z`` per item."""

    feature_means: torch.Tensor
    feature_scales: torch.Tensor

    def __init__(self, config: EncoderConfig, *, encoder: MiniLMEncoder | None = None) -> None:
        super().__init__()
        self.encoder = encoder if encoder is not None else MiniLMEncoder(config)
        self.dropout = nn.Dropout(config.dropout)
        self.head = nn.Linear(config.hidden, 1)
        self.lexical = nn.Linear(len(FEATURE_NAMES), 1)
        self.register_buffer("feature_means", torch.zeros(len(FEATURE_NAMES)))
        self.register_buffer("feature_scales", torch.ones(len(FEATURE_NAMES)))

    def forward(
        self, ids: torch.Tensor, types: torch.Tensor, mask: torch.Tensor, lexical: torch.Tensor
    ) -> torch.Tensor:
        pooled = mean_pool(self.encoder(ids, types, mask), mask)
        z = (lexical - self.feature_means) / self.feature_scales
        logits: torch.Tensor = (self.head(self.dropout(pooled)) + self.lexical(z.to(pooled.dtype))).squeeze(-1)
        return logits


def reference_text(reference: str, best: int) -> str:
    """The ``best`` alternative of a reference that lists several ("A/B/C"); any other reference as it is."""
    alternatives = split_aliases(reference)
    if len(alternatives) < 2 or not 0 <= best < len(alternatives):
        return reference
    return alternatives[best]


class Inputs:
    """A batch ready for the network: token rows (ids, types) and the lexical features."""

    def __init__(self, rows: Rows, lexical: torch.Tensor) -> None:
        self.rows = rows
        self.lexical = lexical

    def __len__(self) -> int:
        return len(self.rows)


def encode_inputs(tokenizer: PairTokenizer, items: Sequence[JudgeInput]) -> Inputs:
    """Tokenise each item (with its reference's best alternative) and compute its lexical features."""
    x, best = features_and_best(items)
    rows = [
        tokenizer.triple(item.question, reference_text(item.reference, int(k)), item.answer)
        for item, k in zip(items, best.tolist(), strict=True)
    ]
    return Inputs(rows, torch.from_numpy(x.astype(np.float32)))


def _fit_logistic(x: Array, y: Array, *, l2: float = 1.0, iterations: int = 30) -> tuple[Array, float]:
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


def start_from_lexical(model: CrossEncoder, x: Array, y: Array, *, use: bool) -> None:
    """Standardise the lexical features on the training part and start the logit as their logistic fit.

    The encoder's head starts at zero, so the first predictions are the lexical judge's. Without ``use`` the
    lexical unit is zero and frozen, and the head's bias starts at the mean score.
    """
    means = x.mean(axis=0) if len(x) else np.zeros(x.shape[1])
    scales = x.std(axis=0) if len(x) else np.ones(x.shape[1])
    scales = np.where(scales > 1e-9, scales, 1.0)  # a constant feature carries nothing: leave it unscaled
    with torch.no_grad():
        model.feature_means.copy_(torch.from_numpy(means.astype(np.float32)))
        model.feature_scales.copy_(torch.from_numpy(scales.astype(np.float32)))
        nn.init.zeros_(model.head.weight)
        nn.init.zeros_(model.head.bias)
        nn.init.zeros_(model.lexical.weight)
        nn.init.zeros_(model.lexical.bias)
        if use:
            weights, bias = _fit_logistic((x - means) / scales, y)
            model.lexical.weight.copy_(torch.from_numpy(weights.astype(np.float32))[None])
            model.lexical.bias.fill_(bias)
        else:
            mean = float(np.clip(y.mean(), 0.02, 0.98)) if len(y) else 0.5
            model.head.bias.fill_(math.log(mean / (1.0 - mean)))
            model.lexical.requires_grad_(False)


def to_score(logits: torch.Tensor) -> Array:
    """``1 + 4 sigmoid(z)``, as float64."""
    scores: Array = (1.0 + 4.0 * torch.sigmoid(logits.float())).double().numpy()
    return scores
