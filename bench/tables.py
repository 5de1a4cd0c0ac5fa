"""Reading items from CSV and Parquet, and writing verdicts as Parquet, against JSONL: items/s and peak RSS.

    flock /work/locks/bench python bench/tables.py [--items 1000000] [--repeats 3]

Writes the same deterministic items as JSONL, CSV and Parquet (twice: in row groups of 100,000 rows, as a
streaming writer makes them, and as one row group, as ``pyarrow.parquet.write_table`` makes a table of a million
rows by default), then, in a fresh process per measurement, reads every item through
`judgeflow.inputs.items.iter_items` (the reader ``judgeflow judge`` uses, with every check) and reports items/s
and the process's peak RSS (the kernel's high-water mark, after imports and after reading). Writing: the same
number of verdict records through the JSONL sink and the Parquet sink (`judgeflow.runs.parquet_sink`). Ratios are
against JSONL, measured in the same run; medians of ``--repeats`` runs. Needs the ``parquet`` extra.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

WORDS = "city river bridge harbour railway fire earthquake mayor port market canal tower war treaty".split()  # noqa: SIM905
CHUNK = 100_000

# The child: import, note the high-water mark, do the work, print items, seconds and both marks as JSON.
_CHILD = """
import json, sys, time
from pathlib import Path

def hwm(key="VmHWM:"):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) / 1024

mode, path = sys.argv[1], Path(sys.argv[2])
if mode == "read":
    from judgeflow.inputs.items import iter_items
    if path.suffix == ".parquet":
        import pyarrow.parquet
else:
    from judgeflow.runs.parquet_sink import open_verdict_sink
    import pyarrow.parquet
imported = hwm()
started = time.perf_counter()
tenths = []
if mode == "read":
    count, tenth = 0, max(int(sys.argv[3]) // 10, 1)
    for _ in iter_items(path):
        count += 1
        if count % tenth == 0:
            tenths.append(round(hwm("VmRSS:"), 1))
else:
    count = int(sys.argv[3])
    record = {"id": "", "judge": "local:teacher", "model": "local-teacher", "score": 4.0, "status": "ok",
              "raw": "4\\nThe answer gives the year the reference gives, and nothing that contradicts it.",
              "at": 1796000000.125}
    with open_verdict_sink(path) as sink:
        for index in range(count):
            record["id"] = str(index)
            sink.write_record(record, json.dumps(record))
seconds = time.perf_counter() - started
pool = sys.modules["pyarrow"].default_memory_pool().max_memory() / 2**20 if "pyarrow" in sys.modules else 0.0
print(json.dumps({"items": count, "seconds": seconds, "imported_mib": imported, "peak_mib": hwm(),
                  "arrow_pool_peak_mib": pool, "rss_tenths": tenths}))
"""


def rows(n: int, start: int = 0) -> list[dict[str, Any]]:
    found = []
    for index in range(start, start + n):
        year = 1600 + (index * 7919) % 420
        subject = " ".join(WORDS[(index * k) % len(WORDS)] for k in (3, 5, 11))
        reference = f"The {subject} opened in {year} after years of work."
        answer = reference if index % 2 else f"The {subject} opened in {year + 1 + index % 40}."
        question = f"When did the {subject} number {index} open?"
        found.append({"id": index, "question": question, "reference": reference, "answer": answer})
    return found


def write_files(folder: Path, n: int) -> dict[str, Path]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    paths = {
        "JSONL": folder / "items.jsonl",
        "CSV": folder / "items.csv",
        "Parquet, row groups of 100,000": folder / "items.parquet",
        "Parquet, one row group": folder / "one-group.parquet",
    }
    with (
        paths["JSONL"].open("w", encoding="utf-8") as jsonl,
        paths["CSV"].open("w", encoding="utf-8", newline="") as table,
    ):
        writer = csv.DictWriter(table, fieldnames=["id", "question", "reference", "answer"])
        writer.writeheader()
        parquet: Any = None
        for start in range(0, n, CHUNK):
            chunk = rows(min(CHUNK, n - start), start)
            jsonl.writelines(json.dumps(row) + "\n" for row in chunk)
            writer.writerows(chunk)
            batch = pa.Table.from_pylist(chunk)
            if parquet is None:
                parquet = pq.ParquetWriter(paths["Parquet, row groups of 100,000"], batch.schema)
            parquet.write_table(batch)
        parquet.close()
    whole = pq.read_table(paths["Parquet, row groups of 100,000"])
    pq.write_table(whole, paths["Parquet, one row group"], row_group_size=n)
    assert pq.ParquetFile(paths["Parquet, one row group"]).metadata.num_row_groups == 1
    return paths


def child(*args: str) -> dict[str, Any]:
    result = subprocess.run([sys.executable, "-c", _CHILD, *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"the child failed: {args}\n{result.stderr}")
    measured: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return measured


def median(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The median of every number; the RSS samples of the last run."""
    found: dict[str, Any] = {key: statistics.median(run[key] for run in runs) for key in runs[0] if key != "rss_tenths"}
    found["rss_tenths"] = runs[-1]["rss_tenths"]
    return found


def table(
    title: str,
    results: dict[str, dict[str, Any]],
    smaller: dict[str, dict[str, Any]],
    sizes: dict[str, int],
    n: int,
) -> list[str]:
    """One row per format; ``smaller`` holds the same measurement at a tenth of the items (flat memory)."""
    base = results["JSONL"]
    lines = [
        f"{title}",
        "",
        "| format | file MiB | items/s | x JSONL | peak RSS MiB | x JSONL | after imports MiB "
        f"| peak RSS at {n // 10:,} |",
        "|---|---|---|---|---|---|---|---|",
    ]
    base_rate = base["items"] / base["seconds"]
    for name, result in results.items():
        if result["items"] != n or smaller[name]["items"] != n // 10:
            raise SystemExit(f"{name}: {result['items']} items, expected {n}: measured nothing comparable")
        rate = result["items"] / result["seconds"]
        lines.append(
            f"| {name} | {sizes[name] / 2**20:,.0f} | {rate:,.0f} | {rate / base_rate:.2f} | {result['peak_mib']:,.0f} "
            f"| {result['peak_mib'] / base['peak_mib']:.2f} | {result['imported_mib']:,.0f} "
            f"| {smaller[name]['peak_mib']:,.0f} |"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    n = args.items
    import pyarrow

    with tempfile.TemporaryDirectory(prefix="judgeflow-tables-") as name:
        folder = Path(name)
        (folder / "large").mkdir()
        (folder / "small").mkdir()
        paths = write_files(folder / "large", n)
        small = write_files(folder / "small", n // 10)
        sizes = {label: path.stat().st_size for label, path in paths.items()}
        reading: dict[str, list[dict[str, Any]]] = {label: [] for label in paths}
        reading_small: dict[str, list[dict[str, Any]]] = {label: [] for label in paths}
        out = {"JSONL": folder / "verdicts.jsonl", "Parquet": folder / "verdicts.parquet"}
        writing: dict[str, list[dict[str, Any]]] = {label: [] for label in out}
        writing_small: dict[str, list[dict[str, Any]]] = {label: [] for label in out}
        for _ in range(args.repeats):  # interleaved, so that a change in the machine's load touches every format
            for label in paths:
                reading[label].append(child("read", str(paths[label]), str(n)))
                reading_small[label].append(child("read", str(small[label]), str(n // 10)))
            for label, path in out.items():
                writing_small[label].append(child("write", str(path), str(n // 10)))
                writing[label].append(child("write", str(path), str(n)))
            written = {label: path.stat().st_size for label, path in out.items()}
        load = os.getloadavg()
    print(
        f"{n:,} items; medians of {args.repeats}; Python {platform.python_version()}, pyarrow {pyarrow.__version__}, "
        f"{os.cpu_count()} CPUs; load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )
    print()
    title = "Reading every item (judgeflow.inputs.items.iter_items, with every check):"
    read = _medians(reading)
    print("\n".join(table(title, read, _medians(reading_small), sizes, n)))
    print()
    print(f"RSS MiB after each tenth of the {n:,} items (the last round), and pyarrow's pool at its peak (median):")
    for label, result in read.items():
        tenths = " ".join(f"{value:,.0f}" for value in result["rss_tenths"])
        print(f"- {label}: {tenths}; pyarrow pool {result['arrow_pool_peak_mib']:,.1f} MiB")
    print()
    title = "Writing verdict records (--out verdicts.jsonl | verdicts.parquet), file size at the larger count:"
    print("\n".join(table(title, _medians(writing), _medians(writing_small), written, n)))


def _medians(runs: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    return {label: median(each) for label, each in runs.items()}


if __name__ == "__main__":
    main()
