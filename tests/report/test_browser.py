"""report.html in a real browser: Debian's headless Chromium loads it, runs its script without an error, draws
its charts, and takes a screenshot. Skips (naming the install line) where Chromium is not installed."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from judgeflow.report.pages import write_judge_report
from report_doubles import write_judge_run

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="needs Chromium: apt-get install -y chromium")

# The flags that work as root on a machine with no network (no sandbox, no background connections).
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--enable-logging=stderr",
    "--v=0",
    "--virtual-time-budget=5000",
]


def _chromium(page: Path, profile: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    return subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *extra, page.resolve().as_uri()],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )


def test_report_opens_runs_its_script_and_draws(tmp_path: Path) -> None:
    items, verdicts = write_judge_run(tmp_path)
    page = write_judge_report(verdicts, items=items, judges=["A", "B", "C"], n_resamples=50).html

    dom = _chromium(page, tmp_path / "profile-dom", "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    errors = [line for line in dom.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    assert errors == []
    assert 'data-ready="1"' in dom.stdout  # the inline script ran to its last line
    dots = re.findall(r'<path class="dots" d="([^"]*)"', dom.stdout)
    assert len(dots) == 2
    assert all(d.count("M") >= 3 for d in dots)  # every item both judges scored is a point
    assert dom.stdout.count("<rect") >= 2 * 25  # two confusion matrices

    shot = tmp_path / "report.png"
    taken = _chromium(page, tmp_path / "profile-shot", f"--screenshot={shot}", "--window-size=1300,2400")
    assert taken.returncode == 0, taken.stderr[-2000:]
    data = shot.read_bytes()
    assert data.startswith(b"\x89PNG")
    assert len(data) > 30_000  # a blank page of this size compresses to a few kilobytes
