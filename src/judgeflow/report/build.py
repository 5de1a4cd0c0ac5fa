"""The run report as data: what ``report.json`` holds, built from the scorer's result and the run's facts.

Every number in the report is computed from the judgements of this run by `judgeflow.core.metrics`; a statistic that
is undefined (too few items, a constant judge) is written as null and shown as "n/a", never as 0.

Besides the agreement: ``stages`` holds each stage's parse rate (replies, usable, unusable with a sample, failed
calls), ``scoring`` how each LLM judge was asked and every feature a server refused, ``failure`` the stage that
produced nothing usable (null when the run measured what it was asked to), and ``missing`` why each agreement
that could not be computed is missing (`judgeflow.report.outcome`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from judgeflow.core.agreement import ScoreResult
from judgeflow.core.metrics import items_needed

__all__ = ["agreement_entries", "build_report", "read_report"]


def build_report(
    *,
    result: ScoreResult,
    n_train: int,
    n_test: int,
    run: Mapping[str, Any],
    training: Mapping[str, Any],
    costs: Mapping[str, Any] | None = None,
    stages: Mapping[str, Any] | None = None,
    scoring: Mapping[str, Any] | None = None,
    failure: Mapping[str, str] | None = None,
    missing: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The report as JSON-able data; ``agreement`` has one entry per student judge."""
    agreement = agreement_entries(result)
    reference = result.tallies[result.reference]
    report: dict[str, Any] = {
        "n_train": n_train,
        "n_test": n_test,
        "reference_judge": result.reference,
        "agreement": agreement,
        "reference_verdicts": {
            "judged": reference.items,
            "scored": reference.scored,
            "unparsed": reference.unparsed,
            "failed": reference.failed,
        },
        "training": dict(training),
        "costs": dict(costs) if costs is not None else {"total_usd": 0.0, "models": {}},
        "stages": dict(stages or {}),
        "scoring": dict(scoring or {}),
        "failure": None if failure is None else dict(failure),
        "missing": dict(missing or {}),
        "run": dict(run),
    }
    if result.difference is not None and result.difference_pair is not None:
        first, second = result.difference_pair
        report["pearson_difference"] = {
            "judges": [first, second],
            **result.difference.as_dict(),
            "n": result.difference_n,
            "items_needed": items_needed(result.difference, result.difference_n),
        }
    return report


def agreement_entries(result: ScoreResult) -> dict[str, Any]:
    """Per judge: every metric as ``{"value", "ci95"}``, plus n and the counts of unparsed and failed verdicts."""
    entries: dict[str, Any] = {}
    for judge, estimates in result.agreements.items():
        tally = result.tallies[judge]
        entry = estimates.as_dict()
        entry["n"] = estimates.n
        entry["unparsed"] = tally.unparsed
        entry["failed"] = tally.failed
        entry["judged"] = tally.items
        entries[judge] = entry
    return entries


def read_report(folder: Path) -> dict[str, Any] | None:
    """The ``report.json`` of a run folder, or None while the run has not written one (or it cannot be read)."""
    try:
        data: dict[str, Any] = json.loads((folder / "report.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data
