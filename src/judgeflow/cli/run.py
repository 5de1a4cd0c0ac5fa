"""``judgeflow run``: the distillation pipeline, shown on the dashboard or as plain progress lines."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from judgeflow.cli.errors import RunStoppedExit, UserError, fail, run_async, stopped, user_errors

if TYPE_CHECKING:
    from judgeflow.inputs.config import RolesConfig

__all__ = ["run_command", "with_scoring"]


def with_scoring(roles: RolesConfig, scoring: str) -> RolesConfig:
    """``roles`` with every LLM judge (teacher, student) asked for its score by ``scoring``; local judges keep
    their own way."""
    changed = {
        name: dataclasses.replace(getattr(roles, name), scoring=scoring)
        for name in ("teacher", "student")
        if getattr(roles, name).provider != "local"
    }
    return dataclasses.replace(roles, **changed)


def run_command(args: argparse.Namespace) -> int:
    from judgeflow.flows.pipeline import open_pipeline, stored_config
    from judgeflow.inputs.config import BudgetConfig, CallsConfig, PipelineConfig, load_config
    from judgeflow.report.markdown import render_markdown

    try:
        if args.resume is not None and args.config is None:
            config = stored_config(args.resume)
        else:
            config = load_config(args.config) if args.config else PipelineConfig()
        changes: dict[str, Any] = {}
        if args.resume is not None:
            changes["out_dir"] = args.resume
        elif args.out is not None:
            changes["out_dir"] = args.out
        if args.seed is not None:
            changes["seed"] = args.seed
        if args.max_cost is not None:
            changes["budget"] = BudgetConfig(max_cost_usd=args.max_cost)
        if args.grace is not None or args.outage_limit is not None:
            calls = config.calls
            changes["calls"] = CallsConfig(
                grace_s=calls.grace_s if args.grace is None else args.grace,
                outage_limit_s=calls.outage_limit_s if args.outage_limit is None else args.outage_limit,
            )
        if args.scoring is not None:
            changes["roles"] = with_scoring(config.roles, args.scoring)
        config = dataclasses.replace(config, **changes)
    except user_errors() as error:
        return fail(error)

    use_tui = not args.no_tui and sys.stdout.isatty()
    folders: list[Path] = []

    async def go() -> dict[str, Any] | None:
        options = {"resume": args.resume is not None, "restart": args.restart, "cache_dir": args.cache}
        async with open_pipeline(config, log_events=True, **options) as run:
            folders.append(run.out_dir)
            print(f"judgeflow: run folder {run.out_dir}", file=sys.stderr)
            if use_tui:
                from judgeflow.tui.dashboard import run_with_dashboard

                await run_with_dashboard(run)
                if not run.done:
                    return None  # the user quit: leaving the block cancels what is left
            else:
                from judgeflow.tui.plain import PlainDisplay

                await PlainDisplay().show(run.events)
            return await run.wait()

    try:
        report = run_async(go)
    except UserError as error:
        return fail(error.error)
    except RunStoppedExit as stop:
        folder = folders[0] if folders else config.out_dir
        return stopped(stop.error, f"judgeflow run --resume {folder}")
    if report is None:
        print(f"judgeflow: quit before the run finished; what was done is in {folders[0]}")
        return 130
    print(render_markdown(report))
    print(
        f"Run folder: {report['run']['out_dir']} (report.html, report.json, report.md, judgements.jsonl, train.jsonl)"
    )
    return 0
