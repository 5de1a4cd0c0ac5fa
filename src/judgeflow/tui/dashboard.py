"""The Textual implementation of `judgeflow.tui.plain.Display`, and the one call the CLI needs.

The app runs in the caller's event loop, next to the pipeline (``await app.run_async()``), so there is no
thread and no second loop: the pipeline keeps running while the dashboard is shown, and when the user quits the
caller is back in its ``async with open_pipeline(...)`` block, where leaving the block cancels the run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from anyio.streams.memory import MemoryObjectReceiveStream

from judgeflow.protocol.channels import ChannelStats
from judgeflow.protocol.events import Event

from .app import Controls, DashboardApp, ReportSource
from .state import DashboardState
from .views import RunMode

if TYPE_CHECKING:
    from judgeflow.flows.pipeline import PipelineRun

__all__ = ["TextualDisplay", "run_with_dashboard"]


class TextualDisplay:
    """Shows a run on the terminal dashboard until the user quits (or the run ends, with ``exit_when_done``).

    After `show` returns, ``finished`` says whether the run had finished (False: the user quit early) and
    ``out_dir`` where its folder is. ``mode="judge"`` lays the dashboard out for ``judgeflow judge`` from the
    first frame, before the run's own `RunStarted` says so (it comes once the items file has been checked).
    """

    def __init__(
        self,
        *,
        channels: Sequence[ChannelStats] = (),
        controls: Controls | None = None,
        report: ReportSource | None = None,
        split_counts: Mapping[str, int] | None = None,
        out_dir: Path | str | None = None,
        exit_when_done: bool = False,
        headless: bool = False,
        size: tuple[int, int] | None = None,
        mode: RunMode = "run",
    ) -> None:
        self.channels = channels
        self.mode: RunMode = mode
        self.controls = controls
        self.report = report
        self.split_counts = split_counts
        self.exit_when_done = exit_when_done
        self.headless = headless
        self.size = size
        self.out_dir = None if out_dir is None else str(out_dir)
        self.finished = False
        self.app: DashboardApp | None = None

    @classmethod
    def for_run(
        cls,
        run: PipelineRun,
        *,
        exit_when_done: bool = False,
        headless: bool = False,
        size: tuple[int, int] | None = None,
    ) -> TextualDisplay:
        """A display wired to a pipeline run: its channels, pause control, report and split counters."""
        return cls(
            channels=run.channels,
            controls=run,
            report=lambda: run.report,
            split_counts=run.counts,
            out_dir=run.out_dir,
            exit_when_done=exit_when_done,
            headless=headless,
            size=size,
        )

    async def show(self, events: MemoryObjectReceiveStream[Event]) -> None:
        app = self.app = DashboardApp(
            events,
            self.channels,
            controls=self.controls,
            exit_when_done=self.exit_when_done,
            report=self.report,
            split_counts=self.split_counts,
            out_dir=self.out_dir,
            state=DashboardState(mode=self.mode),
        )
        result = await app.run_async(headless=self.headless, size=self.size)
        self.out_dir = result or app.out_dir
        self.finished = app.finished


async def run_with_dashboard(
    run: PipelineRun,
    *,
    exit_when_done: bool = False,
    headless: bool = False,
    size: tuple[int, int] | None = None,
) -> None:
    """Show ``run`` on the dashboard; return when the user quits, or when the run is done if ``exit_when_done``.

    Call it inside ``async with open_pipeline(config) as run``. If the run has not finished when this returns
    (``run.done`` is False), the user quit: leaving the ``async with`` block cancels the run.
    """
    await TextualDisplay.for_run(run, exit_when_done=exit_when_done, headless=headless, size=size).show(run.events)
