"""Run the embedded default pipeline from Python and watch its events.

    python examples/pipeline_events.py [OUT_DIR]

Shows the embedding API: ``open_pipeline`` yields a run whose ``events`` stream ends when the run does; the
report is then in ``run.report`` (and in ``report.json`` in the run folder).
"""

from __future__ import annotations

import sys
import tempfile
from collections import Counter
from pathlib import Path

import anyio

from judgeflow import PipelineConfig, ScoreUpdate, open_pipeline
from judgeflow.protocol import ItemDone


async def main(out_dir: Path) -> None:
    config = PipelineConfig(questions_per_doc=6, n_resamples=300, out_dir=out_dir)
    done: Counter[str] = Counter()
    async with open_pipeline(config) as run:
        async for event in run.events:
            if isinstance(event, ItemDone):
                done[event.actor] += 1
            elif isinstance(event, ScoreUpdate) and event.final:
                print(f"{event.judge}: pearson {event.metrics['pearson']} over {event.n} held-out items")
        report = await run.wait()
    print(f"items done per actor: {dict(done)}")
    print(f"train {report['n_train']}, held-out {report['n_test']}; report in {run.out_dir / 'report.json'}")


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="judgeflow-"))
    anyio.run(main, target)
