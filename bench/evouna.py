"""How well do the local judges separate right from wrong answers? Students trained and tested on EVOUNA.

    python bench/evouna.py [--data ../shared/data/evouna] [--max-train 2000] [--seed 0] [--split dev|test|both]
                           [--ablation encoder] [--teacher DIR] [--speed-repeats N] [--record] [MiniLM settings]

EVOUNA (NQ.json and TQ.json of the QA-Eval repository) has human correct/incorrect labels for the answers of
five QA systems to Natural Questions and TriviaQA questions. Questions flagged ``improper`` and answers without
a true/false label (null, "nan") are left out. The questions are shuffled with the seed and taken in order
until the next one would pass ``--max-train`` answers: those answers train the students (labels as teacher
scores: correct 5, incorrect 1). The answers to all other questions are split again by question, by a seeded
hash, into a dev part (``--dev-fraction``, a quarter) and the final test part. Design decisions are made on dev
(``--split dev``); the test part is judged once at the end (``--split test`` or ``both``), so its numbers are
not tuned to. No split ever has answers to a question of another.

Judges, all measured in this one run on the same answers:

- ``minilm``: the MiniLM cross-encoder student (`judgeflow.providers.neural`), trained here, judging in its
  default precision (bfloat16 on CPUs that have it natively) and again in float32;
- ``numpy``: the linear student (`judgeflow.providers.local.student`), trained here: logistic regression for
  these right/wrong labels, scored from its replies and from its unclipped prediction;
- ``local-teacher``: the offline rubric teacher (`LocalTeacherJudge`), untrained;
- ``lexical-logreg``: baseline, logistic regression on six lexical-overlap features, trained here;
- ``numpy-logreg``: logistic regression (this script's) on the numpy student's features, where the MiniLM
  student's lexical unit starts;
- ``token-f1``: baseline, SQuAD token F1 between answer and reference, ``1 + 4 * F1``.

With ``--teacher DIR`` (a teacher's judgements with its probabilities of 1..5: a ``judgeflow judge --scoring
logprobs`` output, ``DIR/judgements.jsonl`` beside ``DIR/answers.jsonl``), two more MiniLM students learn that
teacher's judgements of the training answers, from its probabilities (soft targets) and from its rounded score
(hard targets); on the held-out answers the teacher also judged they are compared with the labels and with the
teacher, with paired bootstrap intervals of the soft-minus-hard differences. Judgements of other answers in
``DIR`` are used only for that comparison, never for training.

For each: ROC AUC against the human label, Cohen's kappa after the threshold "score >= 3" (the middle of the
1-5 scale), the point-biserial correlation (Pearson r of score and label), and judgements per second on one
core (one torch thread, one process: the whole ``judge_batch`` path, tokenising and reply text included; with
``--speed-repeats N`` the median of N timed passes, as the machine may be shared). ``--record`` writes the
tables into bench/RESULTS.md under "Local students on EVOUNA" (the section is replaced, the rest of the file
kept). The data is read from ``--data`` only; it is never needed by the package.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import math
import os
import re
import string
import sys
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from _judged import (
    Timing,
    bootstrap,
    kappa,
    machine,
    paired_difference,
    parse_scores,
    pearson,
    point_biserial,
    record,
    roc_auc,
    timed,
)
from _students import ABLATIONS, add_minilm_arguments, rounded, teacher_examples, teacher_name, train_minilm

from judgeflow.core.parsing import judge_reply
from judgeflow.protocol.messages import JudgeInput, JudgeReply, TrainingExample
from judgeflow.providers.local import LocalTeacherJudge, features, fit_student

ROOT = Path(__file__).resolve().parents[1]
SECTION = "## Local students on EVOUNA"
SYSTEMS = ("fid", "gpt35", "chatgpt", "gpt4", "newbing")
Array = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Labelled:
    """One answer with its human label; ``group`` names its question (dataset and index)."""

    group: str
    question: str
    reference: str
    answer: str
    system: str
    correct: bool

    @property
    def item(self) -> JudgeInput:
        return JudgeInput(question=self.question, reference=self.reference, answer=self.answer)


def load_evouna(folder: Path) -> list[Labelled]:
    """Every usable labelled answer of NQ.json and TQ.json, in file order."""
    rows: list[Labelled] = []
    for dataset in ("NQ", "TQ"):
        path = folder / f"{dataset}.json"
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except OSError as error:
            raise SystemExit(f"evouna: cannot read {path} ({error.strerror}); pass --data") from None
        for index, entry in enumerate(data):
            question, reference = entry.get("question"), entry.get("golden_answer")
            if entry.get("improper") or not isinstance(question, str) or not isinstance(reference, str):
                continue
            for system in SYSTEMS:
                answer, label = entry.get(f"answer_{system}"), entry.get(f"judge_{system}")
                if isinstance(answer, str) and answer.strip() and isinstance(label, bool):
                    rows.append(Labelled(f"{dataset}-{index}", question, reference, answer, system, label))
    return rows


def split_by_question(rows: Sequence[Labelled], *, max_train: int, seed: int) -> tuple[list[Labelled], list[Labelled]]:
    """Training answers (whole questions, at most ``max_train`` answers) and test answers (all the others)."""
    groups: dict[str, list[Labelled]] = {}
    for row in rows:
        groups.setdefault(row.group, []).append(row)

    def key(group: str) -> bytes:
        return hashlib.sha256(f"{seed}:{group}".encode()).digest()

    train: list[Labelled] = []
    test: list[Labelled] = []
    full = False
    for group in sorted(groups, key=key):
        members = groups[group]
        if not full and len(train) + len(members) <= max_train:
            train.extend(members)
        else:
            full = full or len(train) + len(members) > max_train
            test.extend(members)
    return train, test


def split_dev(rows: Sequence[Labelled], *, seed: int, fraction: float = 0.25) -> tuple[list[Labelled], list[Labelled]]:
    """The held-out answers split by question into a dev part (about ``fraction`` of the questions) and the
    final test part: design decisions are made on dev, and the test part is run once at the end.

    The dev questions are chosen by a seeded hash of the question's name, independent of the training split's
    order, so the same seed always gives the same three parts.
    """

    def rank(group: str) -> float:
        return int.from_bytes(hashlib.sha256(f"dev:{seed}:{group}".encode()).digest()[:8], "big") / 2**64

    dev = [row for row in rows if rank(row.group) < fraction]
    test = [row for row in rows if rank(row.group) >= fraction]
    return dev, test


# --- baselines -----------------------------------------------------------------------------------------------

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = str.maketrans("", "", string.punctuation)


def normalise_tokens(text: str) -> list[str]:
    """SQuAD's answer normalisation: lower case, no punctuation, no articles, single spaces."""
    return _ARTICLES.sub(" ", text.lower().translate(_PUNCTUATION)).split()


def token_f1(answer: str, reference: str) -> float:
    a, r = normalise_tokens(answer), normalise_tokens(reference)
    common = sum((Counter(a) & Counter(r)).values())
    if not a or not r or common == 0:
        return 0.0
    precision, recall = common / len(a), common / len(r)
    return 2 * precision * recall / (precision + recall)


LEXICAL_FEATURES = (
    "token recall",
    "token precision",
    "token F1",
    "reference contained",
    "char 3-gram recall",
    "log answer tokens",
)


def _char3(text: str) -> set[str]:
    padded = f" {' '.join(normalise_tokens(text))} "
    return {padded[i : i + 3] for i in range(len(padded) - 2)}


def lexical_features(item: JudgeInput) -> list[float]:
    a, r = normalise_tokens(item.answer), normalise_tokens(item.reference)
    common = sum((Counter(a) & Counter(r)).values())
    recall = common / len(r) if r else 0.0
    precision = common / len(a) if a else 0.0
    f1 = 2 * precision * recall / (precision + recall) if common else 0.0
    contained = float(bool(r) and f" {' '.join(r)} " in f" {' '.join(a)} ")
    r3, a3 = _char3(item.reference), _char3(item.answer)
    return [recall, precision, f1, contained, len(r3 & a3) / len(r3) if r3 else 0.0, math.log1p(len(a))]


def six_lexical_features(items: Sequence[JudgeInput]) -> Array:
    return np.array([lexical_features(item) for item in items], dtype=np.float64).reshape(len(items), -1)


class LexicalLogisticRegression:
    """L2-regularised logistic regression on standardised features (default: the six `lexical_features`),
    fitted by Newton's method."""

    def __init__(
        self,
        *,
        featurize: Callable[[Sequence[JudgeInput]], Array] = six_lexical_features,
        l2: float = 1.0,
        name: str = "lexical-logreg",
    ) -> None:
        self.name = name
        self.featurize = featurize
        self.l2 = l2
        self.means = np.zeros(0)
        self.scales = np.ones(0)
        self.theta = np.zeros(1)

    def _design(self, items: Sequence[JudgeInput]) -> Array:
        x = self.featurize(items)
        return np.hstack([np.ones((len(items), 1)), (x - self.means) / self.scales])

    def fit(self, items: Sequence[JudgeInput], labels: npt.NDArray[np.bool_]) -> LexicalLogisticRegression:
        x = self.featurize(items)
        self.means, self.scales = x.mean(axis=0), np.where(x.std(axis=0) > 1e-9, x.std(axis=0), 1.0)
        design = self._design(items)
        y = labels.astype(np.float64)
        penalty = np.full(design.shape[1], self.l2)
        penalty[0] = 0.0
        theta = np.zeros(design.shape[1])
        for _ in range(50):
            p = 1.0 / (1.0 + np.exp(-(design @ theta)))
            gradient = design.T @ (p - y) + penalty * theta
            hessian = (design * (p * (1 - p))[:, None]).T @ design + np.diag(penalty)
            update = np.linalg.solve(hessian, gradient)
            theta -= update
            if float(np.abs(update).max()) < 1e-8:
                break
        self.theta = theta
        return self

    def judge_batch(self, items: Sequence[JudgeInput]) -> list[JudgeReply]:
        p = 1.0 / (1.0 + np.exp(-(self._design(items) @ self.theta)))
        return [judge_reply(f"{1.0 + 4.0 * float(q):.4f}", self.name) for q in p]


class TokenF1Judge:
    name = "token-f1"

    def judge_batch(self, items: Sequence[JudgeInput]) -> list[JudgeReply]:
        return [judge_reply(f"{1.0 + 4.0 * token_f1(i.answer, i.reference):.4f}", self.name) for i in items]


# --- running -------------------------------------------------------------------------------------------------

LONG_SYSTEMS = ("gpt4", "newbing")  # the longest answers (median 29 and 42 word pieces; up to 196)


@dataclass(frozen=True, slots=True)
class Result:
    split: str
    judge: str
    auc: float
    auc_ci: tuple[float, float]
    auc_long: float
    kappa: float
    point_biserial: float
    per_second: float
    unparsed: int
    note: str = ""
    per_cpu_second: float = math.nan  # judgements per second of this process's CPU time


def measure(
    split: str, name: str, rows: Sequence[Labelled], scores: Array, *, note: str = "", timing: Timing | None = None
) -> Result:
    labels = np.array([row.correct for row in rows], dtype=np.bool_)
    long = np.array([row.system in LONG_SYSTEMS for row in rows], dtype=np.bool_)
    unparsed = 0 if timing is None else parse_scores(timing.replies)[1]
    return Result(
        split,
        name,
        roc_auc(labels, scores),
        bootstrap(lambda s, y: roc_auc(y.astype(np.bool_), s), scores, labels.astype(np.float64)),
        roc_auc(labels[long], scores[long]),
        kappa(labels, scores >= 3.0),
        point_biserial(labels, scores),
        math.nan if timing is None else timing.per_second,
        unparsed,
        note,
        math.nan if timing is None else timing.per_cpu_second,
    )


def evaluate(
    name: str,
    judge: Callable[[Sequence[JudgeInput]], list[JudgeReply]],
    splits: Mapping[str, Sequence[Labelled]],
    *,
    note: str = "",
    raw: Callable[[Sequence[JudgeInput]], Array] | None = None,
    repeats: int = 1,
) -> list[Result]:
    """The judge on each split: metrics from its replies, judgements/s the median of ``repeats`` timed passes."""
    results: list[Result] = []
    for split, rows in splits.items():
        items = [row.item for row in rows]
        timing = timed(judge, items, repeats)
        found = [measure(split, name, rows, parse_scores(timing.replies)[0], note=note, timing=timing)]
        if raw is not None:
            found.append(measure(split, f"{name} (unrounded)", rows, raw(items), note=note))
        for result in found:
            runs = timing.runs if result is found[0] and len(timing.runs) > 1 else ()
            spread = f" (runs: {', '.join(f'{r:.0f}' for r in runs)})" if runs else ""
            print(
                f"{split:4s} {result.judge:44s} AUC {result.auc:.4f} [{result.auc_ci[0]:.4f}, {result.auc_ci[1]:.4f}]"
                f"  long {result.auc_long:.4f}  kappa {result.kappa:.4f}  r_pb {result.point_biserial:.4f}"
                f"  {result.per_second:8.1f}/s{spread}  {result.per_cpu_second:8.1f}/CPU-s  unparsed {result.unparsed}",
                file=sys.stderr,
            )
        results += found
    return results


def teacher_batch(teacher: LocalTeacherJudge) -> Callable[[Sequence[JudgeInput]], list[JudgeReply]]:
    def run(items: Sequence[JudgeInput]) -> list[JudgeReply]:
        async def all_of() -> list[JudgeReply]:
            return [await teacher.judge(item) for item in items]

        return asyncio.run(all_of())

    return run


def examples_of(rows: Sequence[Labelled]) -> list[TrainingExample]:
    return [
        TrainingExample(
            id=f"{row.group}-{row.system}",
            messages=(),
            question=row.question,
            reference=row.reference,
            answer=row.answer,
            score=5.0 if row.correct else 1.0,
        )
        for row in rows
    ]


SPLIT_TITLES = {
    "dev": "Dev answers (every design decision was made on these)",
    "test": "Final test answers (run at the end, not used for any decision)",
}


def render(results: Sequence[Result], facts: dict[str, str]) -> str:
    lines = [
        SECTION,
        "",
        f"Measured by `python bench/evouna.py {facts['args']}` on {facts['date']} ({facts['machine']}).",
        "",
        f"- Data: EVOUNA NQ + TQ without `improper` questions and unlabelled answers: {facts['answers']} answers "
        f"to {facts['questions']} questions.",
        f"- Split by question (seed {facts['seed']}): {facts['train']} training answers ({facts['train_q']} "
        f"questions, {facts['train_pos']} correct); the other questions' answers split by a seeded hash of the "
        f"question into dev ({facts['dev']}) and final test ({facts['test']}). Labels as teacher scores: "
        "correct 5, incorrect 1.",
        f"- MiniLM student: {facts['minilm']}.",
        f"- numpy student: {facts['numpy']}.",
        "- AUC with its 95% bootstrap interval (1,000 resamples of the answers); long: the AUC on the GPT-4 and New "
        "Bing answers only (the longest); kappa: Cohen's kappa of the label and `score >= 3`; r_pb: point-biserial "
        "correlation; judgements/s: `judge_batch` over the whole split in one process with one torch thread "
        f"(teacher: `judge` per item), {facts['repeats']}; per CPU-second: the same passes counted in this "
        "process's CPU time (equal to the wall-clock rate when the judge had a core to itself).",
    ]
    for split in ("dev", "test"):
        rows = [r for r in results if r.split == split]
        if not rows:
            continue
        lines += [
            "",
            f"### {SPLIT_TITLES[split]}",
            "",
            "| judge | AUC [95% CI] | AUC, long answers | kappa (>= 3) | r_pb | judgements/s (1 core) | "
            "per CPU-second | notes |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for r in rows:
            rate = "" if math.isnan(r.per_second) else f"{r.per_second:,.0f}"
            cpu = "" if math.isnan(r.per_cpu_second) else f"{r.per_cpu_second:,.0f}"
            lines.append(
                f"| {r.judge} | {r.auc:.3f} [{r.auc_ci[0]:.3f}, {r.auc_ci[1]:.3f}] | {r.auc_long:.3f} | "
                f"{r.kappa:.3f} | {r.point_biserial:.3f} | {rate} | {cpu} | {r.note} |"
            )
    lines.append("")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "evouna")
    parser.add_argument("--max-train", type=int, default=2000, help="at most this many training answers")
    parser.add_argument(
        "--split",
        choices=("dev", "test", "both"),
        default="both",
        help="held-out answers to judge: dev (for design decisions), test (the final numbers), or both",
    )
    parser.add_argument("--dev-fraction", type=float, default=0.25, help="share of held-out questions in dev")
    parser.add_argument("--test-limit", type=int, default=0, help="judge the first N answers of each split (0: all)")
    parser.add_argument("--speed-repeats", type=int, default=1, help="time each judge this many times (median)")
    parser.add_argument("--seed", type=int, default=0)
    add_minilm_arguments(parser)
    parser.add_argument("--skip", action="append", default=[], help="leave a judge out (minilm, numpy, ...)")
    parser.add_argument("--teacher", type=Path, help="a teacher's judgements of the training answers (soft vs hard)")
    parser.add_argument("--record", action="store_true", help="write the tables into bench/RESULTS.md")
    args = parser.parse_args(argv)

    load = os.getloadavg()[0]
    rows = load_evouna(args.data)
    train, held = split_by_question(rows, max_train=args.max_train, seed=args.seed)
    dev, test = split_dev(held, seed=args.seed, fraction=args.dev_fraction)
    splits = {name: part for name, part in (("dev", dev), ("test", test)) if args.split in (name, "both")}
    if args.test_limit:
        splits = {name: part[: args.test_limit] for name, part in splits.items()}
    sizes = ", ".join(f"{name} {len(part)}" for name, part in splits.items())
    print(f"{len(rows)} answers; train {len(train)}, {sizes}; load average {load:.1f}", file=sys.stderr)
    repeats = args.speed_repeats
    results: list[Result] = []
    train_items = [row.item for row in train]
    train_labels = np.array([row.correct for row in train], dtype=np.bool_)
    minilm_note = "not run"
    numpy_note = "not run"

    if "minilm" not in args.skip:
        from judgeflow.providers.neural import MiniLMStudentJudge

        trained, train_s, minilm_note = train_minilm(examples_of(train), args)
        note = f"trained in {train_s:.0f} s; {trained.precision}"
        results += evaluate("minilm student", trained.judge_batch, splits, note=note, repeats=repeats)
        for ablation in args.ablation:
            label, change = ABLATIONS[ablation]
            bare, bare_s, _ = train_minilm(examples_of(train), args, **change)
            note = f"ablation: {label}; trained in {bare_s:.0f} s; {bare.precision}"
            results += evaluate(f"minilm student, {label}", bare.judge_batch, splits, note=note)
        if "minilm-f32" not in args.skip and trained.precision != "float32":
            exact = MiniLMStudentJudge(
                trained.network,
                trained.tokenizer,
                info=trained.info,
                precision="float32",
                window=trained.window,
                max_tokens=trained.max_tokens,
            )
            note = "same model, float32"
            results += evaluate("minilm student, float32", exact.judge_batch, splits, note=note)

    taught_lines: list[str] = []
    if args.teacher is not None:
        taught, taught_lines = soft_and_hard(args, train, splits)
        results += taught

    if "numpy" not in args.skip:
        started = time.perf_counter()
        numpy_student = fit_student(examples_of(train))
        train_s = time.perf_counter() - started
        rounding = "two decimals" if numpy_student.link == "logistic" else "half points"
        numpy_note = f"trained in {train_s:.1f} s; {numpy_student.link} link, replies in {rounding}"
        results += evaluate(
            "numpy student (lexical only)",
            numpy_student.judge_batch,
            splits,
            note=numpy_note,
            raw=numpy_student.predict_raw,
            repeats=repeats,
        )
    if "teacher" not in args.skip:
        teacher = teacher_batch(LocalTeacherJudge())
        results += evaluate("local teacher", teacher, splits, note="untrained rubric", repeats=repeats)
    if "logreg" not in args.skip:
        baseline = LexicalLogisticRegression().fit(train_items, train_labels)
        note = "six overlap features"
        results += evaluate("lexical-logreg (baseline)", baseline.judge_batch, splits, note=note, repeats=repeats)
    if "numpy-logreg" not in args.skip:
        start = LexicalLogisticRegression(featurize=features, name="numpy-features-logreg").fit(
            train_items, train_labels
        )
        note = "logistic regression on the numpy student's features"
        results += evaluate("logreg on numpy features", start.judge_batch, splits, note=note, repeats=repeats)
    if "f1" not in args.skip:
        f1 = TokenF1Judge().judge_batch
        results += evaluate("token-f1 (baseline)", f1, splits, note="1 + 4 * token F1", repeats=repeats)

    argv_text = " ".join(sys.argv[1:] if argv is None else argv)
    facts = {
        "args": argv_text.replace("--record", "").strip() or "(defaults)",
        "date": time.strftime("%Y-%m-%d"),
        "machine": machine(load),
        "answers": f"{len(rows):,}",
        "questions": f"{len({r.group for r in rows}):,}",
        "seed": str(args.seed),
        "train": f"{len(train):,}",
        "train_q": f"{len({r.group for r in train}):,}",
        "train_pos": f"{sum(r.correct for r in train):,}",
        "dev": _describe(dev),
        "test": _describe(test),
        "minilm": minilm_note,
        "numpy": numpy_note,
        "repeats": "one timed pass"
        if repeats <= 1
        else f"the median of {repeats} timed passes (float32 and ablation rows: one)",
    }
    section = render(results, facts)
    if taught_lines:
        section = section.rstrip("\n") + "\n\n" + "\n".join(taught_lines) + "\n"
    print(section)
    if args.record:
        record(ROOT / "bench" / "RESULTS.md", SECTION, section)
    return 0


def soft_and_hard(
    args: argparse.Namespace, train: Sequence[Labelled], splits: Mapping[str, Sequence[Labelled]]
) -> tuple[list[Result], list[str]]:
    """Students of a teacher that gave its distribution, trained on its judgements of the training answers only:
    on its probabilities (soft targets) and on its rounded score (hard targets). Besides the usual rows, lines
    comparing them with the teacher on the held-out answers it judged, and the soft-minus-hard differences."""
    judged = {e.id: e for e in teacher_examples(args.teacher)}
    train_ids = {f"{row.group}-{row.system}" for row in train}
    examples = [e for e in judged.values() if e.id in train_ids]
    if not examples:
        raise SystemExit(f"evouna: {args.teacher} judged none of the training answers")
    name = teacher_name(args.teacher)
    results: list[Result] = []
    scores: dict[tuple[str, bool], Array] = {}
    for soft in (True, False):
        taught = examples if soft else rounded(examples)
        student, train_s, _ = train_minilm(taught, args, soft_targets=soft)
        kind = "soft targets (its probabilities)" if soft else "hard targets (its rounded score)"
        note = f"{len(examples)} judgements by {name}; trained in {train_s:.0f} s"
        for split, rows in splits.items():
            timing = timed(student.judge_batch, [row.item for row in rows], 1)
            values = parse_scores(timing.replies)[0]
            scores[split, soft] = values
            results.append(measure(split, f"minilm student of {name}, {kind}", rows, values, note=note, timing=timing))
    lines = [
        f"#### Soft vs hard targets: students of {name}",
        "",
        f"Both students learnt {name}'s judgements of the {len(examples):,} training answers it judged (of "
        f"{len(train_ids):,}): its probabilities of 1..5 (soft) or its probability-weighted score rounded to a "
        "whole score (hard). On the held-out answers the teacher also judged: AUC against the human labels, "
        "Pearson r and mean absolute error against the teacher's own (probability-weighted) score; differences "
        "soft minus hard with paired 95% bootstrap intervals (1,000 resamples of the answers).",
        "",
        "| split | judge | AUC [95% CI] | r with the teacher [95% CI] | MAE vs the teacher |",
        "|---|---|---|---|---|",
    ]
    differences: list[str] = []
    for split, rows in splits.items():
        ids = [f"{row.group}-{row.system}" for row in rows]
        known = np.array([key in judged for key in ids], dtype=np.bool_)
        if not known.any():
            continue
        labels = np.array([row.correct for row in rows], dtype=np.float64)[known]
        expected = np.array([judged[key].score for key in ids if key in judged], dtype=np.float64)
        columns = [("the teacher itself", expected)]
        columns += [(f"student, {'soft' if soft else 'hard'}", scores[split, soft][known]) for soft in (True, False)]
        for label, values in columns:
            auc_low, auc_high = bootstrap(lambda x, y: roc_auc(y.astype(np.bool_), x), values, labels)
            r_low, r_high = bootstrap(pearson, values, expected)
            lines.append(
                f"| {split} ({int(known.sum()):,}) | {label} | {roc_auc(labels.astype(np.bool_), values):.3f} "
                f"[{auc_low:.3f}, {auc_high:.3f}] | {pearson(values, expected):.3f} [{r_low:.3f}, {r_high:.3f}] | "
                f"{float(np.abs(values - expected).mean()):.3f} |"
            )
        soft_scores, hard_scores = scores[split, True][known], scores[split, False][known]
        auc = paired_difference(lambda x, y: roc_auc(y.astype(np.bool_), x), soft_scores, hard_scores, labels)
        follow = paired_difference(pearson, soft_scores, hard_scores, expected)
        differences.append(
            f"- {split}: soft minus hard, AUC against the labels {auc[0]:+.4f} [{auc[1]:+.4f}, {auc[2]:+.4f}]; "
            f"Pearson r with the teacher {follow[0]:+.4f} [{follow[1]:+.4f}, {follow[2]:+.4f}]."
        )
    return results, [*lines, "", *differences]


def _describe(rows: Sequence[Labelled]) -> str:
    questions, correct = len({r.group for r in rows}), sum(r.correct for r in rows)
    return f"{len(rows):,} answers to {questions:,} questions, {correct:,} correct"


if __name__ == "__main__":
    sys.exit(main())
