"""The one error bad input raises, naming the file and where in it: a line of a text file, a row of a table.

Its own module so that every reader of `judgeflow.inputs` (JSONL, CSV, Parquet, documents, examples) can raise it
without importing the others; `judgeflow.inputs.items` re-exports it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

__all__ = ["InputError", "Unit", "position_unit"]

Unit = Literal["line", "row"]
"""How a position in a file is counted: a line of text (JSONL, CSV: the header is line 1) or a row of a table
(Parquet: the first row is row 1; a table has no lines)."""

_TABLE_SUFFIXES = (".parquet", ".pq")


def position_unit(path: Path | str) -> Unit:
    """How positions in ``path`` are counted: rows for a Parquet file (by its suffix), lines otherwise."""
    return "row" if Path(path).suffix.lower() in _TABLE_SUFFIXES else "line"


class InputError(ValueError):
    """Bad input; ``str()`` is ``FILE:LINE: what is wrong``, or ``FILE:row N: what is wrong`` for a table's row
    (``unit``: by default, as the file's suffix says, `position_unit`)."""

    def __init__(self, path: Path | str, line: int | None, message: str, *, unit: Unit | None = None) -> None:
        self.path = str(path)
        self.line = line
        self.unit: Unit = position_unit(path) if unit is None else unit
        self.message = message
        where = self.path if line is None else f"{self.path}:{'' if self.unit == 'line' else 'row '}{line}"
        super().__init__(f"{where}: {message}")

    def __reduce__(self) -> tuple[object, ...]:
        # Keyword-only ``unit`` is not in ``args``: rebuild from every field (errors cross process boundaries).
        return (_rebuild, (self.path, self.line, self.message, self.unit))


def _rebuild(path: str, line: int | None, message: str, unit: Unit) -> InputError:
    return InputError(path, line, message, unit=unit)
