"""Bad input gets one clear error naming the file and the line."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from judgeflow.inputs.errors import InputError
from judgeflow.inputs.items import iter_items

GOOD = {"id": 1, "question": "q?", "reference": "r", "answer": "a"}


def _write(tmp_path: Path, content: bytes) -> Path:
    path = tmp_path / "items.jsonl"
    path.write_bytes(content)
    return path


def test_reads_items_lazily_in_order_and_skips_blank_lines(tmp_path: Path) -> None:
    lines = [json.dumps({**GOOD, "id": n}) for n in range(3)]
    path = _write(tmp_path, ("\n".join(lines[:2]) + "\n\n" + lines[2] + "\n").encode())
    items = list(iter_items(path))
    assert [item.id for item in items] == ["0", "1", "2"]
    assert items[0].text == "a"
    assert items[0].question.reference == "r"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b'{"id": 1, "question": "q", "reference": "r", "answer": "a"}\n{"id": 2,\n', "items.jsonl:2: invalid JSON"),
        (b'{"id": 1, "question": "q", "reference": "r"}\n', "items.jsonl:1: missing field 'answer'"),
        (b'{"id": 1, "question": "q"}\n', "items.jsonl:1: missing fields 'reference', 'answer'"),
        (b"[1, 2]\n", "items.jsonl:1: expected a JSON object, got list"),
        (b'{"id": 1, "question": 3, "reference": "r", "answer": "a"}\n', "items.jsonl:1: field 'question' must be"),
        (b'{"id": null, "question": "q", "reference": "r", "answer": "a"}\n', "items.jsonl:1: field 'id' must be"),
        (b'\n{"id": 1, "question": "caf\xe9", "reference": "r", "answer": "a"}\n', "items.jsonl:2: not UTF-8"),
        (b"", "items.jsonl: no items: the file is empty"),
        (b"\n \n", "items.jsonl: no items: the file is empty"),
    ],
)
def test_bad_input_names_file_and_line(tmp_path: Path, content: bytes, message: str) -> None:
    path = _write(tmp_path, content)
    with pytest.raises(InputError, match=re.escape(message)):
        list(iter_items(path))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"nope\.jsonl: cannot open"):
        list(iter_items(tmp_path / "nope.jsonl"))


def test_labels_are_true_false_or_one_to_five(tmp_path: Path) -> None:
    from judgeflow.inputs.items import check_items, iter_items

    path = tmp_path / "items.jsonl"
    rows = [
        {"id": "a", "question": "q", "reference": "r", "answer": "x", "label": 4},
        {"id": "b", "question": "q", "reference": "r", "answer": "x"},
        {"id": "c", "question": "q", "reference": "r", "answer": "x", "label": 1.5},
    ]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    assert check_items(path) == 3
    assert [answer.label for answer in iter_items(path)] == [4.0, None, 1.5]


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        ([True, 3], "items.jsonl:2: a 1-5 label, but line 1 has a true/false one"),
        ([2, False], "items.jsonl:2: a true/false label, but line 1 has a 1-5 one"),
        ([6], "items.jsonl:1: field 'label' must be true, false or a score from 1 to 5, got 6"),
        (["yes"], "items.jsonl:1: field 'label' must be true, false or a score from 1 to 5, got 'yes'"),
    ],
)
def test_bad_or_mixed_labels_name_the_line(tmp_path: Path, labels: list[object], message: str) -> None:
    from judgeflow.inputs.errors import InputError
    from judgeflow.inputs.items import check_items

    path = tmp_path / "items.jsonl"
    rows = [{"id": str(i), "question": "q", "reference": "r", "answer": "x", "label": v} for i, v in enumerate(labels)]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    with pytest.raises(InputError) as caught:
        check_items(path)
    assert message in str(caught.value)
