"""Batch mode at scale: 100,000 items judged in one command through the Batch API of the fake OpenAI server.

    python bench/batch.py [--items 100000] [--report PATH]

The fake server (`judgeflow.testing.serve_openai`) runs in this process's event loop, so its counters say exactly
what each ``judgeflow judge`` process (a child, run as a user runs it) uploaded, created and had answered. Three
runs over the same deterministic items:

* **batch**: ``judgeflow judge ITEMS --judge openai:gpt-4o --batch`` in one command, cut into batches of at most
  50,000 requests: every id judged exactly once (0 lost, 0 duplicated), the batches and uploads it took, wall
  time, peak RSS;
* **kill -9, then --resume**: the same command killed with SIGKILL while it polls running batches, then resumed:
  the resumed process uploads nothing and creates no batch (it re-attaches), and every id is written once;
* **online** (the baseline, measured in the same run): the same judge without ``--batch``; its output lines must
  equal the batch run's, and the recorded cost of the batch run must be half of it (the price table's batch
  column), read from each run's store.

Server timing: batches validate for 1 s, run for 5 s (30 s in the kill run, so that there is time to kill it
while it polls), finalize for 1 s; the CLI polls every second. Each child has a time limit and is killed past it.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import signal
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import anyio

from judgeflow.testing import FakeOpenAI, OpenAIServer, serve_openai

JUDGE = "openai:gpt-4o"
PER_BATCH = 50_000
_TIME_LIMIT_S = 1800.0
# Run a command and report its peak RSS (KiB) on stderr's last line: the kernel's accounting of that child alone.
_RUSAGE = (
    "import resource, subprocess, sys; code = subprocess.call(sys.argv[1:]); "
    "print('maxrss_kib', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); sys.exit(code)"
)


@dataclass
class Outcome:
    name: str
    wall_s: float
    returncode: int
    lines: int
    distinct: int
    missing: int
    duplicated: int
    ok: int
    uploads: int
    batches: int
    answered: int
    online_calls: int
    cost_usd: float
    maxrss_mib: float | None

    def row(self) -> str:
        rss = "" if self.maxrss_mib is None else f"{self.maxrss_mib:,.0f}"
        return (
            f"| {self.name} | {self.wall_s:,.1f} | {self.lines:,} | {self.missing:,} | {self.duplicated:,} | "
            f"{self.uploads} | {self.batches} | {self.answered:,} | {self.online_calls:,} | "
            f"{self.cost_usd:.4f} | {rss} |"
        )


def write_items(path: Path, n: int) -> None:
    with path.open("w", encoding="utf-8") as out:
        for i in range(n):
            words = ["Paris", "is", "the", "capital", "of", "France", "since", "987"]
            row = {
                "id": f"item-{i:06d}",
                "question": f"What is the capital of France, and since when? ({i})",
                "reference": "Paris is the capital of France; it has been since 987.",
                "answer": " ".join(words[: 1 + i % len(words)]),
            }
            out.write(json.dumps(row) + "\n")


def command(items: Path, out: Path, base_url: str, *extra: str) -> list[str]:
    judge = [sys.executable, "-m", "judgeflow.cli", "judge", str(items), "--out", str(out), "--no-tui"]
    return [*judge, "--judge", JUDGE, "--base-url", base_url, *extra]


def counters(server: OpenAIServer) -> Counter[str]:
    stats = server.stats
    counts = Counter(stats.requests)
    counts["batch_requests"] = stats.batch_requests
    return counts


def read_lines(path: Path, n: int) -> tuple[int, int, int, int, int]:
    """(lines, distinct ids, missing ids, duplicated lines, ok verdicts) of an output file."""
    ids: Counter[str] = Counter()
    ok = 0
    if path.exists():
        with path.open(encoding="utf-8") as lines:
            for line in lines:
                record = json.loads(line)
                ids[record["id"]] += 1
                ok += record["status"] == "ok"
    expected = {f"item-{i:06d}" for i in range(n)}
    return sum(ids.values()), len(ids), len(expected - set(ids)), sum(c - 1 for c in ids.values()), ok


def recorded_cost(out: Path) -> float:
    store = out.with_name(out.name + ".store.sqlite")
    with sqlite3.connect(store) as db:
        value = db.execute("SELECT total(cost_usd) FROM calls").fetchone()[0]
    db.close()
    return float(value)


async def measured(name: str, server: OpenAIServer, cmd: list[str], out: Path, n: int, before: Counter[str]) -> Outcome:
    started = time.perf_counter()
    with anyio.fail_after(_TIME_LIMIT_S):
        done = await anyio.run_process([sys.executable, "-c", _RUSAGE, *cmd], check=False)
    wall = time.perf_counter() - started
    stderr = done.stderr.decode()
    if done.returncode != 0:
        print(stderr, file=sys.stderr)
    rss = next((int(line.split()[1]) for line in stderr.splitlines() if line.startswith("maxrss_kib")), None)
    return outcome(name, server, out, n, before, wall, done.returncode, None if rss is None else rss / 1024)


def outcome(
    name: str, server: OpenAIServer, out: Path, n: int, before: Counter[str], wall: float, code: int, rss: float | None
) -> Outcome:
    lines, distinct, missing, duplicated, ok = read_lines(out, n)
    delta = counters(server) - before
    return Outcome(
        name,
        wall,
        code,
        lines,
        distinct,
        missing,
        duplicated,
        ok,
        delta["files.create"],
        delta["batches.create"],
        delta["batch_requests"],
        delta["chat.completions"],
        recorded_cost(out),
        rss,
    )


async def killed_and_resumed(server: OpenAIServer, items: Path, folder: Path, n: int) -> tuple[Outcome, Outcome]:
    out = folder / "killed.jsonl"
    cmd = command(items, out, server.base_url, "--batch", "--batch-poll", "1")
    parts = math.ceil(n / PER_BATCH)
    server.config.batch_run_s = 30.0
    before = counters(server)
    started = time.perf_counter()
    process = await anyio.open_process(cmd)
    async with process:
        with anyio.fail_after(_TIME_LIMIT_S):
            # Killed while it polls: every batch created, and polled a few times since.
            while counters(server)["batches.create"] - before["batches.create"] < parts:  # noqa: ASYNC110
                await anyio.sleep(0.1)
            polled = counters(server)["batches.retrieve"]
            while counters(server)["batches.retrieve"] < polled + 2 * parts:  # noqa: ASYNC110
                await anyio.sleep(0.1)
        process.send_signal(signal.SIGKILL)
        await process.wait()
    killed = outcome("batch, killed -9 while polling", server, out, n, before, time.perf_counter() - started, -9, None)
    server.config.batch_run_s = 5.0
    resumed = await measured("batch, --resume after the kill", server, [*cmd, "--resume"], out, n, counters(server))
    return killed, resumed


def same_lines(a: Path, b: Path) -> bool:
    def by_id(path: Path) -> dict[str, dict[str, object]]:
        """Records by id, without the time each verdict was made (the one field two runs may differ in)."""
        with path.open(encoding="utf-8") as lines:
            records = (json.loads(line) for line in lines)
            return {record["id"]: {k: v for k, v in record.items() if k != "at"} for record in records}

    return by_id(a) == by_id(b)


async def main(args: argparse.Namespace) -> None:
    n = args.items
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="judgeflow-batch-bench-") as tmp:
        folder = Path(tmp)
        items = folder / "items.jsonl"
        write_items(items, n)
        fake = FakeOpenAI(batch_validate_s=1.0, batch_run_s=5.0, batch_finalize_s=1.0, log_limit=1000)
        async with serve_openai(fake) as server:
            batch_out = folder / "batch.jsonl"
            cmd = command(items, batch_out, server.base_url, "--batch", "--batch-poll", "1")
            batch = await measured("batch, one command", server, cmd, batch_out, n, counters(server))
            killed, resumed = await killed_and_resumed(server, items, folder, n)
            online_out = folder / "online.jsonl"
            cmd = command(items, online_out, server.base_url, "--concurrency", "64")
            online = await measured("online (baseline)", server, cmd, online_out, n, counters(server))
            identical = same_lines(batch_out, online_out) and same_lines(folder / "killed.jsonl", online_out)
    header = (
        "| run | wall s | lines | lost | duplicated | uploads | batches | batch requests answered | "
        "online calls | recorded cost USD | peak RSS MiB |\n|---|---|---|---|---|---|---|---|---|---|---|"
    )
    ratio = batch.cost_usd / online.cost_usd if online.cost_usd else math.nan
    report = "\n".join(
        [
            f"Measured by `python bench/batch.py --items {n}` on {time.strftime('%Y-%m-%d')} "
            f"({platform.machine()}, {os.cpu_count()} cores, load average {load_before:.1f} at start, "
            f"{os.getloadavg()[0]:.1f} at the end).",
            "",
            header,
            *(o.row() for o in (batch, killed, resumed, online)),
            "",
            f"- Exit statuses: {batch.returncode}, killed, {resumed.returncode}, {online.returncode}.",
            f"- Batch and online output lines identical (id by id, but for the time each verdict was made): "
            f"{identical}; ok verdicts: batch {batch.ok:,}, "
            f"online {online.ok:,}.",
            f"- Recorded cost, batch / online: {ratio:.6f} (target 0.5); wall time, batch / online: "
            f"{batch.wall_s / online.wall_s:.2f} (the batch run waits out the server's batch phases).",
            f"- Kill -9 while polling, then --resume: the resumed run uploaded {resumed.uploads} file(s) and created "
            f"{resumed.batches} batch(es) (target 0 and 0); the killed run had uploaded {killed.uploads}.",
        ]
    )
    print(report)
    if args.report is not None:
        args.report.write_text(report + "\n", encoding="utf-8")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--report", type=Path, help="also write the report (Markdown) here")
    return parser.parse_args()


if __name__ == "__main__":
    anyio.run(main, parse_args(), backend="asyncio")
