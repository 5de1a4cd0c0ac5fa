"""What `judge_file` tells its observers: the run's start with its size, and how it ended, however it ended."""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import pytest

from doubles import FunctionJudge
from judgeflow.flows.judging import judge_file
from judgeflow.inputs.errors import InputError
from judgeflow.protocol.events import Event, ItemDone, RunFinished, RunStarted
from judgeflow.protocol.messages import JudgeInput
from judgeflow.runs.store import RunStore
from judgeflow.tui.plain import ProgressState

pytestmark = pytest.mark.anyio


def write_items(path: Path, n: int) -> Path:
    rows = ({"id": f"item-{i}", "question": f"q{i}?", "reference": f"r{i}", "answer": f"a{i}"} for i in range(n))
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def score(_item: JudgeInput) -> str:
    return "Score: 4"


def fails_on_odd_items(item: JudgeInput) -> str:
    if int(item.question.removeprefix("q").removesuffix("?")) % 2:
        raise RuntimeError("provider went away")
    return "Score: 3"


async def test_a_judge_run_starts_with_its_item_count_and_judges_and_ends_ok(tmp_path: Path) -> None:
    events: list[Event] = []
    judges = [("ref", FunctionJudge(score, name="ref-model")), ("other", FunctionJudge(score, name="other-model"))]
    await judge_file(write_items(tmp_path / "items.jsonl", 12), tmp_path / "out.jsonl", judges, publish=events.append)
    started = [event for event in events if isinstance(event, RunStarted)]
    assert started == [
        RunStarted(str(tmp_path / "out.jsonl"), 0, kind="judge", n_items=12, judges={"ref": 12, "other": 12})
    ]
    first_verdict = next(i for i, event in enumerate(events) if isinstance(event, ItemDone))
    assert events.index(started[0]) < first_verdict
    assert events[-1] == RunFinished(str(tmp_path / "out.jsonl"), True)


async def test_a_bad_items_file_ends_the_run_failed_before_it_started(tmp_path: Path) -> None:
    items = tmp_path / "items.jsonl"
    items.write_text('{"id": "a", "question": "q", "reference": "r", "answer": "a"}\n{"id": "b"\n', encoding="utf-8")
    events: list[Event] = []
    with pytest.raises(InputError):
        await judge_file(items, tmp_path / "out.jsonl", [("ref", FunctionJudge(score))], publish=events.append)
    assert not [event for event in events if isinstance(event, RunStarted)]
    assert len(events) == 1
    finished = events[0]
    assert isinstance(finished, RunFinished)
    assert not finished.ok
    assert finished.message.startswith("InputError: ")
    assert "items.jsonl:2" in finished.message


async def test_a_cancelled_judge_run_ends_cancelled(tmp_path: Path) -> None:
    events: list[Event] = []
    slow = FunctionJudge(score, delay=10.0)
    with anyio.move_on_after(0.5):
        await judge_file(
            write_items(tmp_path / "items.jsonl", 4), tmp_path / "out.jsonl", [("ref", slow)], publish=events.append
        )
    assert events[-1] == RunFinished(str(tmp_path / "out.jsonl"), False, "cancelled")


async def test_a_resumed_judge_run_announces_only_what_is_left_to_judge(tmp_path: Path) -> None:
    items, out = write_items(tmp_path / "items.jsonl", 10), tmp_path / "out.jsonl"
    judges = [("ref", FunctionJudge(score)), ("flaky", FunctionJudge(fails_on_odd_items))]
    store = await RunStore.open(tmp_path, filename="out.store.sqlite")
    try:
        await judge_file(items, out, judges, store=store)
        events: list[Event] = []
        await judge_file(items, out, judges, store=store, resume=True, publish=events.append)
    finally:
        await store.aclose()
    started = next(event for event in events if isinstance(event, RunStarted))
    assert (started.n_items, dict(started.judges)) == (10, {"ref": 0, "flaky": 5})  # the failed ones are judged again
    assert events[-1] == RunFinished(str(out), True)


def test_the_plain_display_shows_each_judges_verdicts_out_of_its_total() -> None:
    state = ProgressState()
    state.fold(RunStarted("out.jsonl", 0, kind="judge", n_items=3, judges={"ref": 3, "other": 3}))
    for event in (ItemDone("ref", "a"), ItemDone("ref", "b"), ItemDone("other", "a"), ItemDone("items", "a")):
        state.fold(event)
    state.fold(RunFinished("out.jsonl", True))
    assert state.line() == "ref 2/3 | other 1/3"
