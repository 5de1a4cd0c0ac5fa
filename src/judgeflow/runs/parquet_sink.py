"""A judge run's verdicts as a Parquet file (``--out OUT.parquet``): the JSONL lines' fields as columns.

Every field a verdict line can hold (`judgeflow.runs.records.judgement_record`) is a column; a field a line lacks
is null (a scored verdict has no ``reason``, a reply-mode one no ``probs``). Rows are buffered and written as one
row group at a time, so memory is bounded by a row group, not by the file.

The file is written under a temporary name beside the output (``OUT.parquet.partial``) and renamed to the output
only when the run ends normally, after an fsync: a crash, a kill or an error never leaves a half-written file
named as the output (Parquet keeps its index at the end, so a half file cannot be read anyway). Nothing is lost
meanwhile: every verdict is in the run store before it reaches a sink, and ``--resume`` writes them all again.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

from judgeflow.inputs.tables import parquet_module, table_format
from judgeflow.runs.folder import JsonlSink

__all__ = ["VERDICT_COLUMNS", "ParquetSink", "VerdictSink", "open_verdict_sink"]

VERDICT_COLUMNS = (
    "id",
    "judge",
    "model",
    "score",
    "status",
    "raw",
    "probs",
    "likely_score",
    "reason",
    "error",
    "usage",
    "at",
)
"""The columns, in the order of a verdict line's keys."""

ROW_GROUP_ROWS = 20_000
ROW_GROUP_BYTES = 16 << 20  # of text: a row group of long replies is cut sooner


class VerdictSink(Protocol):
    """Where a judge run writes its verdicts: a JSONL file or a Parquet file."""

    path: Path
    lines: int

    def write(self, record: dict[str, Any]) -> None: ...

    def write_record(self, record: dict[str, Any], text: str) -> None: ...

    def __enter__(self) -> VerdictSink: ...

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...


def open_verdict_sink(path: Path) -> VerdictSink:
    """A `ParquetSink` for ``.parquet`` (or ``.pq``), a `JsonlSink` for anything else."""
    return ParquetSink(path) if table_format(path) == "parquet" else JsonlSink(path)


class ParquetSink:
    """Writes verdict records to ``path`` as Parquet, a row group at a time, renamed into place on a clean exit.

    ``lines`` counts the rows written (the name matches `JsonlSink`'s). Leaving the ``with`` block with an error
    discards the temporary file and leaves ``path`` as it was.
    """

    def __init__(self, path: Path, *, row_group_rows: int = ROW_GROUP_ROWS) -> None:
        pq = parquet_module(path, doing="writing")
        import pyarrow as pa

        self.path = path
        self.lines = 0
        self._pa = pa
        self._row_group_rows = row_group_rows
        self._schema = verdict_schema()
        self._columns: dict[str, list[Any]] = {name: [] for name in VERDICT_COLUMNS}
        self._buffered = self._bytes = 0
        self.partial = path.with_name(path.name + ".partial")
        path.parent.mkdir(parents=True, exist_ok=True)
        self._writer = pq.ParquetWriter(self.partial, self._schema)
        self._open = True

    def write(self, record: dict[str, Any]) -> None:
        unknown = record.keys() - self._columns.keys()
        if unknown:
            raise ValueError(f"verdict fields with no Parquet column: {sorted(unknown)}")
        for name, column in self._columns.items():
            column.append(record.get(name))
        raw = record.get("raw")
        self._bytes += len(raw) if isinstance(raw, str) else 0
        self._buffered += 1
        self.lines += 1
        if self._buffered >= self._row_group_rows or self._bytes >= ROW_GROUP_BYTES:
            self._flush()

    def write_record(self, record: dict[str, Any], text: str) -> None:
        """Write ``record`` (``text``, its JSON, is for sinks that write JSON)."""
        self.write(record)

    def _flush(self) -> None:
        if not self._buffered:
            return
        table = self._pa.Table.from_pydict(self._columns, schema=self._schema)
        self._writer.write_table(table, row_group_size=self._buffered)
        for column in self._columns.values():
            column.clear()
        self._buffered = self._bytes = 0

    def close(self) -> None:
        """Write what is buffered, close the file, and rename it to ``path`` (durably)."""
        if not self._open:
            return
        self._open = False
        try:
            self._flush()
        finally:
            self._writer.close()
        with self.partial.open("rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(self.partial, self.path)
        _fsync_folder(self.path.parent)

    def discard(self) -> None:
        """Close and delete the temporary file; ``path`` is left as it was."""
        if not self._open:
            return
        self._open = False
        try:
            self._writer.close()
        finally:
            self.partial.unlink(missing_ok=True)

    def __enter__(self) -> ParquetSink:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.discard()


def verdict_schema() -> Any:
    """The Arrow schema of `VERDICT_COLUMNS` (every column nullable)."""
    import pyarrow as pa

    types = {
        "id": pa.string(),
        "judge": pa.string(),
        "model": pa.string(),
        "score": pa.float64(),
        "status": pa.string(),
        "raw": pa.string(),
        "probs": pa.list_(pa.float64()),
        "likely_score": pa.int64(),
        "reason": pa.string(),
        "error": pa.string(),
        "usage": pa.struct([("input_tokens", pa.int64()), ("output_tokens", pa.int64())]),
        "at": pa.float64(),
    }
    return pa.schema([(name, types[name]) for name in VERDICT_COLUMNS])


def _fsync_folder(folder: Path) -> None:
    """Make a rename durable (POSIX); a platform that cannot open a folder skips it."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
