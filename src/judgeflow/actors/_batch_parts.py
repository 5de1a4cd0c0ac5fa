"""A batch judge's parts: each batch it sends, as a durable record, and the writer that cuts requests into them.

A part is one Batch API input file and the batch made from it. Its record (`Part`) is kept in the run's
`judgeflow.protocol.batches.BatchBook` and rewritten at each step, committed before the step that depends on it:
``planned`` (with the ids of its requests) before the upload, ``uploaded`` (with the file id) before the batch
is created, the provider's statuses while it runs, and ``collected`` once every reply is kept. So after a crash
a run knows which requests are on their way and re-attaches their batch instead of sending them again.
"""

from __future__ import annotations

import json
import re
import tempfile
from dataclasses import dataclass
from typing import IO

from judgeflow.protocol.batches import ENDED, BatchState

__all__ = ["COLLECTED", "Part", "PartWriter", "part_filename"]

COLLECTED = "collected"


def part_filename(tag: str, judge: str, number: int) -> str:
    """The name a part's input file is uploaded under, unique to the run (``tag``), the judge and the part."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", judge).strip("-") or "judge"
    return f"judgeflow-{tag}-{slug}-{number:04d}.jsonl"


@dataclass(slots=True)
class Part:
    """One batch of one judge: its requests' ids, its worst-case cost, and how far it got."""

    key: str
    judge: str
    number: int
    filename: str
    ids: list[str]
    estimate_usd: float
    status: str = "planned"
    file_id: str | None = None
    batch_id: str | None = None
    total: int = 0
    completed: int = 0
    failed: int = 0
    message: str = ""
    resumed: bool = False
    """Read back from an earlier run's record (not kept in the record itself)."""

    @property
    def ended(self) -> bool:
        """Whether the provider has finished with it (its replies may still wait to be collected)."""
        return self.status in ENDED or self.status == COLLECTED

    @property
    def collected(self) -> bool:
        return self.status == COLLECTED

    def update(self, state: BatchState) -> bool:
        """Take the provider's view; returns whether the status changed (worth a new record)."""
        changed = state.status != self.status
        self.batch_id = state.id
        self.status = state.status
        self.total, self.completed, self.failed = state.total, state.completed, state.failed
        if state.problems:
            self.message = "; ".join(str(problem) for problem in state.problems[:5])
        return changed

    def to_json(self) -> str:
        data = {
            "judge": self.judge,
            "number": self.number,
            "filename": self.filename,
            "estimate_usd": self.estimate_usd,
            "status": self.status,
            "file_id": self.file_id,
            "batch_id": self.batch_id,
            "counts": [self.total, self.completed, self.failed],
            "message": self.message,
            "ids": self.ids,
        }
        return json.dumps(data, ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_json(cls, key: str, text: str) -> Part:
        data = json.loads(text)
        total, completed, failed = data.get("counts") or (0, 0, 0)
        return cls(
            key=key,
            judge=str(data["judge"]),
            number=int(data["number"]),
            filename=str(data["filename"]),
            ids=[str(i) for i in data["ids"]],
            estimate_usd=float(data["estimate_usd"]),
            status=str(data["status"]),
            file_id=data.get("file_id"),
            batch_id=data.get("batch_id"),
            total=int(total),
            completed=int(completed),
            failed=int(failed),
            message=str(data.get("message", "")),
            resumed=True,
        )


class PartWriter:
    """Collects request lines until a part would pass the request or byte limit, or the budget's headroom.

    Lines go to an anonymous temporary file, not to memory: a part may be 200 MB, and the next one fills while
    the last one uploads.
    """

    def __init__(self, *, max_requests: int, max_bytes: int) -> None:
        self.max_requests = max_requests
        self.max_bytes = max_bytes
        self._file: IO[bytes] | None = None
        self._ids: list[str] = []
        self._bytes = 0
        self.estimate_usd = 0.0

    def __len__(self) -> int:
        return len(self._ids)

    def fits(self, line: bytes, estimate_usd: float, headroom_usd: float | None) -> bool:
        """Whether one more line keeps this part within its limits (and within ``headroom_usd``, when capped)."""
        if len(self._ids) + 1 > self.max_requests or self._bytes + len(line) > self.max_bytes:
            return False
        return headroom_usd is None or self.estimate_usd + estimate_usd <= headroom_usd

    def add(self, custom_id: str, line: bytes, estimate_usd: float) -> None:
        if self._file is None:
            self._file = tempfile.TemporaryFile(prefix="judgeflow-batch-")  # noqa: SIM115 - handed on by take()
        self._file.write(line)
        self._ids.append(custom_id)
        self._bytes += len(line)
        self.estimate_usd += estimate_usd

    def take(self) -> tuple[list[str], IO[bytes], float]:
        """The part so far (ids, its file at the start, worst-case cost); the caller closes the file. The writer
        starts a new part."""
        assert self._file is not None, "take() of an empty part"
        part = self._file
        part.flush()
        part.seek(0)
        taken = (self._ids, part, self.estimate_usd)
        self._file, self._ids, self._bytes, self.estimate_usd = None, [], 0, 0.0
        return taken
