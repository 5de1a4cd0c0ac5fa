"""Report files built from a judge run's verdicts and items: labels, panel, failures, escaping, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from judgeflow.cli import main
from judgeflow.report.pages import judge_report_paths, write_judge_report
from report_doubles import HOSTILE, write_judge_run


def test_labels_and_panel_in_report_json(tmp_path: Path) -> None:
    items, verdicts = write_judge_run(tmp_path)
    report = write_judge_report(verdicts, items=items, judges=["A", "B", "C"], n_resamples=50).report
    labels = report["labels"]
    assert labels["kind"] == "binary"
    assert labels["labelled"] == 4
    # A ranks the true items (5, 4) above the false ones (2, 1): AUC 1. At threshold 4, A says T F T F: kappa 1.
    assert labels["judges"]["A"]["auc"]["value"] == pytest.approx(1.0)
    assert labels["judges"]["A"]["kappa"]["value"] == pytest.approx(1.0)
    # B scored items 1-3 only (4 is unparsed): true 4 and 2 against false 4: pairs (4,4) tie, (2,4) loss: 0.25.
    assert labels["judges"]["B"]["auc"]["value"] == pytest.approx(0.25)
    assert labels["judges"]["B"]["n"] == 3
    assert labels["judges"]["B"]["unscored"] == 1
    panel = report["panel"]
    assert panel["members"] == ["A", "B", "C"]
    assert panel["compared_with"] == "labels"
    # Item 1: 5 4 2, three-way tie; item 2: 2 4 1 tie; item 3: 4 2 (C failed) tie; item 4: 1 2 (B unparsed) tie.
    assert panel["counts"] == {
        "items": 4,
        "complete": 2,
        "partial": 2,
        "none": 0,
        "majority_decided": 0,
        "majority_tied": 4,
    }
    assert panel["per_member"]["B"]["unparsed"] == 1
    assert panel["per_member"]["C"]["failed"] == 1
    # The mean of item 3 is over A and B only: (4 + 2) / 2 = 3, counted, not dropped; mean vs labels has n = 4.
    assert labels["judges"]["panel:mean"]["n"] == 4
    assert labels["judges"]["panel:majority"]["unscored"] == 4
    assert report["agreement"]["B"]["n"] == 3
    assert report["agreement"]["B"]["unparsed"] == 1
    assert report["parse_rates"]["C"] == {"ok": 3, "unparsed": 0, "failed": 1, "missing": 0}


def test_html_is_self_contained_escaped_and_capped(tmp_path: Path) -> None:
    items, verdicts = write_judge_run(tmp_path)
    html_path = write_judge_report(verdicts, items=items, judges=["A", "B", "C"], n_resamples=50).html
    page = html_path.read_text(encoding="utf-8")
    assert HOSTILE not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "more characters)" in page  # the 3,000-character answer is cut in the table
    assert "http://" not in page
    assert "https://" not in page
    assert page.count("<svg") >= 8  # 2 pairs x (scatter, confusion, calibration) + status bars + throughput
    assert "HTTP 500" in page  # the failed verdict is listed with its error
    assert "By category" in page


def test_report_command_rebuilds_from_the_verdicts_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    items, verdicts = write_judge_run(tmp_path)
    code = main(["report", str(verdicts), "--items", str(items), "--judge", "A", "--judge", "B", "--judge", "C"])
    assert code == 0
    html_path, json_path, md_path = judge_report_paths(verdicts)
    assert html_path.name == "verdicts.report.html"
    assert json.loads(json_path.read_text(encoding="utf-8"))["reference_judge"] == "A"
    assert "Agreement with human labels" in md_path.read_text(encoding="utf-8")
    assert main(["report", str(tmp_path / "missing.jsonl")]) == 2
    assert main(["report", str(tmp_path)]) == 2  # a folder that is not a run folder
    assert "not a run folder" in capsys.readouterr().err
