"""The command line as a user meets it: the README's run command, help, and one-line errors."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from judgeflow.cli import main
from processes import judgeflow_command


def _judgeflow(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    command = judgeflow_command(*args)
    return subprocess.run(command, capture_output=True, text=True, cwd=cwd, timeout=110, check=False)


def test_run_writes_the_run_folder_and_prints_the_report(tmp_path: Path) -> None:
    result = _judgeflow("run", "--no-tui", "--out", str(tmp_path / "run"), "--seed", "1", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Pearson r" in result.stdout
    folder = tmp_path / "run"
    for name in ("questions.jsonl", "answers.jsonl", "judgements.jsonl", "train.jsonl", "report.json", "report.md"):
        assert (folder / name).is_file(), name
    assert (folder / "student" / "model.json").is_file()
    report = json.loads((folder / "report.json").read_text(encoding="utf-8"))
    assert set(report["agreement"]) == {"student_trained", "student_base"}
    assert report["run"]["config"]["seed"] == 1


def test_help_lists_the_commands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    listed = [line.split()[0] for line in out.splitlines() if line.startswith("    ") and not line.startswith("     ")]
    assert listed == ["run", "judge", "watch", "distill", "report"]


def test_bad_config_is_one_line_naming_file_and_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("questions_per_dok = 3\n", encoding="utf-8")
    assert main(["run", "--no-tui", "--config", str(config), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("judgeflow: error:")
    assert "bad.toml" in err
    assert "questions_per_dok" in err


def test_judge_bad_line_is_named_before_anything_is_judged(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    items = tmp_path / "items.jsonl"
    good = {"id": "a", "question": "When?", "reference": "In 1900.", "answer": "In 1900."}
    items.write_text(json.dumps(good) + "\n" + '{"id": "b", "question": "x"\n', encoding="utf-8")
    out = tmp_path / "out.jsonl"
    assert main(["judge", str(items), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"{items}:2: invalid JSON" in err
    assert not out.exists()


def test_unknown_judge_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    items = tmp_path / "items.jsonl"
    items.write_text('{"id": 1, "question": "q", "reference": "r", "answer": "a"}\n', encoding="utf-8")
    assert main(["judge", str(items), "--out", str(tmp_path / "o.jsonl"), "--judge", "nowhere:model"]) == 2
    assert "nowhere" in capsys.readouterr().err


def test_judge_with_labels_prints_them_and_writes_the_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    items = tmp_path / "items.jsonl"
    rows = [
        ("Who founded Rome?", "Romulus", "Romulus", True),
        ("Who founded Rome?", "Romulus", "Caesar", False),
        ("When did the war end?", "1945", "It ended in 1945.", True),
        ("When did the war end?", "1945", "1918", False),
    ]
    items.write_text(
        "".join(
            json.dumps({"id": str(k), "question": q, "reference": r, "answer": a, "label": lab}) + "\n"
            for k, (q, r, a, lab) in enumerate(rows)
        ),
        encoding="utf-8",
    )
    out = tmp_path / "verdicts.jsonl"
    judges = ["--judge", "local:teacher", "--judge", "local:student-prior"]
    assert main(["judge", str(items), "--out", str(out), "--no-tui", *judges]) == 0
    printed = capsys.readouterr().out
    assert "Agreement with human labels (4 labelled items, true/false labels" in printed
    assert "ROC AUC" in printed
    report = json.loads((tmp_path / "verdicts.report.json").read_text(encoding="utf-8"))
    assert report["labels"]["judges"]["local:teacher"]["n"] == 4
    assert "panel" not in report or report["panel"] is None  # two judges are not a panel
    assert (tmp_path / "verdicts.report.html").stat().st_size > 5_000
    assert all("at" in json.loads(line) for line in out.read_text(encoding="utf-8").splitlines())
