"""Use two judgeflow actors inside your own async application, with your own judge.

    python examples/embed_actors.py

Any object with a ``name`` and an ``async judge(item) -> JudgeReply`` is a judge; `judge_reply` reads the
verdict out of a text reply with judgeflow's parser. Here a keyword judge grades three
answers, and the Scorer compares it with judgeflow's local rubric teacher; both actors run in our task group.
"""

from __future__ import annotations

import anyio

from judgeflow import Answer, Judgement, Question, Scorer, StudentJudge, TeacherJudge
from judgeflow.core.parsing import judge_reply
from judgeflow.protocol import Channel, JudgeInput, ScoreUpdate
from judgeflow.protocol.messages import JudgeReply
from judgeflow.providers.local import LocalTeacherJudge


class KeywordJudge:
    """A toy judge: 5 when the answer shares the reference's last word, 1 otherwise."""

    name = "keyword"

    async def judge(self, item: JudgeInput) -> JudgeReply:
        key = item.reference.rstrip(".").split()[-1].lower()
        score = 5 if key in item.answer.lower() else 1
        return judge_reply(f"{score}\nlooked for {key!r}", self.name)


ITEMS = [
    ("1", "When did the Golden Gate Bridge open?", "The Golden Gate Bridge opened in 1937.", "It opened in 1937."),
    ("2", "Who founded Montreal?", "Montreal was founded by Paul de Chomedey in 1642.", "It was founded in 1642."),
    ("3", "What destroyed San Francisco in 1906?", "An earthquake and fire in 1906.", "A flood."),
    ("4", "Where is Tokyo?", "Tokyo is on the island of Honshu.", "Tokyo lies on Honshu."),
]


async def main() -> None:
    teacher_in, student_in = Channel[Answer]("teacher.in", 8), Channel[Answer]("keyword.in", 8)
    judgements, scores = Channel[Judgement]("judgements", 8), Channel[ScoreUpdate]("scores", 8)
    scorer = Scorer(reference="teacher", students=("keyword",), difference=None, n_resamples=200)
    async with anyio.create_task_group() as tg:
        await tg.start(TeacherJudge(LocalTeacherJudge()).run, teacher_in.receiver, judgements.sender.clone())
        await tg.start(StudentJudge(KeywordJudge(), name="keyword").run, student_in.receiver, judgements.sender)
        await tg.start(scorer.run, judgements.receiver, scores.sender)
        async with teacher_in.sender, student_in.sender:
            for item_id, question, reference, text in ITEMS:
                answer = Answer(Question(item_id, question, reference, "test"), text, "hand-written")
                await teacher_in.sender.send(answer)
                await student_in.sender.send(answer)
        with scores.receiver:
            async for update in scores.receiver:
                if update.final:
                    print(f"{update.judge} vs teacher on {update.n} items: {dict(update.metrics)}")


if __name__ == "__main__":
    anyio.run(main)
