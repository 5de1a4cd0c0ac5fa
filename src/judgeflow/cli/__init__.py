"""The ``judgeflow`` command: it parses arguments, dispatches to a command, and sets the exit status.

Each command lives in its own module and imports what it needs inside the command, so that ``judgeflow --help``
answers at once. Errors the user can fix exit with status 2 and one line naming what is wrong
(`judgeflow.cli.errors`); Ctrl-C exits with 130 after the run has been cancelled cleanly and what was done is on
disk.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from judgeflow.cli.parser import parser

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        if args.command == "run":
            from judgeflow.cli.run import run_command

            return run_command(args)
        if args.command == "watch":
            from judgeflow.cli.watch import watch_command

            return watch_command(args)
        if args.command == "distill":
            from judgeflow.cli.distill import distill_command

            return distill_command(args)
        if args.command == "report":
            from judgeflow.cli.report import report_command

            return report_command(args)
        from judgeflow.cli.judge import judge_command

        return judge_command(args)
    except KeyboardInterrupt:
        print("judgeflow: interrupted; work done so far is on disk", file=sys.stderr)
        return 130
