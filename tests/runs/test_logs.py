"""Tests for judgeflow.runs.logs: no secret reaches run.log, lines are JSON, the file is closed, events are logged."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
import structlog

from judgeflow.protocol.bus import EventBus
from judgeflow.protocol.events import CallFinished, ItemDone, ItemFailed, RunStarted, ScoreUpdate
from judgeflow.protocol.messages import Usage
from judgeflow.runs.logs import (
    LOG_FILENAME,
    REDACTED,
    EventLogger,
    Redactor,
    close_logging,
    configure_logging,
    event_fields,
)

# Shaped like no known pattern, so only the environment lookup can catch it.
OPENAI_KEY = "proj-Zq9w8e7r6t5yU4i3"
HF_KEY = "tok-Lm5Nb4Vc3Xz2"


@pytest.fixture(autouse=True)
def _logging(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
    monkeypatch.setenv("HF_TOKEN", HF_KEY)
    yield
    close_logging()


def _lines(run_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run_dir / LOG_FILENAME).read_text(encoding="utf-8").splitlines()]


def _open_paths() -> set[str]:
    fd_dir = Path("/proc/self/fd")
    if not fd_dir.exists():
        pytest.skip("needs /proc to list open files")
    paths = set()
    for fd in fd_dir.iterdir():
        try:
            paths.add(os.readlink(fd))
        except OSError:
            continue
    return paths


class Leaky:
    """An object whose text holds a secret, as a client object's repr might."""

    def __str__(self) -> str:
        return f"Client(api_key={OPENAI_KEY})"


def test_secrets_never_reach_run_log(tmp_path: Path) -> None:
    configure_logging(tmp_path, secrets=["extra-secret-123"])
    log = structlog.get_logger("judgeflow.test")
    log.info(
        f"calling with {OPENAI_KEY}",
        api_key=OPENAI_KEY,
        hf=HF_KEY,
        headers={"Authorization": "Bearer abc.DEF-ghi_123", OPENAI_KEY: "key as a dict key"},
        nested=[{"url": f"https://api.example/v1?key={HF_KEY}&x=1"}, ("extra-secret-123",)],
        sk="sk-ABCDEFGH12345678",
        project_key="sk-proj-abc_DEF-123456789",
        hub="hf_ABCDEFGHijklmnop",
        client=Leaky(),
    )
    try:
        raise RuntimeError(f"401 Unauthorized for key {OPENAI_KEY}")
    except RuntimeError:
        log.exception("call failed")
    close_logging()
    text = (tmp_path / LOG_FILENAME).read_text(encoding="utf-8")
    for secret in (OPENAI_KEY, HF_KEY, "extra-secret-123", "abc.DEF-ghi_123", "ABCDEFGH12345678", "hf_ABCDEFGH"):
        assert secret not in text
    assert "sk-proj" not in text
    first, second = _lines(tmp_path)
    assert first["event"] == f"calling with {REDACTED}"
    assert first["headers"] == {"Authorization": REDACTED, REDACTED: "key as a dict key"}
    assert first["nested"] == [{"url": f"https://api.example/v1?key={REDACTED}&x=1"}, [REDACTED]]
    assert first["client"] == f"Client(api_key={REDACTED})"
    assert second["level"] == "error"
    assert "RuntimeError: 401 Unauthorized for key [redacted]" in second["exception"]


def test_lines_are_json_with_level_and_time_and_levels_filter(tmp_path: Path) -> None:
    configure_logging(tmp_path, level="warning")
    log = structlog.get_logger()
    log.info("dropped")
    log.warning("kept", n=3, ratio=0.5, ok=True, nothing=None)
    close_logging()
    (line,) = _lines(tmp_path)
    assert line["event"] == "kept"
    assert line["level"] == "warning"
    assert line["timestamp"].endswith("Z")
    assert (line["n"], line["ratio"], line["ok"], line["nothing"]) == (3, 0.5, True, None)
    with pytest.raises(ValueError, match="level"):
        configure_logging(tmp_path, level="loud")


def test_the_log_file_is_closed_and_reconfiguring_closes_the_previous_one(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    configure_logging(first)
    structlog.get_logger().info("one")
    assert str(first / LOG_FILENAME) in _open_paths()
    configure_logging(second)
    structlog.get_logger().info("two")
    assert str(first / LOG_FILENAME) not in _open_paths()
    close_logging()
    assert str(second / LOG_FILENAME) not in _open_paths()
    assert [line["event"] for line in _lines(first)] == ["one"]
    assert [line["event"] for line in _lines(second)] == ["two"]
    configure_logging(first)  # appends: a resumed run keeps its earlier log
    structlog.get_logger().info("three")
    close_logging()
    assert [line["event"] for line in _lines(first)] == ["one", "three"]


def test_without_a_run_folder_lines_go_to_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(None)
    structlog.get_logger().info("hello", token=f"Bearer {OPENAI_KEY}")
    err = capsys.readouterr().err
    assert json.loads(err)["token"] == REDACTED


def test_redactor_is_plain_and_ignores_too_short_secrets() -> None:
    redactor = Redactor(["abc", "secret-value", "secret-value-longer"])
    assert redactor.redact("abc secret-value-longer secret-value") == f"abc {REDACTED} {REDACTED}"
    assert redactor.clean({"k": {1, 2}, "b": b"secret-value", "n": 2}) == {"k": [1, 2], "b": REDACTED, "n": 2}
    assert redactor.redact("authorization: bearer xyz") == f"authorization: {REDACTED}"
    assert redactor.redact("sk-short hf_short") == "sk-short hf_short"  # too short to be a key


def test_event_fields_are_plain_data() -> None:
    update = ScoreUpdate("student_base", "teacher", 10, 1, 0, {"pearson": 0.5})
    assert event_fields(update)["metrics"] == {"pearson": 0.5}
    assert event_fields(CallFinished("teacher", "gpt-4o", 0.25, Usage(10, 2), 0.001)) == {
        "actor": "teacher",
        "model": "gpt-4o",
        "latency_s": 0.25,
        "usage": {"input_tokens": 10, "output_tokens": 2},
        "cost_usd": 0.001,
        "ok": True,
    }


@pytest.mark.anyio
async def test_event_logger_logs_each_event_with_its_fields(tmp_path: Path) -> None:
    configure_logging(tmp_path)
    bus = EventBus()
    logger = EventLogger()
    async with anyio.create_task_group() as tg:
        await tg.start(logger.run, bus.subscribe_nowait(buffer=64))
        bus.publish(RunStarted(str(tmp_path), 8))
        bus.publish(CallFinished("teacher", "gpt-4o", 0.25, Usage(10, 2), 0.001))
        bus.publish(ItemFailed("teacher", "q7", f"401: invalid key {OPENAI_KEY}"))
        bus.close()
    close_logging()
    started, call, failed = _lines(tmp_path)
    assert started["event"] == "RunStarted"
    assert started["n_documents"] == 8
    assert call["event"] == "CallFinished"
    assert call["usage"] == {"input_tokens": 10, "output_tokens": 2}
    assert call["level"] == "info"
    assert failed["level"] == "warning"
    assert failed["error"] == f"401: invalid key {REDACTED}"
    assert logger.logged == 3


@pytest.mark.anyio
async def test_a_slow_event_logger_misses_events_and_says_how_many(tmp_path: Path) -> None:
    configure_logging(tmp_path)
    bus = EventBus()
    logger = EventLogger()
    async with anyio.create_task_group() as tg:
        await tg.start(logger.run, bus.subscribe_nowait(buffer=1))
        for i in range(5):  # published faster than the logger reads: the publisher never waits
            bus.publish(ItemDone("teacher", f"q{i}"))
        await anyio.wait_all_tasks_blocked()  # the logger has read what it had room for
        assert logger.logged == 1
        bus.publish(ItemDone("teacher", "q5"))
        bus.close()
    close_logging()
    lines = _lines(tmp_path)
    assert [(line["event"], line.get("item_id"), line.get("count")) for line in lines] == [
        ("ItemDone", "q0", None),
        ("Missed", None, 4),
        ("ItemDone", "q5", None),
    ]
    assert lines[1]["level"] == "warning"
