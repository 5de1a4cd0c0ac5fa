"""The errors that stop a run on purpose: their one-line message, who hit them, and that they cross processes."""

from __future__ import annotations

import pickle

import pytest

from judgeflow.protocol.errors import ModelUnusable, RunStopped, ServerUnreachable, find_stop


def test_the_message_names_who_stopped_the_run_once() -> None:
    stop = ModelUnusable("http://x/v1 answered 404", model="openai:gpt-5", server="http://x/v1", status=404)
    assert str(stop) == "openai:gpt-5: http://x/v1 answered 404"
    stop.role = "teacher"
    assert stop.message == "teacher (openai:gpt-5): http://x/v1 answered 404"
    stop.role = "openai:gpt-5"  # a judge run names its judges by model: not twice
    assert stop.message == "openai:gpt-5: http://x/v1 answered 404"
    plain = RunStopped("no questions were written")
    assert plain.message == "no questions were written"
    plain.role = "question_writer"
    assert str(plain) == "question_writer: no questions were written"


@pytest.mark.parametrize(
    "stop",
    [
        RunStopped("nothing to train on", role="trainer"),
        ModelUnusable("answered 401", model="openai:m", server="s", status=401, detail="d", hint="h", role="r"),
        ServerUnreachable("gone", server="s", down_s=12.5, detail="refused", ever_answered=True, role="teacher"),
    ],
)
def test_a_stop_pickles_whole(stop: RunStopped) -> None:
    again = pickle.loads(pickle.dumps(stop))
    assert type(again) is type(stop)
    assert vars(again) == vars(stop)
    assert again.message == stop.message


def test_find_stop_looks_inside_exception_groups() -> None:
    stop = ServerUnreachable("gone")
    group = ExceptionGroup("tg", [ValueError("other"), ExceptionGroup("inner", [stop])])
    assert find_stop(group) is stop
    assert find_stop(stop) is stop
    assert find_stop(ExceptionGroup("tg", [ValueError("x")])) is None
    assert find_stop(KeyboardInterrupt()) is None
