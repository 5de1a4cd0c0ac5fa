"""The report's data and its Markdown: every number from the result, undefined ones as null / "n/a"."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from judgeflow.core.agreement import Agreements, ScoreResult
from judgeflow.core.metrics import METRICS
from judgeflow.protocol.verdicts import Scored, Unparsed
from judgeflow.report.build import build_report, read_report
from judgeflow.report.markdown import render_agreement, render_markdown


def _result() -> ScoreResult:
    pair = ("student_trained", "student_base")
    book = Agreements(reference="teacher", students=pair, difference=pair, n_resamples=100)
    for i, (t, a, b) in enumerate([(1, 1, 3), (2, 2, 3), (3, 3, 3), (4, 4, 3), (5, 5, 3)]):
        for judge, score in (("teacher", t), ("student_trained", a), ("student_base", b)):
            book.add(str(i), judge, Scored(float(score), "", str(score)))
    book.add("x", "teacher", Scored(4.0, "", "4"))
    book.add("x", "student_trained", Unparsed("hm", "no score found"))
    return book.finish()


def _report() -> dict[str, object]:
    costs = {
        "total_usd": 0.5,
        "models": {"gpt-4": {"calls": 2, "input_tokens": 10, "output_tokens": 4, "cost_usd": 0.5}},
    }
    return build_report(
        result=_result(),
        n_train=12,
        n_test=6,
        run={"wall_s": 1.5},
        training={"examples": 12, "error": None},
        costs=costs,
    )


def test_the_data_has_every_metric_with_its_interval_and_the_counts() -> None:
    report = _report()
    trained = report["agreement"]["student_trained"]  # type: ignore[index]
    assert trained["pearson"]["value"] == pytest.approx(1.0)
    assert set(METRICS) <= set(trained)
    assert (trained["n"], trained["judged"], trained["unparsed"], trained["failed"]) == (5, 6, 1, 0)
    base = report["agreement"]["student_base"]  # type: ignore[index]
    assert base["pearson"]["value"] is None  # a judge that gives one score to everything: undefined, not 0
    assert report["reference_verdicts"] == {"judged": 6, "scored": 6, "unparsed": 0, "failed": 0}
    json.dumps(report)  # JSON-able as it is


def test_the_markdown_shows_the_same_numbers_and_n_a_for_undefined_ones() -> None:
    text = render_markdown(_report())
    assert "| Pearson r | 1.000 [" in text
    assert "n/a" in text
    assert "| n | 5 | 5 |" in text
    assert "| unparsed | 1 | 0 |" in text
    assert "Total cost: 0.5000 USD." in text
    assert "Wall time: 1.50 s." in text
    table = render_agreement(_result())
    assert table.startswith("Agreement with teacher")
    assert "| Pearson r |" in table


def test_read_report_is_none_until_a_report_is_written(tmp_path: Path) -> None:
    assert read_report(tmp_path) is None
    (tmp_path / "report.json").write_text("{not json", encoding="utf-8")
    assert read_report(tmp_path) is None
    (tmp_path / "report.json").write_text(json.dumps({"n_test": 3}), encoding="utf-8")
    assert read_report(tmp_path) == {"n_test": 3}
