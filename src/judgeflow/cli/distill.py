"""``judgeflow distill``: train a local student from a teacher's judgements, with progress on stderr."""

from __future__ import annotations

import argparse
import math
import sys
import time
from typing import TYPE_CHECKING

from judgeflow.cli.errors import fail

if TYPE_CHECKING:
    from judgeflow.providers.neural import TrainingProgress

__all__ = ["distill_command"]


def distill_command(args: argparse.Namespace) -> int:
    from judgeflow.flows.distill import MiniLMOptions, distill
    from judgeflow.inputs.errors import InputError
    from judgeflow.inputs.examples import read_examples

    for name in ("epochs", "threads", "layers"):
        if getattr(args, name) < 1:
            return fail(f"--{name} must be >= 1, got {getattr(args, name)}")
    if args.max_tokens is not None and args.max_tokens < 16:
        return fail(f"--max-tokens must be >= 16, got {args.max_tokens}")
    try:
        source = read_examples(args.judgements, answers=args.answers, teacher=args.teacher)
    except InputError as error:
        return fail(error)
    who = f" by {source.teacher!r}" if source.teacher else ""
    skipped = f" ({source.skipped} not ok, skipped)" if source.skipped else ""
    print(f"judgeflow: {len(source.examples)} examples{who} from {source.path}{skipped}", file=sys.stderr)
    started = time.perf_counter()
    last = -math.inf

    def progress(update: TrainingProgress) -> None:
        nonlocal last
        now = time.monotonic()
        if update.val_loss is not None or now - last >= 5.0:
            last = now
            print(f"judgeflow: {update.describe()}", file=sys.stderr)

    try:
        options = MiniLMOptions(
            epochs=args.epochs, seed=args.seed, layers=args.layers, threads=args.threads, max_tokens=args.max_tokens
        )
        detail = distill(source.examples, student=args.student, out=args.out, minilm=options, on_progress=progress)
    except ImportError as error:
        return fail(error)
    except ValueError as error:
        return fail(f"{args.student}: {error}")
    elapsed = time.perf_counter() - started
    print(f"Trained a {args.student} student ({detail}) in {elapsed:.1f} s; saved to {args.out}")
    print(f"Judge with: judgeflow judge ITEMS.jsonl --out OUT.jsonl --judge local:{args.out}")
    return 0
