"""A small judge run on disk for the report tests: three judges, human labels, a failure, hostile text."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

HOSTILE = "<script>alert(1)</script>"

# Four items judged by A (the reference), B and C; human true/false labels.
ITEMS = [
    {"id": "1", "question": "Q1", "reference": "R1", "answer": "A1", "label": True, "category": "x"},
    {"id": "2", "question": "Q2", "reference": "R2", "answer": HOSTILE, "label": False, "category": "x"},
    {"id": "3", "question": "Q3", "reference": "R3", "answer": "A3 " + "long " * 600, "label": True, "category": "y"},
    {"id": "4", "question": "Q4", "reference": "R4", "answer": "A4", "label": False, "category": "y"},
]
SCORES: dict[str, list[float | str]] = {
    "A": [5, 2, 4, 1],
    "B": [4, 4, 2, "unparsed"],
    "C": [2, 1, "failed", 2],
}


def write_judge_run(tmp_path: Path) -> tuple[Path, Path]:
    items = tmp_path / "items.jsonl"
    items.write_text("".join(json.dumps(item) + "\n" for item in ITEMS), encoding="utf-8")
    verdicts = tmp_path / "verdicts.jsonl"
    lines = []
    for judge, scores in SCORES.items():
        for k, score in enumerate(scores):
            record: dict[str, Any] = {"id": ITEMS[k]["id"], "judge": judge, "model": f"m-{judge}", "at": 100.0 + k}
            if score == "unparsed":
                record.update(score=None, status="unparsed", raw="no idea", reason="no score found")
            elif score == "failed":
                record.update(score=None, status="failed", raw="", error="HTTP 500")
            else:
                record.update(score=float(score), status="ok", raw=f"{score}\nbecause {HOSTILE}")
            lines.append(json.dumps(record))
    verdicts.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return items, verdicts
