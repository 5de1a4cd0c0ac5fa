"""The dashboard app: it folds a run's events into a `DashboardState` and repaints on a timer.

The app only observes. One worker receives events and folds each one (a few dictionary operations, nothing
awaited but the next event); the panels are repainted from a snapshot 4 times a second, never per event. The
run's actors never wait for the app: the event bus gives it a bounded buffer and drops what overflows, and
the app shows how many events it missed. The only thing the app can ask of the run is to pause or resume its
intake of new questions, through a small `Controls` object.

A judge run (``judgeflow judge``) is shown by the same app: its `RunStarted` says so, or the caller does
(``state=DashboardState(mode="judge")``), and the panels use the judge run's words and rows (see `widgets`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Protocol

from anyio.streams.memory import MemoryObjectReceiveStream
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Footer, Static

from judgeflow.protocol.bus import batches
from judgeflow.protocol.channels import ChannelStats
from judgeflow.protocol.events import Event, RunFinished

from .formatting import ChannelView
from .state import DashboardState
from .views import Snapshot
from .widgets import (
    SPARK_STAGES,
    AgreementPanel,
    BatchesPanel,
    CostsPanel,
    ErrorsPanel,
    HeatMapPanel,
    PipelinePanel,
    ProgressPanel,
    ProvidersPanel,
    StatusBar,
    ThroughputPanel,
    TrainingPanel,
)

__all__ = ["Controls", "DashboardApp", "HelpScreen"]

ReportSource = Callable[[], Mapping[str, Any] | None]

HELP = """\
[b]judgeflow dashboard[/b]

  [b]q[/b]        quit the dashboard (the run is cancelled; what is done stays in the run folder)
  [b]p[/b]        pause / resume the intake of new questions (work in flight finishes)
  [b]?[/b]        this help; [b]escape[/b] closes it

[b]Pipeline[/b]  in / out: items taken and passed on; now/s: the last 10 s; avg/s: since the stage started;
          busy: calls in flight on average (call latency per second of wall time);
          inbox: items waiting in the stage's inbox / its capacity; peak: the most ever waiting;
          wait: how long senders waited for room (a stage whose inbox is full is the bottleneck);
          progress and ETA use estimated totals (marked ~) until the upstream stage has finished.
[b]Models[/b]    per model: calls, failures, tokens, cost, mean latency, retries / 429s, concurrency cap / max.
[b]Cost[/b]      spent so far and projected at completion (each stage's cost per item times its total).
[b]Agreement[/b] each student against the teacher on held-out items; 95% bootstrap CIs once final.
[b]Heat map[/b]  counts of items by teacher score (rows) and student score (columns).

[b]judgeflow judge[/b]  one row per judge; progress counts verdicts (one per item and judge); the first judge
          is the reference the others' agreement and heat maps are measured against.
"""


class Controls(Protocol):
    """What the dashboard may ask of a run (a `judgeflow.flows.pipeline.PipelineRun` fits)."""

    @property
    def paused(self) -> bool: ...

    def pause(self) -> None: ...

    def resume(self) -> None: ...


class HelpScreen(ModalScreen[None]):
    """The key bindings and what each panel means."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss", "Close"),
        Binding("question_mark", "dismiss", "Close", key_display="?"),
    ]

    def compose(self) -> ComposeResult:
        yield Static(HELP, id="help")

    async def action_dismiss(self, result: None = None) -> None:
        self.dismiss(result)


class DashboardApp(App[str | None]):
    """Shows a run from its event stream; returns the run folder (if it is known) when it exits.

    ``channels`` is read at each repaint (the pipeline keeps updating the same objects). ``report`` is called
    once the run has finished, for the final confidence intervals; ``split_counts`` (the run's live
    ``{"train": n, "test": n}``) sharpens the students' progress estimate; ``clock`` exists for tests.
    """

    # Absolute, so that subclasses defined elsewhere (in tests, in an embedding app) find the stylesheet too.
    CSS_PATH = Path(__file__).with_name("dashboard.tcss")
    TITLE = "judgeflow"
    ENABLE_COMMAND_PALETTE = False

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "Quit"),
        Binding("p", "toggle_pause", "Pause/resume"),
        Binding("question_mark", "help", "Help", key_display="?"),
    ]

    def __init__(
        self,
        events: MemoryObjectReceiveStream[Event],
        channels: Sequence[ChannelStats] = (),
        *,
        controls: Controls | None = None,
        exit_when_done: bool = False,
        report: ReportSource | None = None,
        split_counts: Mapping[str, int] | None = None,
        out_dir: Path | str | None = None,
        state: DashboardState | None = None,
        refresh_hz: float = 4.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.events = events
        self.channels = channels
        self.controls = controls
        self.exit_when_done = exit_when_done
        self.report_source = report
        self.split_counts = split_counts
        self.state = state if state is not None else DashboardState()
        self.refresh_hz = refresh_hz
        self.clock = clock
        self.finished = False
        self._out_dir = None if out_dir is None else str(out_dir)
        self._mode = self.state.mode

    @property
    def out_dir(self) -> str | None:
        """The run folder, from the caller or from the run's own events."""
        return self.state.out_dir or self._out_dir

    def compose(self) -> ComposeResult:
        # The app keeps its panels: a repaint (a timer tick) may come while the help screen is on top, or while
        # the app is shutting down, when querying the active screen would not find them.
        self.status_bar = StatusBar(id="status")
        self.pipeline = PipelinePanel(id="pipeline")
        # A judge run's sparklines follow its judges, which the events name.
        self.throughput = ThroughputPanel(SPARK_STAGES if self.state.mode == "run" else (), id="throughput")
        self.progress = ProgressPanel(id="progress")
        self.training = TrainingPanel(id="training")
        self.batches = BatchesPanel(id="batches")
        self.agreement = AgreementPanel(id="agreement")
        self.heatmap = HeatMapPanel(id="heatmap")
        self.costs = CostsPanel(id="costs")
        self.providers = ProvidersPanel(id="providers")
        self.errors = ErrorsPanel(id="errors")
        yield self.status_bar
        yield self.pipeline
        with Horizontal(id="row-flow"):
            yield self.throughput
            yield self.progress
            yield self.training
            yield self.batches
        with Horizontal(id="row-scores"):
            yield self.agreement
            with Vertical(id="side"):
                yield self.heatmap
                yield self.costs
        with Horizontal(id="row-calls"):
            yield self.providers
            yield self.errors
        yield Footer()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # A judge run cannot be paused: its footer does not offer what the key would refuse.
        return not (action == "toggle_pause" and self.controls is None and self.state.mode == "judge")

    def on_mount(self) -> None:
        if self._out_dir is not None and self.state.out_dir is None:
            self.state.out_dir = self._out_dir
        self.call_after_refresh(self.repaint)
        self.set_interval(1.0 / self.refresh_hz, self.repaint)
        self.run_worker(self._consume(), name="events", group="events", exit_on_error=True)

    def on_unmount(self) -> None:
        # The worker closes the stream when it ends; this covers an app that exits before the worker started.
        self.events.close()

    async def _consume(self) -> None:
        state, clock = self.state, self.clock
        with self.events:
            async for batch in batches(self.events):
                now = clock()
                for event in batch:
                    state.fold(event, now)
                if any(isinstance(event, RunFinished) for event in batch):
                    break
        # The stream also ends without RunFinished when the bus closed after this display missed it.
        self._finish()

    def _finish(self) -> None:
        if self.finished:
            return
        self.finished = True
        self.state.stream_ended(self.clock())
        report = self.report_source() if self.report_source is not None else None
        if report is not None:
            self.state.fold_report(report)
        self.repaint()
        if self.exit_when_done:
            self.call_after_refresh(self.exit, self.out_dir)

    def snapshot(self) -> Snapshot:
        """The state as of now (with the run's split counters, if it has them)."""
        if self.split_counts is not None:
            self.state.observe_split(self.split_counts.get("train", 0), self.split_counts.get("test", 0))
        return self.state.snapshot(self.clock())

    def repaint(self) -> None:
        """Paint every panel from one snapshot."""
        snapshot = self.snapshot()
        if snapshot.mode != self._mode:
            self._mode = snapshot.mode
            self.refresh_bindings()
        channels = [ChannelView.read(stats) for stats in self.channels]
        paused = self.controls.paused if self.controls is not None else False
        self.status_bar.show(snapshot, paused=paused, channels=channels)
        self.pipeline.show(snapshot, channels)
        self.throughput.show(snapshot)
        self.progress.show(snapshot)
        self.training.show(snapshot)
        self.batches.show(snapshot)
        self.agreement.show(snapshot)
        self.heatmap.show(snapshot)
        self.costs.show(snapshot)
        self.providers.show(snapshot)
        self.errors.show(snapshot)

    async def action_quit(self) -> None:
        """Leave the dashboard, returning the run folder; the caller decides what happens to the run."""
        self.exit(self.out_dir)

    def action_toggle_pause(self) -> None:
        controls = self.controls
        if controls is None:
            self.notify("This run cannot be paused from here.", severity="warning")
            return
        if self.finished:
            self.notify("The run has finished.")
            return
        if controls.paused:
            controls.resume()
            self.notify("Resumed: new questions flow again.")
        else:
            controls.pause()
            self.notify("Paused: no new questions are taken in; work in flight finishes.")
        self.repaint()

    def action_help(self) -> None:
        if isinstance(self.screen, HelpScreen):
            self.screen.dismiss(None)
        else:
            self.push_screen(HelpScreen())
