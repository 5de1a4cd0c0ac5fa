"""The whole pipeline offline: it finishes, writes a computed report, keeps the split, and cancels cleanly."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from judgeflow import PipelineConfig, open_pipeline
from judgeflow.inputs.config import DocumentsConfig
from judgeflow.protocol import ActorFinished, ItemDone, RunFinished
from judgeflow.protocol.errors import NothingUsable

pytestmark = pytest.mark.anyio

SMALL = {"questions_per_doc": 6, "n_resamples": 200}


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


async def test_offline_pipeline_runs_end_to_end(tmp_path: Path) -> None:
    config = PipelineConfig(out_dir=tmp_path, **SMALL)  # type: ignore[arg-type]
    async with open_pipeline(config) as run:
        events = [event async for event in run.events]
        report = await run.wait()
    assert isinstance(events[-1], RunFinished)
    assert events[-1].ok
    assert all(channel.closed for channel in run.channels)

    questions = _lines(tmp_path / "questions.jsonl")
    train = {q["id"] for q in questions if q["split"] == "train"}
    test = {q["id"] for q in questions if q["split"] == "test"}
    assert train
    assert test
    assert not train & test
    assert report["n_train"] == len(train)
    assert report["n_test"] == len(test)

    judgements = _lines(tmp_path / "judgements.jsonl")
    by_judge: dict[str, set[str]] = {}
    for line in judgements:
        by_judge.setdefault(line["judge"], set()).add(line["id"])
    assert by_judge["teacher"] == train | test
    assert by_judge["student_base"] == test
    assert by_judge["student_trained"] == test

    # The fine-tuning set holds train items only, in the OpenAI chat format.
    examples = _lines(tmp_path / "train.jsonl")
    assert len(examples) == report["training"]["examples"] == len(train)
    for example in examples:
        assert [m["role"] for m in example["messages"]] == ["system", "user", "assistant"]
    held_out_questions = {q["question"] for q in questions if q["split"] == "test"}
    assert not any(any(q in m["content"] for q in held_out_questions) for e in examples for m in e["messages"])
    student = json.loads((tmp_path / "student" / "model.json").read_text(encoding="utf-8"))
    assert student["n_train"] == len(train)

    on_disk = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    assert on_disk == report
    for judge in ("student_trained", "student_base"):
        entry = report["agreement"][judge]
        assert entry["n"] == len(test)
        assert entry["unparsed"] == 0
        assert -1.0 <= entry["pearson"]["value"] <= 1.0
        low, high = entry["pearson"]["ci95"]
        assert low <= entry["pearson"]["value"] <= high
    assert "Pearson r" in (tmp_path / "report.md").read_text(encoding="utf-8")
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    for judge in ("student_trained", "student_base"):
        assert f"{judge} against teacher ({len(test)} items both scored)" in page
    difference = report["pearson_difference"]
    assert difference["n"] == len(test)
    assert difference["items_needed"] is None or difference["items_needed"] >= 1
    assert "To tell them apart at 95%" in page or "Told apart at 95%" in page or "cannot be estimated" in page


async def test_same_seed_same_report_numbers(tmp_path: Path) -> None:
    reports = []
    for name in ("a", "b"):
        config = PipelineConfig(out_dir=tmp_path / name, seed=3, **SMALL)  # type: ignore[arg-type]
        async with open_pipeline(config) as run:
            reports.append(await run.wait())
    first, second = (report["agreement"] for report in reports)
    assert first == second


async def test_leaving_the_block_mid_run_cancels_everything(tmp_path: Path) -> None:
    config = PipelineConfig(out_dir=tmp_path, **SMALL)  # type: ignore[arg-type]
    async with open_pipeline(config) as run:
        async for event in run.events:
            if isinstance(event, ItemDone) and event.actor == "answerer":
                break  # leave while the teacher and students are busy
    assert run.done
    assert run.report is None
    assert all(channel.closed for channel in run.channels)
    # The task group has exited: nothing of the pipeline is left running in this event loop.
    await anyio.lowlevel.checkpoint()


async def test_pause_holds_intake_until_resumed(tmp_path: Path) -> None:
    config = PipelineConfig(out_dir=tmp_path, **SMALL)  # type: ignore[arg-type]
    async with open_pipeline(config) as run:
        run.pause()
        assert run.paused
        with anyio.move_on_after(0.3):
            async for event in run.events:
                assert not (isinstance(event, ActorFinished) and event.actor == "retriever")
        assert not run.done
        run.resume()
        report = await run.wait()
    assert report["n_test"] > 0


async def test_an_all_local_run_over_files_reads_the_files(tmp_path: Path) -> None:
    # Local models, but the user's documents: the run must read them, not the bundled corpus.
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "harbour.md").write_text(
        "# Harbour town\n\nThe harbour town of Quillport was founded in 1702 by fishermen from the north. "
        "In 1788 a stone lighthouse was built on the eastern cliff. The railway reached Quillport in 1861, "
        "and the old fish market burned down in 1903.\n",
        encoding="utf-8",
    )
    config = PipelineConfig(
        out_dir=tmp_path / "run",
        documents=DocumentsConfig(source="files", path=docs),
        **SMALL,  # type: ignore[arg-type]
    )
    assert config.is_local
    assert not config.is_embedded_default
    # One short document gives one question, in the train split: the run reads the files and then says, loudly,
    # that it has nothing to compare the students on.
    with pytest.RaisesGroup(pytest.RaisesExc(NothingUsable, match="no held-out question"), flatten_subgroups=True):
        async with open_pipeline(config) as run:
            await run.wait()
    questions = _lines(tmp_path / "run" / "questions.jsonl")
    assert questions
    assert all(q["id"].startswith("harbour") for q in questions)
    report = json.loads((tmp_path / "run" / "report.json").read_text(encoding="utf-8"))
    assert report["failure"]["stage"] == "split"
    assert report["missing"]["agreement.student_base"] == "no question fell in the held-out split"
