"""Batch mode on the displays: `BatchProgress` folded into the dashboard's batches panel and the plain line."""

from __future__ import annotations

import io

import anyio
import pytest
from rich.console import Console

from judgeflow.protocol.bus import EventBus
from judgeflow.protocol.events import BatchProgress, ItemDone, RunFinished, RunStarted
from judgeflow.tui.app import DashboardApp
from judgeflow.tui.formatting import Palette
from judgeflow.tui.plain import PlainDisplay, ProgressState
from judgeflow.tui.state import DashboardState
from judgeflow.tui.summaries import render_batches

JUDGE = "openai:gpt-4o"


def progress(number: int, status: str, completed: int, total: int = 50_000, message: str = "") -> BatchProgress:
    part = f"judgeflow-abcd1234-openai-gpt-4o-{number:04d}.jsonl"
    return BatchProgress(JUDGE, part, f"batch_{number}", status, completed, 0, total, message)


def text(renderable: object) -> str:
    console = Console(file=io.StringIO(), width=60, color_system=None)
    console.print(renderable)
    output = console.file
    assert isinstance(output, io.StringIO)
    return output.getvalue()


def test_the_dashboard_keeps_the_last_word_on_each_batch() -> None:
    state = DashboardState(mode="judge")
    for event in (progress(1, "validating", 0), progress(2, "validating", 0), progress(1, "in_progress", 1_200)):
        state.fold(event, 1.0)
    batches = state.snapshot(2.0).batches
    assert [(view.part[-10:], view.status, view.completed) for view in batches] == [
        ("0001.jsonl", "in_progress", 1_200),
        ("0002.jsonl", "validating", 0),
    ]


def test_the_batches_panel_shows_status_counts_and_why_a_batch_failed() -> None:
    views = DashboardState(mode="judge")
    views.fold(progress(1, "in_progress", 1_200), 0.0)
    views.fold(progress(2, "failed", 0, message="line 3: The model 'x' does not exist (model_not_found)"), 0.0)
    shown = text(render_batches(views.snapshot(1.0).batches, Palette()))
    assert "openai:gpt-4o #0001" in shown
    assert "in_progress" in shown
    assert "1,200/50,000" in shown
    assert "failed" in shown
    assert "model_not_found" in shown


def test_the_plain_line_lists_each_batch() -> None:
    state = ProgressState()
    state.fold(RunStarted("out.jsonl", 0, kind="judge", n_items=100, judges={JUDGE: 100}))
    state.fold(progress(1, "completed", 60, 60))
    state.fold(progress(2, "in_progress", 10, 40))
    state.fold(ItemDone(JUDGE, "q1"))
    assert state.line() == f"{JUDGE} 1/100 | batches #0001 completed 60/60, #0002 in_progress 10/40"


@pytest.mark.anyio
async def test_the_plain_display_prints_the_batches() -> None:
    bus = EventBus()
    stream = io.StringIO()
    display = PlainDisplay(interval=0.0, stream=stream)
    events = bus.subscribe_nowait()
    bus.publish(progress(1, "validating", 0, 10))
    bus.publish(progress(1, "collected", 10, 10))
    bus.publish(RunFinished("out.jsonl", True))
    bus.close()
    with anyio.fail_after(5):
        await display.show(events)
    assert stream.getvalue().splitlines()[-1] == "batches #0001 collected 10/10"


@pytest.mark.anyio
async def test_the_batches_panel_appears_only_with_batches() -> None:
    bus = EventBus()
    app = DashboardApp(bus.subscribe_nowait(), state=DashboardState(mode="judge"))
    async with app.run_test(size=(140, 48)) as pilot:
        await pilot.pause()
        assert not displayed(app)
        bus.publish(progress(1, "in_progress", 5, 10))
        with anyio.fail_after(5):
            while not app.state.snapshot(0.0).batches:
                await pilot.pause()
        app.repaint()
        await pilot.pause()
        assert displayed(app)
        assert "in_progress" in text(app.batches.content)
        bus.close()


def displayed(app: DashboardApp) -> bool:
    return bool(app.batches.display)
