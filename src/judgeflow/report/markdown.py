"""The run report for people: ``report.md``, and the agreement table the ``judge`` command prints.

It renders the data of `judgeflow.report.build` and adds nothing: every number is computed there; an undefined one
(null) is shown as "n/a".
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from judgeflow.core.agreement import ScoreResult
from judgeflow.core.metrics import METRICS
from judgeflow.report.build import agreement_entries

__all__ = ["render_agreement", "render_markdown"]

_LABELS = {
    "pearson": "Pearson r",
    "spearman": "Spearman rho",
    "kendall": "Kendall tau-b",
    "kappa": "Cohen's kappa (quadratic)",
    "exact": "Exact agreement",
    "within1": "Within 1 point",
    "mae": "Mean absolute error",
}


def _fmt(value: object) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def _fmt_ci(ci: object) -> str:
    if isinstance(ci, list | tuple) and len(ci) == 2:
        return f"[{_fmt(ci[0])}, {_fmt(ci[1])}]"
    return "n/a"


def _agreement_table(agreement: Mapping[str, Any]) -> list[str]:
    judges = list(agreement)
    lines = ["| metric | " + " | ".join(judges) + " |", "|---|" + "---|" * len(judges)]
    for metric in METRICS:
        cells = [
            f"{_fmt(agreement[judge][metric]['value'])} {_fmt_ci(agreement[judge][metric]['ci95'])}" for judge in judges
        ]
        lines.append(f"| {_LABELS[metric]} | " + " | ".join(cells) + " |")
    for key in ("n", "unparsed", "failed"):
        lines.append(f"| {key} | " + " | ".join(_fmt(agreement[judge][key]) for judge in judges) + " |")
    return lines


def render_agreement(result: ScoreResult) -> str:
    """The agreement of each judge with the reference judge, as a Markdown table."""
    header = f"Agreement with {result.reference} (95% bootstrap confidence intervals in brackets):"
    return "\n".join([header, "", *_agreement_table(agreement_entries(result))]) + "\n"


def render_markdown(report: Mapping[str, Any]) -> str:
    """A human-readable summary of ``report`` (the same numbers, nothing more)."""
    lines = [
        "# judgeflow report",
        "",
        f"Train items: {report['n_train']}, held-out items: {report['n_test']}. "
        f"Each student is compared with the {report['reference_judge']} on the held-out items "
        "(95% bootstrap confidence intervals in brackets).",
        "",
        *_agreement_table(report["agreement"]),
    ]
    difference = report.get("pearson_difference")
    if difference:
        first, second = difference["judges"]
        lines += [
            "",
            f"Pearson r of {first} minus that of {second}: {_fmt(difference['value'])} "
            f"{_fmt_ci(difference['ci95'])} (paired bootstrap over the items all three judges scored).",
        ]
    ref = report["reference_verdicts"]
    lines += [
        "",
        f"{report['reference_judge']} verdicts on held-out items: {ref['judged']} judged, {ref['scored']} scored, "
        f"{ref['unparsed']} unparsed, {ref['failed']} failed.",
    ]
    training = report.get("training", {})
    if training.get("error"):
        lines += ["", f"Training failed: {training['error']}. The trained student's items are counted as failed."]
    costs = report.get("costs", {})
    if costs.get("models"):
        lines += ["", "| model | calls | tokens in | tokens out | cost (USD) |", "|---|---|---|---|---|"]
        for model, entry in costs["models"].items():
            lines.append(
                f"| {model} | {entry['calls']} | {entry['input_tokens']} | {entry['output_tokens']} "
                f"| {entry['cost_usd']:.4f} |"
            )
        lines.append(f"Total cost: {costs['total_usd']:.4f} USD.")
    run = report.get("run", {})
    if "wall_s" in run:
        lines.append(f"Wall time: {run['wall_s']:.2f} s.")
    return "\n".join(lines) + "\n"
