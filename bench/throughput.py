"""How fast does judgeflow judge against an OpenAI-compatible API, next to the fastest plain clients?

    python bench/throughput.py [--quick] [--repeats 3] [--memory] [--report PATH]

Against an API the ceiling is the provider: ``C`` requests in flight at latency ``L`` give at most ``C / L``
judgements per second. The fake OpenAI server (`judgeflow.testing.openai_server`) runs in a process of its own on
127.0.0.1 (`_servers.ServerProcess`), and every client runs in a fresh process of its own over the same
deterministic items, so that CPU time and peak RSS are the kernel's accounting of that client alone (``wait4``):

* (a) ``judgeflow judge ITEMS --judge openai:gpt-4o --base-url URL --concurrency C [--rpm R] --no-tui``;
* (b) the Python API: `judgeflow.flows.wiring.resolve_judges` and `judgeflow.flows.judging.judge_file`;
* (c) a raw aiohttp client with a semaphore of C (the practical floor of a Python client);
* (d) the plain ``openai.AsyncOpenAI`` client with a semaphore of C.

All four send the same judge prompt (`judgeflow.core.prompts.DEFAULT_JUDGE_PROMPT`) for every item. Scenarios:
latency 200 ms with 256 in flight, latency 0 with 64 in flight, and an RPM-limited run, where the server's request
log is checked: no 60-second window may hold more than the limit, and the server must have answered no 429 (the
plain clients get an aiolimiter bucket of one second's worth of the rate, as judgeflow's gate uses).

Throughput is items over the client process's whole wall time (start-up included, as a user sees it); the server's
view (first to last request, plus the latency) is shown too. Runs of the clients are interleaved, so load from
elsewhere on the machine spreads over all of them; each number is the median over ``--repeats`` runs, with the
spread (max - min) / median as the noise. ``--memory`` measures the peak RSS of ``judgeflow judge`` at two sizes
(20,000 and 200,000 items) instead, and every mode times ``judgeflow --help``.

Everything is bounded: each client run has a time limit and is killed past it, and all traffic goes to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import platform
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from _servers import ServerProcess, max_in_window

MODEL = "gpt-4o"
CLIENTS = ("a", "b", "c", "d")
CLIENT_NAMES = {
    "a": "(a) judgeflow judge (CLI)",
    "b": "(b) judgeflow API",
    "c": "(c) raw aiohttp",
    "d": "(d) openai SDK",
}
RUN_TIMEOUT_S = 1800.0
WORDS = "city river bridge harbour railway fire earthquake mayor port market canal tower war treaty".split()  # noqa: SIM905


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    latency_s: float
    concurrency: int
    n: int
    rpm: int | None = None

    @property
    def limit(self) -> float | None:
        """The most items per second the provider allows: C / L, and rpm / 60 when rate limited."""
        limits = []
        if self.latency_s > 0:
            limits.append(self.concurrency / self.latency_s)
        if self.rpm is not None:
            limits.append(self.rpm / 60.0)
        return min(limits) if limits else None


@dataclass(slots=True)
class Run:
    """One client run: the child's wall, CPU and peak RSS, and what the server saw meanwhile."""

    client: str
    n: int
    wall_s: float
    cpu_s: float
    rss_mib: float
    answered_ok: int
    responses: dict[str, int]
    server_cpu_s: float
    span_s: float
    max_per_minute: int | None = None
    lines_ok: int | None = None

    @property
    def items_per_s(self) -> float:
        return self.n / self.wall_s


@dataclass(slots=True)
class Row:
    scenario: Scenario
    client: str
    runs: list[Run] = field(default_factory=list)

    def median(self, attribute: str) -> float:
        return statistics.median(float(getattr(run, attribute)) for run in self.runs)

    def spread(self, attribute: str) -> float:
        values = [float(getattr(run, attribute)) for run in self.runs]
        middle = statistics.median(values)
        return (max(values) - min(values)) / middle if middle else 0.0


# ----------------------------------------------------------------------------------------------------------------
# Items and child processes


def write_items(path: Path, n: int, seed: int = 0) -> None:
    """``n`` deterministic items (id, question, reference, answer); about half the answers are wrong.

    Every prompt is distinct (the subject names the item's index): ``judgeflow judge`` answers a repeated
    request from its response cache, which would spare it calls that the plain clients make.
    """
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8") as sink:
        for index in range(n):
            year = rng.randint(1600, 2020)
            subject = f"{' '.join(rng.choices(WORDS, k=3))} of lot {index}"
            reference = f"The {subject} opened in {year} after years of work."
            answer = reference if rng.random() < 0.5 else f"The {subject} opened in {year + rng.randint(1, 40)}."
            item = {"id": index, "question": f"When did the {subject} open?", "reference": reference, "answer": answer}
            sink.write(json.dumps(item) + "\n")


def judgeflow_command() -> list[str]:
    """``judgeflow`` as installed next to this interpreter (the console script), else ``python -m``."""
    script = Path(sys.executable).parent / "judgeflow"
    return [str(script)] if script.exists() else [sys.executable, "-m", "judgeflow.cli"]


def client_command(client: str, scenario: Scenario, url: str, items: Path, out: Path, result: Path) -> list[str]:
    if client == "a":
        command = [*judgeflow_command(), "judge", str(items), "--out", str(out), "--judge", f"openai:{MODEL}"]
        command += ["--base-url", url, "--concurrency", str(scenario.concurrency), "--no-tui"]
    else:
        command = [sys.executable, str(Path(__file__)), "--child", client, "--url", url, "--items", str(items)]
        command += ["--out", str(out), "--concurrency", str(scenario.concurrency), "--result", str(result)]
    if scenario.rpm is not None:
        command += ["--rpm", str(scenario.rpm)]
    return command


def run_process(command: Sequence[str], log: Path) -> tuple[float, float, float]:
    """Run ``command`` to the end; its wall seconds, CPU seconds (user + system) and peak RSS in MiB."""
    with log.open("ab") as sink:
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=sink, stderr=sink, stdin=subprocess.DEVNULL)
        deadline = started + RUN_TIMEOUT_S
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                process.send_signal(signal.SIGKILL)
                _, status, usage = os.wait4(process.pid, 0)
                process.returncode = -9
                raise RuntimeError(f"{command[0]} ran past {RUN_TIMEOUT_S:.0f} s and was killed; see {log}")
            time.sleep(0.02)
        wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:3])}... failed with status {process.returncode}; see {log}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024.0


def measure(client: str, scenario: Scenario, items: Path, folder: Path) -> Run:
    """One run of ``client`` over ``items``, against a fresh server (its counts, log and RPM window are this run's)."""
    out, result, log = folder / f"out-{client}.jsonl", folder / f"result-{client}.json", folder / f"log-{client}.txt"
    out.unlink(missing_ok=True)
    for stale in folder.glob(f"{out.name}.store.sqlite*"):  # judgeflow judge's run store beside --out
        stale.unlink()
    with ServerProcess(latency_s=scenario.latency_s, rpm=scenario.rpm, log_limit=scenario.n + 1000) as server:
        server_cpu = server.cpu_seconds()
        wall, cpu, rss = run_process(client_command(client, scenario, server.base_url, items, out, result), log)
        server_cpu = server.cpu_seconds() - server_cpu
        stats = server.stats()
        times = server.log()
    span = (max(times) - min(times) + scenario.latency_s) if times else 0.0
    lines_ok = None
    if client in ("a", "b"):
        with out.open(encoding="utf-8") as lines:
            lines_ok = sum('"status": "ok"' in line for line in lines)
    return Run(
        client=client,
        n=scenario.n,
        wall_s=wall,
        cpu_s=cpu,
        rss_mib=rss,
        answered_ok=int(stats["responses"].get("200", 0)),
        responses=dict(stats["responses"]),
        server_cpu_s=server_cpu,
        span_s=span,
        max_per_minute=max_in_window(times, 60.0) if scenario.rpm is not None else None,
        lines_ok=lines_ok,
    )


# ----------------------------------------------------------------------------------------------------------------
# The clients (b), (c) and (d), run as ``--child`` processes


def _judge_messages(path: Path) -> Any:
    """(id, messages) of every item, lazily: the same prompt judgeflow sends."""
    from judgeflow.core.prompts import DEFAULT_JUDGE_PROMPT
    from judgeflow.inputs.items import iter_items
    from judgeflow.protocol.messages import JudgeInput

    for answer in iter_items(path):
        item = JudgeInput(question=answer.question.question, reference=answer.question.reference, answer=answer.text)
        yield [{"role": m.role, "content": m.content} for m in DEFAULT_JUDGE_PROMPT.messages(item)]


async def _child_api(args: argparse.Namespace) -> dict[str, Any]:
    from judgeflow.flows.judging import judge_file
    from judgeflow.flows.wiring import resolve_judges

    judges, resources = await resolve_judges(
        [f"openai:{MODEL}"], base_url=args.url, concurrency=args.concurrency, rpm=args.rpm
    )
    async with resources:
        summary = await judge_file(args.items, args.out, judges, workers=args.concurrency)
    return {"items": summary.items, "lines": summary.lines_written}


async def _bounded(args: argparse.Namespace, one: Any) -> int:
    """Run ``one(messages)`` for every item with at most ``concurrency`` at once; the number that succeeded."""
    from aiolimiter import AsyncLimiter

    limiter = None
    if args.rpm is not None:
        # The bucket judgeflow's gate uses by default (`judgeflow.calls.gate.Limits`): one second's worth of the rate,
        # draining at (rpm - bucket) per 61 seconds, so that no 60-second window holds more than rpm requests.
        size = max(1.0, args.rpm / 60.0)
        limiter = AsyncLimiter(size, size * 61.0 / (args.rpm - size))
    semaphore = asyncio.Semaphore(args.concurrency)
    done = 0

    async def call(messages: list[dict[str, str]]) -> None:
        nonlocal done
        try:
            if limiter is not None:
                await limiter.acquire()
            text = await one(messages)
            done += isinstance(text, str)
        finally:
            semaphore.release()

    async with asyncio.TaskGroup() as tg:
        for messages in _judge_messages(args.items):
            await semaphore.acquire()
            tg.create_task(call(messages))
    return done


async def _child_aiohttp(args: argparse.Namespace) -> dict[str, Any]:
    import aiohttp

    url = f"{args.url}/chat/completions"
    headers = {"Authorization": "Bearer sk-local"}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0), headers=headers) as session:

        async def one(messages: list[dict[str, str]]) -> object:
            async with session.post(url, json={"model": MODEL, "messages": messages, "temperature": 0.0}) as response:
                data = await response.json()
                return data["choices"][0]["message"]["content"] if response.status == 200 else None

        return {"items": await _bounded(args, one)}


async def _child_sdk(args: argparse.Namespace) -> dict[str, Any]:
    import openai

    async with openai.AsyncOpenAI(base_url=args.url, api_key="sk-local", max_retries=0) as client:

        async def one(messages: Any) -> object:
            try:
                completion = await client.chat.completions.create(model=MODEL, messages=messages, temperature=0.0)
            except openai.APIStatusError:
                return None  # counted as not done; the server's counts show which status it was
            return completion.choices[0].message.content

        return {"items": await _bounded(args, one)}


def child_main(args: argparse.Namespace) -> None:
    runners = {"b": _child_api, "c": _child_aiohttp, "d": _child_sdk}
    started = time.perf_counter()
    if args.child == "b":
        import anyio

        result = anyio.run(runners["b"], args, backend="asyncio")
    else:
        result = asyncio.run(runners[args.child](args))
    result["run_s"] = time.perf_counter() - started
    args.result.write_text(json.dumps(result))


# ----------------------------------------------------------------------------------------------------------------
# Reports


def fmt_rate(value: float) -> str:
    return f"{value:,.0f}"


def scenario_title(scenario: Scenario) -> str:
    rpm = f", rpm {scenario.rpm}" if scenario.rpm else ""
    bounds = [name for name, on in (("C/L", scenario.latency_s > 0), ("rpm/60", scenario.rpm)) if on]
    limit = f", limit {fmt_rate(scenario.limit)}/s ({' and '.join(bounds)})" if scenario.limit else ""
    latency = f"latency {scenario.latency_s * 1000:.0f} ms"
    return f"{latency}, concurrency {scenario.concurrency}{rpm}, N = {scenario.n:,}{limit}"


def table(rows: list[Row]) -> list[str]:
    lines = [
        "| scenario | client | items/s | noise | % of limit | server-side items/s | CPU s / 1k items | peak RSS MiB "
        "| x (c) aiohttp | x (d) SDK | server CPU | checks |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    by_key = {(row.scenario.name, row.client): row for row in rows}
    for row in rows:
        s = row.scenario
        rate = row.median("items_per_s")
        limit = s.limit
        pct = f"{100 * rate / limit:.0f}%" if limit else "n/a"
        server_rate = statistics.median(run.n / run.span_s for run in row.runs if run.span_s > 0)
        ratios = []
        for other in ("c", "d"):
            base = by_key.get((s.name, other))
            ratios.append(f"{rate / base.median('items_per_s'):.2f}" if base and base.runs else "-")
        server_util = statistics.median(run.server_cpu_s / run.wall_s for run in row.runs)
        lines.append(
            f"| {s.name} | {CLIENT_NAMES[row.client]} | {fmt_rate(rate)} | ±{50 * row.spread('items_per_s'):.0f}% "
            f"| {pct} | {fmt_rate(server_rate)} | {1000 * row.median('cpu_s') / s.n:.2f} | {row.median('rss_mib'):.0f} "
            f"| {ratios[0]} | {ratios[1]} | {100 * server_util:.0f}% | {checks(row)} |"
        )
    return lines


def checks(row: Row) -> str:
    """What every run must show: each item answered 200 once, no other status, and the RPM window respected."""
    runs, n = row.runs, row.scenario.n
    problems = []
    short = [run.answered_ok for run in runs if run.answered_ok < n]
    if short:
        problems.append(f"{len(short)}/{len(runs)} runs had fewer than N answered 200 (least {min(short):,})")
    statuses: dict[str, int] = {}
    for run in runs:
        for status, count in run.responses.items():
            if status != "200":
                statuses[status] = statuses.get(status, 0) + count
    if statuses:
        shown = ", ".join(f"{count} x {status}" for status, count in sorted(statuses.items()))
        problems.append(f"{shown} over {len(runs)} runs")
    lines = [run.lines_ok for run in runs if run.lines_ok is not None and run.lines_ok != n]
    if lines:
        problems.append(f"{len(lines)} runs wrote fewer than N ok lines")
    rpm = row.scenario.rpm
    if rpm is None:
        return "; ".join(problems) or "ok"
    worst = max(run.max_per_minute or 0 for run in runs)
    window = f"max {worst:,} per 60 s" + (f" > {rpm:,}" if worst > rpm else "")
    return "; ".join([*problems, window]) if problems or worst > rpm else f"ok: {window}, no 429"


def environment() -> list[str]:
    model = platform.processor() or "unknown"
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        model = next(
            (line.split(":", 1)[1].strip() for line in lscpu.splitlines() if line.startswith("Model name")), model
        )
    except (OSError, subprocess.CalledProcessError):
        pass
    versions = []
    for package in ("judgeflow", "openai", "aiohttp", "anyio", "aiolimiter", "httpx2"):
        try:
            versions.append(f"{package} {metadata.version(package)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{package} (not installed)")
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return [
        f"- date: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}",
        f"- machine: {model}, {os.cpu_count()} cores; {platform.system()} {platform.release()}",
        f"- python {platform.python_version()}; {'; '.join(versions)}",
        f"- load average at the end: {load}",
        f"- command: `{' '.join([Path(sys.executable).name, *sys.argv])}`",
    ]


def time_help(repeats: int = 20) -> tuple[float, str]:
    """Median seconds of ``judgeflow --help`` (hyperfine when installed, else a loop), and how it was measured."""
    command = [*judgeflow_command(), "--help"]
    hyperfine = shutil.which("hyperfine")
    if hyperfine is not None:
        with tempfile.TemporaryDirectory() as folder:
            export = Path(folder) / "help.json"
            subprocess.run(
                [
                    hyperfine,
                    "-N",
                    "--warmup",
                    "3",
                    "--runs",
                    str(repeats),
                    "--export-json",
                    str(export),
                    " ".join(command),
                ],
                check=True,
                capture_output=True,
            )
            result = json.loads(export.read_text())["results"][0]
        return float(result["median"]), f"hyperfine, {repeats} runs, median"
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times), f"loop of {repeats} runs, median"


# ----------------------------------------------------------------------------------------------------------------
# Modes


def throughput_mode(args: argparse.Namespace, folder: Path) -> list[str]:
    quick = args.quick
    scenarios = [
        Scenario("L200-C256", 0.2, 256, 3_000 if quick else 20_000),
        Scenario("L0-C64", 0.0, 64, 3_000 if quick else 20_000),
        # 100 requests per second for just over a minute: the 60-second window check means something.
        Scenario("RPM6000", 0.2, 64, 1_500 if quick else 6_600, rpm=6_000),
    ]
    if args.n is not None:
        scenarios = [dataclasses.replace(s, n=args.n) if s.rpm is None else s for s in scenarios]
    if args.scenario:
        scenarios = [s for s in scenarios if s.name in args.scenario]
    clients = [c for c in CLIENTS if not args.clients or c in args.clients]
    rows: list[Row] = []
    startup: dict[str, list[Run]] = {}
    for scenario in scenarios:
        items = folder / f"items-{scenario.n}.jsonl"
        if not items.exists():
            write_items(items, scenario.n)
        scenario_rows = [Row(scenario, client) for client in clients]
        for repeat in range(args.repeats):
            for row in scenario_rows:
                run = measure(row.client, scenario, items, folder)
                row.runs.append(run)
                print(
                    f"{scenario.name} #{repeat + 1} {CLIENT_NAMES[row.client]}: {run.items_per_s:,.0f} items/s, "
                    f"cpu {run.cpu_s:.1f} s, rss {run.rss_mib:.0f} MiB, server cpu {run.server_cpu_s:.1f} s, "
                    f"responses {run.responses}",
                    file=sys.stderr,
                    flush=True,
                )
        rows.extend(scenario_rows)
    # Start-up cost of each client: one item, latency 0.
    one = Scenario("startup", 0.0, 1, 1)
    items = folder / "items-1.jsonl"
    write_items(items, 1)
    for _ in range(args.repeats):
        for client in clients:
            startup.setdefault(client, []).append(measure(client, one, items, folder))
    lines = ["## Throughput", ""]
    for scenario in scenarios:
        lines.append(f"- **{scenario.name}**: {scenario_title(scenario)}")
    lines += ["", *table(rows), "", "Start-up (one item, latency 0; medians):", ""]
    lines += ["| client | wall s | CPU s | peak RSS MiB |", "|---|---:|---:|---:|"]
    for client, runs in startup.items():
        lines.append(
            f"| {CLIENT_NAMES[client]} | {statistics.median(r.wall_s for r in runs):.2f} "
            f"| {statistics.median(r.cpu_s for r in runs):.2f} | {statistics.median(r.rss_mib for r in runs):.0f} |"
        )
    return lines


def memory_mode(args: argparse.Namespace, folder: Path) -> list[str]:
    sizes = (5_000, 50_000) if args.quick else (20_000, 200_000)
    rows = []
    for n in sizes:
        scenario = Scenario(f"memory-{n}", 0.0, 64, n)
        items = folder / f"items-{n}.jsonl"
        write_items(items, n)
        row = Row(scenario, "a")
        for _ in range(args.repeats):
            run = measure("a", scenario, items, folder)
            row.runs.append(run)
            print(f"memory N={n}: rss {run.rss_mib:.1f} MiB, {run.items_per_s:,.0f} items/s", file=sys.stderr)
        rows.append(row)
    small, large = rows
    growth = large.median("rss_mib") - small.median("rss_mib")
    lines = ["## Memory of `judgeflow judge` (latency 0, concurrency 64)", ""]
    lines += ["| N | peak RSS MiB (median) | noise | items/s | checks |", "|---:|---:|---:|---:|---|"]
    for row in rows:
        lines.append(
            f"| {row.scenario.n:,} | {row.median('rss_mib'):.1f} | ±{50 * row.spread('rss_mib'):.1f}% "
            f"| {fmt_rate(row.median('items_per_s'))} | {checks(row)} |"
        )
    lines += ["", f"Growth from {sizes[0]:,} to {sizes[1]:,} items: {growth:+.1f} MiB"]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small N (3,000; memory: 5,000 and 50,000)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--memory", action="store_true", help="peak RSS of judgeflow judge at two sizes instead")
    parser.add_argument(
        "--scenario", action="append", help="only this scenario (repeatable): L200-C256, L0-C64, RPM6000"
    )
    parser.add_argument("--clients", help="only these clients, e.g. 'ac' (default: abcd)")
    parser.add_argument("--n", type=int, help="items per run of the two latency scenarios (not the RPM one)")
    parser.add_argument("--report", type=Path, help="also write the markdown report here")
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it (items, outputs, logs)")
    # The child processes of clients (b), (c) and (d).
    parser.add_argument("--child", choices=["b", "c", "d"], help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--items", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--concurrency", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--rpm", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child_main(args)
        return
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    with tempfile.TemporaryDirectory(prefix="judgeflow-throughput-") as temporary:
        folder = args.keep or Path(temporary)
        folder.mkdir(parents=True, exist_ok=True)
        lines = memory_mode(args, folder) if args.memory else throughput_mode(args, folder)
    help_s, how = time_help()
    lines += ["", f"`judgeflow --help`: {help_s * 1000:.0f} ms ({how})", "", "## Environment", "", *environment()]
    report = "\n".join(lines) + "\n"
    print(report)
    if args.report is not None:
        args.report.write_text(report, encoding="utf-8")


if __name__ == "__main__":
    main()
