"""``judgeflow judge --ray``: the same judging spread over a Ray cluster, with the same exits and lines.

Progress is shown as plain lines (a shard done, a worker restarted); the dashboard follows one process's events,
and a shard's events stay in its worker. A stop inside a worker ends the command with the line and exit status a
single-process run would give, and the command that resumes it keeps ``--ray``.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from judgeflow.cli.errors import fail, stopped, user_errors

if TYPE_CHECKING:
    from judgeflow.inputs.config import JudgingConfig

__all__ = ["judge_on_ray_command"]


def judge_on_ray_command(args: argparse.Namespace, config: JudgingConfig, resume_command: str) -> int:
    if args.cancel:
        return fail("--cancel is for batch runs, which do not run on Ray")
    try:
        from judgeflow.flows.ray.driver import judge_on_ray
    except ModuleNotFoundError as error:
        return fail(f"--ray needs Ray ({error.name} is not installed): pip install 'judgeflow[ray]'")
    from judgeflow.cli.judge import parse_line
    from judgeflow.protocol.errors import RunStopped

    try:
        summary = judge_on_ray(
            config,
            resume=args.resume,
            restart=args.restart,
            cache_dir=args.cache,
            notify=lambda line: print(line, file=sys.stderr, flush=True),
        )
    except user_errors() as error:
        return fail(error)
    except RunStopped as stop:
        return stopped(stop, resume_command)
    print(
        f"Judged {summary.items} items with {len(config.judges)} judge(s) on Ray ({summary.shards} shards, "
        f"{summary.workers} workers, {summary.restarts} worker restarts); wrote {summary.lines_written} lines to "
        f"{config.out}"
    )
    for name, count in summary.judges.items():
        print(f"  {name}: {parse_line(count)}")
    if summary.report is not None:
        print(f"Report: {summary.report.html} (and {summary.report.json.name}, {summary.report.markdown.name})")
    if summary.cost_usd > 0:
        print(f"Cost: {summary.cost_usd:.4f} USD (every distinct paid call counted once, earlier runs included)")
    return 0
