"""Run configuration: plain frozen dataclasses, loadable from a TOML file with errors that name file and key.

Everything has a default, and the defaults are the embedded offline run (bundled corpus, local models), so
``PipelineConfig()`` is a complete, runnable configuration. Secrets never live here: API keys come from the
environment only, so a config file can be shared and a run folder can record its config verbatim.
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from judgeflow.corpus import CITIES

__all__ = ["ConfigError", "PipelineConfig", "Workers", "load_config"]


class ConfigError(ValueError):
    """A configuration file that cannot be used; the message names the file and the key."""


@dataclass(frozen=True, slots=True)
class Workers:
    """Concurrent workers per actor (each actor's workers share its inbox)."""

    question_writer: int = 2
    retriever: int = 2
    answerer: int = 4
    teacher: int = 8
    student: int = 4


@dataclass(frozen=True, slots=True)
class PipelineConfig:
    """What to run. The defaults are the embedded default: bundled corpus, local stand-in models."""

    seed: int = 0
    train_fraction: float = 0.65
    questions_per_doc: int = 16
    top_k: int = 2
    chunk_words: int = 80
    cities: tuple[str, ...] = CITIES
    channel_capacity: int = 16
    n_resamples: int = 2000
    student_batch_size: int = 256
    workers: Workers = field(default_factory=Workers)
    out_dir: Path | None = None

    def __post_init__(self) -> None:
        if not 0.0 < self.train_fraction < 1.0:
            raise ConfigError(f"train_fraction must be between 0 and 1 (exclusive), got {self.train_fraction}")
        for name in ("questions_per_doc", "top_k", "chunk_words", "n_resamples", "student_batch_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.channel_capacity < 0:
            raise ConfigError(f"channel_capacity must be >= 0, got {self.channel_capacity}")
        unknown = [city for city in self.cities if city not in CITIES]
        if unknown:
            raise ConfigError(f"cities not in the bundled corpus: {unknown}; available: {list(CITIES)}")

    def summary(self) -> dict[str, Any]:
        """The config as plain JSON-able data, for the report."""
        data = dataclasses.asdict(self)
        data["out_dir"] = str(self.out_dir) if self.out_dir is not None else None
        data["cities"] = list(self.cities)
        return data


def _build(cls: type[Any], data: dict[str, Any], where: str) -> Any:
    names = {f.name: f for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        if key not in names:
            raise ConfigError(f"{where}: unknown key {key!r} (known: {', '.join(sorted(names))})")
        if key == "workers":
            if not isinstance(value, dict):
                raise ConfigError(f"{where}: 'workers' must be a table")
            kwargs[key] = _build(Workers, value, f"{where} [workers]")
        elif key == "cities":
            kwargs[key] = tuple(value)
        elif key == "out_dir":
            kwargs[key] = Path(value)
        else:
            kwargs[key] = value
    try:
        return cls(**kwargs)
    except ConfigError as error:
        raise ConfigError(f"{where}: {error}") from None
    except TypeError as error:
        raise ConfigError(f"{where}: {error}") from None


def load_config(path: Path) -> PipelineConfig:
    """Read a TOML config; a missing file, bad TOML or an unknown key is a `ConfigError` naming the file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"{path}: cannot read config ({error.strerror})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: invalid TOML: {error}") from None
    config: PipelineConfig = _build(PipelineConfig, data, str(path))
    return config
