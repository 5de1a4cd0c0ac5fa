"""The shard plan of a Ray judge run: the items cut into shard files once, and the shard outputs merged into one.

A Ray run keeps its work in ``OUT.ray/`` beside the output. The items are checked (FILE:LINE errors, duplicate
ids) and cut in one streaming pass into ``shard-NNNNN/items.jsonl``; each shard is then an ordinary judge run of
its own (``shard-NNNNN/out.jsonl`` with its store ``out.jsonl.store.sqlite``), so every guarantee of
`judgeflow.flows.judging` holds per shard: each (item, judge) once in the shard's output, paid calls durable,
``--resume`` re-judging nothing it has. Shards hold disjoint items (ids are unique in the file), so their
outputs, concatenated in shard order, hold each (item, judge) exactly once.

``plan.json`` is written last, atomically: its presence says the cut is complete and which run it belongs to;
a resumed run reuses the cut as it is (a different ``--shard-size`` does not re-cut work already paid for).
Nothing here imports Ray.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from judgeflow.inputs.config import ConfigError
from judgeflow.inputs.items import check_items, iter_items
from judgeflow.inputs.tables import table_format
from judgeflow.protocol.messages import Answer
from judgeflow.runs.parquet_sink import open_verdict_sink

__all__ = ["PLAN_FILENAME", "Shard", "ShardPlan", "cut_shards", "forget", "item_record", "merge_outputs", "ray_folder"]

PLAN_FILENAME = "plan.json"


def ray_folder(out: Path) -> Path:
    """Where a Ray run keeps its shards: ``OUT.ray/`` beside ``out``."""
    return out.with_name(out.name + ".ray")


@dataclass(frozen=True, slots=True)
class Shard:
    """One shard: its number, its folder, and how many items it holds."""

    index: int
    folder: Path
    items: int

    @property
    def name(self) -> str:
        return self.folder.name

    @property
    def items_path(self) -> Path:
        return self.folder / "items.jsonl"

    @property
    def out(self) -> Path:
        return self.folder / "out.jsonl"


@dataclass(frozen=True, slots=True)
class ShardPlan:
    """Every shard of a run, and what the run was asked (``run``: the items file, the judges, the scoring)."""

    folder: Path
    shard_size: int
    total: int
    run: Mapping[str, Any]
    shards: tuple[Shard, ...]

    def save(self) -> None:
        data = {
            "shard_size": self.shard_size,
            "total": self.total,
            "run": dict(self.run),
            "shards": [{"index": s.index, "items": s.items} for s in self.shards],
        }
        _write_atomic(self.folder / PLAN_FILENAME, json.dumps(data, indent=1) + "\n")

    @classmethod
    def load(cls, folder: Path) -> ShardPlan | None:
        """The plan in ``folder``, or None when there is none (no cut was finished)."""
        path = folder / PLAN_FILENAME
        if not path.exists():
            return None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            shards = tuple(
                Shard(int(s["index"]), folder / _shard_name(int(s["index"])), int(s["items"])) for s in data["shards"]
            )
            return cls(folder, int(data["shard_size"]), int(data["total"]), dict(data["run"]), shards)
        except (ValueError, KeyError, TypeError) as error:
            raise ConfigError(f"{path}: not a shard plan ({error}); use --restart to start over") from None


def item_record(answer: Answer) -> dict[str, Any]:
    """An item as a line of a shard's items file: what `judgeflow.inputs.items` reads back as the same item."""
    record: dict[str, Any] = {
        "id": answer.id,
        "question": answer.question.question,
        "reference": answer.question.reference,
        "answer": answer.text,
    }
    if answer.model:
        record["model"] = answer.model
    if answer.label is not None:
        record["label"] = answer.label
    return record


def cut_shards(items: Path, folder: Path, *, shard_size: int, run: Mapping[str, Any]) -> ShardPlan:
    """Check ``items`` (a bad line raises `judgeflow.inputs.errors.InputError` before anything is written), then
    cut it into shards of ``shard_size`` items under ``folder`` in one streaming pass, and save the plan."""
    if shard_size < 1:
        raise ConfigError(f"--shard-size must be >= 1, got {shard_size}")
    total = check_items(items)
    folder.mkdir(parents=True, exist_ok=True)
    shards = [Shard(i, folder / _shard_name(i), n) for i, n in enumerate(_sizes(total, shard_size))]
    it = iter(iter_items(items))
    for shard in shards:
        _write_shard(shard, (next(it) for _ in range(shard.items)))
    plan = ShardPlan(folder, shard_size, total, dict(run), tuple(shards))
    plan.save()
    return plan


def _sizes(total: int, shard_size: int) -> list[int]:
    return [min(shard_size, total - start) for start in range(0, total, shard_size)]


def _shard_name(index: int) -> str:
    return f"shard-{index:05d}"


def _write_shard(shard: Shard, answers: Iterable[Answer]) -> None:
    shard.folder.mkdir(parents=True, exist_ok=True)
    temporary = shard.items_path.with_suffix(".jsonl.part")
    with temporary.open("w", encoding="utf-8") as handle:
        for answer in answers:
            handle.write(json.dumps(item_record(answer), ensure_ascii=False) + "\n")
    os.replace(temporary, shard.items_path)


def merge_outputs(shards: Sequence[Shard], out: Path) -> int:
    """Concatenate the shards' outputs, in shard order, into ``out`` (written beside it, then renamed, so a
    crash leaves the old ``out`` or the whole new one); returns the number of lines (rows, for Parquet).

    The shards write JSONL; a ``.parquet`` output gets their records through the same sink as a single-process
    run (`judgeflow.runs.parquet_sink`), a JSONL one their bytes as they are.
    """
    if table_format(out) == "parquet":
        with open_verdict_sink(out) as sink:
            for shard in shards:
                with shard.out.open("rb") as part:
                    for line in part:
                        if line.strip():
                            sink.write(json.loads(line))
            return sink.lines
    lines = 0
    temporary = out.with_name(out.name + ".part")
    out.parent.mkdir(parents=True, exist_ok=True)
    with temporary.open("wb") as merged:
        for shard in shards:
            with shard.out.open("rb") as part:
                for line in part:
                    if line.strip():
                        merged.write(line if line.endswith(b"\n") else line + b"\n")
                        lines += 1
        merged.flush()
        os.fsync(merged.fileno())
    os.replace(temporary, out)
    return lines


def forget(folder: Path) -> None:
    """Delete a Ray run's shards (``--restart``)."""
    shutil.rmtree(folder, ignore_errors=True)


def _write_atomic(path: Path, text: str) -> None:
    temporary = path.with_name(path.name + ".part")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)
