"""``judgeflow distill`` input handling and the numpy student path (no torch needed)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from judgeflow.cli import main as cli_main
from judgeflow.flows.wiring import JudgeSpecError, resolve_judge
from judgeflow.inputs.errors import InputError
from judgeflow.inputs.examples import read_examples
from judgeflow.providers.local import LocalStudentJudge


def _write(path: Path, rows: list[dict[str, Any]] | list[str]) -> Path:
    lines = [row if isinstance(row, str) else json.dumps(row) for row in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _scored(n: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for i in range(n):
        year = 1800 + i
        right = i % 2 == 0
        rows.append(
            {
                "question": f"When did bridge {i} open?",
                "reference": f"Bridge {i} opened in {year}.",
                "answer": f"It opened in {year if right else year + 7}.",
                "score": 5 if right else 1,
            }
        )
    return rows


def _run_folder(folder: Path) -> Path:
    folder.mkdir()
    answers = [
        {"id": f"q{i}", "question": row["question"], "reference": row["reference"], "answer": row["answer"]}
        for i, row in enumerate(_scored(6))
    ]
    _write(folder / "answers.jsonl", answers)
    judgements: list[dict[str, Any]] = []
    for i, row in enumerate(_scored(6)):
        judgements.append({"id": f"q{i}", "judge": "teacher", "score": row["score"], "status": "ok", "raw": "x"})
        judgements.append({"id": f"q{i}", "judge": "student_base", "score": 3.0, "status": "ok", "raw": "3"})
    judgements.append({"id": "q0", "judge": "teacher", "score": None, "status": "unparsed", "raw": "??"})
    return _write(folder / "judgements.jsonl", judgements)


def test_scored_items_are_read_with_optional_ids(tmp_path: Path) -> None:
    rows = _scored(3)
    rows[1]["id"] = 7
    rows[2]["reasoning"] = "fine"
    source = read_examples(_write(tmp_path / "scored.jsonl", rows))
    assert [e.id for e in source.examples] == ["line-1", "7", "line-3"]
    assert [e.score for e in source.examples] == [5.0, 1.0, 5.0]
    assert source.examples[0].answer == rows[0]["answer"]


def test_run_folder_lines_of_the_teacher_join_answers_by_id(tmp_path: Path) -> None:
    path = _run_folder(tmp_path / "run")
    for given in (path, path.parent):
        source = read_examples(given)
        assert source.teacher == "teacher"
        assert source.skipped == 1  # the unparsed line
        assert [e.id for e in source.examples] == [f"q{i}" for i in range(6)]
        assert source.examples[1].question == "When did bridge 1 open?"
        assert source.examples[1].score == 1.0


def test_another_judge_can_be_the_teacher(tmp_path: Path) -> None:
    source = read_examples(_run_folder(tmp_path / "run"), teacher="student_base")
    assert {e.score for e in source.examples} == {3.0}


def test_a_logprobs_judgement_brings_the_teachers_distribution(tmp_path: Path) -> None:
    folder = tmp_path / "run"
    _run_folder(folder)
    lines = (folder / "judgements.jsonl").read_text(encoding="utf-8").splitlines()
    # q0 judged with logprobs scoring: probabilities of 1..5 (here not quite summing to 1) and their mean.
    probs = [0.1, 0.2, 0.0, 0.2, 0.4]
    mean = sum((k + 1) * p for k, p in enumerate(probs)) / sum(probs)
    first = json.loads(lines[0])
    lines[0] = json.dumps(first | {"score": mean, "probs": probs})
    (folder / "judgements.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    examples = {e.id: e for e in read_examples(folder).examples}
    assert examples["q0"].probs == pytest.approx([p / 0.9 for p in probs])
    assert examples["q0"].score == pytest.approx(mean)
    assert examples["q1"].probs is None
    scored = _write(tmp_path / "scored.jsonl", [_scored(1)[0] | {"score": 5, "probs": [0, 0, 0, 0, 1]}])
    assert read_examples(scored).examples[0].probs == (0.0, 0.0, 0.0, 0.0, 1.0)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "invalid JSON"),
        (
            json.dumps({"question": "q", "reference": "r", "answer": "a", "score": 3, "probs": [1, 0]}),
            "5 probabilities",
        ),
        (
            json.dumps({"question": "q", "reference": "r", "answer": "a", "score": 3, "probs": [0, 0, -1, 1, 1]}),
            "5 probabilities",
        ),
        (
            json.dumps({"question": "q", "reference": "r", "answer": "a", "score": 3, "probs": [0] * 5}),
            "5 probabilities",
        ),
        ("[1, 2]", "expected a JSON object"),
        (json.dumps({"question": "q", "reference": "r", "score": 3}), "missing field 'answer'"),
        (json.dumps({"question": "q", "reference": "r", "answer": 4, "score": 3}), "field 'answer' must be a string"),
        (json.dumps({"question": "q", "reference": "r", "answer": "a", "score": 9}), "from 1 to 5"),
        (json.dumps({"question": "q", "reference": "r", "answer": "a", "score": "5"}), "must be a number"),
        (json.dumps({"question": "q", "reference": "r", "answer": "a", "score": True}), "must be a number"),
    ],
)
def test_a_bad_scored_line_is_named_by_file_and_line(tmp_path: Path, line: str, message: str) -> None:
    path = _write(tmp_path / "bad.jsonl", [json.dumps(_scored(1)[0]), "", line])
    with pytest.raises(InputError) as info:
        read_examples(path)
    assert str(info.value).startswith(f"{path}:3: ")
    assert message in str(info.value)


def test_judgement_lines_need_their_answers(tmp_path: Path) -> None:
    path = _run_folder(tmp_path / "run")
    (path.parent / "answers.jsonl").unlink()
    with pytest.raises(InputError, match="--answers"):
        read_examples(path)


def test_a_judgement_without_an_answer_is_named(tmp_path: Path) -> None:
    path = _run_folder(tmp_path / "run")
    with path.open("a", encoding="utf-8") as sink:
        sink.write(json.dumps({"id": "zz", "judge": "teacher", "score": 4, "status": "ok", "raw": "4"}) + "\n")
    with pytest.raises(InputError, match=r"judgements\.jsonl:14: id 'zz' is not in"):
        read_examples(path)


def test_several_judges_and_no_teacher_must_be_named(tmp_path: Path) -> None:
    folder = tmp_path / "run"
    path = _run_folder(folder)
    text = path.read_text(encoding="utf-8").replace('"judge": "teacher"', '"judge": "openai:gpt-4o"')
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InputError, match="--teacher"):
        read_examples(path)
    assert read_examples(path, teacher="openai:gpt-4o").teacher == "openai:gpt-4o"


def test_empty_file_and_no_teacher_lines_are_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="empty"):
        read_examples(_write(tmp_path / "empty.jsonl", [""]))
    with pytest.raises(InputError, match="no judgements by 'nobody'"):
        read_examples(_run_folder(tmp_path / "run"), teacher="nobody")


def test_distill_numpy_then_judge_with_local_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "model"
    assert cli_main(["distill", str(_run_folder(tmp_path / "run")), "--student", "numpy", "--out", str(out)]) == 0
    assert "local:" in capsys.readouterr().out
    judge = resolve_judge(f"local:{out}")
    assert isinstance(judge, LocalStudentJudge)
    assert judge.n_train == 6


def test_distill_reports_a_bad_line_and_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path / "bad.jsonl", [json.dumps(_scored(1)[0]), '{"question": 1}'])
    out = tmp_path / "model"
    assert cli_main(["distill", str(path), "--student", "numpy", "--out", str(out)]) == 2
    assert f"{path}:2: " in capsys.readouterr().err
    assert not out.exists()


def test_unknown_local_folder_names_both_student_kinds(tmp_path: Path) -> None:
    with pytest.raises(JudgeSpecError, match=r"neural_student\.json"):
        resolve_judge(f"local:{tmp_path}")


def test_nothing_outside_the_neural_modules_imports_torch() -> None:
    modules = ", ".join(
        [
            "judgeflow.cli",
            "judgeflow.flows.wiring",
            "judgeflow.flows.distill",
            "judgeflow.flows.wiring",
            "judgeflow.providers.neural",
        ]
    )
    code = f"import sys, {modules}; print('torch' in sys.modules, 'transformers' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["False", "False"]
