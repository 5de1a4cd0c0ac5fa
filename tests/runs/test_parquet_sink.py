"""A Parquet verdicts file holds what the JSONL lines hold, a row group at a time, and appears only when complete."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from judgeflow.inputs.tables import iter_records
from judgeflow.protocol.messages import Answer, Judgement, Question, Usage
from judgeflow.protocol.verdicts import Failed, Scored, Unparsed
from judgeflow.runs.folder import JsonlSink
from judgeflow.runs.parquet_sink import VERDICT_COLUMNS, ParquetSink, open_verdict_sink
from judgeflow.runs.records import judgement_record

pa = pytest.importorskip("pyarrow", reason="the parquet extra: pip install -e '.[test,parquet]'")
pq = pytest.importorskip("pyarrow.parquet")


def _judgement(item: str, verdict: Scored | Unparsed | Failed, **extra: Any) -> Judgement:
    answer = Answer(Question(item, "q", "r", "test"), "a", "")
    raw = getattr(verdict, "raw", "")
    return Judgement(answer, "openai:gpt-4o", "gpt-4o", verdict, raw, **extra)


RECORDS = [
    judgement_record(judgement, with_split=False)
    for judgement in (
        _judgement("a", Scored(4.0, "fine", "4\nfine"), usage=Usage(12, 3), at=1700000000.125),
        _judgement("b", Scored(3.4, "", '{"score": 3}', (0.1, 0.1, 0.2, 0.4, 0.2)), at=1700000001.5),
        _judgement("c", Unparsed("I would rather not say", "no score found")),
        _judgement("d", Failed("HTTP 500 after 3 tries")),
        _judgement("é", Scored(1.0, "", "1")),
    )
]


def _without_nulls(record: dict[str, Any], like: dict[str, Any]) -> dict[str, Any]:
    """A Parquet row has every column; a JSONL line only its fields (``score`` is null in both when unscored)."""
    return {key: value for key, value in record.items() if value is not None or key in like}


def test_every_field_a_verdict_line_can_hold_has_a_column() -> None:
    keys = set().union(*(record.keys() for record in RECORDS))
    assert keys == set(VERDICT_COLUMNS)


def test_rows_read_back_as_the_jsonl_lines(tmp_path: Path) -> None:
    out, lines = tmp_path / "v.parquet", tmp_path / "v.jsonl"
    with open_verdict_sink(out) as sink, open_verdict_sink(lines) as jsonl:
        assert isinstance(sink, ParquetSink)
        assert isinstance(jsonl, JsonlSink)
        for record in RECORDS:
            sink.write_record(record, json.dumps(record))
            jsonl.write_record(record, json.dumps(record))
    assert sink.lines == jsonl.lines == len(RECORDS)
    rows = [record for _, record in iter_records(out)]
    expected = [record for _, record in iter_records(lines)]
    assert [_without_nulls(row, line) for row, line in zip(rows, expected, strict=True)] == expected
    assert rows[1]["probs"] == [0.1, 0.1, 0.2, 0.4, 0.2]
    assert rows[1]["likely_score"] == 4
    assert rows[0]["usage"] == {"input_tokens": 12, "output_tokens": 3}


def test_rows_are_written_a_row_group_at_a_time(tmp_path: Path) -> None:
    out = tmp_path / "v.parquet"
    sink = ParquetSink(out, row_group_rows=100)
    with sink:
        for n in range(250):
            sink.write({**RECORDS[0], "id": str(n)})
            if n == 150:
                # Two row groups are on disk, under the temporary name; nothing is named as the output yet.
                assert not out.exists()
                assert sink.partial.stat().st_size > 0
    metadata = pq.ParquetFile(out).metadata
    assert [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)] == [100, 100, 50]
    assert not sink.partial.exists()
    assert [record["id"] for _, record in iter_records(out)] == [str(n) for n in range(250)]


def _write_then_fail(sink: ParquetSink, records: list[dict[str, Any]]) -> None:
    with sink:
        for record in records:
            sink.write(record)
        raise RuntimeError("stop")


def test_an_error_leaves_no_file_named_as_the_output_and_an_earlier_one_intact(tmp_path: Path) -> None:
    out = tmp_path / "v.parquet"
    sink = ParquetSink(out, row_group_rows=2)
    with pytest.raises(RuntimeError, match="stop"):
        _write_then_fail(sink, RECORDS)
    assert not out.exists()
    assert not sink.partial.exists()
    with ParquetSink(out) as sink:
        sink.write(RECORDS[0])
    with pytest.raises(RuntimeError, match="stop"):
        _write_then_fail(ParquetSink(out), RECORDS[1:2])
    assert [record["id"] for _, record in iter_records(out)] == ["a"]


def test_a_field_with_no_column_is_refused(tmp_path: Path) -> None:
    sink = ParquetSink(tmp_path / "v.parquet")
    with pytest.raises(ValueError, match="no Parquet column: \\['novel'\\]"):
        sink.write({**RECORDS[0], "novel": 1})
    sink.discard()
