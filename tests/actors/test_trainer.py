"""The Trainer: learns only from scored train judgements, and refuses a held-out item."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from doubles import (
    FunctionJudge,
    RecordingBackend,
    answer,
    drain,
    feed,
    score_reply,
)
from judgeflow.actors import Trainer
from judgeflow.protocol import (
    Channel,
    Judgement,
    Scored,
    StudentReady,
    Unparsed,
)
from judgeflow.protocol.messages import ChatMessage, TrainingExample

pytestmark = pytest.mark.anyio


async def test_trainer_learns_only_from_scored_train_judgements(tmp_path: Path) -> None:
    backend = RecordingBackend(FunctionJudge(score_reply))
    inbox, outbox = Channel[Judgement]("in", 4), Channel[StudentReady]("out", 1)
    good = Judgement(answer("a", split="train"), "teacher", "t", Scored(4.0, "ok", "4.0\nok"), "4.0\nok")
    unparsed = Judgement(answer("b", split="train"), "teacher", "t", Unparsed("?", "no score found"), "?")
    recorded: list[TrainingExample] = []
    async with anyio.create_task_group() as tg:
        trainer = Trainer(backend, out_dir=tmp_path, record=recorded.append)
        await tg.start(trainer.run, inbox.receiver, outbox.sender)
        tg.start_soon(feed, inbox, [good, unparsed])
        ready = await drain(outbox)
    assert [example.id for example in backend.trained_on] == ["a"]
    assert ready == [StudentReady("student_trained", str(tmp_path / "student"), 1)]
    assert recorded == backend.trained_on
    assert recorded[0].messages[-1] == ChatMessage("assistant", "4.0\nok")


async def test_trainer_refuses_a_held_out_item(tmp_path: Path) -> None:
    inbox, outbox = Channel[Judgement]("in", 4), Channel[StudentReady]("out", 1)
    leaked = Judgement(answer("z", split="test"), "teacher", "t", Scored(4.0, "", "4"), "4")
    trainer = Trainer(RecordingBackend(FunctionJudge(score_reply)), out_dir=tmp_path)

    async def run_trainer() -> None:
        async with anyio.create_task_group() as tg:
            await tg.start(trainer.run, inbox.receiver, outbox.sender)
            tg.start_soon(feed, inbox, [leaked])
            await drain(outbox)

    with pytest.raises(ExceptionGroup) as caught:
        await run_trainer()
    assert caught.group_contains(ValueError, match="held-out item z")


def test_the_training_reply_is_in_the_recipe_format_whatever_the_scoring_mode() -> None:
    from judgeflow.actors.trainer import recipe_reply

    # A recipe reply is kept verbatim; a JSON reply, or a score read from probabilities, is written as the recipe's.
    assert recipe_reply("4.0\nok", Scored(4.0, "ok", "4.0\nok")) == "4.0\nok"
    as_json = '{"score": 4, "reasoning": "Right year."}'
    assert recipe_reply(as_json, Scored(4.0, "Right year.", as_json)) == "4.0\nRight year."
    probs = (0.0, 0.0, 0.25, 0.5, 0.25)
    assert recipe_reply("4.0\nok", Scored(4.0000001, "ok", "4.0\nok", probs)) == "4.0\nok"
    assert recipe_reply("4\nok", Scored(3.74, "ok", "4\nok", probs)) == "3.74\nok"
