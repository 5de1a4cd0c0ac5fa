"""The MiniLM student's training settings and the progress reports training sends (no torch needed to read)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

__all__ = ["DEFAULT_MAX_TOKENS", "MiniLMSettings", "TrainingProgress"]

Precision = Literal["float32", "bfloat16"]
_PRECISIONS = ("float32", "bfloat16")
# Word pieces of question, reference and answer read per item: about 1,100 words of English.
DEFAULT_MAX_TOKENS = 1536


@dataclass(frozen=True, slots=True)
class MiniLMSettings:
    """How a MiniLM student is trained (see the module doc; `bench/evouna.py` and `bench/roscoe.py` measure it).

    ``max_tokens``: word pieces of question, reference and answer read per item (beyond it the longest piece is
    shortened, keeping its start and end); ``window``: tokens per encoder input (longer items are read as several
    windows). ``soft_targets``: learn the teacher's probabilities where the examples carry them.
    """

    epochs: int = 3
    batch_size: int = 16
    learning_rate: float = 5e-5
    head_learning_rate: float = 2e-3
    lexical_learning_rate: float | None = None  # None: the head's
    weight_decay: float = 0.01
    warmup: float = 0.1
    validation_fraction: float = 0.1
    min_validation: int = 20
    patience: int = 1
    max_tokens: int = DEFAULT_MAX_TOKENS
    window: int = 256
    layers: int = 3
    dropout: float = 0.1
    freeze_embeddings: bool = True
    lexical: bool = True
    matching: bool = True
    lexical_dropout: float = 0.0
    augment: float = 0.0
    soft_targets: bool = True
    train_precision: Precision = "float32"
    seed: int = 0
    threads: int = 1

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "threads", "layers", "min_validation"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.patience < 1:
            raise ValueError(f"patience must be >= 1, got {self.patience}")
        if self.train_precision not in _PRECISIONS:
            raise ValueError(f"train_precision must be float32 or bfloat16, got {self.train_precision!r}")
        for name in ("learning_rate", "head_learning_rate", "lexical_learning_rate", "weight_decay", "dropout"):
            value = getattr(self, name)
            if value is None and name == "lexical_learning_rate":
                continue
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {value}")
        if not 0.0 <= self.warmup < 1.0:
            raise ValueError(f"warmup must be in [0, 1), got {self.warmup}")
        if not 0.0 <= self.validation_fraction < 1.0:
            raise ValueError(f"validation_fraction must be in [0, 1), got {self.validation_fraction}")
        if not 0.0 <= self.lexical_dropout <= 1.0:
            raise ValueError(f"lexical_dropout must be in [0, 1], got {self.lexical_dropout}")
        if not (math.isfinite(self.augment) and self.augment >= 0):
            raise ValueError(f"augment must be a number >= 0, got {self.augment}")
        if not 16 <= self.window <= 512:
            raise ValueError(f"window must be from 16 to 512 tokens, got {self.window}")
        if self.max_tokens < 16:
            raise ValueError(f"max_tokens must be >= 16, got {self.max_tokens}")


@dataclass(frozen=True, slots=True)
class TrainingProgress:
    """Where training is: after each optimiser step (``val_loss`` is None) and after each epoch's validation."""

    epoch: int
    epochs: int
    step: int
    steps: int
    train_loss: float
    val_loss: float | None = None
    improved: bool = False

    @property
    def fraction(self) -> float:
        return self.step / self.steps if self.steps else 1.0

    def describe(self) -> str:
        text = f"epoch {self.epoch}/{self.epochs}, step {self.step}/{self.steps}, loss {self.train_loss:.4f}"
        if self.val_loss is not None:
            text += f", validation loss {self.val_loss:.4f}" + (" (best so far)" if self.improved else "")
        return text
