"""What the judge-quality benchmarks (evouna.py, roscoe.py) share: metrics with bootstrap CIs, timing a judge on one
core, reading scores back from replies, and writing a section of bench/RESULTS.md.

Metrics are plain numpy (ranks with ties averaged); a confidence interval is the 2.5 and 97.5 percentiles of the
metric over ``n`` bootstrap resamples of the items (seeded), so two judges measured on the same items can be
compared row by row.
"""

from __future__ import annotations

import math
import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from judgeflow.protocol.messages import JudgeInput, JudgeReply
from judgeflow.protocol.verdicts import Scored

__all__ = [
    "Timing",
    "bootstrap",
    "cpu_name",
    "kappa",
    "machine",
    "paired_difference",
    "parse_scores",
    "pearson",
    "point_biserial",
    "ranks",
    "record",
    "roc_auc",
    "spearman",
    "timed",
]

Array = npt.NDArray[np.float64]
Flags = npt.NDArray[np.bool_]


def ranks(x: Array) -> Array:
    """Ranks from 1, ties sharing their average rank."""
    order = np.argsort(x, kind="mergesort")
    sorted_x = x[order]
    boundaries = np.flatnonzero(np.diff(sorted_x)) + 1
    starts = np.concatenate([[0], boundaries])
    ends = np.concatenate([boundaries, [len(x)]])
    average = (starts + ends - 1) / 2.0 + 1.0
    out = np.empty(len(x), dtype=np.float64)
    out[order] = np.repeat(average, ends - starts)
    return out


def roc_auc(labels: Flags, scores: Array) -> float:
    """Mann-Whitney AUC, ties counted as half."""
    r = ranks(scores)
    positives = int(labels.sum())
    negatives = len(labels) - positives
    if not positives or not negatives:
        return math.nan
    return float((r[labels].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def kappa(labels: Flags, predicted: Flags) -> float:
    observed = float((labels == predicted).mean())
    p_label, p_pred = float(labels.mean()), float(predicted.mean())
    expected = p_label * p_pred + (1 - p_label) * (1 - p_pred)
    return (observed - expected) / (1 - expected) if expected < 1 else math.nan


def pearson(x: Array, y: Array) -> float:
    if len(x) < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return math.nan
    return float(np.corrcoef(x, y)[0, 1])


def point_biserial(labels: Flags, scores: Array) -> float:
    return pearson(labels.astype(np.float64), scores)


def spearman(x: Array, y: Array) -> float:
    return pearson(ranks(x), ranks(y))


def bootstrap(
    metric: Callable[[Array, Array], float], x: Array, y: Array, *, n: int = 1000, seed: int = 0
) -> tuple[float, float]:
    """The 95% percentile interval of ``metric(x, y)`` over ``n`` resamples of the items."""
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(n):
        pick = rng.integers(0, len(x), len(x))
        value = metric(x[pick], y[pick])
        if not math.isnan(value):
            values.append(value)
    if not values:
        return math.nan, math.nan
    low, high = np.percentile(values, [2.5, 97.5])
    return float(low), float(high)


def paired_difference(
    metric: Callable[[Array, Array], float], a: Array, b: Array, truth: Array, *, n: int = 1000, seed: int = 0
) -> tuple[float, float, float]:
    """``metric(a, truth) - metric(b, truth)`` and its 95% percentile interval over ``n`` resamples of the items,
    both judges resampled together (the same items each time), so the interval is that of the difference."""
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(n):
        pick = rng.integers(0, len(truth), len(truth))
        value = metric(a[pick], truth[pick]) - metric(b[pick], truth[pick])
        if not math.isnan(value):
            values.append(value)
    if not values:
        return math.nan, math.nan, math.nan
    low, high = np.percentile(values, [2.5, 97.5])
    return metric(a, truth) - metric(b, truth), float(low), float(high)


def parse_scores(replies: Sequence[JudgeReply]) -> tuple[Array, int]:
    """Scores of the replies' verdicts (the judge's real output); an unparsed reply counts as 1 here."""
    scores = np.ones(len(replies), dtype=np.float64)
    unparsed = 0
    for i, reply in enumerate(replies):
        verdict = reply.verdict
        if isinstance(verdict, Scored):
            scores[i] = verdict.score
        else:
            unparsed += 1
    return scores, unparsed


@dataclass(frozen=True, slots=True)
class Timing:
    """A judge's replies and its speed: the median over the timed passes, by the wall clock and by CPU time."""

    replies: list[JudgeReply]
    per_second: float
    per_cpu_second: float
    runs: tuple[float, ...]


def timed(
    judge: Callable[[Sequence[JudgeInput]], list[JudgeReply]], items: Sequence[JudgeInput], repeats: int
) -> Timing:
    """Judge ``items`` ``repeats`` times (at least once); the replies of the last pass."""
    walls: list[float] = []
    cpus: list[float] = []
    replies: list[JudgeReply] = []
    for _ in range(max(1, repeats)):
        started, started_cpu = time.perf_counter(), time.process_time()
        replies = judge(items)
        walls.append(time.perf_counter() - started)
        cpus.append(time.process_time() - started_cpu)
    n = len(items)
    return Timing(
        replies,
        n / statistics.median(walls),
        n / max(1e-9, statistics.median(cpus)),
        tuple(n / t for t in walls),
    )


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def machine(load_at_start: float) -> str:
    """The machine and its load average at the start and now (speed figures mean little without them)."""
    return (
        f"{platform.machine()}, {cpu_name()}, {os.cpu_count()} cores, load average {load_at_start:.1f} at start, "
        f"{os.getloadavg()[0]:.1f} at the end"
    )


def record(path: Path, title: str, section: str) -> None:
    """Replace the ``title`` section (a ``## `` heading) of ``path`` with ``section``, or append it."""
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    start = text.find(title)
    if start < 0:
        joined = (text.rstrip() + "\n\n" if text.strip() else "") + section
    else:
        following = text.find("\n## ", start + len(title))
        rest = text[following + 1 :] if following >= 0 else ""
        joined = text[:start] + section + ("\n" + rest if rest else "")
    path.write_text(joined.rstrip() + "\n", encoding="utf-8")
