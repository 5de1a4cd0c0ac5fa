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

__all__ = ["render_agreement", "render_labels", "render_markdown", "render_panel"]

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
    for key in ("n", "unparsed", "failed", "unscored"):
        if any(key in agreement[judge] for judge in judges):
            lines.append(f"| {key} | " + " | ".join(_fmt(agreement[judge].get(key)) for judge in judges) + " |")
    return lines


def _needed(difference: Mapping[str, Any]) -> str:
    needed, n = difference.get("items_needed"), difference.get("n") or 0
    if needed is None:
        return "Items needed to tell them apart: n/a."
    if needed <= n:
        return f"Told apart at 95% with these {n} items (about {needed} would do)."
    return f"To tell them apart at 95%, about {needed} held-out items would be needed (this run has {n})."


_LABEL_METRICS = {
    "binary": (
        ("auc", "ROC AUC"),
        ("kappa", "Cohen's kappa at the threshold"),
        ("accuracy", "Accuracy at the threshold"),
    ),
    "scale": (("kappa", "Cohen's kappa (quadratic)"), ("pearson", "Pearson r"), ("spearman", "Spearman rho")),
}


def render_labels(labels: Mapping[str, Any]) -> str:
    """Every judge against the human labels, as a Markdown table."""
    judges = list(labels["judges"])
    if labels["kind"] == "binary":
        what = f"true/false labels; a score of {labels['threshold']:g} or more counts as true"
    else:
        what = "1-5 labels"
    lines = [
        f"Agreement with human labels ({labels['labelled']} labelled items, {what}; 95% bootstrap CIs):",
        "",
        "| metric | " + " | ".join(judges) + " |",
        "|---|" + "---|" * len(judges),
    ]
    for key, name in _LABEL_METRICS[labels["kind"]]:
        cells = [
            f"{_fmt(labels['judges'][j][key]['value'])} {_fmt_ci(labels['judges'][j][key]['ci95'])}" for j in judges
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines.append("| n | " + " | ".join(str(labels["judges"][j]["n"]) for j in judges) + " |")
    lines.append("| labelled, not scored | " + " | ".join(str(labels["judges"][j]["unscored"]) for j in judges) + " |")
    return "\n".join(lines) + "\n"


def render_panel(panel: Mapping[str, Any]) -> str:
    """The panel's counts, its derived judges and how alike its members' errors are, as Markdown."""
    counts = panel["counts"]
    against = "the human labels" if panel["compared_with"] == "labels" else panel["compared_with"]
    lines = [
        f"Panel of {', '.join(panel['members'])} (compared with {against}): of {counts['items']} items, every "
        f"member scored {counts['complete']}, some {counts['partial']}, none {counts['none']}; the majority "
        f"decided {counts['majority_decided']} and tied on {counts['majority_tied']} (ties are not broken).",
    ]
    for member, tally in panel["per_member"].items():
        lines.append(f"- {member}: {tally['ok']} scored, {tally['unparsed']} unparsed, {tally['failed']} failed")
    if panel.get("agreement"):
        lines += ["", f"Derived judges against {against}:", "", *_agreement_table(panel["agreement"])]
    errors = panel["error_correlation"]
    worth = errors.get("effective_judges")
    lines += [
        "",
        f"Mean correlation of the members' errors: {_fmt(errors['mean'])}"
        + (f" (the panel is worth about {worth:.1f} independent judges)." if worth else "."),
    ]
    return "\n".join(lines) + "\n"


def render_agreement(result: ScoreResult) -> str:
    """The agreement of each judge with the reference judge, as a Markdown table."""
    header = f"Agreement with {result.reference} (95% bootstrap confidence intervals in brackets):"
    return "\n".join([header, "", *_agreement_table(agreement_entries(result))]) + "\n"


_STAGE_NAMES = {"question_writer": "question writer"}


def _stages(report: Mapping[str, Any]) -> list[str]:
    """Each stage's parse rate, the scoring fallbacks, what is missing and why, and the failure if any."""
    lines: list[str] = []
    stages = report.get("stages") or {}
    if stages:
        lines += [
            "",
            "| stage | replies | usable | parse rate | unusable | failed calls |",
            "|---|---|---|---|---|---|",
        ]
        for stage, entry in stages.items():
            rate = entry.get("parse_rate")
            shown = "n/a" if rate is None else f"{rate:.0%}"
            lines.append(
                f"| {_STAGE_NAMES.get(stage, stage)} | {entry['replies']} | {entry['usable']} | {shown} "
                f"| {entry['unusable']} | {entry['failed']} |"
            )
    scoring = report.get("scoring") or {}
    notes: list[str] = []
    for name, mode in (scoring.get("asked") or {}).items():
        notes.append(f"{name} scoring: {mode}.")
    for fallback in scoring.get("fallbacks") or []:
        notes.append(
            f"{fallback['role']}: {fallback['server']} refused {fallback['feature']} for {fallback['model']}; "
            f"asked with {fallback['instead']} instead ({fallback['detail']})."
        )
    for key, why in (report.get("missing") or {}).items():
        notes.append(f"Missing {key}: {why}.")
    for note in notes:
        lines += ["", note]
    failure = report.get("failure")
    if failure:
        lines += ["", f"**The run failed at stage {failure['stage']}**: {failure['message']}"]
    return lines


def render_markdown(report: Mapping[str, Any]) -> str:
    """A human-readable summary of ``report`` (the same numbers, nothing more)."""
    if report.get("kind") == "judge":
        intro = (
            f"Items: {report['items']}, judges: {', '.join(report['judges'])}. Each judge is compared with "
            f"{report['reference_judge']} on the items both scored (95% bootstrap confidence intervals in brackets)."
        )
    else:
        intro = (
            f"Train items: {report['n_train']}, held-out items: {report['n_test']}. "
            f"Each student is compared with the {report['reference_judge']} on the held-out items "
            "(95% bootstrap confidence intervals in brackets)."
        )
    lines = ["# judgeflow report", "", intro, ""]
    lines += _agreement_table(report["agreement"]) if report["agreement"] else ["Only one judge: nothing to compare."]
    difference = report.get("pearson_difference")
    if difference:
        first, second = difference["judges"]
        lines += [
            "",
            f"Pearson r of {first} minus that of {second}: {_fmt(difference['value'])} "
            f"{_fmt_ci(difference['ci95'])} (paired bootstrap over the items all three judges scored). "
            + _needed(difference),
        ]
    ref = report.get("reference_verdicts")
    if ref:
        lines += [
            "",
            f"{report['reference_judge']} verdicts on held-out items: {ref['judged']} judged, {ref['scored']} "
            f"scored, {ref['unparsed']} unparsed, {ref['failed']} failed.",
        ]
    if report.get("labels"):
        lines += ["", render_labels(report["labels"]).rstrip("\n")]
    if report.get("panel"):
        lines += ["", render_panel(report["panel"]).rstrip("\n")]
    lines += _stages(report)
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
