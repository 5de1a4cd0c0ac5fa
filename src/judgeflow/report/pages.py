"""Writing a finished run's report files: ``report.html`` in a run folder; the same, with report.json and
report.md, beside a judge run's verdicts file (``OUT.report.html`` for ``OUT.jsonl`` or ``OUT.parquet``).

Blocking file I/O and CPU work: flows call these in a worker thread once the run's verdicts are on disk;
``judgeflow report`` calls them to rebuild the files of any run folder or verdicts file.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from judgeflow.core.labels import DEFAULT_THRESHOLD
from judgeflow.core.metrics import agreement
from judgeflow.report.analysis import analyse, shown_ids
from judgeflow.report.build import read_report
from judgeflow.report.html import render_html
from judgeflow.report.markdown import render_markdown
from judgeflow.report.sources import STATUS_CODES, RunData, load_judge_run, load_run_folder, read_texts

__all__ = ["JudgeReport", "judge_report_paths", "write_judge_report", "write_run_html"]


def write_run_html(folder: Path, report: Mapping[str, Any] | None = None, *, seed: int = 0) -> Path:
    """``report.html`` of a distillation run folder, from its report.json (or ``report``) and its JSONL files."""
    data = load_run_folder(folder)
    report = dict(report) if report is not None else (read_report(folder) or _agreement_report(data, seed=seed))
    n_resamples = int((report.get("run", {}).get("config") or {}).get("n_resamples", 2000))
    view = analyse(data, costs=report.get("costs"), n_resamples=n_resamples, seed=seed)
    texts = read_texts(data, shown_ids(view))
    path = folder / "report.html"
    path.write_text(render_html(report, view, texts, title=f"judgeflow report: {folder.name}"), encoding="utf-8")
    return path


@dataclass(frozen=True, slots=True)
class JudgeReport:
    """A judge run's report data and the files it was written to."""

    report: dict[str, Any]
    html: Path
    json: Path
    markdown: Path


def judge_report_paths(verdicts: Path) -> tuple[Path, Path, Path]:
    """``OUT.report.html``, ``OUT.report.json``, ``OUT.report.md`` for ``OUT.jsonl`` (or ``OUT.parquet``)."""
    stem = verdicts.name
    for suffix in (".jsonl", ".parquet", ".pq"):
        stem = stem.removesuffix(suffix)
    return tuple(verdicts.with_name(f"{stem}.report.{ext}") for ext in ("html", "json", "md"))  # type: ignore[return-value]


def write_judge_report(
    verdicts: Path,
    *,
    items: Path | None = None,
    judges: Sequence[str] = (),
    agreement_entries: Mapping[str, Any] | None = None,
    costs: Mapping[str, Any] | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    n_resamples: int = 2000,
    seed: int = 0,
) -> JudgeReport:
    """Report a judge run: agreement with the first judge, human labels, a panel of three or more judges.

    ``agreement_entries`` are the run's own statistics (the Scorer's, computed while judging); without them they
    are computed here from the file, the same way, so a rebuilt report has the same numbers.
    """
    data = load_judge_run(verdicts, items=items, judges=judges)
    report: dict[str, Any] = (
        {"agreement": dict(agreement_entries)}
        if agreement_entries is not None
        else _agreement_report(data, n_resamples=n_resamples, seed=seed)
    )
    view = analyse(data, costs=costs, threshold=threshold, n_resamples=n_resamples, seed=seed)
    report.update(
        {
            "kind": "judge",
            "items": len(data.ids),
            "judges": list(data.judges),
            "reference_judge": data.reference,
            "labels": view["labels"],
            "panel": view.get("panel"),
            "parse_rates": view["parse_rates"],
            "costs": view["costs"],
            "run": {"verdicts": str(verdicts), "items": str(data.texts_path) if data.texts_path else None},
        }
    )
    texts = read_texts(data, shown_ids(view))
    html_path, json_path, md_path = judge_report_paths(verdicts)
    html_path.write_text(render_html(report, view, texts, title=f"judgeflow report: {verdicts.name}"), encoding="utf-8")
    json_path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    md_path.write_text(render_markdown(report), encoding="utf-8")
    return JudgeReport(report, html_path, json_path, md_path)


def _agreement_report(data: RunData, *, n_resamples: int = 2000, seed: int = 0) -> dict[str, Any]:
    """Each judge against the first, as the Scorer computes it (pairs in sorted order, the same bootstrap)."""
    entries: dict[str, Any] = {}
    reference = data.scores[:, 0]
    for j, judge in enumerate(data.judges[1:], start=1):
        both = ~np.isnan(reference) & ~np.isnan(data.scores[:, j])
        pairs = sorted(zip(reference[both].tolist(), data.scores[both, j].tolist(), strict=True))
        result = agreement([p[0] for p in pairs], [p[1] for p in pairs], n_resamples=n_resamples, seed=seed)
        status = data.status[:, j]
        entries[judge] = {
            **result.as_dict(),
            "unparsed": int((status == STATUS_CODES["unparsed"]).sum()),
            "failed": int((status == STATUS_CODES["failed"]).sum()),
            "judged": int((status != STATUS_CODES["missing"]).sum()),
        }
    return {"agreement": entries, "reference_judge": data.reference}
