"""Reading items to judge from JSONL, one validated line at a time, with errors that name file and line.

A line is ``{"id", "question", "reference", "answer"}`` (``id`` may be a string or an integer), optionally with a
human ``label``: a score from 1 to 5, or true/false, the same kind on every line of a file. Other keys are ignored
here (the report groups agreement by ``split``, ``category``, ``doc_id`` and ``model`` when items have them).
Blank lines are skipped. Anything else stops the run with an `InputError` such as
``items.jsonl:12: missing field 'answer'``: a judging run over a bad file should fail at once and say where,
not spend money on half of it.
"""

from __future__ import annotations

import json
from array import array
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from judgeflow.protocol.messages import Answer, Question

__all__ = [
    "InputError",
    "check_items",
    "iter_items",
    "iter_json_objects",
    "iter_numbered_items",
    "iter_text_lines",
    "label_kind",
    "parse_item",
    "parse_label",
]

REQUIRED = ("id", "question", "reference", "answer")


class InputError(ValueError):
    """Bad input; ``str()`` is ``FILE:LINE: what is wrong``."""

    def __init__(self, path: Path | str, line: int | None, message: str) -> None:
        self.path = str(path)
        self.line = line
        self.message = message
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {message}")


def parse_object(text: str, *, path: Path | str, line: int) -> dict[str, Any]:
    """One JSONL line as a JSON object; anything else is an `InputError` naming file and line."""
    try:
        data: Any = json.loads(text)
    except json.JSONDecodeError as error:
        raise InputError(path, line, f"invalid JSON ({error.msg} at column {error.colno})") from None
    if not isinstance(data, dict):
        raise InputError(path, line, f"expected a JSON object, got {type(data).__name__}")
    return data


def parse_item(text: str, *, path: Path | str, line: int) -> Answer:
    """One JSONL line as an `Answer` to judge (its question is a held-out item with the given reference)."""
    data = parse_object(text, path=path, line=line)
    missing = [key for key in REQUIRED if key not in data]
    if missing:
        fields = ", ".join(repr(key) for key in missing)
        raise InputError(path, line, f"missing field{'s' if len(missing) > 1 else ''} {fields}")
    item_id = data["id"]
    if isinstance(item_id, bool) or not isinstance(item_id, str | int):
        raise InputError(path, line, f"field 'id' must be a string or an integer, got {type(item_id).__name__}")
    for key in REQUIRED[1:]:
        if not isinstance(data[key], str):
            raise InputError(path, line, f"field {key!r} must be a string, got {type(data[key]).__name__}")
    question = Question(id=str(item_id), question=data["question"], reference=data["reference"], split="test")
    label = parse_label(data.get("label"), path=path, line=line)
    return Answer(question=question, text=data["answer"], model=str(data.get("model", "")), label=label)


def parse_label(value: object, *, path: Path | str, line: int) -> bool | float | None:
    """A human label: true/false, or a number from 1 to 5; ``None`` (or no key) means unlabelled."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int | float) and 1 <= value <= 5:
        return float(value)
    raise InputError(path, line, f"field 'label' must be true, false or a score from 1 to 5, got {value!r}")


def label_kind(label: bool | float | None) -> str | None:
    """``"binary"`` for true/false, ``"scale"`` for 1-5, ``None`` for no label."""
    if label is None:
        return None
    return "binary" if isinstance(label, bool) else "scale"


def iter_items(path: Path) -> Iterator[Answer]:
    """Items of ``path`` in file order, read lazily (memory does not grow with the file)."""
    for _line, answer in iter_numbered_items(path):
        yield answer


def iter_text_lines(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, text) of every non-blank line, read lazily; an unreadable file or a line that is not UTF-8
    is an `InputError` naming file and line."""
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
            if text.strip():
                yield number, text


def iter_json_objects(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for every non-blank line of a JSONL file (see `parse_object`)."""
    for number, text in iter_text_lines(path):
        yield number, parse_object(text, path=path, line=number)


def iter_numbered_items(path: Path) -> Iterator[tuple[int, Answer]]:
    """Like `iter_items`, with the line number of each item."""
    seen_any = False
    for number, text in iter_text_lines(path):
        seen_any = True
        yield number, parse_item(text, path=path, line=number)
    if not seen_any:
        raise InputError(path, None, "no items: the file is empty")


def check_items(path: Path) -> int:
    """Check every line (and that no id appears twice) before anything is judged; returns the item count.

    The first problem in file order is raised, as if the file were read once; but memory stays small whatever
    the size of the file: the first pass keeps a 64-bit hash per id (8 bytes, where a dict of ids costs about
    100), and only when two hashes are equal does a second pass compare the ids that have them.
    """
    hashes = array("q")
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
                        f"a {_KIND_WORDS[kind]} label, but line {first_kind[1]} has a "
                        f"{_KIND_WORDS[first_kind[0]]} one: use one kind of label in a file",
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
                    raise InputError(path, line, f"duplicate id {answer.id!r}: line {previous} has it too")
    if bad_line is not None:
        raise bad_line
    return len(hashes)


_KIND_WORDS = {"binary": "true/false", "scale": "1-5"}


def _repeated(hashes: array[int]) -> set[int]:
    """The values that occur more than once in ``hashes``."""
    ordered = np.sort(np.frombuffer(hashes, dtype=np.int64))
    return set(ordered[1:][ordered[1:] == ordered[:-1]].tolist())
