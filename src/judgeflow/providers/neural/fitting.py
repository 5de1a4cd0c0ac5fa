"""The MiniLM student's optimisation loop: batches of similar length, AdamW with warm-up and linear decay, the
ordinal loss, lexical dropout, and early stopping on the validation loss (the best epoch's weights are kept)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt
import torch

from .encoder import PairTokenizer, token_batches
from .model import CrossEncoder, Inputs
from .settings import MiniLMSettings, TrainingProgress
from .targets import ordinal_loss
from .windows import WindowBatch, batch_windows

__all__ = ["Fit", "History"]

History = list[dict[str, float | int | None]]


def _bucketed(
    indices: npt.NDArray[np.intp], lengths: Sequence[int], batch_size: int, rng: np.random.Generator
) -> list[list[int]]:
    """One epoch's batches: shuffled, then sorted by length within pools of 50 batches, in shuffled order.

    Batches of similar lengths waste little on padding (about half the work with random batches here), and the
    pools and the final shuffle keep the order random enough for SGD.
    """
    order = rng.permutation(indices)
    pool = batch_size * 50
    batches: list[list[int]] = []
    for start in range(0, len(order), pool):
        chunk = sorted((int(i) for i in order[start : start + pool]), key=lambda i: lengths[i])
        batches += [chunk[j : j + batch_size] for j in range(0, len(chunk), batch_size)]
    return [batches[int(k)] for k in rng.permutation(len(batches))]


class Fit:
    """The optimisation loop over prepared inputs (kept apart from `train_minilm_student`'s preparation)."""

    def __init__(
        self,
        model: CrossEncoder,
        tokenizer: PairTokenizer,
        inputs: Inputs,
        targets: torch.Tensor,
        settings: MiniLMSettings,
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.inputs = inputs
        self.targets = targets
        self.settings = settings
        self.lengths = inputs.lengths

    def batch(self, indices: Sequence[int]) -> tuple[WindowBatch, torch.Tensor, torch.Tensor]:
        windows = batch_windows([self.inputs.items[i] for i in indices], pad=self.tokenizer.pad_id)
        return windows, self.inputs.lexical[list(indices)], self.targets[list(indices)]

    def validation_loss(self, val_idx: npt.NDArray[np.intp]) -> float:
        self.model.eval()
        total = 0.0
        with torch.inference_mode():
            for batch in token_batches([self.lengths[i] for i in val_idx], max_items=64, max_tokens=8192):
                windows, x, y = self.batch([int(val_idx[i]) for i in batch])
                logits = self.model(windows, x)
                total += float(ordinal_loss(self.model.cumulative(logits), y, reduction="sum"))
        return total / len(val_idx)

    def optimiser(self, steps: int) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
        settings, model = self.settings, self.model
        if settings.freeze_embeddings:
            # 30,522 x 384 word vectors are half of MiniLM's weights; a few thousand examples cannot improve
            # them, and their dense gradient and Adam state would cost a third of every step.
            model.encoder.word.weight.requires_grad_(False)
        lexical_rate = (
            settings.head_learning_rate if settings.lexical_learning_rate is None else settings.lexical_learning_rate
        )
        if not settings.lexical or lexical_rate == 0:
            model.lexical.requires_grad_(False)
        named = [(n, p) for n, p in model.encoder.named_parameters() if p.requires_grad]
        named += [(f"project.{n}", p) for n, p in model.project.named_parameters() if p.requires_grad]
        no_decay = [p for n, p in named if n.endswith("bias") or "norm" in n]
        decay = [p for n, p in named if not (n.endswith("bias") or "norm" in n)]
        heads = [*model.head.parameters(), *model.matching.parameters(), model.cuts]
        groups: list[dict[str, object]] = [
            {"params": decay, "weight_decay": settings.weight_decay, "lr": settings.learning_rate},
            {"params": no_decay, "weight_decay": 0.0, "lr": settings.learning_rate},
            {"params": [p for p in heads if p.requires_grad], "weight_decay": 0.0, "lr": settings.head_learning_rate},
            {
                "params": [p for p in model.lexical.parameters() if p.requires_grad],
                "weight_decay": 0.0,
                "lr": lexical_rate,
            },
        ]
        optimiser = torch.optim.AdamW([g for g in groups if g["params"]])
        warmup = max(1, int(settings.warmup * steps))

        def schedule(step: int) -> float:
            if step < warmup:
                return (step + 1) / warmup
            return max(0.0, (steps - step) / max(1, steps - warmup))

        return optimiser, torch.optim.lr_scheduler.LambdaLR(optimiser, schedule)

    def run(
        self,
        train_idx: npt.NDArray[np.intp],
        val_idx: npt.NDArray[np.intp],
        rng: np.random.Generator,
        on_progress: Callable[[TrainingProgress], None] | None,
    ) -> tuple[History, dict[str, torch.Tensor] | None, int, float, int]:
        settings, model = self.settings, self.model
        batches_per_epoch = len(_bucketed(train_idx, self.lengths, settings.batch_size, np.random.default_rng(0)))
        steps = batches_per_epoch * settings.epochs
        optimiser, scheduler = self.optimiser(steps)
        autocast = settings.train_precision == "bfloat16"
        best_loss = math.inf
        best_state: dict[str, torch.Tensor] | None = None
        best_epoch = stale = step = epochs_run = 0
        running = 0.0
        history: History = []
        for epoch in range(1, settings.epochs + 1):
            model.train()
            for batch in _bucketed(train_idx, self.lengths, settings.batch_size, rng):
                windows, x, y = self.batch(batch)
                keep = None
                if settings.lexical_dropout > 0:
                    keep = torch.from_numpy((rng.random(len(batch)) >= settings.lexical_dropout).astype(np.float32))
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
                    logits = model(windows, x, keep)
                loss = ordinal_loss(model.cumulative(logits), y)
                optimiser.zero_grad(set_to_none=True)
                loss.backward()  # type: ignore[no-untyped-call]
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                optimiser.step()
                scheduler.step()
                step += 1
                value = float(loss.detach())
                running = value if step == 1 else 0.9 * running + 0.1 * value
                if on_progress is not None:
                    on_progress(TrainingProgress(epoch, settings.epochs, step, steps, running))
            epochs_run = epoch
            val = self.validation_loss(val_idx) if len(val_idx) else None
            improved = val is not None and val < best_loss - 1e-4
            history.append({"epoch": epoch, "train_loss": round(running, 5), "val_loss": val})
            if on_progress is not None:
                on_progress(TrainingProgress(epoch, settings.epochs, step, steps, running, val, improved))
            if val is None:
                continue
            if improved:
                best_loss, best_epoch, stale = val, epoch, 0
                best_state = {key: value.detach().clone() for key, value in model.state_dict().items()}
            else:
                stale += 1
                if stale >= settings.patience:
                    break
        return history, best_state, best_epoch, best_loss, epochs_run
