"""Distil a local student from any teacher's judgements, offline: what ``judgeflow distill`` runs.

    judgeflow distill JUDGEMENTS.jsonl --student minilm|numpy --out MODEL_DIR [--epochs N] [--seed S] [--max-tokens N]
    judgeflow judge ITEMS.jsonl --out OUT.jsonl --judge local:MODEL_DIR

The examples come from `judgeflow.inputs.examples.read_examples`. ``numpy`` fits the linear student in a moment
(logistic regression when the scores are right/wrong labels, 1 and 5 only; ridge regression on graded scores);
``minilm`` fine-tunes MiniLM (needs the local extra: ``pip install 'judgeflow[local]'``; torch is imported only
then), learning the teacher's probabilities of 1..5 where the examples carry them. Either folder loads with
``--judge local:MODEL_DIR``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from judgeflow.protocol.messages import TrainingExample

if TYPE_CHECKING:
    from judgeflow.providers.neural import TrainingProgress

__all__ = ["MiniLMOptions", "distill"]

StudentKind = Literal["numpy", "minilm"]


@dataclass(frozen=True, slots=True)
class MiniLMOptions:
    """How the MiniLM student is trained: most epochs, seed, encoder layers kept (1-6), torch threads, and the word
    pieces it reads per item (None: the student's default, `judgeflow.providers.neural.settings.DEFAULT_MAX_TOKENS`)."""

    epochs: int = 3
    seed: int = 0
    layers: int = 3
    threads: int = 1
    max_tokens: int | None = None

    def __post_init__(self) -> None:
        for name in ("epochs", "layers", "threads"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.layers > 6:
            raise ValueError(f"layers must be from 1 to 6, got {self.layers}")
        if self.max_tokens is not None and self.max_tokens < 16:
            raise ValueError(f"max_tokens must be >= 16, got {self.max_tokens}")


def distill(
    examples: Sequence[TrainingExample],
    *,
    student: StudentKind,
    out: Path,
    minilm: MiniLMOptions | None = None,
    on_progress: Callable[[TrainingProgress], None] | None = None,
) -> str:
    """Train a ``student`` on ``examples`` and save it to ``out``; returns one line saying what was trained.

    Raises `ImportError` when the MiniLM student's extra is missing, `ValueError` for settings it cannot use.
    """
    if student == "numpy":
        from judgeflow.providers.local import fit_student

        fitted = fit_student(examples, name="student_distilled")
        fitted.save(out)
        return f"{'logistic' if fitted.link == 'logistic' else 'ridge'} regression on lexical features"
    from judgeflow.providers.neural import MiniLMSettings, train_minilm_student

    options = minilm or MiniLMOptions()
    settings = MiniLMSettings(epochs=options.epochs, seed=options.seed, layers=options.layers, threads=options.threads)
    if options.max_tokens is not None:
        settings = dataclasses.replace(settings, max_tokens=options.max_tokens)
    trained = train_minilm_student(examples, settings=settings, name="student_distilled", on_progress=on_progress)
    trained.save(out)
    info = trained.info
    validation = info.get("best_val_loss")
    checked = (
        f"validation loss {validation:.4f} on {info['n_validation']} held-out examples"
        if isinstance(validation, float)
        else "no validation split (too few examples)"
    )
    return (
        f"MiniLM cross-encoder, {settings.layers} layers, up to {settings.max_tokens} word pieces per item, "
        f"{info['epochs_run']} epoch(s), {checked}"
    )
