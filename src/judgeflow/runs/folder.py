"""The run folder: where a run's questions, answers, judgements, training set, student and report live.

Writers are synchronous on purpose: a JSONL line is a few hundred bytes into a buffered local file, far cheaper
than a hop to a worker thread, and each file has exactly one writer task (a Router), so lines never interleave.
Every line is flushed to the operating system as it is written, so a crash of the process loses nothing already
recorded.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from types import TracebackType
from typing import IO, Any

__all__ = ["JsonlSink", "new_run_dir"]


class JsonlSink:
    """Appends one JSON object per line to ``path`` (created with its parent folders)."""

    def __init__(self, path: Path, *, append: bool = False) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file: IO[str] = path.open("a" if append else "w", encoding="utf-8")
        self.lines = 0

    def write(self, record: dict[str, Any]) -> None:
        self.write_json(json.dumps(record, ensure_ascii=False))

    def write_json(self, text: str) -> None:
        """Append a record already encoded as one line of JSON (no newline inside: `json.dumps` makes none)."""
        self._file.write(text + "\n")
        self._file.flush()
        self.lines += 1

    def write_record(self, record: dict[str, Any], text: str) -> None:
        """Append ``record``, already encoded as ``text`` (a sink that writes columns uses the record itself)."""
        self.write_json(text)

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> JsonlSink:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def new_run_dir(root: Path = Path("runs")) -> Path:
    """A fresh folder under ``root`` named by the local time, with a suffix if that name is taken."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    candidate = root / stamp
    suffix = 1
    while candidate.exists():
        suffix += 1
        candidate = root / f"{stamp}-{suffix}"
    candidate.mkdir(parents=True)
    return candidate
