"""``judgeflow judge`` from CSV and Parquet items, into a Parquet output: the same verdicts as from JSONL to JSONL."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest

from judgeflow.flows.judging import JudgeSummary, open_judging
from judgeflow.inputs.config import JudgingConfig
from judgeflow.inputs.errors import InputError
from judgeflow.inputs.examples import read_examples
from judgeflow.inputs.tables import iter_records
from judgeflow.report.pages import write_judge_report

pa = pytest.importorskip("pyarrow", reason="the parquet extra: pip install -e '.[test,parquet]'")
pq = pytest.importorskip("pyarrow.parquet")

pytestmark = pytest.mark.anyio

JUDGES = ("local:teacher", "local:student-prior")


def _rows(n: int) -> list[dict[str, Any]]:
    return [
        {
            "id": i,
            "question": f"When did bridge {i} open?",
            "reference": f"It opened in {1900 + i}, after a long delay.",
            "answer": ["In {y}.", "I think it was {y}.", "It opened,\nlate."][i % 3].format(y=1900 + i),
            "label": 1 + i % 5,
        }
        for i in range(n)
    ]


def _write_all(folder: Path, rows: list[dict[str, Any]]) -> tuple[Path, Path, Path]:
    jsonl, table, parquet = folder / "items.jsonl", folder / "items.csv", folder / "items.parquet"
    jsonl.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    with table.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    pq.write_table(pa.Table.from_pylist(rows), parquet, row_group_size=7)
    return jsonl, table, parquet


async def _judge(config: JudgingConfig, *, resume: bool = False) -> JudgeSummary:
    async with open_judging(config, resume=resume) as run:
        async for _ in run.events:
            pass
        return await run.wait()


def _verdicts(path: Path) -> list[tuple[Any, ...]]:
    """Each verdict's fields but its time, in a fixed order; a Parquet row's null columns read as absent."""
    found = []
    for _, record in iter_records(path):
        kept = {key: value for key, value in record.items() if key != "at" and (value is not None or key == "score")}
        found.append(tuple(sorted(kept.items(), key=lambda pair: pair[0])))
    return sorted(found, key=repr)


async def test_csv_and_parquet_items_judged_into_parquet_give_the_jsonl_verdicts(tmp_path: Path) -> None:
    jsonl, table, parquet = _write_all(tmp_path, _rows(30))
    reference = await _judge(JudgingConfig(items=jsonl, out=tmp_path / "a.jsonl", judges=JUDGES, n_resamples=50))
    expected = _verdicts(tmp_path / "a.jsonl")
    assert len(expected) == 60
    for items, out in ((table, tmp_path / "b.parquet"), (parquet, tmp_path / "c.parquet")):
        summary = await _judge(JudgingConfig(items=items, out=out, judges=JUDGES, n_resamples=50))
        assert (summary.items, summary.lines_written, summary.labelled) == (30, 60, 30)
        assert _verdicts(out) == expected
        assert not out.with_name(out.name + ".partial").exists()
        # The report beside it reads the Parquet output and the items' labels back, as from JSONL.
        assert summary.report is not None
        assert summary.report.html == out.with_name(out.stem + ".report.html")
        assert reference.report is not None
        ours, theirs = summary.report.report, reference.report.report
        assert ours["labels"] == theirs["labels"]
        assert ours["agreement"] == theirs["agreement"]
        rebuilt = write_judge_report(out, n_resamples=50)
        assert rebuilt.report["labels"] == theirs["labels"]
        assert rebuilt.report["run"]["items"] == str(items.resolve())


async def test_resume_into_a_parquet_output_writes_every_verdict_once(tmp_path: Path) -> None:
    _, table, _ = _write_all(tmp_path, _rows(12))
    config = JudgingConfig(items=table, out=tmp_path / "out.parquet", judges=JUDGES, n_resamples=50)
    await _judge(config)
    first = _verdicts(config.out)
    summary = await _judge(config, resume=True)
    assert summary.lines_written == 24  # the earlier verdicts written again, none judged twice
    assert _verdicts(config.out) == first


async def test_a_bad_row_stops_the_run_before_anything_is_written(tmp_path: Path) -> None:
    rows = _rows(5)
    path = tmp_path / "items.parquet"
    pq.write_table(pa.Table.from_pylist([*rows, {**rows[0], "id": 99, "answer": None}]), path)
    out = tmp_path / "out.parquet"
    message = r"items\.parquet:row 6: column 'answer' must be a string, got null"
    with pytest.RaisesGroup(pytest.RaisesExc(InputError, match=message), flatten_subgroups=True):
        await _judge(JudgingConfig(items=path, out=out, judges=JUDGES))
    assert not out.exists()


async def test_a_parquet_output_is_read_back_for_distillation_as_its_jsonl_is(tmp_path: Path) -> None:
    jsonl, table, parquet = _write_all(tmp_path, _rows(9))
    await _judge(JudgingConfig(items=jsonl, out=tmp_path / "a.jsonl", judges=JUDGES[:1]))
    await _judge(JudgingConfig(items=parquet, out=tmp_path / "b.parquet", judges=JUDGES[:1]))
    expected = read_examples(tmp_path / "a.jsonl", answers=jsonl)
    for answers in (jsonl, table, parquet):
        found = read_examples(tmp_path / "b.parquet", answers=answers)
        assert sorted(found.examples, key=lambda e: e.id) == sorted(expected.examples, key=lambda e: e.id)
        assert (found.kind, found.teacher) == ("judgements", "local:teacher")
