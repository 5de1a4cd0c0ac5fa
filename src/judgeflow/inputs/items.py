"""Items to judge, from JSONL, CSV or Parquet, one validated record at a time, with errors that name file and line.

An item is ``{"id", "question", "reference", "answer"}`` (``id`` may be a string or an integer), optionally with a
human ``label``: a score from 1 to 5, or true/false, the same kind in every record of a file. Other keys are
ignored here (the report groups agreement by ``split``, ``category``, ``doc_id`` and ``model`` when items have
them). The format follows the file's suffix (`judgeflow.inputs.tables`): a JSONL line, a CSV row under a header
line, or a Parquet row; the checks and their messages are the same for all three. Blank lines are skipped.
Anything else stops the run with an `InputError` such as ``items.jsonl:12: missing field 'answer'`` (a Parquet
file's is ``items.parquet:row 12: ...``): a judging run over a bad file should fail at once and say where, not
spend money on half of it.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from judgeflow.inputs.errors import InputError, Unit
from judgeflow.inputs.tables import (
    iter_records,
    iter_text_lines,
    parse_object,
    position_unit,
    table_format,
)
from judgeflow.protocol.messages import Answer, Question

__all__ = [
    "check_items",
    "item_from_record",
    "iter_items",
    "iter_numbered_items",
    "label_kind",
    "parse_item",
    "parse_label",
]

REQUIRED = ("id", "question", "reference", "answer")
_READ = (*REQUIRED, "label", "model")  # the columns an item is made of (a Parquet reader reads only these)


def parse_item(text: str, *, path: Path | str, line: int) -> Answer:
    """One JSONL line as an `Answer` to judge (its question is a held-out item with the given reference)."""
    return item_from_record(parse_object(text, path=path, line=line), path=path, line=line)


def item_from_record(data: Mapping[str, Any], *, path: Path | str, line: int, unit: Unit | None = None) -> Answer:
    """One record (a JSON object, a CSV row, a Parquet row) as an `Answer`; ``line`` (or row) for the errors."""
    missing = [key for key in REQUIRED if key not in data]
    if missing:
        fields = ", ".join(repr(key) for key in missing)
        what = _what(path)
        raise InputError(path, line, f"missing {what}{'s' if len(missing) > 1 else ''} {fields}", unit=unit)
    item_id = data["id"]
    if isinstance(item_id, bool) or not isinstance(item_id, str | int):
        message = f"{_what(path)} 'id' must be a string or an integer, got {_type(item_id)}"
        raise InputError(path, line, message, unit=unit)
    for key in REQUIRED[1:]:
        if not isinstance(data[key], str):
            message = f"{_what(path)} {key!r} must be a string, got {_type(data[key])}"
            raise InputError(path, line, message, unit=unit)
    question = Question(id=str(item_id), question=data["question"], reference=data["reference"], split="test")
    label = parse_label(data.get("label"), path=path, line=line, unit=unit)
    model = data.get("model")
    return Answer(question=question, text=data["answer"], model="" if model is None else str(model), label=label)


def _what(path: Path | str) -> str:
    """What a record's parts are called in messages: a JSON object's fields, a table's columns."""
    return "field" if table_format(Path(path)) == "jsonl" else "column"


def _type(value: object) -> str:
    return "null" if value is None else type(value).__name__


def parse_label(value: object, *, path: Path | str, line: int, unit: Unit | None = None) -> bool | float | None:
    """A human label: true/false, or a number from 1 to 5; ``None`` (or no key) means unlabelled."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int | float) and 1 <= value <= 5:
        return float(value)
    message = f"{_what(path)} 'label' must be true, false or a score from 1 to 5, got {value!r}"
    raise InputError(path, line, message, unit=unit)


def label_kind(label: bool | float | None) -> str | None:
    """``"binary"`` for true/false, ``"scale"`` for 1-5, ``None`` for no label."""
    if label is None:
        return None
    return "binary" if isinstance(label, bool) else "scale"


def iter_items(path: Path) -> Iterator[Answer]:
    """Items of ``path`` in file order, read lazily (memory does not grow with the file)."""
    for _line, answer in iter_numbered_items(path):
        yield answer


def iter_numbered_items(path: Path) -> Iterator[tuple[int, Answer]]:
    """Like `iter_items`, with the line number (a Parquet file's row number) of each item."""
    seen_any = False
    if table_format(path) == "jsonl":
        for number, text in iter_text_lines(path):
            seen_any = True
            yield number, parse_item(text, path=path, line=number)
    else:
        unit = position_unit(path)
        for number, record in iter_records(path, required=REQUIRED, columns=_READ):
            seen_any = True
            yield number, item_from_record(record, path=path, line=number, unit=unit)
    if not seen_any:
        raise InputError(path, None, "no items: the file is empty")


def check_items(path: Path) -> int:
    """Check every record (and that no id appears twice) before anything is judged; returns the item count.

    The first problem in file order is raised, as if the file were read once; but memory stays small whatever
    the size of the file: the first pass keeps a 64-bit hash per id (8 bytes, where a dict of ids costs about
    100), and only when two hashes are equal does a second pass compare the ids that have them.
    """
    hashes = array("q")
    unit = position_unit(path)
    bad_line: InputError | None = None
    first_kind: tuple[str, int] | None = None
    try:
        for line, answer in iter_numbered_items(path):
            hashes.append(hash(answer.id))
            kind = label_kind(answer.label)
            if kind is not None:
                if first_kind is None:
                    first_kind = (kind, line)
                elif kind != first_kind[0]:
                    raise InputError(
                        path,
                        line,
                        f"a {_KIND_WORDS[kind]} label, but {unit} {first_kind[1]} has a "
                        f"{_KIND_WORDS[first_kind[0]]} one: use one kind of label in a file",
                        unit=unit,
                    )
    except InputError as error:
        bad_line = error
    suspects = _repeated(hashes)
    if suspects:
        first_line: dict[str, int] = {}
        for line, answer in iter_numbered_items(path):  # raises ``bad_line`` again if no duplicate comes first
            if hash(answer.id) in suspects:
                previous = first_line.setdefault(answer.id, line)
                if previous != line:
                    message = f"duplicate id {answer.id!r}: {unit} {previous} has it too"
                    raise InputError(path, line, message, unit=unit)
    if bad_line is not None:
        raise bad_line
    return len(hashes)


_KIND_WORDS = {"binary": "true/false", "scale": "1-5"}


def _repeated(hashes: array[int]) -> set[int]:
    """The values that occur more than once in ``hashes``."""
    ordered = np.sort(np.frombuffer(hashes, dtype=np.int64))
    return set(ordered[1:][ordered[1:] == ordered[:-1]].tolist())
