"""The MiniLM student's network: a cross-encoder over the item's windows, a token-matching unit and a lexical unit.

One logit ``z`` per item is the sum of three parts, trained together:

- ``head``: the encoder's mean-pooled output, averaged over the item's windows (`windows`), through a linear
  layer: what the encoder reads in the whole item (a reasoning step that does not follow, a hedge);
- ``matching``: late interaction between the reference's and the answer's tokens. Each token vector is projected
  (a learned linear map that starts as the identity) and normalised; for every reference token its best cosine
  with any answer token of the same item, over all the item's windows. Their mean (how much of the reference the
  answer says), their minimum (the reference token the answer misses most), the answer tokens' mean best
  cosine with the reference, and the mean best cosine of the reference's last three tokens with the answer's
  last eight (a worked answer ends with its result, as the reference does: "A: 18", "The answer is yes") are
  four numbers, standardised, through a linear layer. Because the vectors come
  from the cross-encoder, they are contextual: a name or a number the answer repeats matches, one it swaps or
  negates can stop matching once fine-tuned. Without any training this recall alone separates EVOUNA's right
  and wrong answers with an AUC of 0.95 (bench/evouna.py dev answers);
- ``lexical``: the numpy student's features (`judgeflow.providers.local.lexical`), standardised, through a
  linear layer. Training may zero them for a share of the examples (``lexical_dropout``) so the encoder's parts
  learn to judge on their own.

The score is ordinal: ``1 + sum_k sigmoid(z - t_k)`` over four cut points ``t_1..t_4`` (between the scores 1..5),
so the student holds a distribution over 1..5, ``P(score > k) = sigmoid(z - t_k)``, which a teacher's
probabilities (logprobs scoring) can train directly (`training`). With the cut points at zero this is
``1 + 4 sigmoid(z)``.

Of a reference that lists alternatives ("A/B/C") the encoder reads only the one the answer matches best by
3-gram recall (`reference_text`); the lexical unit compares the answer with all of them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F
from torch import nn

from judgeflow.protocol.messages import JudgeInput
from judgeflow.providers.local.lexical import FEATURE_NAMES, features_and_best
from judgeflow.providers.local.matching import split_aliases

from .encoder import EncoderConfig, MiniLMEncoder, PairTokenizer, mean_pool
from .windows import ItemTokens, WindowBatch, split_windows

__all__ = [
    "MATCH_NAMES",
    "N_CUTS",
    "CrossEncoder",
    "Inputs",
    "distribution_mean",
    "encode_inputs",
    "reference_text",
    "to_distribution",
]

Array = npt.NDArray[np.float64]
MATCH_NAMES = ("reference_recall", "reference_min", "answer_precision", "tail_recall")
N_CUTS = 4  # cut points between the scores 1..5


class CrossEncoder(nn.Module):
    """MiniLM over an item's windows plus the matching and lexical units: one logit ``z`` per item."""

    feature_means: torch.Tensor
    feature_scales: torch.Tensor
    match_means: torch.Tensor
    match_scales: torch.Tensor

    def __init__(self, config: EncoderConfig, *, encoder: MiniLMEncoder | None = None) -> None:
        super().__init__()
        self.encoder = encoder if encoder is not None else MiniLMEncoder(config)
        self.dropout = nn.Dropout(config.dropout)
        self.head = nn.Linear(config.hidden, 1)
        self.project = nn.Linear(config.hidden, config.hidden)
        self.matching = nn.Linear(len(MATCH_NAMES), 1)
        self.lexical = nn.Linear(len(FEATURE_NAMES), 1)
        self.cuts = nn.Parameter(torch.zeros(N_CUTS))
        self.register_buffer("feature_means", torch.zeros(len(FEATURE_NAMES)))
        self.register_buffer("feature_scales", torch.ones(len(FEATURE_NAMES)))
        self.register_buffer("match_means", torch.zeros(len(MATCH_NAMES)))
        self.register_buffer("match_scales", torch.ones(len(MATCH_NAMES)))
        with torch.no_grad():
            self.project.weight.copy_(torch.eye(config.hidden))
            nn.init.zeros_(self.project.bias)

    def parts(self, batch: WindowBatch) -> tuple[torch.Tensor, torch.Tensor]:
        """Each item's pooled vector (n, hidden) and raw matching features (n, 4), from one encoder pass."""
        states = self.encoder(batch.ids, batch.types, batch.mask)
        pooled = mean_pool(states, batch.mask)
        n = batch.n_items
        if len(batch.owner) == n:  # one window per item: nothing to average
            vectors = pooled
        else:
            vectors = torch.zeros(n, pooled.shape[1], dtype=pooled.dtype).index_add_(0, batch.owner, pooled)
            counts = torch.bincount(batch.owner, minlength=n).clamp(min=1).to(pooled.dtype)
            vectors = vectors / counts[:, None]
        flat = states.reshape(-1, states.shape[-1])
        dtype = self.project.weight.dtype
        reference = F.normalize(self.project(flat[batch.reference_at].to(dtype)).float(), dim=-1)
        answer = F.normalize(self.project(flat[batch.answer_at].to(dtype)).float(), dim=-1)
        cosines = torch.bmm(reference, answer.transpose(1, 2))  # (n, reference tokens, answer tokens)
        r_mask, a_mask = batch.reference_mask, batch.answer_mask
        best_for_reference = cosines.masked_fill(~a_mask[:, None, :], -2.0).amax(dim=2)
        best_for_answer = cosines.masked_fill(~r_mask[:, :, None], -2.0).amax(dim=1)
        r_count = r_mask.sum(dim=1).clamp(min=1)
        a_count = a_mask.sum(dim=1).clamp(min=1)
        recall = (best_for_reference * r_mask).sum(dim=1) / r_count
        lowest = best_for_reference.masked_fill(~r_mask, 2.0).amin(dim=1)
        precision = (best_for_answer * a_mask).sum(dim=1) / a_count
        r_tail, a_tail = batch.reference_tail, batch.answer_tail
        best_in_tail = cosines.masked_fill(~a_tail[:, None, :], -2.0).amax(dim=2)
        tail = (best_in_tail * r_tail).sum(dim=1) / r_tail.sum(dim=1).clamp(min=1)
        # An item without reference or answer tokens has nothing to match: its features are zero.
        both = r_mask.any(dim=1) & a_mask.any(dim=1)
        matches = torch.stack([recall, lowest, precision, tail], dim=1) * both[:, None]
        return vectors, matches

    def forward(
        self, batch: WindowBatch, lexical: torch.Tensor, keep_lexical: torch.Tensor | None = None
    ) -> torch.Tensor:
        vectors, matches = self.parts(batch)
        m = (matches - self.match_means) / self.match_scales
        x = (lexical - self.feature_means) / self.feature_scales
        if keep_lexical is not None:
            x = x * keep_lexical[:, None]  # a dropped example's features sit at their training mean
        dtype = self.head.weight.dtype
        z = self.head(self.dropout(vectors.to(dtype))) + self.matching(m.to(dtype)) + self.lexical(x.to(dtype))
        logits: torch.Tensor = z.float().squeeze(-1)
        return logits

    def cumulative(self, logits: torch.Tensor) -> torch.Tensor:
        """``P(score > k)`` for k = 1..4, as logits: (n, 4)."""
        return logits.float()[:, None] - self.cuts.float()[None, :]


def reference_text(reference: str, best: int) -> str:
    """The ``best`` alternative of a reference that lists several ("A/B/C"); any other reference as it is."""
    alternatives = split_aliases(reference)
    if len(alternatives) < 2 or not 0 <= best < len(alternatives):
        return reference
    return alternatives[best]


class Inputs:
    """A batch ready for the network: each item's windows and the lexical features."""

    def __init__(self, items: list[ItemTokens], lexical: torch.Tensor) -> None:
        self.items = items
        self.lexical = lexical

    def __len__(self) -> int:
        return len(self.items)

    @property
    def lengths(self) -> list[int]:
        return [item.n_tokens for item in self.items]


def encode_inputs(tokenizer: PairTokenizer, items: Sequence[JudgeInput], *, window: int, max_tokens: int) -> Inputs:
    """Tokenise each item (with its reference's best alternative) into windows; compute its lexical features."""
    x, best = features_and_best(items)
    tokens = [
        split_windows(
            tokenizer.pieces(item.question),
            tokenizer.pieces(reference_text(item.reference, int(k))),
            tokenizer.pieces(item.answer),
            cls=tokenizer.cls_id,
            sep=tokenizer.sep_id,
            window=window,
            max_tokens=max_tokens,
        )
        for item, k in zip(items, best.tolist(), strict=True)
    ]
    return Inputs(tokens, torch.from_numpy(x.astype(np.float32)))


def to_distribution(logits: torch.Tensor, cuts: torch.Tensor) -> Array:
    """The probabilities of the scores 1..5 from ``P(score > k) = sigmoid(z - t_k)``, as float64 (n, 5).

    Cut points that are out of order (a teacher that never gives 2, say) would make a difference negative:
    the cumulative probabilities are made non-increasing first, so every probability is >= 0.
    """
    above = torch.sigmoid(logits.double()[:, None] - cuts.detach().double()[None, :]).numpy()
    above = np.minimum.accumulate(above, axis=1)
    ones = np.ones((len(above), 1))
    zeros = np.zeros((len(above), 1))
    cumulative = np.hstack([ones, above, zeros])  # P(score > 0) .. P(score > 5)
    probs: Array = cumulative[:, :-1] - cumulative[:, 1:]
    return probs


def distribution_mean(probs: Array) -> Array:
    """The expected score of each row of probabilities of 1..5."""
    scores: Array = probs @ np.arange(1.0, 6.0)
    return scores
