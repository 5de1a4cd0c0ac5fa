"""What Ray buys and costs ``judgeflow judge``: local students across cores, API limits across workers, overheads.

    flock /work/locks/bench python bench/ray_judging.py [--part students|api|overhead|all] [--quick]

Every part starts one local cluster (``ray.init(num_cpus=2)``) and runs `judgeflow.flows.ray.driver.judge_on_ray`,
the code behind ``judgeflow judge --ray``:

* ``students``: the MiniLM student (trained here, small: ``judgeflow distill --student minilm --layers 2
  --epochs 1`` on 300 items the local teacher judged) judging N items with 1 worker, then 2 workers, interleaved
  over ``--repeats``; the ratio of the medians of wall time (worker start-up and model loading included, as a
  user sees it). Target: 2 workers at least 1.7x one.
* ``api``: an ``openai:`` judge with 4 workers against the fake OpenAI server in its own process with an RPM
  limit (``rpm_window_s`` 60) and the same ``--rpm`` given to judgeflow: the requests per minute the server
  accepted over the run, as a share of the limit, the most requests in any sliding 60-second window of the
  server's log, and the 429s it answered. Target: at least 95% of the limit, no 429, no window over it.
* ``overhead``: ``ray.init(num_cpus=2)`` in a fresh process (seconds, and the resident memory of the process tree
  it starts), and the per-shard overhead: the same items with the local teacher, one worker, as one shard and as
  many shards: (many - one) / (shards - 1).

Load average is printed with each figure (``/proc/loadavg``): the machine's two cores are shared.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _servers import ServerProcess, max_in_window

from judgeflow.flows.ray.driver import RayOptions, RaySummary, judge_on_ray
from judgeflow.inputs.config import JudgingConfig

MODEL = "gpt-4o-mini"


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def write_items(path: Path, n: int, *, prefix: str = "item") -> Path:
    rows = []
    for i in range(n):
        year = 1800 + i % 200
        answer = [
            f"It happened in {year}.",
            f"Perhaps around {year - 1 - i % 40}.",
            f"I think it was in {year}, but I am not sure.",
            f"In {year}, after a long war that changed the region.",
        ][i % 4]
        rows.append({"id": f"{prefix}-{i}", "question": f"When did event {i} happen?", "reference": f"In {year}.",
                     "answer": answer})  # fmt: skip
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def judge(config: JudgingConfig, options: RayOptions) -> tuple[float, RaySummary]:
    started = time.perf_counter()
    summary = judge_on_ray(config, options, restart=True)
    return time.perf_counter() - started, summary


# ---------------------------------------------------------------------------------------------------------- students


def train_student(folder: Path) -> Path:
    """A small MiniLM student, trained by judgeflow's own commands on the local teacher's verdicts."""
    model = folder / "student"
    if (model / "neural_student.json").exists():
        return model
    train = write_items(folder / "train.jsonl", 300, prefix="train")
    verdicts = folder / "train_verdicts.jsonl"
    judgeflow = [sys.executable, "-m", "judgeflow.cli"]
    subprocess.run([*judgeflow, "judge", str(train), "--out", str(verdicts), "--no-tui"], check=True,
                   stdout=subprocess.DEVNULL)  # fmt: skip
    subprocess.run([*judgeflow, "distill", str(verdicts), "--answers", str(train), "--student", "minilm", "--out",
                    str(model), "--epochs", "1", "--layers", "2", "--threads", "2"], check=True,
                   stdout=subprocess.DEVNULL)  # fmt: skip
    return model


def students(args: argparse.Namespace, folder: Path) -> list[str]:
    import ray

    model = train_student(folder)
    items = write_items(folder / "items.jsonl", args.items)
    config = JudgingConfig(items, folder / "out.jsonl", judges=(f"local:{model}",))
    shard = max(1, args.items // 8)
    times: dict[int, list[float]] = {1: [], 2: []}
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    try:
        for _ in range(args.repeats):
            for workers in (1, 2):
                elapsed, summary = judge(config, RayOptions(workers=workers, shard_size=shard))
                assert summary.lines_written == args.items, summary
                times[workers].append(elapsed)
                print(f"  {workers} worker(s): {elapsed:.1f} s (load {loadavg()})", flush=True)
    finally:
        ray.shutdown()
    one, two = statistics.median(times[1]), statistics.median(times[2])
    return [
        f"MiniLM student (2 layers), {args.items} items in shards of {shard}, num_cpus=2, medians of {args.repeats}:",
        f"  1 worker {one:.1f} s ({args.items / one:.0f} items/s), 2 workers {two:.1f} s ({args.items / two:.0f} "
        f"items/s): {one / two:.2f}x (target 1.7x); load average after: {loadavg()}",
    ]


# ---------------------------------------------------------------------------------------------------------------- api


def api(args: argparse.Namespace, folder: Path) -> list[str]:
    import ray

    items = write_items(folder / "api_items.jsonl", args.api_items)
    with ServerProcess(latency_s=0.05, rpm=args.rpm) as server:
        config = JudgingConfig(
            items, folder / "api_out.jsonl", judges=(f"openai:{MODEL}",), base_url=server.base_url, rpm=args.rpm
        )
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
        try:
            elapsed, summary = judge(config, RayOptions(workers=4, shard_size=max(1, args.api_items // 16)))
        finally:
            ray.shutdown()
        stats, log = server.stats(), server.log()
    accepted = sorted(log)
    span = accepted[-1] - accepted[0]
    per_minute = (len(accepted) - 1) / span * 60 if span > 0 else float("nan")
    worst = max_in_window(accepted, 60.0)
    limiter = summary.limiter
    leases = f"{limiter.leases} leases for {limiter.requests} requests" if limiter is not None else "n/a"
    return [
        f"API judging, 4 workers, {args.api_items} items, server and judgeflow at {args.rpm} RPM (latency 50 ms):",
        f"  {len(accepted)} requests over {span:.0f} s = {per_minute:.0f}/min = {per_minute / args.rpm:.1%} of the "
        f"limit (target 95%); most in any 60 s window: {worst} (limit {args.rpm}); 429s: "
        f"{stats['responses'].get('429', 0)}; lines {summary.lines_written}; {leases}; wall {elapsed:.0f} s; "
        f"load average after: {loadavg()}",
    ]


# ----------------------------------------------------------------------------------------------------------- overhead

_INIT = """
import json, os, time
t = time.perf_counter()
import ray
ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
@ray.remote
def ping():
    return 1
ray.get(ping.remote())
took = time.perf_counter() - t
def tree(pid):
    kids = []
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            kids += open(f"/proc/{pid}/task/{task}/children").read().split()
        except OSError:
            pass
    return [pid] + [p for kid in kids for p in tree(int(kid))]
def rss(pid):
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0
pids = tree(os.getpid())
print(json.dumps({"seconds": took, "mib": sum(rss(p) for p in pids), "processes": len(pids)}))
ray.shutdown()
"""


def overhead(args: argparse.Namespace, folder: Path) -> list[str]:
    import ray

    inits = []
    for _ in range(args.repeats):
        done = subprocess.run([sys.executable, "-c", _INIT], check=True, capture_output=True, text=True)
        inits.append(json.loads(done.stdout.strip().splitlines()[-1]))
    seconds = statistics.median(run["seconds"] for run in inits)
    mib = statistics.median(run["mib"] for run in inits)
    items = write_items(folder / "overhead_items.jsonl", args.overhead_items)
    config = JudgingConfig(items, folder / "overhead_out.jsonl", judges=("local:teacher",))
    many = 40
    one_shard, many_shards = [], []
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    try:
        for _ in range(args.repeats):
            one_shard.append(judge(config, RayOptions(workers=1, shard_size=args.overhead_items))[0])
            many_shards.append(judge(config, RayOptions(workers=1, shard_size=args.overhead_items // many))[0])
    finally:
        ray.shutdown()
    per_shard = (statistics.median(many_shards) - statistics.median(one_shard)) / (many - 1)
    return [
        f"Ray start-up (ray.init(num_cpus=2) and a first task, fresh process, median of {args.repeats}): "
        f"{seconds:.1f} s, {mib:.0f} MiB resident in {inits[0]['processes']} processes",
        f"Per-shard overhead (local:teacher, {args.overhead_items} items, 1 worker, 1 shard vs {many}): "
        f"{statistics.median(one_shard):.2f} s vs {statistics.median(many_shards):.2f} s = {per_shard * 1000:.0f} ms "
        f"per shard; load average after: {loadavg()}",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--part", choices=("students", "api", "overhead", "all"), default="all")
    parser.add_argument("--items", type=int, default=12_000, help="students: items judged")
    parser.add_argument("--api-items", type=int, default=3_000, help="api: items judged")
    parser.add_argument("--rpm", type=int, default=1_200, help="api: the server's and judgeflow's RPM")
    parser.add_argument("--overhead-items", type=int, default=4_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="small sizes, one repeat (a smoke run, not a result)")
    parser.add_argument("--folder", type=Path, help="keep the work (and the trained student) here")
    args = parser.parse_args()
    if args.quick:
        args.items, args.api_items, args.rpm, args.overhead_items, args.repeats = 800, 150, 600, 400, 1
    os.environ.setdefault("OPENAI_API_KEY", "sk-bench-local")
    with tempfile.TemporaryDirectory() as scratch:
        folder = args.folder or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        print(f"judgeflow ray bench, {time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} cores, load {loadavg()}")
        lines: list[Any] = []
        for part, run in (("students", students), ("api", api), ("overhead", overhead)):
            if args.part in (part, "all"):
                lines += run(args, folder)
                print("\n".join(lines[-2:]), flush=True)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
