"""Training the MiniLM student the same way in every judge-quality benchmark (evouna.py, roscoe.py).

`add_minilm_arguments` adds the training settings to a benchmark's command line and `train_minilm` trains with
them (overrides for the ablations); `teacher_examples` reads an LLM teacher's judgements (made by
bench/teacher.py, with its probabilities of the scores 1..5) through judgeflow's own distill reader.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from judgeflow.inputs.examples import read_examples
from judgeflow.protocol.messages import TrainingExample

if TYPE_CHECKING:
    from judgeflow.providers.neural import MiniLMStudentJudge

__all__ = ["ABLATIONS", "add_minilm_arguments", "rounded", "teacher_examples", "teacher_name", "train_minilm"]

# The ablation rows (``--ablation NAME``): what each trains without.
ABLATIONS: dict[str, tuple[str, dict[str, Any]]] = {
    "encoder": ("encoder only (no lexical unit)", {"lexical": False}),
    "pooled": ("encoder only, pooled head alone (no lexical, no matching unit)", {"lexical": False, "matching": False}),
    "no-augment": ("no constructed examples", {"augment": 0.0}),
    "no-matching": ("no matching unit", {"matching": False}),
}


def add_minilm_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = _defaults()
    group = parser.add_argument_group("MiniLM student")
    group.add_argument("--epochs", type=int, default=defaults["epochs"], help="most epochs (early stopping)")
    group.add_argument("--layers", type=int, default=defaults["layers"], help="encoder layers kept (of 6)")
    group.add_argument("--max-tokens", type=int, default=defaults["max_tokens"], help="word pieces read per item")
    group.add_argument("--window", type=int, default=defaults["window"], help="tokens per encoder window")
    group.add_argument("--patience", type=int, default=defaults["patience"], help="epochs without improvement")
    group.add_argument("--lr", type=float, default=defaults["learning_rate"], help="encoder learning rate")
    group.add_argument("--head-lr", type=float, default=defaults["head_learning_rate"], help="heads' learning rate")
    group.add_argument("--lexical-lr", type=float, default=None, help="lexical unit's learning rate")
    group.add_argument("--lexical-dropout", type=float, default=defaults["lexical_dropout"])
    group.add_argument("--augment", type=float, default=defaults["augment"], help="constructed examples per example")
    group.add_argument("--batch-size", type=int, default=defaults["batch_size"])
    group.add_argument("--no-matching", action="store_true", help="train without the matching unit")
    group.add_argument(
        "--ablation", action="append", default=[], choices=sorted(ABLATIONS), help="also train a student without ..."
    )
    group.add_argument("--train-threads", type=int, default=2, help="torch threads while training")
    group.add_argument(
        "--train-precision", choices=("float32", "bfloat16"), default="bfloat16", help="training (autocast)"
    )


def _defaults() -> dict[str, Any]:
    from judgeflow.providers.neural import MiniLMSettings

    return dataclasses.asdict(MiniLMSettings())


def train_minilm(
    examples: Sequence[TrainingExample], args: argparse.Namespace, **overrides: Any
) -> tuple[MiniLMStudentJudge, float, str]:
    """The student trained with the command line's settings (and ``overrides``), its training time and a note."""
    import torch

    from judgeflow.providers.neural import MiniLMSettings, train_minilm_student
    from judgeflow.providers.neural.runtime import resolve_precision

    chosen: dict[str, Any] = {
        "epochs": args.epochs,
        "layers": args.layers,
        "max_tokens": args.max_tokens,
        "window": args.window,
        "seed": args.seed,
        "threads": args.train_threads,
        "train_precision": args.train_precision,
        "patience": args.patience,
        "learning_rate": args.lr,
        "head_learning_rate": args.head_lr,
        "lexical_learning_rate": args.lexical_lr,
        "lexical_dropout": args.lexical_dropout,
        "augment": args.augment,
        "batch_size": args.batch_size,
        "matching": not args.no_matching,
    }
    settings = MiniLMSettings(**{**chosen, **overrides})
    started = time.perf_counter()
    student = train_minilm_student(
        examples,
        settings=settings,
        on_progress=lambda p: print(p.describe(), file=sys.stderr) if p.val_loss is not None else None,
    )
    seconds = time.perf_counter() - started
    torch.set_num_threads(1)
    info = student.info
    note = (
        f"{settings.layers} of MiniLM's 6 layers, up to {settings.max_tokens} word pieces per item in windows of "
        f"{settings.window} tokens, {info['n_constructed']} constructed examples, lexical dropout "
        f"{settings.lexical_dropout}, {info['epochs_run']} epoch(s) run (best: {info['best_epoch']}, by validation "
        f"loss on {info['n_validation']} answers to held-out training questions), trained in {seconds:.0f} s with "
        f"{settings.threads} torch threads in {settings.train_precision} (autocast); judged in "
        f"{resolve_precision('auto')} (the judge's default precision on this CPU)"
    )
    print(
        f"trained in {seconds:.1f} s: {json.dumps({k: v for k, v in info.items() if k != 'settings'})}", file=sys.stderr
    )
    return student, seconds, note


def teacher_examples(folder: Path) -> list[TrainingExample]:
    """A teacher's judgements (``judgements.jsonl`` + ``answers.jsonl``, as bench/teacher.py writes them)."""
    return read_examples(folder).examples


def rounded(examples: Sequence[TrainingExample]) -> list[TrainingExample]:
    """Hard targets: each example's score rounded to a whole score, its probabilities dropped."""
    return [dataclasses.replace(e, score=float(round(e.score)), probs=None) for e in examples]


def teacher_name(folder: Path) -> str:
    for line in (folder / "judgements.jsonl").read_text(encoding="utf-8").splitlines():
        model = json.loads(line).get("model")
        if isinstance(model, str):
            return model
    return "the teacher"
