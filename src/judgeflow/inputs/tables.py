"""Reading records from JSONL, CSV or Parquet, chosen by the file's suffix, one record at a time.

Each reader yields ``(position, record)``: the record is a plain dict, as a JSON object would be, and the position
is where an error about it should point: the line of a JSONL or CSV file (a CSV's header is line 1; a record whose
quoted field spans lines is named by the line it starts on), or the row of a Parquet table (1-based;
`judgeflow.inputs.errors.InputError` says "row"). Memory does not grow with the file: JSONL and CSV are read a
line at a time, Parquet a record batch at a time (``batch_rows`` rows, the column chunks read in buffered pieces),
never as a whole table.

What a record must hold is checked by the caller (`judgeflow.inputs.items` for items to judge); a reader only checks
what its format can get wrong: bytes that are not UTF-8, bad CSV quoting, a row with too many or too few cells, a
file that is not Parquet, and the columns the caller names as ``required`` (one error naming the file).
pyarrow is an optional extra: without it, a ``.parquet`` file is one `InputError` naming the install command.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Collection, Iterator, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

from judgeflow.inputs.errors import InputError, position_unit

__all__ = [
    "PARQUET_INSTALL",
    "Format",
    "csv_label",
    "iter_csv_records",
    "iter_json_objects",
    "iter_parquet_records",
    "iter_records",
    "iter_text_lines",
    "parquet_module",
    "parse_object",
    "position_unit",
    "table_format",
]

Format = Literal["jsonl", "csv", "parquet"]
PARQUET_INSTALL = "pip install 'judgeflow[parquet]'"
BATCH_ROWS = 4096
"""Rows converted to Python objects at a time: a few MiB of text for typical items."""
READ_BUFFER = 1 << 20
"""pyarrow reads a column chunk in pieces this size, so one huge row group does not have to fit in memory."""
_CSV_FIELD_LIMIT = 2**31 - 1  # a CSV cell may be as long as a JSONL line (the csv module's default is 128 KiB)


def table_format(path: Path) -> Format:
    """``csv`` for ``.csv``, ``parquet`` for ``.parquet`` or ``.pq`` (any case), ``jsonl`` for anything else."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix in (".parquet", ".pq"):
        return "parquet"
    return "jsonl"


def iter_records(
    path: Path, *, required: Sequence[str] = (), columns: Collection[str] | None = None
) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(position, record)`` for every record of ``path``, by its format (see the module's docstring).

    ``required`` columns must be in a CSV's header or a Parquet file's schema (a JSONL record is checked by its
    caller); ``columns`` limits what a Parquet reader reads (None: every column).
    """
    kind = table_format(path)
    if kind == "csv":
        return iter_csv_records(path, required=required)
    if kind == "parquet":
        return iter_parquet_records(path, required=required, columns=columns)
    return iter_json_objects(path)


def parse_object(text: str, *, path: Path | str, line: int) -> dict[str, Any]:
    """One JSONL line as a JSON object; anything else is an `InputError` naming file and line."""
    try:
        data: Any = json.loads(text)
    except json.JSONDecodeError as error:
        raise InputError(path, line, f"invalid JSON ({error.msg} at column {error.colno})") from None
    if not isinstance(data, dict):
        raise InputError(path, line, f"expected a JSON object, got {type(data).__name__}")
    return data


def iter_text_lines(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, text) of every non-blank line, read lazily; an unreadable file or a line that is not UTF-8
    is an `InputError` naming file and line."""
    for number, text in enumerate(_utf8_lines(path), start=1):
        if text.strip():
            yield number, text


def iter_json_objects(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for every non-blank line of a JSONL file (see `parse_object`)."""
    for number, text in iter_text_lines(path):
        yield number, parse_object(text, path=path, line=number)


def _utf8_lines(path: Path) -> Iterator[str]:
    """Every line of ``path`` with its line ending, decoded as UTF-8 (a byte-order mark on line 1 dropped)."""
    try:
        handle = path.open("rb")
    except OSError as error:
        raise InputError(path, None, f"cannot open ({error.strerror})") from None
    with handle:
        for number, raw in enumerate(handle, start=1):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                raise InputError(path, number, f"not UTF-8 (byte {error.start})") from None
            yield text.removeprefix("\ufeff") if number == 1 else text


def csv_label(cell: str) -> object:
    """A CSV ``label`` cell as the JSON value it stands for: empty is no label, ``true``/``false`` (any case) a
    boolean, a number a number; anything else stays text (and `judgeflow.inputs.items.parse_label` refuses it)."""
    text = cell.strip()
    if not text:
        return None
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    try:
        number = float(text)
    except ValueError:
        return cell
    return int(number) if number.is_integer() else number


def iter_csv_records(path: Path, *, required: Sequence[str] = ()) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, record) for every row of a CSV file with a header line; cells are text, but for ``label``
    (`csv_label`). Blank lines are skipped; a row whose cell count differs from the header's is an error."""
    if csv.field_size_limit() < _CSV_FIELD_LIMIT:
        csv.field_size_limit(_CSV_FIELD_LIMIT)
    reader = csv.reader(_utf8_lines(path), strict=True)
    start = 1
    try:
        header: list[str] = []
        while not any(cell.strip() for cell in header):  # blank lines before the header are skipped too
            row = next(reader, None)
            if row is None:
                return
            header = [name.strip() for name in row]
        _check_header(path, reader.line_num, header, required)
        width = len(header)
        start = reader.line_num + 1
        for row in reader:
            line, start = start, reader.line_num + 1
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            if len(row) != width:
                raise InputError(path, line, f"{len(row)} cells, but the header has {width}")
            record: dict[str, Any] = dict(zip(header, row, strict=True))
            if "label" in record:
                record["label"] = csv_label(record["label"])
            yield line, record
    except csv.Error as error:
        raise InputError(path, start, f"bad CSV in the record that starts on this line ({error})") from None


def _check_header(path: Path, line: int, header: list[str], required: Sequence[str]) -> None:
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        raise InputError(path, line, f"the header names {_names(repeated)} more than once")
    missing = [name for name in required if name not in header]
    if missing:
        raise InputError(path, line, f"missing column{'s' if len(missing) > 1 else ''} {_names(missing)} in the header")


def _names(names: Sequence[str]) -> str:
    return ", ".join(repr(name) for name in names)


def parquet_module(path: Path, *, doing: str = "reading") -> ModuleType:
    """``pyarrow.parquet``, or an `InputError` naming ``path`` and the command that installs it."""
    try:
        import pyarrow.parquet as pq
    except ImportError:
        message = f"{doing} Parquet needs pyarrow, which is not installed: {PARQUET_INSTALL}"
        raise InputError(path, None, message) from None
    module: ModuleType = pq
    return module


def iter_parquet_records(
    path: Path,
    *,
    required: Sequence[str] = (),
    columns: Collection[str] | None = None,
    batch_rows: int = BATCH_ROWS,
) -> Iterator[tuple[int, dict[str, Any]]]:
    """(row number, record) for every row of a Parquet file, reading ``batch_rows`` rows at a time; only the
    ``columns`` the file has are read (None: all). A null cell is ``None``, as JSON's null."""
    pq = parquet_module(path)
    import pyarrow as pa

    try:
        table = pq.ParquetFile(path, buffer_size=READ_BUFFER)
    except FileNotFoundError:
        raise InputError(path, None, "cannot open (No such file or directory)") from None
    except OSError as error:
        raise InputError(path, None, f"cannot open ({error.strerror or error})") from None
    except pa.ArrowException as error:
        raise InputError(path, None, f"not a Parquet file ({error})") from None
    with table:
        names: list[str] = list(table.schema_arrow.names)
        missing = [name for name in required if name not in names]
        if missing:
            raise InputError(path, None, f"missing column{'s' if len(missing) > 1 else ''} {_names(missing)}")
        wanted = names if columns is None else [name for name in names if name in columns]
        row = 0
        # One decoding thread: the consumer is Python, one row at a time; more threads only hold more memory.
        batches = table.iter_batches(batch_size=batch_rows, columns=wanted, use_threads=False)
        while True:
            try:
                batch = next(batches, None)
            except (OSError, pa.ArrowException) as error:
                message = f"cannot read this row or the next ones ({error})"
                raise InputError(path, row + 1, message, unit="row") from None
            if batch is None:
                return
            values = [column.to_pylist() for column in batch.columns]
            for cells in zip(*values, strict=True):
                row += 1
                yield row, dict(zip(wanted, cells, strict=True))
