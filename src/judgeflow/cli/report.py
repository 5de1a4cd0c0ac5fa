"""``judgeflow report``: rebuild the report files of a finished run folder or a judge run's verdicts file."""

from __future__ import annotations

import argparse

from judgeflow.cli.errors import fail, user_errors

__all__ = ["report_command"]


def report_command(args: argparse.Namespace) -> int:
    from judgeflow.report.pages import write_judge_report, write_run_html

    path = args.path
    try:
        if path.is_dir():
            if not (path / "judgements.jsonl").exists():
                return fail(f"{path}: not a run folder (no judgements.jsonl)")
            print(f"Wrote {write_run_html(path, seed=args.seed)}")
            return 0
        if not path.exists():
            return fail(f"{path}: no such file or folder")
        report = write_judge_report(
            path, items=args.items, judges=args.judges or (), threshold=args.label_threshold, seed=args.seed
        )
    except user_errors() as error:
        return fail(error)
    if report.report["run"]["items"] is None:
        print("No items file found (pass --items): the report has no question, answer or label texts.")
    print(f"Wrote {report.html}, {report.json.name} and {report.markdown.name}")
    return 0
