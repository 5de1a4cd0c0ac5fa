"""Does ``judgeflow judge`` keep memory flat as the input grows? Peak RSS at two sizes, measured in one run.

    python bench/judge_memory.py [--small 10000] [--large 100000] [--judge local:teacher ...]

Writes two deterministic item files, judges each in a fresh ``judgeflow judge`` process, and prints the items,
wall time, items/s and peak RSS (from the kernel's accounting of the child), plus the growth in RSS from the
small to the large file: the baseline is the small run, measured in the same invocation.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

WORDS = "city river bridge harbour railway fire earthquake mayor port market canal tower war treaty".split()  # noqa: SIM905


def write_items(path: Path, n: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8") as sink:
        for index in range(n):
            year = rng.randint(1600, 2020)
            subject = " ".join(rng.choices(WORDS, k=3))
            reference = f"The {subject} opened in {year} after years of work."
            answer = reference if rng.random() < 0.5 else f"The {subject} opened in {year + rng.randint(1, 40)}."
            item = {"id": index, "question": f"When did the {subject} open?", "reference": reference, "answer": answer}
            sink.write(json.dumps(item) + "\n")


def run_child(items: Path, out: Path, judges: list[str]) -> tuple[float, int]:
    """Wall seconds and peak RSS (KiB) of one ``judgeflow judge`` process."""
    command = [sys.executable, "-m", "judgeflow.cli", "judge", str(items), "--out", str(out)]
    for judge in judges:
        command += ["--judge", judge]
    started = time.perf_counter()
    pid = os.fork()
    if pid == 0:  # the child: become the judge process
        os.execv(sys.executable, command)
    _, status, usage = os.wait4(pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"judgeflow judge failed on {items}")
    return wall, usage.ru_maxrss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--large", type=int, default=100_000)
    parser.add_argument("--judge", action="append", dest="judges")
    args = parser.parse_args()
    judges = args.judges or ["local:teacher"]
    rows = []
    with tempfile.TemporaryDirectory(prefix="judgeflow-bench-") as folder:
        for n in (args.small, args.large):
            items, out = Path(folder) / f"items-{n}.jsonl", Path(folder) / f"out-{n}.jsonl"
            write_items(items, n)
            wall, rss_kib = run_child(items, out, judges)
            lines = sum(1 for _ in out.open(encoding="utf-8"))
            rows.append((n, lines, wall, rss_kib / 1024))
    print(f"judges: {', '.join(judges)}; python {sys.version.split()[0]}; {os.cpu_count()} cpus")
    print(f"{'items':>9} {'lines out':>10} {'wall s':>8} {'items/s':>9} {'peak RSS MiB':>13}")
    for n, lines, wall, rss in rows:
        print(f"{n:>9} {lines:>10} {wall:>8.2f} {n / wall:>9.0f} {rss:>13.1f}")
    (small_n, _, _, small_rss), (large_n, _, _, large_rss) = rows
    print(
        f"RSS growth from {small_n} to {large_n} items: {large_rss - small_rss:+.1f} MiB "
        f"(x{large_rss / small_rss:.2f} for x{large_n / small_n:.0f} the items)"
    )


if __name__ == "__main__":
    main()
