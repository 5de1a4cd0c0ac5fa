"""The deterministic train/held-out split, decided per question by a seeded hash.

Each question id is hashed together with the seed into a number in [0, 1); the question is a training item when
that number is below the training fraction. The decision depends on nothing but (seed, id, fraction), so it is
the same in every run, in any order, in a resumed run and in a streaming run that never sees the whole set,
and a held-out question can never drift into training. The price is that the realised fraction varies a little
around the target on small sets; the report states the actual counts.
"""

from __future__ import annotations

import hashlib

from judgeflow.protocol.messages import Split

__all__ = ["assign_split", "split_point"]


def split_point(item_id: str, *, seed: int) -> float:
    """A number in [0, 1) that is uniform over ids and fixed for a given (seed, id)."""
    digest = hashlib.blake2b(f"{seed}\x00{item_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def assign_split(item_id: str, *, seed: int, train_fraction: float) -> Split:
    """``"train"`` or ``"test"`` for ``item_id``; ``train_fraction`` must be in [0, 1]."""
    if not 0.0 <= train_fraction <= 1.0:
        raise ValueError(f"train_fraction must be in [0, 1], got {train_fraction}")
    return "train" if split_point(item_id, seed=seed) < train_fraction else "test"
