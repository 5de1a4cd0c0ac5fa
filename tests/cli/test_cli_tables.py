"""The command line with CSV and Parquet: judge into Parquet, report from it, and one line when pyarrow is missing."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest

from judgeflow.cli import main
from judgeflow.inputs.tables import iter_records

pytest.importorskip("pyarrow", reason="the parquet extra: pip install -e '.[test,parquet]'")


def _csv(path: Path, n: int) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "question", "reference", "answer", "label"])
        for i in range(n):
            writer.writerow([f"q{i}", f"When did mill {i} close?", f"In {1950 + i}.", f"In {1950 + i}.", "true"])
    return path


def test_judge_csv_into_parquet_then_report_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    items, out = _csv(tmp_path / "items.csv", 6), tmp_path / "verdicts.parquet"
    assert main(["judge", str(items), "--out", str(out), "--no-tui", "--judge", "local:teacher"]) == 0
    printed = capsys.readouterr().out
    assert f"wrote 6 lines to {out}" in printed
    assert "Report:" in printed  # labelled items: the report is written beside the Parquet output
    assert sorted(str(record["id"]) for _, record in iter_records(out)) == [f"q{i}" for i in range(6)]
    for suffix in ("html", "json", "md"):
        out.with_name(f"verdicts.report.{suffix}").unlink()
    assert main(["report", str(out)]) == 0
    assert "Wrote" in capsys.readouterr().out
    assert out.with_name("verdicts.report.html").exists()


def test_a_bad_csv_line_is_one_error_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    items = tmp_path / "items.csv"
    items.write_text('id,question,reference,answer\n1,q,r,"a\nb"\n2,q,r\n', encoding="utf-8")
    assert main(["judge", str(items), "--out", str(tmp_path / "v.parquet"), "--no-tui"]) == 2
    assert capsys.readouterr().err.strip() == f"judgeflow: error: {items}:4: 3 cells, but the header has 4"


@pytest.mark.parametrize("what", ["items", "out"])
def test_without_pyarrow_a_parquet_file_is_one_line_naming_the_install(tmp_path: Path, what: str) -> None:
    items = tmp_path / ("items.parquet" if what == "items" else "items.csv")
    if what == "items":
        items.write_bytes(b"PAR1")  # never opened: the missing extra is said first
    else:
        _csv(items, 1)
    out = tmp_path / ("v.jsonl" if what == "items" else "v.parquet")
    code = (
        "import sys; sys.modules['pyarrow'] = None; sys.modules['pyarrow.parquet'] = None\n"
        "from judgeflow.cli import main\n"
        f"sys.exit(main(['judge', {str(items)!r}, '--out', {str(out)!r}, '--no-tui']))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    doing, path = ("reading", items) if what == "items" else ("writing", out)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"judgeflow: error: {path}: {doing} Parquet needs pyarrow, which is not installed: "
        "pip install 'judgeflow[parquet]'"
    )
    assert not out.with_name(out.name + ".store.sqlite").exists()  # said before the output's run was claimed


def test_a_csv_output_is_refused_before_anything_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    items, out = _csv(tmp_path / "items.csv", 2), tmp_path / "v.csv"
    assert main(["judge", str(items), "--out", str(out), "--no-tui"]) == 2
    assert capsys.readouterr().err.strip() == (
        f"judgeflow: error: {out}: verdicts are written as JSONL or Parquet: name the output .jsonl or .parquet"
    )
    assert not out.exists()
    assert not out.with_name(out.name + ".store.sqlite").exists()
