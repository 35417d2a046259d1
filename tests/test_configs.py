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


# --------------------------------------------------------------------------- applied by default
@pytest.fixture()
def measured(tmp_path, monkeypatch, tiny_model_dir):
    """A measured config for (deno, the tiny test model), in a configs folder of its own."""
    import restore.settings

    folder = tmp_path / "configs"
    folder.mkdir()
    (folder / f"deno_{Path(tiny_model_dir).name}.yaml").write_text(
        "task: deno\nsolver: nested\nouter: 2\ninner: 1\neta: 0.5\nouter_power: 1.0\nsigma_y: 0.3\nseed: 9\n")
    monkeypatch.setattr(restore.settings, "CONFIG_DIR", folder)
    return folder


def _run(tiny_model_dir, **kwargs):
    import torch

    from restore import restore_image

    return restore_image(torch.zeros(1, 3, 16, 16), model=str(tiny_model_dir), quiet=True, **{"task": "deno", **kwargs})


def test_the_measured_config_applies_by_default_and_says_so(measured, tiny_model_dir):
    r = _run(tiny_model_dir)
    s = r.settings
    assert (s.eta, s.outer_power, s.outer, s.inner) == (0.5, 1.0, 2, 1)  # the method settings
    assert (s.sigma_y, s.seed) == (0.0, 0)  # never the problem's
    assert s.config.endswith("deno_tiny-ddpm.yaml") and r.metrics["settings"]["config"] == s.config
    (line,) = [n for n in r.notes if n.startswith("settings from")]
    assert "eta 0.5" in line and "outer_power 1.0" in line and "--config none" in line


def test_flags_override_it_and_none_or_another_solver_skip_it(measured, tiny_model_dir):
    assert _run(tiny_model_dir, eta=0.9).settings.eta == 0.9
    assert _run(tiny_model_dir, eta=0.9).settings.outer_power == 1.0
    off = _run(tiny_model_dir, config="none").settings
    assert (off.eta, off.outer_power, off.config) == (Settings.eta, Settings.outer_power, None)
    other = _run(tiny_model_dir, solver="ddrm", steps=1).settings  # measured for nested: not applied
    assert (other.eta, other.config) == (Settings.eta, None)
    assert _run(tiny_model_dir, task="sr4").settings.config is None  # no config for that pair


def test_the_command_line_applies_it_too(measured, tiny_model_dir):
    from restore.eval_cli import build_parser
    from restore.settings import settings_from_args

    base = ["--data", ".", "--out", "o", "--task", "deno", "--model", str(tiny_model_dir)]
    applied = settings_from_args(build_parser().parse_args(base))
    assert applied.eta == 0.5 and applied.config.endswith("deno_tiny-ddpm.yaml")
    assert settings_from_args(build_parser().parse_args([*base, "--eta", "0.7"])).eta == 0.7
    off = settings_from_args(build_parser().parse_args([*base, "--config", "none"]))
    assert off.eta == Settings.eta and off.config is None
