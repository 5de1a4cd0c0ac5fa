"""What the HTML report shows, computed from a run's verdicts: plots' data, breakdowns, labels, panels.

Pure: `RunData` in, plain JSON-able data out. Big runs are summarised, never dumped: a scatter shows at most
`SAMPLE_CAP` items per judge pair (a stratified sample: every cell of the confusion matrix keeps its share and at
least a few points; the matrix itself has the exact counts), a disagreement table at most `TABLE_ROWS` rows.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from judgeflow.core.labels import DEFAULT_THRESHOLD, label_agreement
from judgeflow.core.metrics import ROW_STATS, agreement, bootstrap_estimates, round_half_up
from judgeflow.core.panel import agreement_matrix, error_correlation, panel_votes
from judgeflow.report.sources import STATUS_CODES, RunData

__all__ = ["MAJORITY", "MEAN", "SAMPLE_CAP", "TABLE_ROWS", "analyse", "label_section", "panel_section", "shown_ids"]

SAMPLE_CAP = 2000
TABLE_ROWS = 100
THROUGHPUT_BINS = 60
GROUPS_SHOWN = 30
_GROUP_METRICS = ("kappa", "exact", "mae")
_Array = npt.NDArray[np.float64]
MEAN, MAJORITY = "panel:mean", "panel:majority"


def _categories(scores: _Array) -> npt.NDArray[np.intp]:
    """1-5 scores as categories 0-4 (half up, clipped), as quadratic kappa counts them."""
    return (np.clip(round_half_up(scores), 1, 5) - 1).astype(np.intp)


def _sample(cells: npt.NDArray[np.intp], cap: int, rng: np.random.Generator) -> npt.NDArray[np.intp]:
    if cells.size <= cap:
        return np.arange(cells.size)
    picked = []
    for cell in np.unique(cells):
        members = np.flatnonzero(cells == cell)
        k = min(members.size, max(5, round(cap * members.size / cells.size)))
        picked.append(rng.choice(members, size=k, replace=False))
    return np.sort(np.concatenate(picked))


def _pair_view(data: RunData, column: int, *, seed: int) -> dict[str, Any]:
    """Scatter, confusion matrix, calibration and largest disagreements of one judge against the reference."""
    ref, other = data.scores[:, 0], data.scores[:, column]
    both = np.flatnonzero(~np.isnan(ref) & ~np.isnan(other))
    a, b = ref[both], other[both]
    ca, cb = _categories(a), _categories(b)
    confusion = np.bincount(ca * 5 + cb, minlength=25).reshape(5, 5)
    rng = np.random.default_rng(seed)
    shown = _sample(ca * 5 + cb, SAMPLE_CAP, rng)
    jitter = rng.uniform(-0.25, 0.25, size=(2, shown.size))
    calibration = []
    for category in range(5):
        values = b[ca == category]
        if values.size:
            mean = float(values.mean())
            half = 1.96 * float(values.std(ddof=1)) / math.sqrt(values.size) if values.size > 1 else None
            low, high = (mean - half, mean + half) if half is not None else (None, None)
            calibration.append((category + 1, mean, low, high, int(values.size)))
    gap = np.abs(a - b)
    ids = [data.ids[i] for i in both]
    order = sorted(range(both.size), key=lambda k: (-gap[k], ids[k]))[:TABLE_ROWS]
    return {
        "judge": data.judges[column],
        "n": int(both.size),
        "scatter": {
            "x": np.round(a[shown] + jitter[0], 3).tolist(),
            "y": np.round(b[shown] + jitter[1], 3).tolist(),
            "ids": [ids[k] for k in shown],
            "shown": int(shown.size),
        },
        "confusion": confusion.tolist(),
        "calibration": calibration,
        "disagreements": [
            {"id": ids[k], "reference": float(a[k]), "score": float(b[k]), "gap": float(gap[k])}
            for k in order
            if gap[k] > 0
        ],
    }


def _groups(data: RunData, *, n_resamples: int, seed: int) -> dict[str, Any]:
    """Agreement of each judge with the reference within each value of each grouping field."""
    stats = {name: ROW_STATS[name] for name in _GROUP_METRICS}
    out: dict[str, Any] = {}
    for field, values in data.groups.items():
        column = np.array(values, dtype=object)
        names, counts = np.unique(column[column != ""], return_counts=True)
        top = [str(name) for name, _ in sorted(zip(names, counts, strict=True), key=lambda nc: (-nc[1], nc[0]))]
        rows = []
        for value in top[:GROUPS_SHOWN]:
            members = column == value
            row: dict[str, Any] = {"value": value, "items": int(members.sum()), "judges": {}}
            for j, judge in enumerate(data.judges[1:], start=1):
                both = members & ~np.isnan(data.scores[:, 0]) & ~np.isnan(data.scores[:, j])
                estimates = bootstrap_estimates(
                    stats, data.scores[both, 0], data.scores[both, j], n_resamples=n_resamples, seed=seed
                )
                row["judges"][judge] = {"n": int(both.sum()), **{k: e.as_dict() for k, e in estimates.items()}}
            rows.append(row)
        out[field] = {"groups": rows, "distinct": int(names.size)}
    return out


def _parse_rates(data: RunData) -> dict[str, dict[str, int]]:
    return {
        judge: {status: int((data.status[:, j] == code).sum()) for status, code in STATUS_CODES.items()}
        for j, judge in enumerate(data.judges)
    }


def _throughput(data: RunData) -> dict[str, Any] | None:
    """Verdicts per second of each judge over the run, in `THROUGHPUT_BINS` equal slices of its duration."""
    known = data.at[~np.isnan(data.at)]
    if known.size < 2:
        return None
    start, span = float(known.min()), float(known.max() - known.min())
    if span <= 0:
        return None
    width = span / THROUGHPUT_BINS
    edges = np.linspace(0.0, span, THROUGHPUT_BINS + 1)
    centres = ((edges[:-1] + edges[1:]) / 2).round(3).tolist()
    series = {}
    for j, judge in enumerate(data.judges):
        times = data.at[:, j]
        times = times[~np.isnan(times)] - start
        counts, _ = np.histogram(times, bins=edges)
        series[judge] = {"t": centres, "rate": (counts / width).round(3).tolist()}
    return {"span_s": round(span, 3), "series": series}


def _costs(costs: Mapping[str, Any] | None, data: RunData) -> dict[str, Any]:
    """The run's spending per model, with the cost of 1,000 judgements where the model's verdicts are counted."""
    if not costs:
        return {"total_usd": 0.0, "models": {}}
    judged: dict[str, int] = {}
    for counter in data.judge_models.values():
        for model, count in counter.items():
            judged[model] = judged.get(model, 0) + count
    models = {}
    for model, entry in (costs.get("models") or {}).items():
        row = dict(entry)
        verdicts = judged.get(model, 0)
        row["judgements"] = verdicts
        row["usd_per_1000"] = round(1000 * float(entry.get("cost_usd", 0.0)) / verdicts, 6) if verdicts else None
        models[model] = row
    return {**costs, "models": models}


def label_section(
    data: RunData,
    *,
    extra: Mapping[str, _Array] | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    n_resamples: int = 2000,
    seed: int = 0,
) -> dict[str, Any] | None:
    """Every judge (and each derived judge in ``extra``) against the human labels, when the items have them."""
    if data.label_kind is None:
        return None
    labelled = ~np.isnan(data.labels)
    columns = {judge: data.scores[:, j] for j, judge in enumerate(data.judges)}
    columns.update(extra or {})
    judges = {}
    for judge, scores in columns.items():
        both = labelled & ~np.isnan(scores)
        result = label_agreement(
            data.labels[both],
            scores[both],
            kind="binary" if data.label_kind == "binary" else "scale",
            threshold=threshold,
            n_resamples=n_resamples,
            seed=seed,
        )
        judges[judge] = {**result.as_dict(), "unscored": int((labelled & np.isnan(scores)).sum())}
    return {
        "kind": data.label_kind,
        "labelled": int(labelled.sum()),
        "threshold": threshold if data.label_kind == "binary" else None,
        "judges": judges,
    }


def panel_section(data: RunData, *, n_resamples: int = 2000, seed: int = 0) -> tuple[dict[str, Any], dict[str, _Array]]:
    """A panel of three or more judges: who is in it, its mean and majority, the agreement matrix, error likeness.

    Members are compared with the human labels when the items have them (every judge is then a member);
    otherwise with the reference judge (the first), and the others are the members.
    """
    with_labels = data.label_kind is not None
    first = 0 if with_labels else 1
    members = data.judges[first:]
    matrix = data.scores[:, first:]
    votes = panel_votes(matrix)
    derived = {MEAN: votes.mean, MAJORITY: votes.majority}
    statuses = data.status[:, first:]
    per_member = {
        judge: {status: int((statuses[:, k] == code).sum()) for status, code in STATUS_CODES.items()}
        for k, judge in enumerate(members)
    }
    names = [*data.judges, MEAN, MAJORITY]
    everything = np.column_stack([data.scores, votes.mean, votes.majority])
    truth = data.labels if with_labels else data.scores[:, 0]
    section: dict[str, Any] = {
        "members": members,
        "compared_with": "labels" if with_labels else data.reference,
        "counts": votes.counts(len(members)),
        "per_member": per_member,
        "matrix": {"judges": names, "pairs": agreement_matrix(everything, names)},
        "error_correlation": error_correlation(matrix, truth, members).as_dict(),
    }
    if not with_labels:
        section["agreement"] = {}
        for name, scores in derived.items():
            both = ~np.isnan(truth) & ~np.isnan(scores)
            result = agreement(truth[both], scores[both], n_resamples=n_resamples, seed=seed)
            section["agreement"][name] = {**result.as_dict(), "unscored": int((~np.isnan(truth) & ~both).sum())}
    return section, derived


def analyse(
    data: RunData,
    *,
    costs: Mapping[str, Any] | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    n_resamples: int = 2000,
    seed: int = 0,
) -> dict[str, Any]:
    """Everything the page draws (labels and the panel too, which also go in report.json)."""
    view: dict[str, Any] = {
        "kind": data.kind,
        "items": len(data.ids),
        "judges": list(data.judges),
        "reference": data.reference,
        "pairs": [_pair_view(data, j, seed=seed + j) for j in range(1, len(data.judges))],
        "groups": _groups(data, n_resamples=min(n_resamples, 1000), seed=seed),
        "parse_rates": _parse_rates(data),
        "problems": {judge: [list(p) for p in rows] for judge, rows in data.problems.items() if rows},
        "throughput": _throughput(data),
        "costs": _costs(costs, data),
    }
    extra: dict[str, _Array] = {}
    if data.kind == "judge" and len(data.judges) >= 3:
        view["panel"], extra = panel_section(data, n_resamples=n_resamples, seed=seed)
    view["labels"] = label_section(data, extra=extra, threshold=threshold, n_resamples=n_resamples, seed=seed)
    return view


def shown_ids(view: Mapping[str, Any]) -> set[str]:
    """The items whose texts the page shows: the largest disagreements and the failures."""
    wanted = {row["id"] for pair in view["pairs"] for row in pair["disagreements"]}
    wanted.update(problem[0] for rows in view["problems"].values() for problem in rows)
    return wanted
