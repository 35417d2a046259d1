"""Every shipped config is valid, names its own task and model, and restores with its settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from restore.settings import CONFIG_DIR, Settings, load_config

CONFIGS = sorted(CONFIG_DIR.glob("*.yaml"))


def test_there_are_configs():
    assert CONFIGS


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_config_is_valid_and_named_after_its_task_and_model(path: Path):
    values = load_config(path.name)  # a bare name resolves in configs/
    settings = Settings(**values).validate()
    assert path.stem == f"{settings.task}_{settings.model}"
