"""``judgeflow judge``: judge a file of items with one or more judges, shown on the dashboard or as progress lines."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from judgeflow.cli.errors import STOPPED, RunStoppedExit, UserError, fail, run_async, stopped, user_errors

if TYPE_CHECKING:
    from judgeflow.inputs.config import JudgingConfig

if TYPE_CHECKING:
    from judgeflow.core.stages import StageCount

__all__ = ["judge_command", "parse_line"]


def parse_line(count: StageCount) -> str:
    """A judge's replies in a few words: how many were scored (the parse rate), unparsed, and failed calls."""
    rate = count.parse_rate
    shown = "n/a" if rate is None else f"{rate:.0%}"
    return (
        f"{count.usable} scored of {count.replies} replies ({shown}), {count.unusable} unparsed, {count.failed} failed"
    )


def judge_command(args: argparse.Namespace) -> int:
    from judgeflow.flows.judging import JudgeSummary, open_judging
    from judgeflow.inputs.config import EngineConfig, JudgingConfig

    if args.concurrency < 1:
        return fail(f"--concurrency must be >= 1, got {args.concurrency}")
    try:
        config = JudgingConfig(
            items=args.items,
            out=args.out,
            judges=tuple(args.judges or ["local:teacher"]),
            base_url=args.base_url,
            concurrency=args.concurrency,
            rpm=args.rpm,
            tpm=args.tpm,
            max_tokens=args.max_tokens,
            timeout_s=args.timeout,
            max_cost_usd=args.max_cost,
            seed=args.seed,
            label_threshold=args.label_threshold,
            grace_s=args.grace,
            outage_limit_s=args.outage_limit,
            batch=args.batch,
            batch_poll_s=args.batch_poll,
            batch_max_requests=args.batch_max_requests,
            scoring=args.scoring,
            engine=EngineConfig(
                kind="local" if args.ray is None else "ray",
                address=args.ray or None,
                workers=args.workers,
                shard_size=args.shard_size,
                num_cpus=args.num_cpus,
            ),
        )
    except user_errors() as error:
        return fail(error)
    if config.engine.kind == "ray":
        from judgeflow.cli.judge_ray import judge_on_ray_command

        return judge_on_ray_command(args, config, _resume_command(args))
    if args.cancel:
        return _cancel(config)
    use_tui = not args.no_tui and sys.stdout.isatty()

    async def go() -> JudgeSummary | None:
        async with open_judging(config, resume=args.resume, restart=args.restart, cache_dir=args.cache) as run:
            if use_tui:
                from judgeflow.tui.dashboard import TextualDisplay

                display = TextualDisplay(exit_when_done=True, mode="judge")
                await display.show(run.events)
                if not display.finished:
                    return None  # the user quit: leaving the block cancels what is left
            else:
                from judgeflow.tui.plain import PlainDisplay

                await PlainDisplay(interval=2.0).show(run.events)
            return await run.wait()

    try:
        summary = run_async(go)
    except UserError as error:
        return fail(error.error)
    except RunStoppedExit as stop:
        return stopped(stop.error, _resume_command(args))
    except KeyboardInterrupt:
        _offer_cancel(config)
        raise
    if summary is None:
        kept = f"the run's store ({config.store_filename}); --resume writes them" if _parquet(args.out) else args.out
        print(f"judgeflow: quit before judging finished; verdicts so far are in {kept}", file=sys.stderr)
        _offer_cancel(config)
        return 130
    judges = len(config.judges)
    print(f"Judged {summary.items} items with {judges} judge(s); wrote {summary.lines_written} lines to {args.out}")
    for name, count in summary.judges.items():
        print(f"  {name}: {parse_line(count)}")
    for fallback in summary.fallbacks:
        print(
            f"  {fallback.role}: the server refused {fallback.feature} ({fallback.detail}); "
            f"asked with {fallback.instead} instead"
        )
    if summary.scorer is not None and summary.scorer.result is not None:
        from judgeflow.report.markdown import render_agreement

        print(render_agreement(summary.scorer.result))
    if summary.report is not None:
        from judgeflow.report.markdown import render_labels, render_panel

        data = summary.report.report
        if data.get("labels"):
            print(render_labels(data["labels"]))
        if data.get("panel"):
            print(render_panel(data["panel"]))
        print(f"Report: {summary.report.html} (and {summary.report.json.name}, {summary.report.markdown.name})")
    if summary.cost_usd > 0:
        print(f"Cost: {summary.cost_usd:.4f} USD (every distinct paid call counted once, earlier runs included)")
    return 0


def _parquet(out: Path) -> bool:
    """Whether ``out`` is written as Parquet: such a file appears only when the run ends."""
    from judgeflow.inputs.tables import table_format

    return table_format(out) == "parquet"


def _resume_command(args: argparse.Namespace) -> str:
    """The command that continues this judge run (the same items, output and judges, with ``--resume``)."""
    import shlex

    words = ["judgeflow", "judge", str(args.items), "--out", str(args.out)]
    for judge in args.judges or []:
        words += ["--judge", judge]
    if args.base_url:
        words += ["--base-url", args.base_url]
    if args.batch:
        words += ["--batch"]
    if args.ray is not None:
        words += ["--ray", *([args.ray] if args.ray else [])]
    return shlex.join([*words, "--resume"])


def _cancel(config: JudgingConfig) -> int:
    """``--cancel``: cancel the run's batches still running on the provider."""
    from judgeflow.flows.batches import cancel_judging_batches

    try:
        cancelled = run_async(lambda: cancel_judging_batches(config))
    except UserError as error:
        return fail(error.error)
    except RunStoppedExit as stop:
        print(f"judgeflow: error: {stop.error.message}", file=sys.stderr)
        return STOPPED
    for batch in cancelled:
        print(f"{batch.judge}: batch {batch.batch_id} ({batch.filename}, {batch.requests} requests): {batch.status}")
    print(f"Cancelled {len(cancelled)} batch(es); --resume collects what they finished and sends the rest again")
    return 0


def _offer_cancel(config: JudgingConfig) -> None:
    """After a Ctrl-C or a quit: say which batches keep running, and cancel them if the user says so."""
    from judgeflow.flows.batches import judging_batches

    try:
        running = run_async(lambda: judging_batches(config))
    except (UserError, RunStoppedExit, KeyboardInterrupt):
        return
    if not running:
        return
    print(f"judgeflow: {len(running)} batch(es) of this run are still running on the provider", file=sys.stderr)
    answer = ""
    if sys.stdin.isatty():
        try:
            answer = input("Cancel them? [y/N] ").strip().lower()
        except (EOFError, KeyboardInterrupt):
            answer = ""
    if answer in ("y", "yes"):
        _cancel(config)
    else:
        print("judgeflow: they keep running; --resume re-attaches them, --cancel cancels them", file=sys.stderr)
