"""Items from CSV and Parquet: the same items as JSONL, the same checks, errors naming the line (CSV) or row."""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from judgeflow.inputs.errors import InputError
from judgeflow.inputs.items import check_items, iter_items, iter_numbered_items
from judgeflow.inputs.tables import PARQUET_INSTALL, iter_records, table_format

pa = pytest.importorskip("pyarrow", reason="the parquet extra: pip install -e '.[test,parquet]'")
pq = pytest.importorskip("pyarrow.parquet")

ROWS: list[dict[str, Any]] = [
    {"id": 7, "question": "When?", "reference": "In 1901.", "answer": "1901", "label": 5},
    {"id": "b", "question": "Who?", "reference": "Ada", "answer": 'Ada,\nsaid twice: "Ada"', "label": 1},
    {"id": 9, "question": "Where?", "reference": "Paris", "answer": "Lyon", "label": 2.5},
]


def _csv(path: Path, rows: list[dict[str, Any]], fields: list[str] | None = None) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields or list(rows[0]), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def _parquet(path: Path, columns: dict[str, Any], *, row_group_size: int | None = None) -> Path:
    pq.write_table(pa.table(columns), path, row_group_size=row_group_size)
    return path


def _jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def _summary(path: Path) -> list[tuple[str, str, str, str, bool | float | None]]:
    return [(a.id, a.question.question, a.question.reference, a.text, a.label) for a in iter_items(path)]


def test_the_suffix_chooses_the_format() -> None:
    assert table_format(Path("a.CSV")) == "csv"
    assert table_format(Path("a.parquet")) == "parquet"
    assert table_format(Path("a.pq")) == "parquet"
    assert table_format(Path("a.jsonl")) == "jsonl"
    assert table_format(Path("a.json")) == "jsonl"


def test_csv_parquet_and_jsonl_of_the_same_items_read_the_same(tmp_path: Path) -> None:
    jsonl = _jsonl(tmp_path / "items.jsonl", ROWS)
    table = _csv(tmp_path / "items.csv", ROWS)
    parquet = _parquet(
        tmp_path / "items.parquet",
        {
            "id": ["7", "b", "9"],  # a Parquet column has one type: ids as text here, as integers below
            **{key: [row[key] for row in ROWS] for key in ("question", "reference", "answer", "label")},
        },
    )
    expected = _summary(jsonl)
    assert expected[1][3] == 'Ada,\nsaid twice: "Ada"'
    assert _summary(table) == expected
    assert _summary(parquet) == expected
    assert check_items(table) == check_items(parquet) == 3


def test_parquet_integer_ids_and_extra_columns(tmp_path: Path) -> None:
    path = _parquet(
        tmp_path / "items.parquet",
        {
            "id": pa.array([1, 2], pa.int64()),
            "question": ["q", "q"],
            "reference": ["r", "r"],
            "answer": ["a", "b"],
            "model": ["m1", None],
            "context": [[1, 2], [3]],
        },
    )
    items = list(iter_items(path))
    assert [item.id for item in items] == ["1", "2"]
    assert [item.model for item in items] == ["m1", ""]
    assert [item.label for item in items] == [None, None]


def test_csv_line_numbers_count_the_header_blank_lines_and_multi_line_cells(tmp_path: Path) -> None:
    path = tmp_path / "items.csv"
    path.write_text(
        '\ufeffid,question,reference,answer\n1,q,r,"two\nlines"\n\n2,q,r,a\n'
        '3,q,r,"""quoted"", then\n\nmore"\n4,q,r,a\n',
        encoding="utf-8",
    )
    numbered = [(line, answer.id, answer.text) for line, answer in iter_numbered_items(path)]
    assert numbered == [(2, "1", "two\nlines"), (5, "2", "a"), (6, "3", '"quoted", then\n\nmore'), (9, "4", "a")]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"id,question,reference\n1,q,r\n", "items.csv:1: missing column 'answer' in the header"),
        (b"id,question\n1,q\n", "items.csv:1: missing columns 'reference', 'answer' in the header"),
        (b"id,question,reference,answer,id\n", "items.csv:1: the header names 'id' more than once"),
        (b"id,question,reference,answer\n1,q,r,a\n2,q,r\n", "items.csv:3: 3 cells, but the header has 4"),
        (b'id,question,reference,answer\n1,q,"r\nx",a\n2,q,r,a,b\n', "items.csv:4: 5 cells, but the header has 4"),
        (b'id,question,reference,answer\n1,q,r,a\n2,q,r,"a"b\n', "items.csv:3: bad CSV in the record"),
        (b'id,question,reference,answer\n1,q,r,a\n2,q,r,"never closed\n\n', "items.csv:3: bad CSV in the record"),
        (b"id,question,reference,answer\n1,q,r,a\n2,q,caf\xe9,a\n", "items.csv:3: not UTF-8"),
        (b"id,question,reference,answer\n1,q,r,a\n1,q,r,b\n", "items.csv:3: duplicate id '1': line 2 has it too"),
        (b"id,question,reference,answer,label\n1,q,r,a,6\n", "items.csv:2: column 'label' must be true, false"),
        (b"id,question,reference,answer,label\n1,q,r,a,maybe\n", "got 'maybe'"),
        (b"id,question,reference,answer,label\n1,q,r,a,4\n2,q,r,a,TRUE\n", "items.csv:3: a true/false label, but line"),
        (b"", "items.csv: no items: the file is empty"),
        (b"id,question,reference,answer\n", "items.csv: no items: the file is empty"),
    ],
)
def test_bad_csv_names_file_and_line(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "items.csv"
    path.write_bytes(content)
    with pytest.raises(InputError, match=re.escape(message)):
        check_items(path)


def test_csv_labels_are_read_as_json_values(tmp_path: Path) -> None:
    path = tmp_path / "items.csv"
    path.write_text("id,question,reference,answer,label\n1,q,r,a,True\n2,q,r,a,\n3,q,r,a,false\n", encoding="utf-8")
    assert [answer.label for answer in iter_items(path)] == [True, None, False]


def _columns(n: int, **overrides: list[Any]) -> dict[str, list[Any]]:
    columns: dict[str, list[Any]] = {
        "id": [f"i{k}" for k in range(n)],
        "question": ["q"] * n,
        "reference": ["r"] * n,
        "answer": ["a"] * n,
    }
    columns.update(overrides)
    return columns


@pytest.mark.parametrize(
    ("columns", "message"),
    [
        ({"id": ["1"], "question": ["q"], "reference": ["r"]}, "items.parquet: missing column 'answer'"),
        (_columns(3, answer=["a", "b", None]), "items.parquet:row 3: column 'answer' must be a string, got null"),
        (_columns(2, id=[1.0, 2.0]), "items.parquet:row 1: column 'id' must be a string or an integer, got float"),
        (_columns(3, id=["x", "y", "x"]), "items.parquet:row 3: duplicate id 'x': row 1 has it too"),
        (_columns(2, label=[4, 7]), "items.parquet:row 2: column 'label' must be true, false or a score from 1 to 5"),
        (_columns(2, label=[None, "yes"]), "items.parquet:row 2: column 'label' must be"),
        (_columns(0), "items.parquet: no items: the file is empty"),
    ],
)
def test_bad_parquet_names_file_and_row(tmp_path: Path, columns: dict[str, list[Any]], message: str) -> None:
    path = _parquet(tmp_path / "items.parquet", columns)
    with pytest.raises(InputError, match=re.escape(message)) as caught:
        check_items(path)
    if "row" in message:
        assert caught.value.unit == "row"


def test_a_file_that_is_not_parquet_or_is_missing(tmp_path: Path) -> None:
    path = tmp_path / "items.parquet"
    path.write_text("id,question\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"items\.parquet: not a Parquet file"):
        check_items(path)
    with pytest.raises(InputError, match=r"nope\.parquet: cannot open"):
        check_items(tmp_path / "nope.parquet")
    with pytest.raises(InputError, match=r"nope\.csv: cannot open"):
        check_items(tmp_path / "nope.csv")


def test_parquet_is_read_a_batch_at_a_time(tmp_path: Path) -> None:
    # 40,000 rows of 1 KiB answers in 20 row groups, the last row bad: the reader hands over its first item, and
    # its first few thousand, before it has read the row that fails, and while pyarrow holds a small part of the
    # file's 40 MiB of text (reading the table whole holds all of it).
    n = 40_000
    answers = [f"{k:06d}" + "x" * 1018 for k in range(n - 1)] + [None]
    path = _parquet(tmp_path / "items.parquet", _columns(n, answer=answers), row_group_size=2000)
    items = iter_numbered_items(path)
    first_row, first = next(items)
    assert (first_row, first.text[:6]) == (1, "000000")
    held = pa.total_allocated_bytes()
    assert held < 16 << 20, f"pyarrow holds {held} bytes after one item of a 40 MiB file"
    for row, answer in items:
        assert answer.text[:6] == f"{row - 1:06d}"
        if row == 5000:
            assert pa.total_allocated_bytes() < 16 << 20
            break
    else:
        pytest.fail("the reader stopped before row 5000")
    with pytest.raises(InputError, match=rf"items\.parquet:row {n}: column 'answer' must be a string"):
        for _ in items:
            pass


def test_one_large_row_group_is_read_in_pieces(tmp_path: Path) -> None:
    # A writer may put everything in one row group: the reader still does not load the whole table.
    n = 40_000
    answers = [f"{k:06d}" + "x" * 1018 for k in range(n)]
    path = _parquet(tmp_path / "items.parquet", _columns(n, answer=answers), row_group_size=n)
    assert pq.ParquetFile(path).metadata.num_row_groups == 1
    items = iter_numbered_items(path)
    next(items)
    held = pa.total_allocated_bytes()
    del items
    assert held < 16 << 20, f"pyarrow holds {held} bytes after one item of a 40 MiB file"


def test_csv_and_jsonl_are_read_a_line_at_a_time(tmp_path: Path) -> None:
    # The bad bytes are at the end of the file: the first item comes before the reader gets there.
    path = tmp_path / "items.csv"
    path.write_bytes(b"id,question,reference,answer\n1,q,r,a\n2,q,r,a\n" + b"3,q,r,\xff\n")
    items = iter_numbered_items(path)
    assert next(items)[1].id == "1"
    assert next(items)[1].id == "2"
    with pytest.raises(InputError, match=r"items\.csv:4: not UTF-8"):
        next(items)


def test_records_of_a_verdicts_table_keep_their_types(tmp_path: Path) -> None:
    path = _parquet(tmp_path / "v.parquet", {"id": ["a"], "probs": [[0.5, 0.5, 0.0, 0.0, 0.0]], "score": [None]})
    assert list(iter_records(path)) == [(1, {"id": "a", "probs": [0.5, 0.5, 0.0, 0.0, 0.0], "score": None})]


def test_without_pyarrow_a_parquet_file_is_one_error_naming_the_install_command(tmp_path: Path) -> None:
    path = _parquet(tmp_path / "items.parquet", _columns(1))
    code = (
        "import sys; sys.modules['pyarrow'] = None; sys.modules['pyarrow.parquet'] = None\n"
        "from pathlib import Path\nfrom judgeflow.inputs.items import check_items\n"
        f"check_items(Path({str(path)!r}))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.endswith("items.parquet: reading Parquet needs pyarrow, which is not installed: " + PARQUET_INSTALL)


def test_a_bad_row_of_a_parquet_verdicts_file_is_named_as_a_row(tmp_path: Path) -> None:
    from judgeflow.inputs.examples import read_examples

    answers = _jsonl(tmp_path / "items.jsonl", ROWS)
    verdicts = _parquet(
        tmp_path / "v.parquet",
        {"id": ["7", "b", "9"], "judge": ["t"] * 3, "status": ["ok"] * 3, "score": [4.0, 7.0, 1.0], "raw": [""] * 3},
    )
    with pytest.raises(InputError, match=re.escape("v.parquet:row 2: field 'score' must be from 1 to 5, got 7.0")):
        read_examples(verdicts, answers=answers)


def test_an_input_error_survives_pickling_with_its_row() -> None:
    import pickle

    error = InputError("items.parquet", 3, "column 'id' must be a string or an integer, got float")
    copy = pickle.loads(pickle.dumps(error))
    assert (str(copy), copy.unit, copy.line) == (str(error), "row", 3)
    assert str(copy).startswith("items.parquet:row 3: ")
