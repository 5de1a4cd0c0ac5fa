"""Structured logs of a run: JSON lines in ``<run folder>/run.log``, with every secret redacted before writing.

A run log is read after the fact (why did the run stop, what did it retry) and is shared with others, so no API
key may ever reach it: whatever is logged (an event field, an exception text, a request's headers) passes
through `Redactor`, which replaces the values of the secret environment variables, any extra secrets named by
the caller, and anything shaped like a key (``sk-...``, ``hf_...``, ``Bearer <token>``) with ``[redacted]``,
recursively, after exceptions are rendered to text and before anything is serialized.

`EventLogger` writes the run's events to the log. It reads only its own bus subscription, so a slow disk makes
it miss events (it logs how many), never slows an actor.

structlog is configured without the standard library's logging: a small line logger writes each rendered line
to the log file (and to stderr if asked), flushing it so a crash loses nothing already logged. The file stays
open until `close_logging` (or the next `configure_logging`) closes it.
"""

from __future__ import annotations

import dataclasses
import os
import re
import sys
import threading
from collections.abc import Iterable, Mapping, MutableMapping, Sequence
from pathlib import Path
from typing import IO, Any

import anyio
import structlog
from anyio.streams.memory import MemoryObjectReceiveStream

from judgeflow.protocol.bus import batches
from judgeflow.protocol.events import BudgetExhausted, CallRetry, Event, ItemFailed, Missed, RunFinished, ServerDown

__all__ = [
    "LOG_FILENAME",
    "REDACTED",
    "SECRET_ENV_VARS",
    "EventLogger",
    "Redactor",
    "close_logging",
    "configure_logging",
    "environment_secrets",
    "event_fields",
]

LOG_FILENAME = "run.log"
REDACTED = "[redacted]"
SECRET_ENV_VARS = ("OPENAI_API_KEY", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")
_MIN_SECRET_LENGTH = 4  # a shorter "secret" would redact ordinary words all over the log
_PATTERNS = (r"sk-[A-Za-z0-9_-]{8,}", r"hf_[A-Za-z0-9]{8,}", r"(?i:bearer)\s+[A-Za-z0-9._~+/=-]+")
_LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40, "critical": 50}


class Redactor:
    """A structlog processor replacing secrets in every key and value of an event dict, however nested.

    Values that are not JSON scalars (exceptions, paths, arbitrary objects) are turned into text first, so what
    the renderer would have written with ``str()`` is redacted too.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        literals = sorted({s for s in secrets if len(s) >= _MIN_SECRET_LENGTH}, key=len, reverse=True)
        # Longest literal first, so a secret containing another is replaced whole.
        self._pattern = re.compile("|".join([*map(re.escape, literals), *_PATTERNS]))

    def redact(self, text: str) -> str:
        return self._pattern.sub(REDACTED, text)

    def clean(self, value: object) -> object:
        if isinstance(value, str):
            return self.redact(value)
        if value is None or isinstance(value, bool | int | float):
            return value
        if isinstance(value, Mapping):
            return {str(self.clean(k)): self.clean(v) for k, v in value.items()}
        if isinstance(value, list | tuple | set | frozenset):
            return [self.clean(v) for v in value]
        if isinstance(value, bytes):
            return self.redact(value.decode("utf-8", "replace"))
        return self.redact(str(value))

    def __call__(self, _logger: object, _method: str, event_dict: MutableMapping[str, Any]) -> dict[str, Any]:
        return {str(self.clean(k)): self.clean(v) for k, v in event_dict.items()}


def environment_secrets(names: Sequence[str] = SECRET_ENV_VARS) -> list[str]:
    """The values of the secret environment variables that are set."""
    return [value for name in names if (value := os.environ.get(name))]


class _LineLogger:
    """What structlog writes through: each rendered line to every output, flushed, one writer at a time."""

    def __init__(self, outputs: Sequence[IO[str]]) -> None:
        self._outputs = outputs
        self._lock = threading.Lock()

    def msg(self, message: str) -> None:
        with self._lock:
            for out in self._outputs:
                out.write(message + "\n")
                out.flush()

    debug = info = warning = warn = error = critical = exception = fatal = log = msg


_open_file: IO[str] | None = None


def configure_logging(
    run_dir: Path | None, *, level: str = "info", secrets: Sequence[str] = (), stderr: bool = False
) -> None:
    """Send judgeflow's structlog output to ``run_dir/run.log`` (appended), and to stderr if ``stderr``.

    With no ``run_dir`` the lines go to stderr. The values of `SECRET_ENV_VARS` are always redacted, ``secrets``
    as well. Calling it again closes the previous log file.
    """
    if level not in _LEVELS:
        raise ValueError(f"level must be one of {list(_LEVELS)}, got {level!r}")
    close_logging()
    global _open_file
    outputs: list[IO[str]] = []
    if run_dir is not None:
        run_dir.mkdir(parents=True, exist_ok=True)
        _open_file = (run_dir / LOG_FILENAME).open("a", encoding="utf-8")
        outputs.append(_open_file)
    if stderr or run_dir is None:
        outputs.append(sys.stderr)
    line_logger = _LineLogger(outputs)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,  # exception text is redacted like everything else
            Redactor([*environment_secrets(), *secrets]),
            structlog.processors.JSONRenderer(ensure_ascii=False),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS[level]),
        logger_factory=lambda *_args: line_logger,
        # Loggers must see a reconfiguration (a new run folder), so none may keep the old configuration.
        cache_logger_on_first_use=False,
    )


def close_logging() -> None:
    """Close the log file and put structlog back to its defaults."""
    global _open_file
    structlog.reset_defaults()
    if _open_file is not None:
        _open_file.close()
        _open_file = None


def event_fields(event: object) -> dict[str, Any]:
    """An event's dataclass fields as plain data (nested dataclasses and mappings as dicts, tuples as lists)."""

    def plain(value: object) -> object:
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
        if isinstance(value, Mapping):
            return {str(k): plain(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [plain(v) for v in value]
        return value

    fields = plain(event)
    return fields if isinstance(fields, dict) else {"value": fields}


_WARNINGS = (ItemFailed, CallRetry, BudgetExhausted, Missed, ServerDown)
_RESERVED = frozenset({"event", "level", "timestamp", "exception"})


class EventLogger:
    """Logs every event of its bus subscription as one line: the event type, then its fields."""

    def __init__(self, *, logger_name: str = "judgeflow.events") -> None:
        self._logger = structlog.get_logger(logger_name)
        self.logged = 0

    def log(self, event: Event) -> None:
        logger = self._logger
        fields = {f"field_{k}" if k in _RESERVED else k: v for k, v in event_fields(event).items()}
        failed_run = isinstance(event, RunFinished) and not event.ok
        if isinstance(event, _WARNINGS) or failed_run:
            logger.warning(type(event).__name__, **fields)
        else:
            logger.info(type(event).__name__, **fields)
        self.logged += 1

    async def run(
        self,
        events: MemoryObjectReceiveStream[Event],
        *,
        task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        """Log ``events`` until the bus closes; ``events`` is this logger's own subscription and is closed here."""
        with events:
            task_status.started()
            async for batch in batches(events):
                for event in batch:
                    self.log(event)
