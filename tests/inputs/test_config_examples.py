"""The TOML files in examples/ load and say what they claim."""

from __future__ import annotations

from pathlib import Path

from judgeflow.inputs.config import load_config

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_recipe_config_reproduces_the_recipe() -> None:
    config = load_config(EXAMPLES / "recipe.toml")
    assert config.documents.source == "wikipedia"
    assert len(config.documents.titles) == 8
    assert config.roles.teacher.model == "gpt-4"
    assert config.roles.student.model == "gpt-3.5-turbo"
    assert config.roles.answerer.provider == "hf"
    assert "Llama-2-7b-chat" in config.roles.answerer.model
    assert config.trainer.backend == "openai"
    assert config.top_k == 2
    assert not config.is_local


def test_local_server_config_points_every_role_at_localhost() -> None:
    config = load_config(EXAMPLES / "local-server.toml")
    for role in (config.roles.question_writer, config.roles.answerer, config.roles.teacher, config.roles.student):
        assert role.provider == "openai"
        assert role.base_url is not None
        assert role.base_url.startswith("http://127.0.0.1:")


def test_every_example_config_loads() -> None:
    configs = sorted(EXAMPLES.glob("*.toml"))
    assert len(configs) >= 4
    for path in configs:
        load_config(path)


def test_smollm_example_asks_for_the_generative_answerer() -> None:
    config = load_config(EXAMPLES / "local-smollm.toml")
    assert (config.roles.answerer.provider, config.roles.answerer.model) == ("local", "smollm2")
    assert config.is_local
    assert not config.is_embedded_default


def test_llama_cpp_example_puts_every_chat_role_on_one_server_with_scoring_modes() -> None:
    config = load_config(EXAMPLES / "llama-cpp.toml")
    roles = config.roles
    for role in (roles.question_writer, roles.answerer, roles.teacher, roles.student):
        assert (role.provider, role.model, role.base_url) == ("openai", "smollm2", "http://127.0.0.1:8080/v1")
    assert (roles.teacher.scoring, roles.student.scoring, roles.question_writer.output) == ("logprobs", "json", "json")
    assert config.trainer.backend == "local"
