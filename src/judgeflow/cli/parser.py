"""The command line: one `argparse` parser for every command, and nothing else (no judgeflow imports)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

__all__ = ["parser"]


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="judgeflow",
        description="Distil an expensive LLM judge into a cheap one, and measure how well they agree.",
    )
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _run(commands)
    _judge(commands)
    _watch(commands)
    _distill(commands)
    _report(commands)
    return top


def _run(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    run = commands.add_parser(
        "run",
        help="run the whole distillation pipeline (default: the embedded offline demo)",
        description="Run the distillation pipeline: questions, answers, teacher judgements, training, "
        "student judgements and agreement. Without --config it runs the embedded default: the bundled "
        "corpus and local stand-in models, offline.",
    )
    run.add_argument("--config", type=Path, help="TOML configuration file")
    run.add_argument("--out", type=Path, help="run folder (default: a new folder under runs/)")
    run.add_argument("--seed", type=int, help="seed for the train/held-out split and the bootstrap")
    run.add_argument("--no-tui", action="store_true", help="plain progress lines instead of the dashboard")
    run.add_argument(
        "--resume",
        type=Path,
        metavar="DIR",
        help="continue the run in DIR (crashed, killed or quit): paid calls are not repeated, a fine-tuning "
        "job is re-attached; its config is reused unless --config is given (and must then match)",
    )
    run.add_argument("--restart", action="store_true", help="with --out/--resume: start over in that folder")
    run.add_argument("--cache", type=Path, metavar="DIR", help="a response cache shared across runs")
    run.add_argument(
        "--max-cost", type=float, metavar="USD", help="stop starting paid calls before spending would pass this"
    )
    _waits(run, default=None)
    run.add_argument(
        "--scoring",
        choices=SCORING_CHOICES,
        help="how the LLM teacher and student are asked for a score (overrides [roles.*] scoring): " + SCORING_HELP,
    )


SCORING_CHOICES = ("reply", "json", "logprobs")
SCORING_HELP = (
    "reply = the recipe's text (score on the first line), json = constrained JSON {score, reasoning}, "
    "logprobs = JSON scored as the probability-weighted mean of the score tokens; a server that refuses one "
    "is asked the next best way, once, and the report says so"
)


def _judge(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    judge = commands.add_parser(
        "judge",
        help="judge a file of {id, question, reference, answer} items (JSONL, CSV or Parquet)",
        description="Judge every item of ITEMS (by its suffix: .jsonl, one JSON object with id, question, "
        "reference and answer per line; .csv, a header line naming those columns; .parquet, those columns, "
        "which needs the parquet extra) with each --judge; write one line per item and judge to --out "
        "(.parquet: the same fields as columns). With two or more judges, the first is the reference and the "
        "agreement of the others with it is printed.",
    )
    judge.add_argument("items", type=Path, metavar="ITEMS")
    judge.add_argument("--out", type=Path, required=True, metavar="OUT.jsonl|OUT.parquet")
    judge.add_argument(
        "--judge",
        action="append",
        dest="judges",
        metavar="PROVIDER:MODEL",
        help="a judge: local:teacher, local:student-prior, local:PATH/TO/STUDENT, openai:MODEL or hf:MODEL "
        "(repeatable; default local:teacher)",
    )
    judge.add_argument("--concurrency", type=int, default=8, help="concurrent calls per judge (default 8)")
    judge.add_argument("--base-url", help="OpenAI-compatible server for openai: judges (default: OPENAI_BASE_URL)")
    judge.add_argument("--rpm", type=int, help="requests per minute allowed per provider model")
    judge.add_argument("--tpm", type=int, help="tokens per minute allowed per provider model")
    judge.add_argument("--max-tokens", type=int, help="cap on the tokens of each judge reply")
    judge.add_argument(
        "--scoring",
        choices=SCORING_CHOICES,
        default="reply",
        help="how openai: and hf: judges are asked for a score (default reply): " + SCORING_HELP,
    )
    judge.add_argument("--timeout", type=float, default=60.0, metavar="S", help="seconds before a call is retried")
    judge.add_argument(
        "--max-cost", type=float, metavar="USD", help="stop starting paid calls before spending would pass this"
    )
    judge.add_argument("--seed", type=int, default=0, help="seed for the bootstrap confidence intervals")
    judge.add_argument(
        "--label-threshold",
        type=float,
        default=4.0,
        metavar="SCORE",
        help="with true/false labels: a score at or above this counts as true (default 4)",
    )
    judge.add_argument("--no-tui", action="store_true", help="plain progress lines instead of the dashboard")
    judge.add_argument(
        "--resume",
        action="store_true",
        help="continue an earlier judge run into the same --out: verdicts it has are kept, not paid for again",
    )
    judge.add_argument("--restart", action="store_true", help="start over even though --out holds earlier verdicts")
    judge.add_argument("--cache", type=Path, metavar="DIR", help="a response cache shared across runs")
    batch = judge.add_argument_group("batch mode (OpenAI's Batch API: half the price, replies within 24 hours)")
    batch.add_argument(
        "--batch",
        action="store_true",
        help="send the openai: judges' requests in batches; kill or Ctrl-C, then --resume re-attaches them",
    )
    batch.add_argument("--batch-poll", type=float, default=30.0, metavar="S", help="seconds between polls (30)")
    batch.add_argument(
        "--batch-max-requests", type=int, default=50_000, metavar="N", help="requests per batch (at most 50,000)"
    )
    batch.add_argument("--cancel", action="store_true", help="cancel the batches of --out still running, and stop")
    ray = judge.add_argument_group("Ray (the ray extra): shards judged by workers across a cluster's cores")
    ray.add_argument(
        "--ray",
        nargs="?",
        const="",
        metavar="ADDRESS",
        help="judge on Ray: the cluster at ADDRESS, or a local one started for the run; rpm, tpm, concurrency "
        "hold for the whole cluster",
    )
    ray.add_argument("--workers", type=int, default=2, metavar="N", help="shard workers (default 2)")
    ray.add_argument("--shard-size", type=int, default=10_000, metavar="N", help="items per shard (default 10,000)")
    ray.add_argument("--num-cpus", type=int, metavar="N", help="CPUs of the local cluster (default: all)")
    _waits(judge, default=10.0, limit=600.0)


def _waits(command: argparse.ArgumentParser, *, default: float | None, limit: float | None = None) -> None:
    """How long a run waits for a server that does not answer (``[calls]`` in a config file)."""
    where = "" if default is None else f" (default {default:g})"
    command.add_argument(
        "--grace",
        type=float,
        default=default,
        metavar="S",
        help=f"stop when a server has not answered once for S seconds{where}: a wrong URL or a closed port",
    )
    where = "" if limit is None else f" (default {limit:g})"
    command.add_argument(
        "--outage-limit",
        type=float,
        default=limit,
        metavar="S",
        help=f"wait this long for a server that went away mid-run before stopping{where}; calls pause, none fail",
    )


def _watch(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    watch = commands.add_parser(
        "watch",
        help="show the dashboard of a run in another process (or a finished one) from its run folder",
        description="Follow DIR/run.log and show the run's dashboard (or plain progress with --no-tui) until "
        "the run finishes. The watched run is only read, never slowed.",
    )
    watch.add_argument("folder", type=Path, metavar="DIR")
    watch.add_argument("--no-tui", action="store_true", help="plain progress lines instead of the dashboard")


def _distill(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    distill = commands.add_parser(
        "distill",
        help="train a local student (minilm or numpy) from a teacher's judgements",
        description="Train a local student judge from a teacher's judgements: a run folder (or its "
        "judgements.jsonl, joined with answers.jsonl by id) or a JSONL file of {question, reference, answer, "
        "score} lines. Then judge with --judge local:MODEL_DIR.",
    )
    distill.add_argument("judgements", type=Path, metavar="JUDGEMENTS.jsonl")
    distill.add_argument("--student", choices=("minilm", "numpy"), default="minilm", help="the kind of student")
    distill.add_argument("--out", type=Path, required=True, metavar="MODEL_DIR", help="folder to save the student in")
    distill.add_argument("--epochs", type=int, default=3, help="minilm: most epochs (early stopping may stop sooner)")
    distill.add_argument("--seed", type=int, default=0, help="minilm: seed for the validation split and training")
    distill.add_argument("--layers", type=int, default=3, help="minilm: encoder layers to keep, 1-6 (default 3)")
    distill.add_argument(
        "--max-tokens",
        type=int,
        metavar="N",
        help="minilm: word pieces read per item, question, reference and answer together (default 1536; longer "
        "items are shortened, the longest text first, keeping its start and end)",
    )
    distill.add_argument(
        "--threads", type=int, default=os.cpu_count() or 1, help="minilm: torch threads for training (default: all)"
    )
    distill.add_argument("--teacher", help="the judge whose judgements to learn (default: teacher, or the only one)")
    distill.add_argument("--answers", type=Path, help="texts to join judgement lines with (default: answers.jsonl)")


def _report(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    report = commands.add_parser(
        "report",
        help="(re)build report.html from a run folder or a judge run's verdicts file",
        description="Build the report of a finished run: DIR/report.html for a run folder; OUT.report.html, "
        ".json and .md beside a verdicts file OUT.jsonl or OUT.parquet (texts and human labels come from the "
        "items file its store names, or --items). One self-contained HTML file: it opens offline, with no server.",
    )
    report.add_argument("path", type=Path, metavar="DIR|OUT")
    report.add_argument("--items", type=Path, metavar="ITEMS", help="the items a verdicts file judged")
    report.add_argument(
        "--judge",
        action="append",
        dest="judges",
        metavar="NAME",
        help="judge order for a verdicts file, the reference first (default: the order the run was given)",
    )
    report.add_argument("--label-threshold", type=float, default=4.0, metavar="SCORE", help="as for judge (default 4)")
    report.add_argument("--seed", type=int, default=0, help="seed for the bootstrap confidence intervals")
