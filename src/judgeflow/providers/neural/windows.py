"""Windows over long items: how the MiniLM student reads a whole question, reference and answer.

MiniLM attends over at most 512 positions, and its cost per token grows with the input's length (attention is
quadratic): on one core, inputs of up to 256 tokens run at about the same speed per token, 512-token inputs
at two thirds of it. So an item that does not fit one ``window`` (256 tokens by default) is read as several
windows, each ``[CLS] question part [SEP] reference part [SEP] answer part [SEP]``:

- a piece of at most a quarter of the window (a short question, a one-line reference, "yes") is repeated whole
  in every window, so every part of a long answer is read against it;
- longer pieces are cut into as many consecutive parts as there are windows, the k-th window taking the k-th
  part of each, so the start of a worked answer is read with the start of the worked reference and its end
  (where the final answer is) with the reference's end.

Everything beyond ``max_tokens`` word pieces per item (question, reference and answer together) is left out:
the longest piece is shortened first, keeping its beginning and its end. Each token carries a role (question,
reference, answer, or a special token) so that the network can compare the reference's tokens with the
answer's across all of an item's windows (`model.CrossEncoder`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import torch

__all__ = [
    "ANSWER",
    "QUESTION",
    "REFERENCE",
    "SPECIAL",
    "ItemTokens",
    "Window",
    "WindowBatch",
    "batch_windows",
    "fit_lengths",
    "keep_ends",
    "split_windows",
]

SPECIAL, QUESTION, REFERENCE, ANSWER = 0, 1, 2, 3
# The ends that state a conclusion: the reference's last tokens ("A: 18", "yes") and the answer's last ones.
REFERENCE_TAIL, ANSWER_TAIL = 3, 8
Ids = list[int]


@dataclass(frozen=True, slots=True)
class Window:
    """One encoder input: token ids, BERT token types (the answer is segment 1) and each token's role."""

    ids: Ids
    types: Ids
    roles: Ids

    def __len__(self) -> int:
        return len(self.ids)


@dataclass(frozen=True, slots=True)
class ItemTokens:
    """The windows of one item."""

    windows: tuple[Window, ...]

    @property
    def n_tokens(self) -> int:
        return sum(len(w) for w in self.windows)


def fit_lengths(lengths: Sequence[int], budget: int) -> list[int]:
    """Trim the longest pieces first until they fit ``budget``: the largest cap ``c`` with sum(min(n, c)) <= it,
    and what the cap leaves unused handed out one token each to the pieces that were cut, in order."""
    if sum(lengths) <= budget:
        return list(lengths)
    low, high = 0, max(lengths)
    while low < high:  # the largest cap that fits
        middle = (low + high + 1) // 2
        if sum(min(n, middle) for n in lengths) <= budget:
            low = middle
        else:
            high = middle - 1
    kept = [min(n, low) for n in lengths]
    spare = budget - sum(kept)
    for i, n in enumerate(lengths):
        if spare and n > kept[i]:
            kept[i] += 1
            spare -= 1
    return kept


def keep_ends(pieces: Ids, n: int) -> Ids:
    """``n`` tokens of ``pieces``: its first half and its last (a final answer sits at the end of a long text)."""
    if n >= len(pieces):
        return list(pieces)
    if n <= 0:
        return []
    head = (n + 1) // 2
    return [*pieces[:head], *pieces[len(pieces) - (n - head) :]]


def _parts(pieces: Ids, n: int) -> list[Ids]:
    """``pieces`` cut into ``n`` consecutive parts of nearly equal length."""
    bounds = [round(len(pieces) * k / n) for k in range(n + 1)]
    return [pieces[bounds[k] : bounds[k + 1]] for k in range(n)]


def split_windows(
    question: Ids, reference: Ids, answer: Ids, *, cls: int, sep: int, window: int, max_tokens: int
) -> ItemTokens:
    """The windows of one item (word-piece ids without special tokens); see the module doc."""
    if window < 16:
        raise ValueError(f"window must be at least 16 tokens, got {window}")
    texts = [question, reference, answer]
    budget = window - 4
    kept = fit_lengths([len(t) for t in texts], max(3, max_tokens))
    texts = [keep_ends(t, k) for t, k in zip(texts, kept, strict=True)]
    total = sum(len(t) for t in texts)
    if total <= budget:
        count = 1
        short = [True, True, True]
    else:
        short = [len(t) <= budget // 4 for t in texts]
        fixed = sum(len(t) for t, s in zip(texts, short, strict=True) if s)
        rest = total - fixed
        count = max(1, math.ceil(rest / (budget - fixed)))
        # Rounding may put a token or two too many in a window: add windows until each fits.
        while max(fixed + sum(len(p[k]) for p in _long_parts(texts, short, count)) for k in range(count)) > budget:
            count += 1
    parts = [[t] * count if s else _parts(t, count) for t, s in zip(texts, short, strict=True)]
    windows = []
    for k in range(count):
        q, r, a = parts[0][k], parts[1][k], parts[2][k]
        first = [cls, *q, sep, *r, sep]
        second = [*a, sep]
        roles = [SPECIAL, *[QUESTION] * len(q), SPECIAL, *[REFERENCE] * len(r), SPECIAL, *[ANSWER] * len(a), SPECIAL]
        windows.append(Window(first + second, [0] * len(first) + [1] * len(second), roles))
    return ItemTokens(tuple(windows))


def _long_parts(texts: Sequence[Ids], short: Sequence[bool], count: int) -> list[list[Ids]]:
    return [_parts(t, count) for t, s in zip(texts, short, strict=True) if not s]


Index = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class WindowBatch:
    """Padded windows of some items, with what the network needs to put each item back together.

    ``owner[w]`` is the item (0..n-1) of window ``w``. ``reference_at`` / ``answer_at`` index the flattened
    (window, position) grid: row ``i`` lists item ``i``'s reference (answer) tokens over all its windows,
    padded with 0 where ``reference_mask`` / ``answer_mask`` is False; ``reference_tail`` / ``answer_tail`` mark the
    last `REFERENCE_TAIL` / `ANSWER_TAIL` of them (in the last window that holds them).
    """

    ids: torch.Tensor
    types: torch.Tensor
    mask: torch.Tensor
    owner: torch.Tensor
    n_items: int
    reference_at: torch.Tensor
    reference_mask: torch.Tensor
    answer_at: torch.Tensor
    answer_mask: torch.Tensor
    reference_tail: torch.Tensor
    answer_tail: torch.Tensor

    def __len__(self) -> int:
        return self.n_items


def _gather(rows: list[Index], tails: list[Index]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    width = max(1, max((len(r) for r in rows), default=1))
    at: Index = np.zeros((len(rows), width), dtype=np.int64)
    mask = np.zeros((len(rows), width), dtype=np.bool_)
    last = np.zeros((len(rows), width), dtype=np.bool_)
    for i, (row, tail) in enumerate(zip(rows, tails, strict=True)):
        at[i, : len(row)] = row
        mask[i, : len(row)] = True
        last[i, : len(row)] = np.isin(row, tail)
    return torch.from_numpy(at), torch.from_numpy(mask), torch.from_numpy(last)


def _tail(positions: list[Index], n: int) -> Index:
    """The last ``n`` positions of the last window that has any."""
    for found in reversed(positions):
        if len(found):
            return found[-n:]
    return np.zeros(0, dtype=np.int64)


def batch_windows(items: Sequence[ItemTokens], *, pad: int) -> WindowBatch:
    """The windows of ``items`` padded to the longest one."""
    windows = [w for item in items for w in item.windows]
    width = max((len(w) for w in windows), default=1)
    ids: Index = np.full((len(windows), width), pad, dtype=np.int64)
    types: Index = np.zeros((len(windows), width), dtype=np.int64)
    mask: Index = np.zeros((len(windows), width), dtype=np.int64)
    roles: Index = np.zeros((len(windows), width), dtype=np.int64)
    owner: Index = np.zeros(len(windows), dtype=np.int64)
    references: list[Index] = []
    answers: list[Index] = []
    reference_tails: list[Index] = []
    answer_tails: list[Index] = []
    row = 0
    for i, item in enumerate(items):
        found: list[Index] = []
        said: list[Index] = []
        for w in item.windows:
            n = len(w)
            ids[row, :n], types[row, :n], roles[row, :n] = w.ids, w.types, w.roles
            mask[row, :n] = 1
            owner[row] = i
            found.append(row * width + np.flatnonzero(roles[row] == REFERENCE))
            said.append(row * width + np.flatnonzero(roles[row] == ANSWER))
            row += 1
        references.append(np.concatenate(found) if found else np.zeros(0, dtype=np.int64))
        answers.append(np.concatenate(said) if said else np.zeros(0, dtype=np.int64))
        reference_tails.append(_tail(found, REFERENCE_TAIL))
        answer_tails.append(_tail(said, ANSWER_TAIL))
    reference_at, reference_mask, reference_tail = _gather(references, reference_tails)
    answer_at, answer_mask, answer_tail = _gather(answers, answer_tails)
    return WindowBatch(
        torch.from_numpy(ids),
        torch.from_numpy(types),
        torch.from_numpy(mask),
        torch.from_numpy(owner),
        len(items),
        reference_at,
        reference_mask,
        answer_at,
        answer_mask,
        reference_tail,
        answer_tail,
    )
