"""``judgeflow watch DIR``: the dashboard (or plain progress) of a run another process runs, from its log."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from judgeflow.cli.errors import fail

__all__ = ["watch_command"]


def watch_command(args: argparse.Namespace) -> int:
    import anyio

    from judgeflow.protocol.events import Event
    from judgeflow.report.build import read_report
    from judgeflow.runs.watch import follow_log

    folder: Path = args.folder
    if not (folder / "run.log").exists() and not (folder / "config.json").exists():
        return fail(f"{folder}: not a run folder (no run.log)")

    async def go() -> None:
        send, receive = anyio.create_memory_object_stream[Event](4096)
        async with anyio.create_task_group() as tg:
            tg.start_soon(follow_log, folder / "run.log", send)
            if not args.no_tui and sys.stdout.isatty():
                from judgeflow.tui.dashboard import TextualDisplay

                await TextualDisplay(out_dir=folder, report=lambda: read_report(folder)).show(receive)
                tg.cancel_scope.cancel()
            else:
                from judgeflow.tui.plain import PlainDisplay

                await PlainDisplay().show(receive)

    anyio.run(go)
    finished = read_report(folder)
    if finished is not None:
        from judgeflow.report.markdown import render_markdown

        print(render_markdown(finished))
    return 0
