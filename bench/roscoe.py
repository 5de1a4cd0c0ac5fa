"""How well do the local judges grade longer, step-by-step answers? Students trained and tested on ROSCOE.

    python bench/roscoe.py [--data ../shared/data/roscoe] [--split dev|test|both] [--folds 5] [--seed 0]
                           [--teacher DIR] [--speed-repeats N] [--record] [MiniLM settings]

ROSCOE (``roscoe_overall_normalized.jsonl``, see its README) has 756 expert grades, 1-5, of GPT-3-era
step-by-step answers to GSM8K, DROP, CosmosQA and e-SNLI questions: GSM8K items carry the full worked gold
solution as the reference, the others only "yes"/"no". Items are split by question, by a seeded hash: 30% are
the final test part (``--test-fraction``), judged once at the end (``--split test``). The other 70% are the dev
pool, and every design decision is made on it (``--split dev``) by ``--folds``-fold cross-validation by
question: each fold is judged by students trained on the other folds, and the metrics are computed over all
the pool's out-of-fold scores. For the test part the students are trained on the whole dev pool. Grades are the
teacher scores the students learn (the expert's 1-5).

Judges: the MiniLM student (`judgeflow.providers.neural`, with ``--ablation`` rows), the numpy student (ridge
regression on lexical features), the untrained local rubric teacher and token F1 (``1 + 4 F1``). With
``--teacher DIR`` (judgements of these items by an LLM that gave its probabilities of 1..5, as
bench/teacher.py writes them) two more MiniLM students learn that teacher instead of the experts, from its
probabilities (soft targets) and from its rounded score (hard targets); they are compared with the experts and
with the teacher itself.

Metrics: Pearson r with the expert grades, with its 95% bootstrap interval (1,000 resamples of the items),
Spearman's rho, Pearson within each source, the AUC of telling a good answer (grade >= 4) from the others, and
judgements per second on one core (one torch thread; the whole ``judge_batch`` path) with the CPU-time rate
beside it. ``--record`` writes the tables into bench/RESULTS.md under "Local students on ROSCOE". The data is
read from ``--data`` only; the package never needs it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt
from _judged import bootstrap, machine, paired_difference, parse_scores, pearson, record, roc_auc, spearman, timed
from _students import ABLATIONS, add_minilm_arguments, rounded, teacher_examples, teacher_name, train_minilm
from evouna import TokenF1Judge, teacher_batch

from judgeflow.protocol.messages import JudgeInput, JudgeReply, TrainingExample
from judgeflow.providers.local import LocalTeacherJudge, fit_student

ROOT = Path(__file__).resolve().parents[1]
SECTION = "## Local students on ROSCOE"
SUBSETS = ("gsm8k", "drop", "cosmos", "esnli")
Array = npt.NDArray[np.float64]
Judge = Callable[[Sequence[JudgeInput]], list[JudgeReply]]


@dataclass(frozen=True, slots=True)
class Graded:
    """One graded answer."""

    id: str
    subset: str
    question: str
    reference: str
    answer: str
    score: float

    @property
    def item(self) -> JudgeInput:
        return JudgeInput(question=self.question, reference=self.reference, answer=self.answer)

    def example(self, score: float | None = None, probs: tuple[float, ...] | None = None) -> TrainingExample:
        return TrainingExample(
            id=self.id,
            messages=(),
            question=self.question,
            reference=self.reference,
            answer=self.answer,
            score=self.score if score is None else score,
            probs=probs,
        )


def load_roscoe(folder: Path) -> list[Graded]:
    path = folder / "roscoe_overall_normalized.jsonl"
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as error:
        raise SystemExit(f"roscoe: cannot read {path} ({error.strerror}); pass --data") from None
    rows = []
    for line in lines:
        data = json.loads(line)
        rows.append(
            Graded(
                str(data["id"]),
                str(data["subset"]),
                str(data["question"]),
                str(data["reference"]),
                str(data["answer"]),
                float(data["score"]),
            )
        )
    return rows


def _rank(seed: int, salt: str, question: str) -> float:
    digest = hashlib.sha256(f"{salt}:{seed}:{question}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split(rows: Sequence[Graded], *, seed: int, test_fraction: float) -> tuple[list[Graded], list[Graded]]:
    """The dev pool and the test part, by a seeded hash of the question (no question on both sides)."""
    pool = [row for row in rows if _rank(seed, "test", row.question) >= test_fraction]
    test = [row for row in rows if _rank(seed, "test", row.question) < test_fraction]
    return pool, test


def folds(rows: Sequence[Graded], *, seed: int, k: int) -> list[int]:
    """Each row's fold, 0..k-1, by a seeded hash of its question."""
    return [min(k - 1, int(_rank(seed, "fold", row.question) * k)) for row in rows]


@dataclass
class Scored:
    """One judge's scores of one split (out-of-fold on dev), its speed, and what to say about it."""

    split: str
    judge: str
    scores: Array
    per_second: float = math.nan
    per_cpu_second: float = math.nan
    unparsed: int = 0
    note: str = ""
    train_seconds: list[float] = field(default_factory=list)


def judged(
    split_name: str,
    name: str,
    parts: Sequence[tuple[Sequence[Graded], Sequence[Graded]]],
    make: Callable[[Sequence[Graded]], tuple[Judge, float]],
    *,
    note: str = "",
    repeats: int = 1,
) -> Scored:
    """Train with ``make`` on each part's training rows and judge its held-out rows; the scores in the order of
    the held-out rows of all parts together."""
    scores: list[Array] = []
    seconds: list[float] = []
    items = 0
    wall = cpu = 0.0
    unparsed = 0
    for train, held in parts:
        judge, train_s = make(train)
        seconds.append(train_s)
        timing = timed(judge, [row.item for row in held], repeats)
        values, bad = parse_scores(timing.replies)
        scores.append(values)
        unparsed += bad
        items += len(held)
        wall += len(held) / timing.per_second
        cpu += len(held) / timing.per_cpu_second
    result = Scored(split_name, name, np.concatenate(scores), items / wall, items / cpu, unparsed, note, seconds)
    print(f"{split_name:4s} {name:60s} r {pearson(result.scores, _truth(parts)):.4f}", file=sys.stderr)
    return result


def _truth(parts: Sequence[tuple[Sequence[Graded], Sequence[Graded]]]) -> Array:
    return np.array([row.score for _, held in parts for row in held], dtype=np.float64)


def _held(parts: Sequence[tuple[Sequence[Graded], Sequence[Graded]]]) -> list[Graded]:
    return [row for _, held in parts for row in held]


def render_rows(results: Sequence[Scored], parts: Sequence[tuple[Sequence[Graded], Sequence[Graded]]]) -> list[str]:
    rows = _held(parts)
    truth = _truth(parts)
    subset = np.array([row.subset for row in rows])
    good = truth >= 4
    lines = [
        "| judge | Pearson r [95% CI] | Spearman | " + " | ".join(f"r {s}" for s in SUBSETS) + " | AUC (>= 4) | "
        "judgements/s (1 core) | per CPU-second | training s | notes |",
        "|---|---|---|" + "---|" * len(SUBSETS) + "---|---|---|---|---|",
    ]
    for r in results:
        low, high = bootstrap(pearson, r.scores, truth)
        by_subset = " | ".join(f"{pearson(r.scores[subset == s], truth[subset == s]):.3f}" for s in SUBSETS)
        rate = "" if math.isnan(r.per_second) else f"{r.per_second:,.0f}"
        cpu = "" if math.isnan(r.per_cpu_second) else f"{r.per_cpu_second:,.0f}"
        train = "" if not r.train_seconds else f"{np.mean(r.train_seconds):.0f}"
        lines.append(
            f"| {r.judge} | {pearson(r.scores, truth):.3f} [{low:.3f}, {high:.3f}] | {spearman(r.scores, truth):.3f} | "
            f"{by_subset} | {roc_auc(good, r.scores):.3f} | {rate} | {cpu} | {train} | {r.note} |"
        )
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "roscoe")
    parser.add_argument("--split", choices=("dev", "test", "both"), default="dev")
    parser.add_argument("--folds", type=int, default=5, help="cross-validation folds on the dev pool")
    parser.add_argument("--test-fraction", type=float, default=0.3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--speed-repeats", type=int, default=1, help="time each judge this many times (median)")
    parser.add_argument("--skip", action="append", default=[], help="leave a judge out (minilm, numpy, teacher, f1)")
    parser.add_argument("--teacher", type=Path, help="an LLM teacher's judgements of these items (soft vs hard)")
    parser.add_argument("--record", action="store_true", help="write the tables into bench/RESULTS.md")
    add_minilm_arguments(parser)
    args = parser.parse_args(argv)

    load = os.getloadavg()[0]
    rows = load_roscoe(args.data)
    pool, test = split(rows, seed=args.seed, test_fraction=args.test_fraction)
    fold_of = folds(pool, seed=args.seed, k=args.folds)
    plans: dict[str, list[tuple[Sequence[Graded], Sequence[Graded]]]] = {}
    if args.split in ("dev", "both"):
        plans["dev"] = [
            (
                [r for r, f in zip(pool, fold_of, strict=True) if f != k],
                [r for r, f in zip(pool, fold_of, strict=True) if f == k],
            )
            for k in range(args.folds)
        ]
    if args.split in ("test", "both"):
        plans["test"] = [(pool, test)]
    print(
        f"{len(rows)} graded answers: dev pool {len(pool)}, test {len(test)}; load average {load:.1f}", file=sys.stderr
    )
    repeats = args.speed_repeats
    teacher = _teacher(args.teacher) if args.teacher is not None else None
    sections: dict[str, list[Scored]] = {}
    notes: list[str] = []
    for name, parts in plans.items():
        sections[name] = run_split(name, parts, args, teacher, notes)
    minilm_note = notes[-1] if notes else "not run"

    argv_text = " ".join(sys.argv[1:] if argv is None else argv)
    lines = [
        SECTION,
        "",
        f"Measured by `python bench/roscoe.py {argv_text.replace('--record', '').strip() or '(defaults)'}` on "
        f"{time.strftime('%Y-%m-%d')} ({machine(load)}).",
        "",
        f"- Data: ROSCOE overall-quality grades, {len(rows)} answers ({_counts(rows)}). Split by question "
        f"(seed {args.seed}): dev pool {len(pool)} ({_counts(pool)}), test {len(test)} ({_counts(test)}).",
        f"- Dev: {args.folds}-fold cross-validation by question on the dev pool (each fold judged by students "
        "trained on the others; metrics over all out-of-fold scores). Test: students trained on the whole dev pool.",
        f"- MiniLM student: {minilm_note}.",
        "- Pearson r with the expert grades and its 95% bootstrap interval; r per source; AUC of telling grades "
        ">= 4 from the others; judgements/s: `judge_batch` in one process with one torch thread, "
        f"{'one timed pass' if repeats <= 1 else f'the median of {repeats} timed passes'}; training s: per student.",
    ]
    titles = {
        "dev": "Dev pool, out-of-fold (every design decision was made on these)",
        "test": "Final test answers (run at the end, not used for any decision)",
    }
    for name, results in sections.items():
        lines += ["", f"### {titles[name]}", "", *render_rows(results, plans[name])]
        if teacher is not None:
            lines += ["", *teacher_rows(results, plans[name], teacher)]
    lines.append("")
    section = "\n".join(lines)
    print(section)
    if args.record:
        record(ROOT / "bench" / "RESULTS.md", SECTION, section)
    return 0


def run_split(
    name: str,
    parts: Sequence[tuple[Sequence[Graded], Sequence[Graded]]],
    args: argparse.Namespace,
    teacher: Teacher | None,
    notes: list[str],
) -> list[Scored]:
    """Every judge on one split (its training and held-out rows, one pair per fold)."""
    repeats = args.speed_repeats
    results: list[Scored] = []
    if "minilm" not in args.skip:

        def minilm(train: Sequence[Graded], **change: object) -> tuple[Judge, float]:
            student, seconds, note = train_minilm([row.example() for row in train], args, **change)
            notes.append(note)
            return student.judge_batch, seconds

        results.append(judged(name, "minilm student", parts, minilm, repeats=repeats))
        for ablation in args.ablation:
            label, change = ABLATIONS[ablation]

            def ablated(train: Sequence[Graded], change: dict[str, object] = change) -> tuple[Judge, float]:
                return minilm(train, **change)

            results.append(judged(name, f"minilm student, {label}", parts, ablated, note="ablation"))
    if teacher is not None:
        results += soft_and_hard(name, parts, teacher, args)
    if "numpy" not in args.skip:
        results.append(judged(name, "numpy student (lexical only)", parts, _numpy, repeats=repeats))
    if "teacher" not in args.skip:
        local = teacher_batch(LocalTeacherJudge())
        results.append(judged(name, "local teacher", parts, lambda _: (local, 0.0), note="untrained rubric"))
    if "f1" not in args.skip:
        f1 = TokenF1Judge().judge_batch
        results.append(judged(name, "token-f1 (baseline)", parts, lambda _: (f1, 0.0), note="1 + 4 * token F1"))
    return results


def _counts(rows: Sequence[Graded]) -> str:
    return ", ".join(f"{s} {sum(r.subset == s for r in rows)}" for s in SUBSETS)


def _numpy(train: Sequence[Graded]) -> tuple[Judge, float]:
    started = time.perf_counter()
    student = fit_student([row.example() for row in train])
    return student.judge_batch, time.perf_counter() - started


# --- an LLM teacher's distribution -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Teacher:
    name: str
    examples: Mapping[str, TrainingExample]  # by item id


def _teacher(folder: Path) -> Teacher:
    return Teacher(teacher_name(folder), {e.id: e for e in teacher_examples(folder)})


def soft_and_hard(
    name: str, parts: Sequence[tuple[Sequence[Graded], Sequence[Graded]]], teacher: Teacher, args: argparse.Namespace
) -> list[Scored]:
    """MiniLM students of the LLM teacher on the same training rows: its probabilities vs its rounded score."""
    out = []
    for soft in (True, False):

        def make(train: Sequence[Graded], soft: bool = soft) -> tuple[Judge, float]:
            examples = []
            for row in train:
                taught = teacher.examples.get(row.id)
                if taught is None:
                    continue  # the teacher's reply could not be read: nothing to learn from it
                examples.append(row.example(taught.score, taught.probs))
            student, seconds, _ = train_minilm(examples if soft else rounded(examples), args, soft_targets=soft)
            return student.judge_batch, seconds

        kind = "soft targets (its probabilities)" if soft else "hard targets (its rounded score)"
        out.append(judged(name, f"minilm student of {teacher.name}, {kind}", parts, make, note="learns the LLM"))
    return out


def teacher_rows(
    results: Sequence[Scored], parts: Sequence[tuple[Sequence[Graded], Sequence[Graded]]], teacher: Teacher
) -> list[str]:
    """The LLM teacher itself, and how closely its students follow it, on the held-out items it judged."""
    rows = _held(parts)
    known = np.array([row.id in teacher.examples for row in rows], dtype=np.bool_)
    truth = _truth(parts)[known]
    expected = np.array([teacher.examples[row.id].score for row in rows if row.id in teacher.examples])
    lines = [
        f"The LLM teacher ({teacher.name}) on the same {int(known.sum())} held-out items it judged: Pearson r with "
        f"the experts {pearson(expected, truth):.3f}. Its students against the teacher (Pearson r, MAE):",
        "",
        "| student | r with the teacher [95% CI] | MAE vs the teacher | r with the experts |",
        "|---|---|---|---|",
    ]
    taught = {}
    for r in results:
        if teacher.name not in r.judge:
            continue
        mine = r.scores[known]
        taught["soft" if "soft targets" in r.judge else "hard"] = mine
        low, high = bootstrap(pearson, mine, expected)
        lines.append(
            f"| {r.judge} | {pearson(mine, expected):.3f} [{low:.3f}, {high:.3f}] | "
            f"{float(np.abs(mine - expected).mean()):.3f} | {pearson(mine, truth):.3f} |"
        )
    if {"soft", "hard"} <= taught.keys():
        experts = paired_difference(pearson, taught["soft"], taught["hard"], truth)
        follow = paired_difference(pearson, taught["soft"], taught["hard"], expected)
        lines += [
            "",
            f"Soft minus hard (paired 95% bootstrap intervals, 1,000 resamples of the items): Pearson r with the "
            f"experts {experts[0]:+.4f} [{experts[1]:+.4f}, {experts[2]:+.4f}]; with the teacher {follow[0]:+.4f} "
            f"[{follow[1]:+.4f}, {follow[2]:+.4f}].",
        ]
    return lines


if __name__ == "__main__":
    sys.exit(main())
