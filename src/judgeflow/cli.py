"""The ``judgeflow`` command: ``run`` the distillation pipeline, ``judge`` a file of items.

Heavy modules (numpy, scipy, the SDKs, Textual) are imported inside the commands, not at the top, so that
``judgeflow --help`` answers at once. Errors the user can fix (a bad config, a bad input line, an unknown judge)
are printed as one line naming what is wrong and exit with status 2; Ctrl-C exits with 130 after the run has
been cancelled cleanly and what was done is on disk.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="judgeflow",
        description="Distil an expensive LLM judge into a cheap one, and measure how well they agree.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser(
        "run",
        help="run the whole distillation pipeline (default: the embedded offline demo)",
        description="Run the distillation pipeline: questions, answers, teacher judgements, training, "
        "student judgements and agreement. Without --config it runs the embedded default: the bundled "
        "corpus and local stand-in models, offline.",
    )
    run.add_argument("--config", type=Path, help="TOML configuration file")
    run.add_argument("--out", type=Path, help="run folder (default: a new folder under runs/)")
    run.add_argument("--seed", type=int, help="seed for the train/held-out split and the bootstrap")
    run.add_argument("--no-tui", action="store_true", help="plain progress lines instead of the dashboard")
    run.add_argument(
        "--resume",
        type=Path,
        metavar="DIR",
        help="continue the run in DIR (crashed, killed or quit): paid calls are not repeated, a fine-tuning "
        "job is re-attached; its config is reused unless --config is given (and must then match)",
    )
    run.add_argument("--restart", action="store_true", help="with --out/--resume: start over in that folder")
    run.add_argument("--cache", type=Path, metavar="DIR", help="a response cache shared across runs")
    run.add_argument(
        "--max-cost", type=float, metavar="USD", help="stop starting paid calls before spending would pass this"
    )

    judge = commands.add_parser(
        "judge",
        help="judge a JSONL file of {id, question, reference, answer} items",
        description="Judge every line of ITEMS (one JSON object with id, question, reference and answer "
        "per line) with each --judge; write one line per item and judge to --out. With two or more "
        "judges, the first is the reference and the agreement of the others with it is printed.",
    )
    judge.add_argument("items", type=Path, metavar="ITEMS.jsonl")
    judge.add_argument("--out", type=Path, required=True, metavar="OUT.jsonl")
    judge.add_argument(
        "--judge",
        action="append",
        dest="judges",
        metavar="PROVIDER:MODEL",
        help="a judge: local:teacher, local:student-prior, local:PATH/TO/STUDENT, openai:MODEL or hf:MODEL "
        "(repeatable; default local:teacher)",
    )
    judge.add_argument("--concurrency", type=int, default=8, help="concurrent calls per judge (default 8)")
    judge.add_argument("--base-url", help="OpenAI-compatible server for openai: judges (default: OPENAI_BASE_URL)")
    judge.add_argument("--rpm", type=int, help="requests per minute allowed per provider model")
    judge.add_argument("--tpm", type=int, help="tokens per minute allowed per provider model")
    judge.add_argument("--max-tokens", type=int, help="cap on the tokens of each judge reply")
    judge.add_argument("--timeout", type=float, default=60.0, metavar="S", help="seconds before a call is retried")
    judge.add_argument(
        "--max-cost", type=float, metavar="USD", help="stop starting paid calls before spending would pass this"
    )
    judge.add_argument("--seed", type=int, default=0, help="seed for the bootstrap confidence intervals")
    judge.add_argument("--no-tui", action="store_true", help="plain progress lines instead of the dashboard")
    judge.add_argument(
        "--resume",
        action="store_true",
        help="continue an earlier judge run into the same --out: verdicts it has are kept, not paid for again",
    )
    judge.add_argument("--restart", action="store_true", help="start over even though --out holds earlier verdicts")
    judge.add_argument("--cache", type=Path, metavar="DIR", help="a response cache shared across runs")
    watch = commands.add_parser(
        "watch",
        help="show the dashboard of a run in another process (or a finished one) from its run folder",
        description="Follow DIR/run.log and show the run's dashboard (or plain progress with --no-tui) until "
        "the run finishes. The watched run is only read, never slowed.",
    )
    watch.add_argument("folder", type=Path, metavar="DIR")
    watch.add_argument("--no-tui", action="store_true", help="plain progress lines instead of the dashboard")

    from judgeflow.distill import add_distill_parser

    add_distill_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "run":
            return _run(args)
        if args.command == "watch":
            return _watch(args)
        if args.command == "distill":
            from judgeflow.distill import distill_main

            result: int = distill_main(args)
            return result
        return _judge(args)
    except KeyboardInterrupt:
        print("judgeflow: interrupted; work done so far is on disk", file=sys.stderr)
        return 130


def _user_errors() -> tuple[type[Exception], ...]:
    from judgeflow.config import ConfigError
    from judgeflow.documents import DocumentError
    from judgeflow.items import InputError
    from judgeflow.judges import JudgeSpecError

    return (ConfigError, DocumentError, InputError, JudgeSpecError)


def _fail(error: BaseException) -> int:
    print(f"judgeflow: error: {error}", file=sys.stderr)
    return 2


def _unwrap(group: BaseExceptionGroup[Any]) -> BaseException | None:
    """The single user error inside an exception group from a task group, if that is what it holds."""
    errors = _user_errors()
    leaves: list[BaseException] = []

    def walk(error: BaseException) -> None:
        if isinstance(error, BaseExceptionGroup):
            for inner in error.exceptions:
                walk(inner)
        else:
            leaves.append(error)

    walk(group)
    found = [leaf for leaf in leaves if isinstance(leaf, errors)]
    return found[0] if found else None


def _run(args: argparse.Namespace) -> int:
    import dataclasses

    import anyio

    from judgeflow.config import BudgetConfig, PipelineConfig, load_config
    from judgeflow.display import PlainDisplay
    from judgeflow.pipeline import open_pipeline
    from judgeflow.report import render_markdown

    try:
        if args.resume is not None and args.config is None:
            config = _stored_config(args.resume)
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
        config = dataclasses.replace(config, **changes)
    except _user_errors() as error:
        return _fail(error)

    use_tui = not args.no_tui and sys.stdout.isatty()
    folders: list[Path] = []

    async def go() -> dict[str, Any] | None:
        options = {"resume": args.resume is not None, "restart": args.restart, "cache_dir": args.cache}
        async with open_pipeline(config, log_events=True, **options) as run:
            folders.append(run.out_dir)
            print(f"judgeflow: run folder {run.out_dir}", file=sys.stderr)
            if use_tui:
                from judgeflow.tui import run_with_dashboard

                await run_with_dashboard(run)
                if not run.done:
                    return None  # the user quit: leaving the block cancels what is left
            else:
                await PlainDisplay().show(run.events)
            return await run.wait()

    try:
        report = anyio.run(go)
    except _user_errors() as error:
        return _fail(error)
    except BaseExceptionGroup as group:
        found = _unwrap(group)
        if found is None:
            raise
        return _fail(found)
    if report is None:
        print(f"judgeflow: quit before the run finished; what was done is in {folders[0]}")
        return 130
    print(render_markdown(report))
    print(f"Run folder: {report['run']['out_dir']} (report.json, report.md, judgements.jsonl, train.jsonl)")
    return 0


def _watch(args: argparse.Namespace) -> int:
    import json

    import anyio

    from judgeflow.display import PlainDisplay
    from judgeflow.protocol.events import Event
    from judgeflow.watch import follow_log

    folder: Path = args.folder
    if not (folder / "run.log").exists() and not (folder / "config.json").exists():
        return _fail(ValueError(f"{folder}: not a run folder (no run.log)"))

    def report() -> dict[str, Any] | None:
        try:
            data: dict[str, Any] = json.loads((folder / "report.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return data

    async def go() -> None:
        send, receive = anyio.create_memory_object_stream[Event](4096)
        async with anyio.create_task_group() as tg:
            tg.start_soon(follow_log, folder / "run.log", send)
            if not args.no_tui and sys.stdout.isatty():
                from judgeflow.tui import TextualDisplay

                await TextualDisplay(out_dir=folder, report=report).show(receive)
                tg.cancel_scope.cancel()
            else:
                await PlainDisplay().show(receive)

    anyio.run(go)
    finished = report()
    if finished is not None:
        from judgeflow.report import render_markdown

        print(render_markdown(finished))
    return 0


def _stored_config(folder: Path) -> Any:
    """The config a run folder was started with (its ``config.json``)."""
    import json

    from judgeflow.config import ConfigError, config_from_data

    path = folder / "config.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{folder}: no run to resume here (no config.json)") from None
    except (OSError, ValueError) as error:
        raise ConfigError(f"{path}: cannot read the stored config ({error})") from None
    return config_from_data(data, where=str(path))


def _judge(args: argparse.Namespace) -> int:
    import anyio

    from judgeflow.display import PlainDisplay
    from judgeflow.judges import resolve_judges
    from judgeflow.judging import JudgeSummary, judge_file
    from judgeflow.protocol.bus import EventBus

    specs: list[str] = args.judges or ["local:teacher"]
    if args.concurrency < 1:
        return _fail(ValueError(f"--concurrency must be >= 1, got {args.concurrency}"))

    use_tui = not args.no_tui and sys.stdout.isatty()
    outcome: list[JudgeSummary] = []
    costs: list[float] = []

    async def go() -> JudgeSummary | None:
        from contextlib import AsyncExitStack

        from judgeflow.cache import ResponseCache

        bus = EventBus()
        display = PlainDisplay(interval=2.0)
        async with AsyncExitStack() as stack:
            store = await stack.enter_async_context(await _judge_store(args, specs))
            shared = await stack.enter_async_context(await ResponseCache.open(args.cache)) if args.cache else None
            cache = ResponseCache(store, *(shared.stores if shared else ()))
            judges, resources = await resolve_judges(
                specs,
                base_url=args.base_url,
                concurrency=args.concurrency,
                rpm=args.rpm,
                tpm=args.tpm,
                max_cost=args.max_cost,
                max_tokens=args.max_tokens,
                timeout_s=args.timeout,
                publish=bus.publish,
                cache=cache,
            )
            await stack.enter_async_context(resources)
            async with anyio.create_task_group() as tg:
                events = bus.subscribe_nowait()
                if use_tui:
                    from judgeflow.tui import TextualDisplay

                    async def watch() -> None:
                        await TextualDisplay(exit_when_done=True, mode="judge").show(events)
                        tg.cancel_scope.cancel()  # the user quit, or judging is over: either way nothing is left

                    tg.start_soon(watch)
                else:
                    tg.start_soon(display.show, events)
                try:
                    summary = await judge_file(
                        args.items,
                        args.out,
                        judges,
                        workers=args.concurrency,
                        seed=args.seed,
                        publish=bus.publish,
                        store=store,
                        resume=args.resume,
                    )
                finally:
                    bus.close()
                outcome.append(summary)
                costs.append(await store.total_cost())
        return outcome[0] if outcome else None

    try:
        summary = anyio.run(go)
    except _user_errors() as error:
        return _fail(error)
    except BaseExceptionGroup as group:
        found = _unwrap(group)
        if found is None:
            raise
        return _fail(found)
    if summary is None:
        print(f"judgeflow: quit before judging finished; verdicts so far are in {args.out}", file=sys.stderr)
        return 130
    print(f"Judged {summary.items} items with {len(specs)} judge(s); wrote {summary.lines_written} lines to {args.out}")
    if summary.scorer is not None and summary.scorer.result is not None:
        from judgeflow.report import render_agreement

        print(render_agreement(summary.scorer.result))
    if costs and costs[0] > 0:
        print(f"Cost: {costs[0]:.4f} USD (every distinct paid call counted once, earlier runs included)")
    return 0


async def _judge_store(args: argparse.Namespace, specs: list[str]) -> Any:
    """The store beside ``--out`` that makes a judge run resumable (``OUT.store.sqlite``)."""
    from judgeflow.config import ConfigError
    from judgeflow.store import RunStore

    out: Path = args.out
    filename = f"{out.name}.store.sqlite"

    def forget() -> None:
        for path in out.parent.glob(f"{filename}*"):
            path.unlink()

    if args.restart:
        forget()
    store = await RunStore.open(out.parent, filename=filename)
    try:
        if not args.resume:
            if await store.done_items("judgement", include_failed=True):
                raise ConfigError(
                    f"{out} already has verdicts from an earlier run: use --resume to continue it or --restart to "
                    "start over"
                )
            await store.aclose()  # nothing was judged: whatever the store holds can go
            forget()
            store = await RunStore.open(out.parent, filename=filename)
        await store.check_config({"items": str(args.items.resolve()), "judges": specs})
    except BaseException:
        await store.aclose()
        raise
    return store


if __name__ == "__main__":
    sys.exit(main())
