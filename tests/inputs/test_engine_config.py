"""``[engine]`` of a judge run: where it runs (this process or Ray), checked when the config is made."""

from __future__ import annotations

from pathlib import Path

import pytest

from judgeflow.inputs.config import ConfigError, EngineConfig, JudgingConfig


def test_the_default_engine_is_this_process_and_is_not_part_of_what_a_resume_must_match() -> None:
    local = JudgingConfig(Path("i.jsonl"), Path("o.jsonl"))
    on_ray = JudgingConfig(Path("i.jsonl"), Path("o.jsonl"), engine=EngineConfig(kind="ray", workers=4))
    assert local.engine.kind == "local"
    assert (on_ray.engine.workers, on_ray.engine.shard_size, on_ray.engine.address) == (4, 10_000, None)
    assert local.summary() == on_ray.summary()


@pytest.mark.parametrize(
    ("engine", "message"),
    [
        ({"kind": "spark"}, r"\[engine\] kind must be one of local, ray; got 'spark'"),
        ({"kind": "ray", "workers": 0}, r"\[engine\] workers must be >= 1, got 0"),
        ({"kind": "ray", "shard_size": 0}, r"\[engine\] shard_size must be >= 1, got 0"),
    ],
)
def test_a_bad_engine_is_refused_naming_the_key(engine: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        EngineConfig(**engine)  # type: ignore[arg-type]


def test_batch_mode_on_ray_is_refused_in_one_line() -> None:
    with pytest.raises(ConfigError, match=r"^--batch cannot be used with --ray: .*without --ray$"):
        JudgingConfig(Path("i.jsonl"), Path("o.jsonl"), batch=True, engine=EngineConfig(kind="ray"))
