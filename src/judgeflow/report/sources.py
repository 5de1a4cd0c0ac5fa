"""Reading a finished run back for its report: every verdict as columns of numbers, texts only where shown.

A run folder holds ``judgements.jsonl`` (with ``answers.jsonl`` and ``questions.jsonl`` for the texts, splits
and documents); a ``judge`` run holds its verdicts file (and the items file its store names), each JSONL, CSV
(items) or Parquet, as `judgeflow.inputs.tables` reads them. Verdicts are read
in one streaming pass into arrays (items x judges: score, status, time); long texts are read in a second pass for
the few items the report shows (the largest disagreements, the failures), so a file of 100,000 items costs a
few megabytes of memory, not its size on disk.
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from collections.abc import Collection, Iterable, Iterator
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from judgeflow.inputs.errors import InputError
from judgeflow.inputs.items import label_kind, parse_label
from judgeflow.inputs.tables import iter_json_objects, iter_records, position_unit
from judgeflow.runs.store import META_CONFIG

__all__ = ["GROUP_FIELDS", "STATUS_CODES", "RunData", "Texts", "load_judge_run", "load_run_folder", "read_texts"]

# Status codes in `RunData.status`; "missing" is an item a judge has no line for.
STATUS_CODES = {"ok": 0, "unparsed": 1, "failed": 2, "missing": 3}
# Item fields agreement is broken down by, when the items carry them (and they take more than one value).
GROUP_FIELDS = ("split", "category", "doc_id", "model")


@dataclass(slots=True)
class RunData:
    """Every verdict of a run as arrays over items (rows) and judges (columns, the reference first)."""

    kind: str  # "run" (a distillation run folder) or "judge" (a judge run's verdicts file)
    judges: list[str]
    ids: list[str]
    scores: npt.NDArray[np.float64]  # NaN where the judge gave no score
    status: npt.NDArray[np.int8]
    at: npt.NDArray[np.float64]  # when each verdict was made (Unix seconds), NaN where unknown
    labels: npt.NDArray[np.float64]  # 1-5, or 1/0 for true/false; NaN where unlabelled
    label_kind: str | None
    groups: dict[str, list[str]]  # field -> value per item ("" where absent)
    judge_models: dict[str, Counter[str]]  # judge -> its verdicts per model name (costs per 1,000 judgements)
    verdicts_path: Path
    texts_path: Path | None  # items.jsonl or answers.jsonl: question, reference, answer per id
    problems: dict[str, list[tuple[str, str, str]]] = field(default_factory=dict)  # judge -> (id, status, why)

    @property
    def reference(self) -> str:
        return self.judges[0]


@dataclass(frozen=True, slots=True)
class Texts:
    """What the report shows of one item: its texts, and each judge's raw reply."""

    question: str = ""
    reference: str = ""
    answer: str = ""
    raw: dict[str, str] = field(default_factory=dict)


_PROBLEMS_KEPT = 50


class _Builder:
    """Collects verdict records into growing per-judge columns keyed by item id."""

    def __init__(self, judges: list[str]) -> None:
        self.judges = list(judges)
        self.index: dict[str, int] = {}
        self.ids: list[str] = []
        self.columns: dict[str, dict[int, tuple[float, int, float]]] = {judge: {} for judge in judges}
        self.models: dict[str, Counter[str]] = {judge: Counter() for judge in judges}
        self.problems: dict[str, list[tuple[str, str, str]]] = {judge: [] for judge in judges}

    def row(self, item_id: str) -> int:
        row = self.index.get(item_id)
        if row is None:
            row = self.index[item_id] = len(self.ids)
            self.ids.append(item_id)
        return row

    def add(self, record: dict[str, Any]) -> None:
        judge = str(record.get("judge", ""))
        if judge not in self.columns:
            self.judges.append(judge)
            self.columns[judge] = {}
            self.models[judge] = Counter()
            self.problems[judge] = []
        item_id = str(record["id"])
        status = str(record.get("status", "failed"))
        score = record.get("score")
        if status == "ok" and isinstance(score, int | float) and not isinstance(score, bool):
            value, code = float(score), STATUS_CODES["ok"]
        else:
            value, code = float("nan"), STATUS_CODES["unparsed" if status == "unparsed" else "failed"]
        at = record.get("at")
        when = float(at) if isinstance(at, int | float) and not isinstance(at, bool) else float("nan")
        self.columns[judge][self.row(item_id)] = (value, code, when)
        self.models[judge][str(record.get("model", ""))] += 1
        if code != 0 and len(self.problems[judge]) < _PROBLEMS_KEPT:
            why = str(record.get("reason") or record.get("error") or "")
            self.problems[judge].append((item_id, status, why))

    def arrays(self) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int8], npt.NDArray[np.float64]]:
        n, m = len(self.ids), len(self.judges)
        scores = np.full((n, m), np.nan)
        status = np.full((n, m), STATUS_CODES["missing"], dtype=np.int8)
        at = np.full((n, m), np.nan)
        for j, judge in enumerate(self.judges):
            column = self.columns[judge]
            if not column:
                continue
            rows = np.fromiter(column.keys(), dtype=np.int64, count=len(column))
            values = np.array(list(column.values()), dtype=np.float64).reshape(-1, 3)
            scores[rows, j] = values[:, 0]
            status[rows, j] = values[:, 1].astype(np.int8)
            at[rows, j] = values[:, 2]
        return scores, status, at


def _records(path: Path) -> Iterator[dict[str, Any]]:
    for _, record in iter_records(path):
        if "id" not in record or "judge" not in record:
            continue
        yield record


def load_run_folder(folder: Path) -> RunData:
    """A distillation run folder: the held-out items, judged by the teacher and the students."""
    report = _read_json(folder / "report.json")
    judges = []
    if report:
        judges = [str(report.get("reference_judge", "teacher")), *map(str, report.get("agreement", {}))]
    split: dict[str, str] = {}
    for _, record in iter_json_objects(folder / "answers.jsonl"):
        split[str(record.get("id"))] = str(record.get("split", ""))
    builder = _Builder(judges or ["teacher"])
    for record in _records(folder / "judgements.jsonl"):
        if split.get(str(record["id"]), record.get("split")) == "test":
            builder.add(record)
    data = _finish(builder, "run", folder / "judgements.jsonl", folder / "answers.jsonl")
    doc_ids: dict[str, str] = {}
    questions = folder / "questions.jsonl"
    if questions.exists():
        for _, record in iter_json_objects(questions):
            doc_ids[str(record.get("id"))] = str(record.get("doc_id", ""))
    models: dict[str, str] = {}
    for _, record in iter_json_objects(folder / "answers.jsonl"):
        models[str(record.get("id"))] = str(record.get("model", ""))
    data.groups = _useful_groups(
        {"doc_id": [doc_ids.get(i, "") for i in data.ids], "model": [models.get(i, "") for i in data.ids]}
    )
    return data


def load_judge_run(verdicts: Path, *, items: Path | None = None, judges: Iterable[str] = ()) -> RunData:
    """A judge run's verdicts file; texts, labels and groups come from ``items`` (default: the store's)."""
    stored_items, stored_judges = _stored_config(verdicts)
    order = list(judges) or stored_judges
    builder = _Builder(order)
    for record in _records(verdicts):
        builder.add(record)
    items = items or stored_items
    data = _finish(builder, "judge", verdicts, items if items is not None and items.exists() else None)
    if data.texts_path is not None:
        _read_item_fields(data, data.texts_path)
    return data


def _finish(builder: _Builder, kind: str, verdicts: Path, texts: Path | None) -> RunData:
    if not builder.ids and kind == "judge":
        raise InputError(verdicts, None, "no verdicts to report on")
    # Judges with no verdict at all are left out, unless none has one (a run with no held-out item yet).
    judges = [judge for judge in builder.judges if builder.columns[judge]] or builder.judges
    builder.judges = judges
    scores, status, at = builder.arrays()
    return RunData(
        kind=kind,
        judges=judges,
        ids=builder.ids,
        scores=scores,
        status=status,
        at=at,
        labels=np.full(len(builder.ids), np.nan),
        label_kind=None,
        groups={},
        judge_models={judge: builder.models[judge] for judge in judges},
        verdicts_path=verdicts,
        texts_path=texts,
        problems={judge: builder.problems[judge] for judge in judges},
    )


def _read_item_fields(data: RunData, path: Path) -> None:
    """Labels and grouping fields of the items the verdicts name (validated as `judgeflow judge` does)."""
    index = {item_id: row for row, item_id in enumerate(data.ids)}
    values: dict[str, list[str]] = {name: [""] * len(data.ids) for name in GROUP_FIELDS}
    kinds: set[str] = set()
    unit = position_unit(path)
    for line, record in iter_records(path, columns=("id", "label", *GROUP_FIELDS)):
        row = index.get(str(record.get("id")))
        if row is None:
            continue
        label = parse_label(record.get("label"), path=path, line=line, unit=unit)
        kind = label_kind(label)
        if kind is not None:
            kinds.add(kind)
            if len(kinds) > 1:
                message = "labels of two kinds (true/false and 1-5): use one kind in a file"
                raise InputError(path, line, message, unit=unit)
            data.labels[row] = float(label) if label is not None else np.nan
        for name in GROUP_FIELDS:
            value = record.get(name)
            if isinstance(value, str | int | float) and not isinstance(value, bool):
                values[name][row] = str(value)
    data.label_kind = next(iter(kinds), None)
    data.groups = _useful_groups(values)


def _useful_groups(values: dict[str, list[str]]) -> dict[str, list[str]]:
    """Only the fields that split the items into two or more groups."""
    return {name: column for name, column in values.items() if len({v for v in column if v}) >= 2}


def read_texts(data: RunData, wanted: Collection[str]) -> dict[str, Texts]:
    """Question, reference, answer and every judge's raw reply for the items ``wanted`` (a second, lazy pass)."""
    wanted = set(wanted)
    fields: dict[str, dict[str, str]] = {}
    raws: dict[str, dict[str, str]] = {item_id: {} for item_id in wanted}
    if data.texts_path is not None and data.texts_path.exists():
        for _, record in iter_records(data.texts_path, columns=("id", "question", "reference", "answer")):
            item_id = str(record.get("id"))
            if item_id in wanted:
                fields[item_id] = {key: str(record.get(key, "")) for key in ("question", "reference", "answer")}
    for record in _records(data.verdicts_path):
        item_id = str(record["id"])
        if item_id in wanted:
            raw = str(record.get("raw") or "")
            why = record.get("reason") or record.get("error")
            raws[item_id][str(record["judge"])] = raw if raw else (f"({record.get('status')}: {why})" if why else "")
    return {item_id: Texts(**fields.get(item_id, {}), raw=raws.get(item_id, {})) for item_id in wanted}


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _stored_config(verdicts: Path) -> tuple[Path | None, list[str]]:
    """The items file and the judges (in order, the reference first) a judge run's store recorded."""
    store = verdicts.with_name(verdicts.name + ".store.sqlite")
    if not store.exists():
        return None, []
    try:
        with closing(sqlite3.connect(f"file:{store}?mode=ro", uri=True)) as db:
            row = db.execute("SELECT value FROM meta WHERE key = ?", (META_CONFIG,)).fetchone()
    except sqlite3.Error:
        return None, []
    if row is None:
        return None, []
    try:
        config = json.loads(row[0])
    except ValueError:
        return None, []
    items = config.get("items")
    judges = config.get("judges") or []
    return (Path(items) if isinstance(items, str) else None), [str(judge) for judge in judges]
