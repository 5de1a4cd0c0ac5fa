"""The dashboard app: renderers without an app, Pilot at a fixed size, a golden screenshot, and a real run.

The scripted tests feed a seeded list of events through a real `EventBus` and give the app a fake clock, so what
the screen shows is the same on every run. The golden SVG lives in ``tests/tui/snapshots/``; after a deliberate
change of the dashboard's look, regenerate it with
``JUDGEFLOW_UPDATE_SNAPSHOTS=1 pytest tests/tui/test_dashboard_app.py`` and review the new picture before committing it.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import random
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from rich.console import Console, RenderableType
from textual.color import Color
from textual.pilot import Pilot
from textual.widgets import Sparkline, Static

from judgeflow.core.metrics import METRICS
from judgeflow.flows.pipeline import open_pipeline
from judgeflow.inputs.config import PipelineConfig
from judgeflow.protocol.bus import EventBus
from judgeflow.protocol.channels import ChannelStats
from judgeflow.protocol.events import (
    ActorFinished,
    ActorStarted,
    CallFinished,
    CallRetry,
    ConcurrencyChanged,
    Event,
    ItemDone,
    ItemFailed,
    OutputFallback,
    ReplyRead,
    RunFinished,
    RunStarted,
    ScoreUpdate,
    TrainingStatus,
)
from judgeflow.protocol.messages import Usage
from judgeflow.tui import DashboardApp, run_with_dashboard
from judgeflow.tui.app import Controls, HelpScreen
from judgeflow.tui.formatting import ChannelView, Palette, bar, fmt_duration, fmt_usd
from judgeflow.tui.scores import render_agreement_panel, render_heatmaps
from judgeflow.tui.state import DashboardState
from judgeflow.tui.tables import render_pipeline
from judgeflow.tui.views import HeatMapView
from judgeflow.tui.widgets import (
    AgreementPanel,
    CostsPanel,
    ErrorsPanel,
    HeatMapPanel,
    PipelinePanel,
    ProgressPanel,
    ProvidersPanel,
    StatusBar,
    TrainingPanel,
)

SIZE = (140, 48)
SNAPSHOTS = Path(__file__).parent / "snapshots"
T0 = 1000.0
OUT_DIR = "runs/scripted"


class FakeClock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class WatchedApp(DashboardApp):
    """Tells the test when the app decided to exit by itself."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.exited = anyio.Event()

    def exit(self, result: str | None = None, return_code: int = 0, message: RenderableType | None = None) -> None:
        super().exit(result, return_code, message)
        self.exited.set()


def on_help(app: DashboardApp) -> bool:
    return isinstance(app.screen, HelpScreen)


def is_paused(controls: Controls) -> bool:
    return controls.paused


class FakeControls:
    def __init__(self) -> None:
        self.paused = False
        self.calls: list[str] = []

    def pause(self) -> None:
        self.calls.append("pause")
        self.paused = True

    def resume(self) -> None:
        self.calls.append("resume")
        self.paused = False


def render_text(renderable: RenderableType | object, width: int) -> str:
    console = Console(width=width, file=io.StringIO(), record=True, color_system=None, legacy_windows=False)
    console.print(renderable)
    return console.export_text()


def shown(widget: Static) -> str:
    """What a panel shows, as plain text at its current width."""
    return render_text(widget.content, max(widget.content_size.width, 40))


def scripted_events(seed: int = 7) -> list[tuple[float, list[Event]]]:
    """A small run, second by second: 4 documents, 16 questions, a paid teacher with one retry and one failure."""
    rng = random.Random(seed)
    script: list[tuple[float, list[Event]]] = [
        (
            T0,
            [
                RunStarted(OUT_DIR, 4),
                *(
                    ActorStarted(name, workers)
                    for name, workers in [
                        ("scorer", 1),
                        ("trainer", 1),
                        ("student_trained", 1),
                        ("student_base", 1),
                        ("teacher", 8),
                        ("answerer", 4),
                        ("retriever", 2),
                        ("question_writer", 2),
                    ]
                ),
            ],
        )
    ]
    held_out = [f"d{doc}-q{q}" for doc in range(4) for q in range(4) if (doc + q) % 3 == 0]
    for second in range(1, 9):
        events: list[Event] = []
        doc = second - 1
        if doc < 4:
            events.append(CallFinished("question_writer", "local-writer", 0.05))
            events += [ItemDone("question_writer", f"d{doc}-q{q:03d}") for q in range(4)]
            # Five replies read per document, one of them unusable: a parse rate of 80%.
            events += [ReplyRead("question_writer", "local-writer", True) for _ in range(4)]
            events.append(ReplyRead("question_writer", "local-writer", False, "no question/answer pair found"))
        if 1 <= doc <= 4:
            for q in range(4):
                item = f"d{doc - 1}-q{q}"
                events.append(ItemDone("retriever", item))
                events.append(CallFinished("answerer", "gpt-4o-mini", rng.uniform(0.2, 0.6), Usage(400, 60), 0.0002))
                events.append(ItemDone("answerer", item))
        if 2 <= doc <= 5:
            for q in range(4):
                item = f"d{doc - 2}-q{q}"
                if item == "d1-q2":
                    events.append(CallFinished("teacher", "gpt-4o", 30.0, ok=False))
                    events.append(ItemFailed("teacher", item, "APITimeoutError: Request timed out after 30 s"))
                    continue
                events.append(CallFinished("teacher", "gpt-4o", rng.uniform(0.8, 1.6), Usage(900, 120), 0.004))
                events.append(ReplyRead("teacher", "gpt-4o", True))
                events.append(ItemDone("teacher", item))
                if item in held_out:
                    events.append(ReplyRead("student_base", "local-student", True))
                    events.append(ItemDone("student_base", item))
        if second == 3:
            events.append(OutputFallback("teacher", "gpt-4o", "http://127.0.0.1:8000/v1/", "logprobs", "json_schema"))
        if second == 4:
            events.append(CallRetry("openai", "chat", "gpt-4o", 1, 2.0, "rate_limited", "429"))
            events.append(ConcurrencyChanged("openai", "chat", "gpt-4o", 4, 8))
        if second == 6:
            events += [ActorFinished("question_writer", 4, 0, 0), ActorFinished("retriever", 16, 16, 0)]
            events.append(TrainingStatus("student_trained", "training", "9 examples, backend local"))
        if second in (5, 7):
            n = 2 if second == 5 else 5
            metrics = {name: round(rng.uniform(0.2, 0.9), 3) for name in METRICS}
            events.append(ScoreUpdate("student_base", "teacher", n, 1, 0, metrics))
        script.append((T0 + second + 0.5, events))
    return script


def scripted_pairs(seed: int = 7) -> list[tuple[str, float, float]]:
    rng = random.Random(seed + 1)
    pairs = []
    for _ in range(40):
        teacher = rng.randint(1, 5)
        pairs.append(("student_base", float(teacher), float(min(5, max(1, teacher + rng.choice([-2, -1, 0, 0, 1]))))))
    return pairs


async def feed(pilot: Pilot[str | None], bus: EventBus, clock: FakeClock, app: DashboardApp) -> None:
    """Publish each second's events at its time and wait until the app has folded them."""
    folded = app.state.events
    for now, events in scripted_events():
        clock.now = now
        for event in events:
            bus.publish(event)
        folded += len(events)
        while app.state.events < folded:
            await pilot.pause()
    for judge, teacher, student in scripted_pairs():
        app.state.fold_pair(judge, teacher, student)
    clock.now = T0 + 9.0
    app.repaint()
    await pilot.pause()


@pytest.fixture
def bus() -> Iterator[EventBus]:
    bus = EventBus()
    yield bus
    bus.close()


def scripted_app(bus: EventBus, **options: Any) -> tuple[WatchedApp, FakeClock]:
    clock = FakeClock()
    channels = [
        ChannelStats("teacher.inbox", 16, sent=40, peak=16, wait_s=2.5),
        ChannelStats("scores", 4, sent=3, peak=1),
    ]
    app = WatchedApp(bus.subscribe_nowait(), channels, clock=clock, **options)
    return app, clock


# -- renderers, without an app -----------------------------------------------------------------------------------


def test_formatting_helpers() -> None:
    assert [fmt_duration(s) for s in (None, 0.4, 42, 723, 3723)] == ["—", "0:00", "0:42", "12:03", "1:02:03"]
    assert [fmt_usd(v) for v in (None, 0, 0.01234, 12.5)] == ["—", "$0", "$0.0123", "$12.50"]
    assert bar(0.5, 4) == "██░░"
    assert bar(None, 3) == "···"
    assert bar(1.7, 2) == "██"
    assert bar(1 / 16, 2) == "▏░"


def test_agreement_renders_intervals_when_final() -> None:
    state = DashboardState()
    metrics = dict.fromkeys(METRICS, 0.5)
    state.fold(ScoreUpdate("student_base", "teacher", 12, 1, 2, metrics), 0.0)
    live = render_text(render_agreement_panel(state.snapshot(0.0).agreement, None, Palette()), 100)
    assert "0.500" in live
    assert "[" not in live
    assert "12" in live
    entry = {name: {"value": 0.5, "ci95": [0.25, 0.75]} for name in METRICS}
    state.fold_report({"reference_judge": "teacher", "agreement": {"student_base": {**entry, "n": 12}}})
    final = render_text(render_agreement_panel(state.snapshot(0.0).agreement, None, Palette()), 100)
    assert "student_base (final)" in final
    assert "0.500 [0.250, 0.750]" in final


@pytest.mark.parametrize("peak", [25, 351, 4_821, 12_345, 1_234_567])
def test_heat_map_columns_widen_with_the_largest_count(peak: int) -> None:
    counts = ((5, 0, 0, 0, 0), (0, 0, 0, 0, 0), (0, 12, 0, 3, 0), (0, 0, 40, 1_200, 0), (351, 621, 741, 0, peak))
    view = HeatMapView("student_trained", counts, sum(map(sum, counts)), max(map(max, counts)))
    small = HeatMapView("student_base", ((1, 0, 0, 0, 2),) * 5, 15, 2)
    text = render_text(render_heatmaps([view, small], Color(0, 0, 0), Color(255, 255, 255), Palette()), 120)
    rows = {line.split()[0]: line.split() for line in text.splitlines()[3:8]}
    for level, row in rows.items():
        # Each count stands alone (thousands separated): the six cells of the map on the left, then the other.
        expected = [f"{c:,}" if c else "·" for c in counts[int(level) - 1]]
        assert row[1:6] == expected
        assert row[6:] == [level, "1", "·", "·", "·", "2"]
    lines = text.splitlines()[2:8]
    assert lines[0].split() == ["T╲S", "1", "2", "3", "4", "5", "T╲S", "1", "2", "3", "4", "5"]
    ends = [[m.end() for m in re.finditer(r"\S+", line)][:6] for line in lines]
    assert all(row[1:] == ends[0][1:] for row in ends)  # every count right-aligned under its score


def test_pipeline_shows_each_actors_inbox_and_other_channels() -> None:
    state = DashboardState()
    state.fold(ActorStarted("teacher", 8), 0.0)
    channels = [ChannelView("teacher.inbox", 16, 16, 16, 40, 2.5), ChannelView("scores", 4, 1, 2, 9, 0.0)]
    text = render_text(render_pipeline(state.snapshot(1.0).actors, channels, Palette()), 140)
    assert "16/16" in text
    assert "2.5s" in text
    assert "other channels: scores 1/4 (peak 2)" in text


# -- Pilot ----------------------------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_panels_show_the_numbers_of_the_scripted_run(bus: EventBus) -> None:
    app, clock = scripted_app(bus)
    async with app.run_test(size=SIZE) as pilot:
        await feed(pilot, bus, clock, app)
        pipeline = shown(app.query_one(PipelinePanel))
        teacher_row = next(line for line in pipeline.splitlines() if "teacher" in line)
        assert teacher_row.split()[2:6] == ["8", "16", "15", "1"]  # workers, in, out, failed
        assert "0/16" in teacher_row
        writer_row = next(line for line in pipeline.splitlines() if "question_writer" in line)
        assert writer_row.split()[3:5] == ["4", "16"]
        assert "100%" in writer_row

        models = shown(app.query_one(ProvidersPanel))
        gpt_row = next(line for line in models.splitlines() if "gpt-4o " in line)
        # calls, failed, tokens in/out, cost, mean latency, retries/429s, concurrency
        assert gpt_row.split()[1:4] == ["16", "1", "13.5k"]
        assert "1/1" in gpt_row
        assert "4/8" in gpt_row
        costs = shown(app.query_one(CostsPanel))
        assert "$0.0632" in costs  # 15 teacher calls at $0.004 and 16 answerer calls at $0.0002

        errors = shown(app.query_one(ErrorsPanel))
        assert "1 failed item(s)" in errors
        assert "d1-q2" in errors
        assert "APITimeoutError" in errors
        agreement = shown(app.query_one(AgreementPanel))
        assert "student_base" in agreement
        assert "(final)" not in agreement
        heatmap = shown(app.query_one(HeatMapPanel))
        assert "n 40" in heatmap
        training = shown(app.query_one(TrainingPanel))
        assert "training" in training
        assert "9 examples" in training
        progress = shown(app.query_one(ProgressPanel))
        assert "elapsed 0:09" in progress.replace("  ", " ").replace("  ", " ")
        status = shown(app.query_one(StatusBar))
        assert "running" in status
        assert OUT_DIR in status
        spark = app.query_one("#spark-teacher", Sparkline)
        assert spark.data is not None
        assert max(spark.data) == 4


@pytest.mark.anyio
async def test_p_pauses_and_resumes_through_the_controls(bus: EventBus) -> None:
    controls = FakeControls()
    app, _ = scripted_app(bus, controls=controls)
    async with app.run_test(size=SIZE) as pilot:
        bus.publish(RunStarted(OUT_DIR, 1))
        await pilot.pause()
        await pilot.press("p")
        assert is_paused(controls)
        assert controls.calls == ["pause"]
        assert "paused" in shown(app.query_one(StatusBar))
        assert app.query_one(StatusBar).has_class("-paused")
        await pilot.press("p")
        assert not is_paused(controls)
        assert controls.calls == ["pause", "resume"]
        assert "running" in shown(app.query_one(StatusBar))


@pytest.mark.anyio
async def test_p_without_controls_changes_nothing(bus: EventBus) -> None:
    app, _ = scripted_app(bus)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("p")
        await pilot.pause()
        assert app.is_running
        assert "paused" not in shown(app.query_one(StatusBar))
        assert not app.query_one(StatusBar).has_class("-paused")
        assert [n.message for n in app._notifications] == ["This run cannot be paused from here."]


@pytest.mark.anyio
async def test_question_mark_opens_help_and_escape_closes_it(bus: EventBus) -> None:
    app, _ = scripted_app(bus)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("question_mark")
        assert on_help(app)
        assert "pause / resume" in render_text(app.screen.query_one("#help", Static).content, 110)
        await pilot.press("escape")
        assert not on_help(app)
        await pilot.press("question_mark")
        await pilot.press("question_mark")
        assert not on_help(app)


@pytest.mark.anyio
async def test_q_exits_and_returns_the_run_folder(bus: EventBus) -> None:
    app, _ = scripted_app(bus)
    async with app.run_test(size=SIZE) as pilot:
        bus.publish(RunStarted(OUT_DIR, 1))
        while app.state.out_dir is None:
            await pilot.pause()
        await pilot.press("q")
        await pilot.pause()
    assert app.return_value == OUT_DIR
    assert not app.finished  # the user quit a run that was still going


@pytest.mark.anyio
async def test_finished_banner_stays_until_q(bus: EventBus) -> None:
    app, _ = scripted_app(bus, report=lambda: None)
    async with app.run_test(size=SIZE) as pilot:
        bus.publish(RunStarted(OUT_DIR, 1))
        bus.publish(RunFinished(OUT_DIR, ok=True))
        bus.close()
        while not app.finished:
            await pilot.pause()
        await pilot.pause(0.3)  # a repaint or two later, the app is still there
        assert app.is_running
        assert "finished — press q to exit" in shown(app.query_one(StatusBar))
        assert app.query_one(StatusBar).has_class("-finished")
        await pilot.press("q")
    assert app.return_value == OUT_DIR


@pytest.mark.anyio
async def test_exit_when_done_exits_by_itself_even_if_the_end_was_missed(bus: EventBus) -> None:
    app, _ = scripted_app(bus, exit_when_done=True)
    async with app.run_test(size=SIZE):
        bus.publish(RunStarted(OUT_DIR, 1))
        bus.close()  # the stream ends without RunFinished, as when this display missed it
        with anyio.fail_after(10):
            await app.exited.wait()
    assert app.finished
    assert app.return_value == OUT_DIR


@pytest.mark.anyio
async def test_a_slow_display_is_told_what_it_missed(bus: EventBus) -> None:
    app = DashboardApp(bus.subscribe_nowait(buffer=8), clock=FakeClock())
    async with app.run_test(size=SIZE) as pilot:
        for i in range(100):  # published without yielding: the app cannot keep up, the publisher never waits
            bus.publish(ItemDone("teacher", f"q{i}"))
        while app.state.events < 8:
            await pilot.pause()
        bus.publish(ItemDone("teacher", "last"))  # preceded by Missed(92), now that there is room again
        while app.state.events < 10:
            await pilot.pause()
        app.repaint()
        teacher = app.state.snapshot(0.0).actor("teacher")
        assert teacher is not None
        assert app.state.missed > 80
        assert teacher.items_out + app.state.missed == 101
        assert f"missed {app.state.missed}" in shown(app.query_one(StatusBar))


# -- golden screenshot -------------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_scripted_dashboard_matches_the_golden_screenshot(bus: EventBus, tmp_path: Path) -> None:
    app, clock = scripted_app(bus, controls=FakeControls())
    async with app.run_test(size=SIZE) as pilot:
        await feed(pilot, bus, clock, app)
        await pilot.pause()
        svg = app.export_screenshot(title="judgeflow dashboard (scripted)")
    golden = SNAPSHOTS / "dashboard_scripted.svg"
    if os.environ.get("JUDGEFLOW_UPDATE_SNAPSHOTS"):
        golden.parent.mkdir(exist_ok=True)
        golden.write_text(svg, encoding="utf-8")
    assert golden.exists(), f"no golden screenshot: run with JUDGEFLOW_UPDATE_SNAPSHOTS=1 to create {golden}"
    if svg != golden.read_text(encoding="utf-8"):
        actual = tmp_path / golden.name
        actual.write_text(svg, encoding="utf-8")
        pytest.fail(
            f"the dashboard looks different from {golden} (now: {actual}); if the change is intended, "
            "regenerate with JUDGEFLOW_UPDATE_SNAPSHOTS=1 and review the picture"
        )


# -- the real pipeline ---------------------------------------------------------------------------------------------


def agreement_cells(report: dict[str, object]) -> list[str]:
    agreement = report["agreement"]
    assert isinstance(agreement, dict)
    cells = []
    for entry in agreement.values():
        for metric in METRICS:
            value, ci = entry[metric]["value"], entry[metric]["ci95"]
            shown_value = "n/a" if value is None else f"{value:.3f}"
            cells.append(shown_value if ci is None else f"{shown_value} [{ci[0]:.3f}, {ci[1]:.3f}]")
    return cells


@pytest.mark.anyio
async def test_real_pipeline_under_the_dashboard_shows_the_reported_agreement(tmp_path: Path) -> None:
    config = PipelineConfig(questions_per_doc=4, n_resamples=200, out_dir=tmp_path)
    async with open_pipeline(config) as run:
        app = WatchedApp(
            run.events,
            run.channels,
            controls=run,
            exit_when_done=True,
            report=lambda: run.report,
            split_counts=run.counts,
            out_dir=run.out_dir,
        )
        async with app.run_test(size=SIZE):
            panel = app.query_one(AgreementPanel)
            with anyio.fail_after(60):
                await app.exited.wait()
        assert run.done
    report = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    text = render_text(panel.content, 78)
    for cell in agreement_cells(report):
        assert cell in text
    for judge, entry in report["agreement"].items():
        assert f"{judge} (final)" in text
        n_row = next(line for line in text.splitlines() if line.split()[:1] == ["n"])
        assert str(entry["n"]) in n_row.split()
    assert app.return_value == str(tmp_path)
    assert app.state.snapshot(0.0).status == "finished"


@pytest.mark.anyio
async def test_run_with_dashboard_runs_next_to_the_pipeline_with_textuals_task_factory(tmp_path: Path) -> None:
    loop = asyncio.get_running_loop()
    factory = loop.get_task_factory()
    try:
        config = PipelineConfig(questions_per_doc=2, n_resamples=50, out_dir=tmp_path)
        with anyio.fail_after(60):
            async with open_pipeline(config) as run:
                await run_with_dashboard(run, exit_when_done=True, headless=True, size=SIZE)
                assert run.done  # the app ran in this loop (run_async installs the eager task factory) until the end
                report = await run.wait()
        assert report["n_test"] > 0
    finally:
        loop.set_task_factory(factory)


# -- a judge run ---------------------------------------------------------------------------------------------------

JUDGE_NAMES = ("openai:gpt-4o", "local:teacher")


def judge_events(seconds: int = 10, per_second: int = 10) -> list[tuple[float, list[Event]]]:
    """What `judge_file` publishes for 300 items and two judges, second by second (ScoreUpdates left out)."""
    start: list[Event] = [
        RunStarted("out.jsonl", 0, kind="judge", n_items=300, judges=dict.fromkeys(JUDGE_NAMES, 300)),
        *(ActorStarted(name, 32) for name in JUDGE_NAMES),
        *(ActorStarted(name, 1) for name in ("writer", "scorer", "items")),
    ]
    script = [(T0, start)]
    for second in range(1, seconds + 1):
        events: list[Event] = []
        for i in range(per_second):
            item = f"item-{second}-{i}"
            events.append(CallFinished("openai:gpt-4o", "gpt-4o", 0.3, Usage(300, 8), 0.001))
            events += [ItemDone(name, item) for name in JUDGE_NAMES]
        script.append((T0 + second, events))
    return script


def test_pipeline_table_of_a_judge_run_leaves_out_the_empty_inbox_columns() -> None:
    state = DashboardState()
    state.fold(RunStarted("out.jsonl", 0, kind="judge", n_items=10, judges={"j": 10}), 0.0)
    state.fold(ItemDone("j", "a"), 0.5)
    actors = state.snapshot(1.0).actors
    header = render_text(render_pipeline(actors, [], Palette(), judging=True), 140).splitlines()[0].split()
    assert header[0] == "judge"
    assert "inbox" not in header
    assert "progress" in header
    with_channels = render_text(render_pipeline(actors, [ChannelView("j.inbox", 8, 3, 5, 9, 0.0)], Palette()), 140)
    assert "inbox" in with_channels.splitlines()[0].split()


@pytest.mark.anyio
async def test_the_judge_dashboard_shows_judges_verdicts_and_no_training(bus: EventBus) -> None:
    clock = FakeClock()
    app = WatchedApp(bus.subscribe_nowait(), clock=clock, exit_when_done=True, state=DashboardState(mode="judge"))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        # Before the run starts (the items file is being checked): judge words already, no pipeline stages.
        assert "checking the items" in shown(app.query_one(StatusBar))
        assert not app.throughput.stages
        assert not app.training.display
        assert app.check_action("toggle_pause", ()) is False  # nothing to pause: the footer does not offer it

        folded = app.state.events
        for now, events in judge_events():
            clock.now = now
            for event in events:
                bus.publish(event)
            folded += len(events)
            while app.state.events < folded:
                await pilot.pause()
        clock.now = T0 + 10.5
        app.repaint()
        await pilot.pause()

        status = shown(app.query_one(StatusBar))
        assert "● judging" in status
        assert "out out.jsonl" in status
        pipeline = app.query_one(PipelinePanel)
        assert pipeline.border_title == "Judges"
        rows = [line.split()[1] for line in shown(pipeline).splitlines()[1:] if line.strip()]
        assert rows == list(JUDGE_NAMES)  # not the quiet items, writer and scorer
        assert app.throughput.stages == JUDGE_NAMES
        sparklines = list(app.throughput.query(Sparkline))
        assert len(sparklines) == 2
        assert max(sparklines[0].data or [0]) == 10  # openai:gpt-4o, 10 verdicts a second
        progress = shown(app.query_one(ProgressPanel))
        assert "verdicts 200 / 600" in progress
        assert "300 in the file, 2 judges" in progress
        assert " 33%" in progress
        assert "ETA      0:" in progress  # about 20 s left
        assert not app.training.display
        assert app.query_one(AgreementPanel).border_title == "Agreement with the reference judge"
        assert app.query_one(HeatMapPanel).border_title == "Reference × judge scores"

        bus.publish(RunFinished("out.jsonl", ok=True))
        with anyio.fail_after(10):
            await app.exited.wait()
    assert app.finished
    assert app.return_value == "out.jsonl"
